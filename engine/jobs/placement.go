package jobs

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// The scheduler's transitions. The scheduler holds no queue entry: it
// writes under its election term, whose fence goes into the same
// transaction (Change.Fenced, CommitFenced, CommitBatch), so a deposed
// leader writes nothing. The reaper holds the entries it acts on (it takes
// them from a lost executor's direct queue) and adds its fence to the
// hold's transaction.

// ErrFenceLost means a writer's fence refused a commit (the writer is no
// longer the leader): nothing was written.
var ErrFenceLost = errors.New("jobs: the writer's fence is gone")

// toPending plans moving j back to PENDING with edit (the state change),
// its placement forgotten, why as its explanation, and its node in the
// index of PENDING jobs.
func (s *Store) toPending(j *Job, ver int32, entry entryAction, edit func(n *Job) error, why string) (*Change, error) {
	c, err := s.plan(j, ver, entry, stateEvent, func(n *Job) error {
		if err := edit(n); err != nil {
			return err
		}
		n.ExecutionNode, n.InstanceGroup = "", ""
		n.Explanation = TruncateExplanation(why)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.ops = append(c.ops, s.pendingCreate(j))
	return c, nil
}

// withPendingDelete plans a change of a PENDING job that also takes it
// out of the index of PENDING jobs.
func (s *Store) withPendingDelete(j *Job, ver int32, event eventKind, edit func(n *Job) error) (*Change, error) {
	if j.State != Pending {
		return nil, fmt.Errorf("%w: %s is %s; the scheduler moves PENDING jobs only", ErrIllegalState, j.ID, j.State)
	}
	c, err := s.plan(j, ver, noEntry, event, edit)
	if err != nil {
		return nil, err
	}
	c.ops = append(c.ops, s.pendingDelete(j))
	return c, nil
}

// Place plans queuing a PENDING job on an executor's direct queue:
// QUEUED, placed on executor in group, its explanation cleared, out of
// the index of PENDING jobs and into the executor's queue. Commit it under
// the leader's fence (CommitFenced, CommitBatch).
func (s *Store) Place(j *Job, ver int32, executor, group string) (*Change, error) {
	if j.IsFanoutParent() {
		return nil, fmt.Errorf("%w: %s is a fan-out parent: it runs nothing", ErrIllegalState, j.ID)
	}
	if err := (&Scheduling{ExecutionNode: executor, InstanceGroup: group}).Validate(); err != nil {
		return nil, err
	}
	c, err := s.withPendingDelete(j, ver, stateEvent, func(n *Job) error {
		if err := n.Transition(Queued, s.now()); err != nil {
			return err
		}
		n.ExecutionNode, n.InstanceGroup, n.Explanation = executor, group, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	put, err := s.NodeQueue(executor).PutOp([]byte(j.ID), j.Priority)
	if err != nil {
		return nil, err
	}
	c.ops = append(c.ops, put)
	return c, nil
}

// Explain plans writing why a PENDING job waits. Observers are not told:
// the state does not change.
func (s *Store) Explain(j *Job, ver int32, why string) (*Change, error) {
	if j.State != Pending {
		return nil, fmt.Errorf("%w: %s is %s; only a PENDING job waits", ErrIllegalState, j.ID, j.State)
	}
	return s.plan(j, ver, noEntry, noEvent, func(n *Job) error {
		n.Explanation = TruncateExplanation(why)
		return nil
	})
}

// FailPending plans failing a PENDING job that cannot run (a dependency
// failed): FAILED with why as its status and explanation, out of the
// index of PENDING jobs.
func (s *Store) FailPending(j *Job, ver int32, why string) (*Change, error) {
	return s.withPendingDelete(j, ver, stateEvent, func(n *Job) error {
		if err := n.Transition(Failed, s.now()); err != nil {
			return err
		}
		one := 1
		n.ReturnCode = &one
		n.StatusMessage = why
		n.Explanation = TruncateExplanation(why)
		return nil
	})
}

// EndFanout plans the end of a fan-out parent once its children have
// ended: state (SUCCESS, FAILED or CANCELED) with a summary, out of the
// index of PENDING jobs.
func (s *Store) EndFanout(j *Job, ver int32, state State, summary string) (*Change, error) {
	if !j.IsFanoutParent() {
		return nil, fmt.Errorf("%w: %s is not a fan-out parent", ErrIllegalState, j.ID)
	}
	if !state.Final() {
		return nil, fmt.Errorf("%w: %s is not a final state", ErrIllegalState, state)
	}
	return s.withPendingDelete(j, ver, stateEvent, func(n *Job) error {
		if err := n.Transition(state, s.now()); err != nil {
			return err
		}
		rc := 0
		if state != Success {
			rc = 1
		}
		n.ReturnCode = &rc
		n.StatusMessage = summary
		n.Explanation = ""
		return nil
	})
}

// Unplace plans giving a job back to the scheduler that was placed on an
// executor which was lost before it started the job: QUEUED → PENDING,
// why as its explanation, its entry in the executor's direct queue
// consumed (commit it under the hold of that entry), and the job back in
// the index of PENDING jobs. A fan-out child is not placed again: Finish
// it.
func (s *Store) Unplace(j *Job, ver int32, why string) (*Change, error) {
	if j.State != Queued || !j.Placed() || j.IsFanoutChild() {
		return nil, fmt.Errorf("%w: %s is %s; only a QUEUED job placed by the scheduler goes back to PENDING", ErrIllegalState, j.ID, j.State)
	}
	return s.toPending(j, ver, consumeEntry, func(n *Job) error { return n.Transition(Pending, s.now()) }, why)
}

// CommitFenced writes a change the scheduler planned (Place, Explain,
// FailPending, EndFanout) in one transaction with fence, the writer's
// fence operations. Its errors are those of CommitBatch.
func (c *Change) CommitFenced(ctx context.Context, fence ...interface{}) error {
	return c.s.CommitBatch(ctx, []*Change{c}, fence...)
}

// BatchError is the failure of one change of a batch (CommitBatch): none
// of the batch was written.
type BatchError struct {
	// Index is the position of the change in the batch.
	Index int
	// Err is the change's failure: ErrConflict when its document changed
	// since it was read, else a *zkconn.OpError counted from its own first
	// operation (its node in the index of PENDING jobs gone, say).
	Err error
}

func (e *BatchError) Error() string { return fmt.Sprintf("change %d of the batch: %v", e.Index, e.Err) }

// Unwrap returns the change's failure.
func (e *BatchError) Unwrap() error { return e.Err }

// CommitBatch writes changes the scheduler planned in one transaction with
// fence: all or none. Observers are told of each once written. Its errors:
//
//   - ErrFenceLost: the fence refused it; nothing was written.
//   - a *BatchError naming the change that failed; nothing was written:
//     leave that one out and commit the others again.
//   - a connection error (zkconn.Transient): the outcome is unknown; read
//     the jobs again before planning anything else for them.
//
// The caller keeps a batch within ZooKeeper's request limit (Change.Size).
func (s *Store) CommitBatch(ctx context.Context, changes []*Change, fence ...interface{}) error {
	var ops []interface{}
	starts := make([]int, len(changes))
	for i, c := range changes {
		if c.entry != noEntry || c.done {
			return fmt.Errorf("%w: change %d of the batch (%s) is not a pending scheduler change", ErrIllegalState, i, c.job.ID)
		}
		starts[i] = len(ops)
		ops = append(ops, c.ops...)
	}
	own := len(ops)
	ops = append(ops, fence...)
	if len(ops) == 0 {
		return nil
	}
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		for attempt := 0; ; attempt++ {
			res, err = s.conn.Multi(ops...)
			i, opErr := zkconn.MultiError(res, err)
			create, isCreate := opAt(ops, i).(*zk.CreateRequest)
			if attempt > 0 || i < 0 || i >= own || !isCreate || !errors.Is(opErr, zk.ErrNoNode) {
				return err
			}
			// A direct queue (or the index of PENDING jobs) not created
			// yet: create its directories and try once more.
			if err := ensureParent(s.conn, create.Path); err != nil {
				return err
			}
		}
	})
	if err == nil {
		for _, c := range changes {
			c.committed(ctx)
		}
		return nil
	}
	failed := zkconn.FailedOp(ops, res, err)
	switch {
	case failed == nil:
		return fmt.Errorf("jobs: writing %d scheduled jobs: %w", len(changes), err)
	case failed.Index >= own:
		return fmt.Errorf("%w: %w", ErrFenceLost, failed.Shift(own))
	}
	k := len(starts) - 1
	for k > 0 && starts[k] > failed.Index {
		k--
	}
	local := failed.Shift(starts[k])
	if local.Index == 0 && (errors.Is(local, zk.ErrBadVersion) || errors.Is(local, zk.ErrNoNode)) {
		return &BatchError{Index: k, Err: fmt.Errorf("%w: %s", ErrConflict, changes[k].job.ID)}
	}
	return &BatchError{Index: k, Err: local}
}

// TruncateExplanation bounds an explanation to MaxExplanation bytes.
func TruncateExplanation(s string) string {
	if len(s) <= MaxExplanation {
		return s
	}
	const ell = "…"
	cut := MaxExplanation - len(ell)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + ell
}

// opAt returns ops[i], or nil.
func opAt(ops []interface{}, i int) interface{} {
	if i < 0 || i >= len(ops) {
		return nil
	}
	return ops[i]
}

// ensureDir creates the directory dir if its own parent exists; it leaves
// alone a dir whose parent is gone.
func ensureDir(conn *zkconn.Conn, dir string) error {
	_, err := conn.Create(dir, nil, 0, zkconn.ACL)
	if err == nil || errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

// ensureParent creates the parent directories of a node about to be
// created; the parent of a queue entry gets the rest of its queue's
// directories too (taken, owners), so the queue works at once.
func ensureParent(conn *zkconn.Conn, p string) error {
	dir := path.Dir(p)
	if err := zkconn.EnsureSync(conn.Conn, dir); err != nil {
		return err
	}
	if path.Base(dir) != "entries" {
		return nil
	}
	return queue.New(conn, strings.TrimPrefix(path.Dir(dir), conn.Path())).EnsureSync()
}
