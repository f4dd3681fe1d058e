package history

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
)

// ContainerResync is how often Wait derives a container's state from its
// slices again, in case a slice's writer died between its own write and
// the container's.
const ContainerResync = 2 * time.Second

// containerResync returns a channel that fires when a container that is
// not final should be derived again; nil (never) for other jobs.
func containerResync(j *jobs.Job) <-chan time.Time {
	if !j.IsContainer() || j.State.Final() {
		return nil
	}
	return time.After(ContainerResync)
}

// followContainer brings a live container that is not final up to date
// with its slices and returns it as it is then; other jobs are returned as
// they are. A failure leaves the job as read.
func (r *Reader) followContainer(ctx context.Context, j *jobs.Job) *jobs.Job {
	if !j.IsContainer() || j.State.Final() {
		return j
	}
	c, err := r.store.SyncContainer(ctx, j.ID)
	if err != nil {
		r.log.Warn("container not brought up to date", zap.String("job", j.ID), zap.Error(err))
		return j
	}
	return c
}
