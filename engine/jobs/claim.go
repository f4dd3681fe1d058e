package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/queue"
)

// ErrHeld means an executor holds the job's queue entry: it runs there.
var ErrHeld = errors.New("job held by an executor")

// HoldJob takes the queue entry of a QUEUED job for a writer outside any
// executor (`jobengine process --job`) and starts its attempt under that
// hold, as an executor does: the job becomes RUNNING by `by` in a
// transaction fenced by the holder's session, and so is every later write
// of the holder (its progress, its outcome: Finish, committed with the
// hold). A holder that dies leaves the entry free and the job RUNNING,
// which the action's lost-job policy then settles, as for a job whose
// executor died. The caller closes h.Consumer once it has written the
// outcome.
func (s *Store) HoldJob(ctx context.Context, id, by string) (*Job, int32, Hold, error) {
	j, ver, err := s.Get(ctx, id)
	if err != nil {
		return nil, 0, Hold{}, err
	}
	switch {
	case j.State.Final():
		return nil, 0, Hold{}, fmt.Errorf("%w: %s is %s", ErrFinal, j.ID, j.State)
	case j.State != Queued:
		return nil, 0, Hold{}, fmt.Errorf("%w: %s is %s on %s; only a QUEUED job can be claimed", ErrHeld, j.ID, j.State, j.Executor)
	}
	q := s.entryQueue(j)
	name, err := findEntry(ctx, q, j)
	if err != nil {
		return nil, 0, Hold{}, err
	}
	if name == "" {
		return nil, 0, Hold{}, fmt.Errorf("%w: %s is QUEUED without a queue entry (`jobengine queue restore` queues it again)", ErrIllegalState, j.ID)
	}
	holder := q.NewHolder(queue.ConsumerOptions{Name: by, Logger: s.log})
	it, err := holder.TakeEntry(ctx, name)
	if err == nil && it == nil {
		err = fmt.Errorf("%w: %s was taken by an executor meanwhile", ErrHeld, j.ID)
	}
	if err != nil {
		holder.Close()
		return nil, 0, Hold{}, err
	}
	h := Hold{Consumer: holder, Item: it}
	c, err := s.StartAttempt(j, ver, by)
	if err == nil {
		err = c.Commit(ctx, h)
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = holder.Release(rctx, it)
		cancel()
		holder.Close()
		return nil, 0, Hold{}, fmt.Errorf("jobs: claiming %s: %w", j.ID, err)
	}
	s.log.Info("job claimed", zap.String("job", j.ID), zap.String("by", by))
	return c.Job(), c.Ver(), h, nil
}
