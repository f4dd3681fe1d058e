package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrHeld means an executor holds the job's queue entry: it runs there.
var ErrHeld = errors.New("job held by an executor")

// Claim takes a QUEUED job out of the queue to run it outside any executor
// (a job whose result stream is processed by hand: `jobengine process
// --job`): in one transaction its entry is removed — never one an executor
// holds — and it becomes RUNNING under the name by. Nothing fences a
// claimed job afterwards: if the claimer dies, the job stays RUNNING
// until `queue restore` queues it again.
func (s *Store) Claim(ctx context.Context, id, by string) (*Job, int32, error) {
	for attempt := 0; attempt < 10; attempt++ {
		j, ver, err := s.Get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		switch {
		case j.State.Final():
			return nil, 0, fmt.Errorf("%w: %s is %s", ErrFinal, j.ID, j.State)
		case j.State != Queued:
			return nil, 0, fmt.Errorf("%w: %s is %s on %s; only a QUEUED job can be claimed", ErrHeld, j.ID, j.State, j.Executor)
		}
		if err := j.Transition(Running, s.now()); err != nil {
			return nil, 0, err
		}
		j.Attempt++
		j.Executor = by
		j.StatusMessage = ""
		ops, err := s.WriteOps(j, ver)
		if err != nil {
			return nil, 0, err
		}
		name, err := s.findEntry(ctx, j)
		if err != nil {
			return nil, 0, err
		}
		if name != "" {
			err = s.q.Remove(ctx, name, ops...)
			if errors.Is(err, queue.ErrLockLost) {
				return nil, 0, fmt.Errorf("%w: %s was taken by an executor meanwhile", ErrHeld, j.ID)
			}
		} else {
			err = zkconn.Do(ctx, func() error {
				res, err := s.conn.Multi(ops...)
				return zkconn.MultiErrorOnly(res, err)
			})
		}
		if errors.Is(err, zk.ErrBadVersion) {
			continue // changed meanwhile: look again
		}
		if err != nil {
			return nil, 0, fmt.Errorf("jobs: claiming %s: %w", j.ID, err)
		}
		s.log.Info("job claimed", zap.String("job", j.ID), zap.String("by", by))
		return j, ver + 1, nil
	}
	return nil, 0, fmt.Errorf("%w: %s kept changing, try again", ErrConflict, id)
}

// Finish writes the final state of a claimed job over version ver.
func (s *Store) Finish(ctx context.Context, j *Job, ver int32, state State, rc int, msg string, hosts *HostSummary) error {
	if !state.Final() {
		return fmt.Errorf("%w: %s is not a final state", ErrInvalid, state)
	}
	if err := j.Transition(state, s.now()); err != nil {
		return err
	}
	j.ReturnCode = &rc
	j.StatusMessage = msg
	j.HostSummary = hosts
	_, err := s.Update(ctx, j, ver)
	return err
}
