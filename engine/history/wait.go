package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// LogWatching is the debug message Wait logs each time it has read the job
// document and set its watch: once to start, then once per change.
const LogWatching = "watching job document"

// ErrNotFinal is wrapped when a job left ZooKeeper and its last indexed
// state is not final (its final version was never indexed).
var ErrNotFinal = errors.New("the job left ZooKeeper before its final state was indexed")

// Wait watches a job's document until the job is final and returns it.
// It reads the document once per change and does not poll. A document
// that is gone — removed after its final version was indexed — is looked
// up in the history. When ctx ends first, Wait returns the last document it
// read (Job.Job nil when none) with the context's cause.
func (r *Reader) Wait(ctx context.Context, id string) (Job, error) {
	return r.Follow(ctx, id, nil)
}

// Follow is Wait that calls seen, when not nil, with each document it
// reads that is not final, in order: once per change, and for a container
// at least every ContainerResync (its slices may change while it does
// not). The same version may be seen twice.
func (r *Reader) Follow(ctx context.Context, id string, seen func(Job)) (Job, error) {
	id, uid, err := jobs.ParseID(id)
	if err != nil {
		return Job{}, err
	}
	conn := r.store.Conn()
	p := r.store.DocPath(uid)
	var last Job
	for {
		var data []byte
		var ch <-chan zk.Event
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, ch, err = conn.GetW(p)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			// Never created, or removed after being indexed: the history
			// has its last state.
			v, err := r.get(ctx, id, uid)
			if err != nil {
				return last, err
			}
			if !v.State.Final() {
				return v, fmt.Errorf("%w: %s was last indexed as %s", ErrNotFinal, id, v.State)
			}
			return v, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return last, context.Cause(ctx)
			}
			return last, fmt.Errorf("history: reading %s: %w", id, err)
		}
		j, err := jobs.Decode(uid, data)
		if err != nil {
			return last, fmt.Errorf("history: %w", err)
		}
		last = Job{j, Live}
		if j.State.Final() {
			return last, nil
		}
		if seen != nil {
			seen(last)
		}
		r.log.Debug(LogWatching, zap.String("job", id), zap.String("action", j.Action), zap.String("state", string(j.State)))
		select {
		case <-ch:
			// Changed, deleted, or the watch was lost with the session: read again.
		case <-containerResync(j):
			r.followContainer(ctx, j)
		case <-ctx.Done():
			return last, context.Cause(ctx)
		}
	}
}
