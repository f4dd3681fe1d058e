package executor

import (
	"context"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
)

// followParent brings the container of a slice up to date after this
// executor started or finished the slice. A failure is logged and left:
// the next change of any slice of the container, or a cancel, derives the
// container's state again from all of them.
func (e *Executor) followParent(log *zap.Logger, j *jobs.Job) {
	if !j.IsSlice() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
	defer cancel()
	if err := e.store.FollowParent(ctx, j); err != nil {
		log.Warn("container of the slice not updated", zap.String("container", j.ParentJob), zap.Error(err))
	}
}
