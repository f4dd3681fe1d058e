package index

import (
	"context"
	"fmt"

	"github.com/jobengine/jobengine/engine/jobs"
)

// DeleteJobs removes jobs ("job/<uuid>") and their events from the history.
// It refreshes both indices first, so that recent events are found. The
// caller makes sure no version of these jobs is still waiting in the
// outbox: the pump would index it again.
func (c *Client) DeleteJobs(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := c.ready(ctx); err != nil {
		return err
	}
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	var ops []bulkOp
	for _, id := range ids {
		jid, uid, err := jobs.ParseID(id)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		ops = append(ops, bulkOp{index: c.JobsIndex(), id: uid, delete: true})
		var after EventCursor
		for {
			evs, next, err := c.JobEventsPage(ctx, jid, after, MaxLimit)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if ev.ID != "" {
					ops = append(ops, bulkOp{index: c.EventsIndex(), id: ev.ID, delete: true})
				}
			}
			if len(evs) < MaxLimit {
				break
			}
			after = next
		}
	}
	if _, err := c.bulk(ctx, ops); err != nil {
		return err
	}
	return c.Refresh(ctx)
}
