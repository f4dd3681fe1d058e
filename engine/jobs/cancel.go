package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Cancel cancels a job. A QUEUED (or PENDING) job becomes CANCELED at once
// and its queue entry is removed; a RUNNING job gets a cancel request that
// its executor acts on. Canceling a fan-out parent cancels its children.
// It returns the job as it is after the call.
func (s *Store) Cancel(ctx context.Context, id, by string) (*Job, error) {
	for attempt := 0; attempt < 10; attempt++ {
		j, ver, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case j.State.Final():
			return j, fmt.Errorf("%w: %s is %s", ErrFinal, j.ID, j.State)
		case j.State == Running:
			data, _ := json.Marshal(map[string]string{"by": by, "time": s.now().Format(time.RFC3339Nano)})
			err := zkconn.Do(ctx, func() error {
				_, err := s.conn.Create(s.CancelPath(j.UUID()), data, 0, zkconn.ACL)
				if errors.Is(err, zk.ErrNoNode) {
					if err := zkconn.EnsureSync(s.conn.Conn, s.conn.Path(cancelDir)); err != nil {
						return err
					}
					_, err = s.conn.Create(s.CancelPath(j.UUID()), data, 0, zkconn.ACL)
				}
				if errors.Is(err, zk.ErrNodeExists) {
					return nil
				}
				return err
			})
			if err != nil {
				return nil, fmt.Errorf("jobs: requesting cancel of %s: %w", j.ID, err)
			}
			s.log.Info("cancel requested", zap.String("job", j.ID), zap.String("action", j.Action), zap.String("by", by))
			return j, nil
		}
		from := j.State
		if err := j.Transition(Canceled, s.now()); err != nil {
			return nil, err
		}
		j.StatusMessage = "canceled"
		if by != "" {
			j.StatusMessage = "canceled by " + by
		}
		if _, err := s.update(ctx, j, ver, from); errors.Is(err, ErrConflict) {
			continue // it changed (an executor took it): look again
		} else if err != nil {
			return nil, err
		}
		s.log.Info("job canceled", zap.String("job", j.ID), zap.String("action", j.Action), zap.String("by", by))
		s.observers().stateChanged(j, from)
		if err := s.removeEntry(ctx, j, from); err != nil {
			// The entry stays until an executor (or, for a PENDING job, the
			// scheduler) finds the final state and removes it, or `queue
			// restore` does.
			s.log.Warn("canceled job's queue entry not removed", zap.String("job", j.ID), zap.Error(err))
		}
		if j.IsFanoutParent() {
			s.cancelChildren(ctx, j, by)
		}
		return j, nil
	}
	return nil, fmt.Errorf("%w: %s kept changing, try again", ErrConflict, id)
}

// removeEntry finds and removes the queue entry of j, which was in state
// from (unless held).
func (s *Store) removeEntry(ctx context.Context, j *Job, from State) error {
	if from == Pending {
		return zkconn.Do(ctx, func() error {
			if err := s.conn.Delete(s.pendingNode(j.UUID()), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return err
			}
			return nil
		})
	}
	q := s.entryQueue(j)
	name, err := findEntry(ctx, q, j)
	if err != nil || name == "" {
		return err
	}
	err = q.Remove(ctx, name)
	if errors.Is(err, queue.ErrLockLost) {
		return nil // an executor holds it and will consume it
	}
	return err
}

// findEntry scans the entries of j's priority in q for the one holding
// j's id.
func findEntry(ctx context.Context, q *queue.Queue, j *Job) (string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = q.Conn().Children(q.EntriesPath())
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return "", err
	}
	prefix := fmt.Sprintf("entry-%03d-", j.Priority)
	var found string
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(n string) {
			defer func() { <-sem; wg.Done() }()
			data, _, err := q.Conn().Get(q.EntriesPath() + "/" + n)
			if err == nil && string(data) == j.ID {
				mu.Lock()
				found = n
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	return found, nil
}

// CancelRequested reports whether a cancel request exists for the job and
// returns a watch that fires when that changes.
func (s *Store) CancelRequested(uid string) (bool, <-chan zk.Event, error) {
	ok, _, ch, err := s.conn.ExistsW(s.CancelPath(uid))
	return ok, ch, err
}

// ClearCancel deletes a job's cancel request, if any.
func (s *Store) ClearCancel(ctx context.Context, uid string) error {
	return zkconn.Do(ctx, func() error {
		err := s.conn.Delete(s.CancelPath(uid), -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
}

// cancelChildren cancels the children of a canceled fan-out parent that
// have not ended (best effort: a child that cannot be canceled now runs to
// its end).
func (s *Store) cancelChildren(ctx context.Context, parent *Job, by string) {
	for _, id := range parent.NestedJobs {
		_, err := s.Cancel(ctx, id, by)
		if err != nil && !errors.Is(err, ErrFinal) && !errors.Is(err, ErrNotFound) {
			s.log.Warn("fan-out child not canceled", zap.String("job", id), zap.String("parent", parent.ID), zap.Error(err))
		}
	}
}
