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
		n := *j
		if err := n.startAttempt(by, s.now()); err != nil {
			return nil, 0, err
		}
		ops, err := s.writeOps(&n, ver)
		if err != nil {
			return nil, 0, err
		}
		notices, err := s.noticeOps(&n, j.State)
		if err != nil {
			return nil, 0, err
		}
		ops = append(ops, notices...)
		q := s.entryQueue(j)
		name, err := findEntry(ctx, q, j)
		if err != nil {
			return nil, 0, err
		}
		if name != "" {
			err = q.Remove(ctx, name, ops...)
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
		s.log.Info("job claimed", zap.String("job", n.ID), zap.String("by", by))
		s.observers().stateChanged(&n, j.State)
		return &n, ver + 1, nil
	}
	return nil, 0, fmt.Errorf("%w: %s kept changing, try again", ErrConflict, id)
}

// FinishClaimed writes the final state of a claimed job over version ver,
// unfenced but compare-and-set (nothing holds a claimed job's entry: it
// was removed by Claim), with the notices the outcome causes, and tells
// the observers.
func (s *Store) FinishClaimed(ctx context.Context, j *Job, ver int32, out Outcome) (*Job, int32, error) {
	if j.State != Running {
		return nil, 0, fmt.Errorf("%w: %s is %s; only a claimed RUNNING job finishes here", ErrIllegalState, j.ID, j.State)
	}
	n := *j
	if err := n.finish(j.Executor, out, s.now()); err != nil {
		return nil, 0, err
	}
	nver, err := s.update(ctx, &n, ver, j.State)
	if err != nil {
		return nil, 0, err
	}
	s.observers().stateChanged(&n, j.State)
	return &n, nver, nil
}
