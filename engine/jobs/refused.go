package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// CreateFailed records a launch that was refused at its time — a schedule
// whose template is gone, a launch value the template does not accept — as
// a job created FAILED with reason as its status message, so the refusal
// is seen where jobs are seen and notifies failure, instead of being a log
// line. The job never runs: it gets no queue entry and holds no unique
// key. extra operations (a leader's fence) join the transaction, as in
// CreateFenced; a deterministic id makes it idempotent (ErrDuplicate).
func (s *Store) CreateFailed(ctx context.Context, n NewJob, reason string, extra ...interface{}) (*Job, error) {
	resolved, err := s.resolveNotifications(ctx, []NewJob{n})
	if err != nil {
		return nil, err
	}
	n = resolved[0]
	n.UniqueKey = ""
	j, err := s.build(n)
	if err != nil {
		return nil, err
	}
	from := j.State
	if err := j.Transition(Running, s.now()); err != nil {
		return nil, err
	}
	j.Started = nil // it never ran
	if err := j.Transition(Failed, s.now()); err != nil {
		return nil, err
	}
	one := 1
	j.ReturnCode = &one
	j.StatusMessage = TruncateStatus(reason)
	data, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	ops := []interface{}{&zk.CreateRequest{Path: s.DocPath(j.UUID()), Data: data, Acl: zkconn.ACL}}
	if s.cfg.Outbox != nil {
		ops = append(ops, s.cfg.Outbox(j, data))
	}
	notices, err := s.noticeOps(j, from)
	if err != nil {
		return nil, err
	}
	ops = append(ops, notices...)
	nOwn := len(ops)
	ops = append(ops, extra...)
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		for attempt := 0; ; attempt++ {
			var err error
			res, err = s.conn.Multi(ops...)
			i, opErr := zkconn.MultiError(res, err)
			if attempt > 0 || i < 0 || i >= nOwn || !errors.Is(opErr, zk.ErrNoNode) {
				return err
			}
			for _, op := range ops[:nOwn] { // a new shard, a fresh root
				if c, ok := op.(*zk.CreateRequest); ok {
					if err := zkconn.EnsureSync(s.conn.Conn, path.Dir(c.Path)); err != nil {
						return err
					}
				}
			}
		}
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i >= nOwn:
			return nil, fmt.Errorf("jobs: create: %w", zkconn.FailedOp(ops, res, err).Shift(nOwn))
		case i == 0 && errors.Is(opErr, zk.ErrNodeExists):
			return nil, fmt.Errorf("%w: the job id exists already", ErrDuplicate)
		case i >= 0:
			return nil, fmt.Errorf("jobs: create: %w", opErr)
		}
		return nil, fmt.Errorf("jobs: create: %w", err)
	}
	s.log.Info("job created failed: its launch was refused", zap.String("job", j.ID), zap.String("action", j.Action),
		zap.String("reason", strings.SplitN(reason, "\n", 2)[0]))
	s.observers().stateChanged(j, from)
	return j, nil
}
