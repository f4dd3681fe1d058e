package jobs

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"
)

// maxChainDepth bounds how far a cancel follows dependencies.
const maxChainDepth = 8

// cancelOrphanDependencies cancels what j waited for and nothing else
// does: each job j depends on that was created as a dependency (launch
// type dependency, a project update on launch) and is not final, unless
// another PENDING job waits for it too (a launch that shares it), and
// then, the same way, what that job waited for. Jobs wait for a
// dependency only while PENDING, so the PENDING jobs are all that may
// share one. Best effort: a failure is logged, the cancel of j stands.
func (s *Store) cancelOrphanDependencies(ctx context.Context, j *Job, by string, depth int) {
	if len(j.DependsOn) == 0 || depth >= maxChainDepth {
		return
	}
	var waiters []*Job
	loaded := false
	for _, d := range j.DependsOn {
		dep, _, err := s.Get(ctx, d)
		if err != nil || dep.State.Final() || dep.LaunchType != LaunchDependency {
			continue
		}
		if !loaded {
			if waiters, err = s.pendingWaiters(ctx); err != nil {
				s.log.Warn("dependencies of a canceled job left alone", zap.String("job", j.ID), zap.Error(err))
				return
			}
			loaded = true
		}
		shared := slices.ContainsFunc(waiters, func(w *Job) bool {
			return w.ID != j.ID && w.ParentJob != j.ID && slices.Contains(w.DependsOn, d)
		})
		if shared {
			continue
		}
		done, err := s.Cancel(ctx, d, by)
		if err != nil && !errors.Is(err, ErrFinal) && !errors.Is(err, ErrNotFound) {
			s.log.Warn("dependency of a canceled job not canceled", zap.String("job", j.ID), zap.String("dependency", d), zap.Error(err))
			continue
		}
		if err == nil {
			s.log.Info("dependency canceled with the only job waiting for it", zap.String("job", j.ID), zap.String("dependency", d))
			s.cancelOrphanDependencies(ctx, done, by, depth+1)
		}
	}
}

// pendingWaiters reads the PENDING jobs that wait for a dependency.
func (s *Store) pendingWaiters(ctx context.Context) ([]*Job, error) {
	ids, err := s.PendingIDs(ctx)
	if err != nil {
		return nil, err
	}
	jobs, err := s.getMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := jobs[:0]
	for _, w := range jobs {
		if w != nil && w.State == Pending && len(w.DependsOn) > 0 {
			out = append(out, w)
		}
	}
	return out, nil
}
