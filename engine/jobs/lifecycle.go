package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Hold is a writer's right to change a job: the job's queue entry, held by
// a consumer. A change committed through a Hold is one transaction with
// the consumer's fence (see queue.Consumer.Write, Consume and Release), so
// a writer that lost the entry — its session expired, the job may run
// elsewhere — writes nothing.
type Hold struct {
	Consumer *queue.Consumer
	Item     *queue.Item
}

// entryAction is what a committed change does with the job's queue entry.
type entryAction int

const (
	keepEntry    entryAction = iota // the job goes on: a new attempt, a report
	consumeEntry                    // the job is final or PENDING again: its entry goes
	releaseEntry                    // the job is QUEUED again: its entry is free
	// noEntry: the change is written without a hold, under the writer's
	// own fence (CommitFenced, CommitBatch); its operations say what
	// becomes of the job's entries (the scheduler's changes).
	noEntry
)

// eventKind is what observers are told of a committed change.
type eventKind int

const (
	stateEvent eventKind = iota
	progressEvent
	noEvent         // an explanation: nothing observers are told of
	quarantineEvent // a quarantine: there is no valid job to tell of
)

// Change is the next version of one job document, planned by a lifecycle
// operation of the Store and not written yet: Commit writes it. A Change
// belongs to one goroutine.
type Change struct {
	s     *Store
	job   *Job // the document as it will be written
	from  State
	ver   int32 // the znode version it replaces
	ops   []interface{}
	entry entryAction
	event eventKind
	// bad is the object a quarantine moves aside (Quarantine); nil for a
	// document write.
	bad *BadDocumentError
	// fenceAt is the index in ops of the writer's first fence operation
	// (Fenced), -1 when it added none.
	fenceAt int

	uncertain bool // an earlier Commit failed with an unknown outcome
	done      bool
}

// Job returns the document as the change writes it. Callers read it and
// must not modify it: the next change is planned from it.
func (c *Change) Job() *Job { return c.job }

// Ver returns the znode version the document has once the change is
// committed: what the next change of the same writer compares with.
func (c *Change) Ver() int32 { return c.ver + 1 }

// Fenced adds a writer's fence to the change — operations that fail the
// transaction once the writer has lost its right to write, such as a
// leader's election node (election.Term.Fence) — and returns c. A commit
// refused by the fence fails with ErrFenceLost and writes nothing.
func (c *Change) Fenced(ops ...interface{}) *Change {
	if c.fenceAt < 0 {
		c.fenceAt = len(c.ops)
	}
	c.ops = append(c.ops, ops...)
	return c
}

// fenceErr returns ErrFenceLost when err is the failure of one of the
// change's fence operations, counted from its first operation.
func (c *Change) fenceErr(err error) error {
	var opErr *zkconn.OpError
	if c.fenceAt >= 0 && errors.As(err, &opErr) && opErr.Index >= c.fenceAt {
		return fmt.Errorf("%w: %s: %w", ErrFenceLost, c.job.ID, err)
	}
	return nil
}

// Commit writes the change in one transaction with the writer's hold and
// what the transition does to the job's queue entry: kept while the job
// runs, released by a requeue, consumed by a final state. Observers are
// told once it is written. Its errors:
//
//   - queue.ErrLockLost: the hold is gone (the session ended, or the entry
//     was released or consumed): nothing was written, the job may be
//     another writer's now.
//   - ErrConflict: the document changed since it was read; nothing was
//     written and the entry is still held.
//   - a *zkconn.OpError for another of the change's operations (its index
//     counts from the document write, 0); nothing was written.
//   - a connection error (zkconn.Transient): the outcome is unknown.
//     Commit the same change again: if it then finds the hold gone or the
//     document moved on, it reads the document back, and returns nil when
//     the earlier attempt went through — or, for a change that keeps the
//     entry, queue.ErrLockLost when the hold has ended since (the
//     observers are told of the write all the same).
//
// Commit of a committed change does nothing.
func (c *Change) Commit(ctx context.Context, h Hold) error {
	if c.done {
		return nil
	}
	if c.entry == noEntry {
		return fmt.Errorf("%w: %s: this change is committed under a fence (CommitFenced), not a hold", ErrIllegalState, c.job.ID)
	}
	if c.bad != nil {
		if err := c.s.conn.EnsurePath(ctx, c.s.QuarantinePath()); err != nil {
			return fmt.Errorf("jobs: writing %s: %w", c.label(), err)
		}
	}
	err := c.apply(ctx, h)
	var opErr *zkconn.OpError
	if errors.As(err, &opErr) && errors.Is(opErr, zk.ErrNoNode) && opErr.Index < len(c.ops) && c.s.isNoticeOp(c.ops[opErr.Index]) {
		// The notice directory is gone (removed by hand): a notification
		// must not stop the job's life. Make it again and write once more.
		if err = c.s.ensureNoticeDir(); err == nil {
			err = c.apply(ctx, h)
		}
	}
	opErr = nil
	// Operation 0 is the document's compare-and-set (its removal, for a
	// quarantine); a quarantined entry has no document.
	changed := errors.As(err, &opErr) && opErr.Index == 0 && (c.bad == nil || c.bad.Kind == KindDocument) &&
		(errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNoNode))
	if err != nil && c.uncertain && (changed || errors.Is(err, queue.ErrLockLost)) && c.landed(ctx) {
		if c.entry == keepEntry {
			// The earlier attempt wrote the document and kept the entry;
			// the hold may have ended since (its session expired), and
			// then the job is no longer this writer's to run.
			held, herr := h.Consumer.HoldsLock(ctx, h.Item)
			if herr != nil {
				return fmt.Errorf("jobs: writing %s: %w", c.label(), herr)
			}
			if !held {
				c.committed(ctx)
				return fmt.Errorf("jobs: writing %s: the write went through, then %w", c.label(), queue.ErrLockLost)
			}
		}
		err = nil
	}
	if ferr := c.fenceErr(err); ferr != nil {
		return ferr
	}
	switch {
	case err == nil:
		c.committed(ctx)
		return nil
	case changed:
		return fmt.Errorf("%w: %s: %w", ErrConflict, c.label(), err)
	case zkconn.Transient(err):
		c.uncertain = true
	}
	return fmt.Errorf("jobs: writing %s: %w", c.label(), err)
}

// label names what the change writes, for errors.
func (c *Change) label() string {
	if c.bad != nil && c.bad.Kind == KindEntry {
		return "queue entry " + c.bad.Entry
	}
	return c.job.ID
}

// Size returns the length of the change's transaction as sent to
// ZooKeeper, without the hold's own operations (a few hundred bytes); a
// batch of changes (CommitBatch) takes no more than the sum of theirs.
func (c *Change) Size() int { return zkconn.RequestSize(c.ops...) }

// committed marks the change written, tells the observers, and brings a
// slice's container up to date.
func (c *Change) committed(ctx context.Context) {
	c.done = true
	switch c.event {
	case stateEvent:
		c.s.observers().stateChanged(c.job, c.from)
		c.s.followParent(ctx, c.job)
	case progressEvent:
		c.s.observers().progressed(c.job)
	case quarantineEvent:
		c.s.DropTraces(ctx, c.bad)
	}
}

// apply writes the change's operations under the hold, doing to the
// entry what the transition does.
func (c *Change) apply(ctx context.Context, h Hold) error {
	switch c.entry {
	case consumeEntry:
		return h.Consumer.Consume(ctx, h.Item, c.ops...)
	case releaseEntry:
		return h.Consumer.Release(ctx, h.Item, c.ops...)
	}
	return h.Consumer.Write(ctx, h.Item, c.ops...)
}

// landed reports whether the document is the one this change writes: an
// earlier Commit with an unknown outcome went through.
func (c *Change) landed(ctx context.Context) bool {
	if c.bad != nil {
		return c.s.quarantineLanded(ctx, c.bad)
	}
	cur, _, err := c.s.Get(ctx, c.job.ID)
	return err == nil && cur.Version == c.job.Version && cur.Updated.Equal(c.job.Updated) &&
		cur.State == c.job.State && cur.Attempt == c.job.Attempt && cur.Executor == c.job.Executor
}

// plan applies edit to a copy of j and returns its write over znode
// version ver. j itself is not modified.
func (s *Store) plan(j *Job, ver int32, entry entryAction, event eventKind, edit func(n *Job) error) (*Change, error) {
	n := *j
	n.AffectedResources = slices.Clone(j.AffectedResources)
	if err := edit(&n); err != nil {
		return nil, err
	}
	ops, err := s.writeOps(&n, ver)
	if err != nil {
		return nil, err
	}
	notices, err := s.noticeOps(&n, j.State)
	if err != nil {
		return nil, err
	}
	ops = append(ops, notices...)
	return &Change{s: s, job: &n, from: j.State, ver: ver, ops: ops, entry: entry, event: event, fenceAt: -1}, nil
}

// StartAttempt plans the start of a QUEUED job by executor: RUNNING, the
// attempt counted, the executor named, the status of an earlier attempt
// cleared. The entry stays held while the job runs. A RUNNING job whose
// executor was lost starts again only through ApplyLostPolicy.
func (s *Store) StartAttempt(j *Job, ver int32, executor string) (*Change, error) {
	if j.State != Queued && !j.State.Final() {
		return nil, fmt.Errorf("%w: %s is %s; only a QUEUED job starts (a lost RUNNING one by its lost-job policy)", ErrIllegalState, j.ID, j.State)
	}
	return s.plan(j, ver, keepEntry, stateEvent, func(n *Job) error { return n.startAttempt(executor, s.now()) })
}

// Lost is what ApplyLostPolicy knows of a RUNNING job found without its
// executor.
type Lost struct {
	// Policy is the action's lost-job policy ("" is action.Rerun).
	Policy action.LostPolicy
	// MaxAttempts bounds the attempts of a rerun (0 is
	// action.DefaultMaxAttempts).
	MaxAttempts int
	// CancelRequested is as in Outcome, for a job the policy fails.
	CancelRequested bool
	// Reschedule says the writer will not run the job itself (the reaper):
	// a rerun puts it back to PENDING, its entry consumed, for the
	// scheduler to place again; the next start counts the attempt.
	Reschedule bool
}

// ApplyLostPolicy plans what becomes of a RUNNING job whose executor was
// lost, found by a writer that now holds its entry (which proves that the
// executor that ran it is gone: its hold vanished with its session). Under
// action.Rerun, while attempts remain, executor starts the next attempt
// (RUNNING → RUNNING, the entry stays held); otherwise the job is FAILED
// "executor lost …" and its entry consumed. The change's job says which:
// RUNNING means run it.
func (s *Store) ApplyLostPolicy(j *Job, ver int32, executor string, l Lost) (*Change, error) {
	if j.State != Running {
		return nil, fmt.Errorf("%w: %s is %s; the lost-job policy applies to RUNNING jobs", ErrIllegalState, j.ID, j.State)
	}
	rerun, out := j.lostOutcome(l)
	if rerun && l.Reschedule {
		why := fmt.Sprintf("executor %s lost while the job ran (attempt %d); waiting to be placed again", j.Executor, j.Attempt)
		return s.toPending(j, ver, consumeEntry, func(n *Job) error { return n.Transition(Pending, s.now()) }, why)
	}
	if rerun {
		return s.plan(j, ver, keepEntry, stateEvent, func(n *Job) error { return n.startAttempt(executor, s.now()) })
	}
	out.CancelRequested = l.CancelRequested
	return s.Finish(j, ver, executor, out)
}

// Progress is an action's report of how far it got.
type Progress struct {
	// Percent is the progress, clamped to 0–100.
	Percent int
	// Status replaces the status message; "" keeps it.
	Status string
	// Affected are hrefs of resources the job affected, added to the
	// job's (once each, at most MaxAffected).
	Affected []string
}

// RecordProgress plans the write of a progress report of a RUNNING job.
// The entry stays held; observers are told of it as progress, not as a
// state change.
func (s *Store) RecordProgress(j *Job, ver int32, p Progress) (*Change, error) {
	return s.plan(j, ver, keepEntry, progressEvent, func(n *Job) error { return n.recordProgress(p) })
}

// Requeue plans giving a RUNNING job back to the queue: QUEUED, with its
// entry released in the same transaction, its status "requeued: <reason>".
// The attempt is not counted: the job did not fail, its executor stopped
// or lost its session and canceled the action.
//
// A job the scheduler placed on this executor's direct queue goes back to
// PENDING instead, its entry consumed, so that the scheduler places it
// again where there is room (a fan-out child stays on its executor).
func (s *Store) Requeue(j *Job, ver int32, reason string) (*Change, error) {
	if j.Placed() && !j.IsFanoutChild() {
		return s.toPending(j, ver, consumeEntry, func(n *Job) error { return n.requeue(reason, Pending, s.now()) }, "requeued: "+reason)
	}
	return s.plan(j, ver, releaseEntry, stateEvent, func(n *Job) error { return n.requeue(reason, Queued, s.now()) })
}

// RequeueLost plans giving back a RUNNING job whose run was lost with its
// remote node or connection (action.ErrLost) under a rerun policy: QUEUED,
// its entry released, but the attempt counted, so the action's lost-job
// policy (MaxAttempts) bounds the reruns.
func (s *Store) RequeueLost(j *Job, ver int32, cause error) (*Change, error) {
	return s.plan(j, ver, releaseEntry, stateEvent, func(n *Job) error {
		attempt := n.Attempt
		if err := n.requeue(fmt.Sprintf("attempt %d lost: %v", attempt, cause), Queued, s.now()); err != nil {
			return err
		}
		n.Attempt = attempt
		return nil
	})
}

// Outcome is how an attempt of a job ended.
type Outcome struct {
	// State is SUCCESS, FAILED or CANCELED.
	State State
	// ReturnCode is the action's return code; FAILED without one records 1.
	ReturnCode *int
	// Message is the status message (bounded to MaxStatusMessage).
	Message string
	// HostSummary is the outcome per host the action reported, if any
	// (Ansible's play recap); it is kept on the document.
	HostSummary *HostSummary
	// Artifacts is what the action returned for others to use, if
	// anything: a JSON object, kept on the document when it is at most
	// action.MaxArtifactBytes long (else left out, with a note in Trimmed).
	Artifacts json.RawMessage
	// CancelRequested says the writer saw a cancel request of the job: it
	// is deleted in the same transaction, since nothing acts on it once the
	// job is final. (The transaction fails if there is none.) A request
	// the writer did not see stays until the cleanup deletes the job.
	CancelRequested bool
}

// Finish plans the final write of a job, with its entry consumed and its
// unique key released in the same transaction. A QUEUED job that cannot
// start (its action is unknown) fails through RUNNING, as attempt 1 by
// executor; a RUNNING job keeps the executor that ran it.
func (s *Store) Finish(j *Job, ver int32, executor string, out Outcome) (*Change, error) {
	c, err := s.plan(j, ver, consumeEntry, stateEvent, func(n *Job) error { return n.finish(executor, out, s.now()) })
	if err != nil {
		return nil, err
	}
	if out.CancelRequested {
		c.ops = append(c.ops, &zk.DeleteRequest{Path: s.CancelPath(j.UUID()), Version: -1})
	}
	return c, nil
}

// writeOps returns the operations that write j over znode version ver (a
// compare-and-set, always first), with its outbox record and, when j is
// final, the release of its unique key. j.Version and j.Updated are
// advanced. Every write of a document is built here, and bounded here: a
// document over MaxDocumentBytes is trimmed (encode), and one that cannot
// be is refused with an error wrapping zkconn.ErrTooLarge.
func (s *Store) writeOps(j *Job, ver int32) ([]interface{}, error) {
	j.Version++
	j.Updated = s.now()
	j.StatusMessage = TruncateStatus(j.StatusMessage)
	if len(j.AffectedResources) > MaxAffected {
		j.AffectedResources = j.AffectedResources[:MaxAffected]
	}
	data, err := encode(j, s.DocumentLimit())
	if err != nil {
		j.Version--
		return nil, err
	}
	ops := []interface{}{&zk.SetDataRequest{Path: s.DocPath(j.UUID()), Data: data, Version: ver}}
	if s.cfg.Outbox != nil {
		ops = append(ops, s.cfg.Outbox(j, data))
	}
	if j.State.Final() && j.UniqueKey != "" {
		p := s.uniqPath(j.UniqueKey)
		// Only the final transition removes the key, and only if it is still
		// this job's (a repair may have removed it).
		if holder, _, err := s.conn.Get(p); err == nil && string(holder) == j.ID {
			ops = append(ops, &zk.DeleteRequest{Path: p, Version: -1})
		}
	}
	return ops, nil
}

// Update writes j over znode version ver, unfenced, and returns the new
// version; it fails with ErrConflict when the document changed since it
// was read. It is for repairs and tests, and for Cancel: writers that hold
// a job's entry use the lifecycle operations.
func (s *Store) Update(ctx context.Context, j *Job, ver int32) (int32, error) {
	return s.update(ctx, j, ver, j.State)
}

// update is Update of a write that takes j from state from, with the
// notices it causes (Cancel's).
func (s *Store) update(ctx context.Context, j *Job, ver int32, from State, extra ...interface{}) (int32, error) {
	ops, err := s.writeOps(j, ver)
	if err != nil {
		return 0, err
	}
	notices, err := s.noticeOps(j, from)
	if err != nil {
		j.Version--
		return 0, err
	}
	ops = append(ops, notices...)
	nOwn := len(ops)
	ops = append(ops, extra...)
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		for attempt := 0; ; attempt++ {
			res, err = s.conn.Multi(ops...)
			i, opErr := zkconn.MultiError(res, err)
			if attempt > 0 || i < 0 || !errors.Is(opErr, zk.ErrNoNode) || !s.isNoticeOp(ops[i]) {
				return err
			}
			if err := s.ensureNoticeDir(); err != nil {
				return err
			}
		}
	})
	if err != nil {
		j.Version--
		failed := zkconn.FailedOp(ops, res, err)
		switch {
		case failed == nil:
			return 0, fmt.Errorf("jobs: writing %s: %w", j.ID, err)
		case failed.Index == 0 && errors.Is(failed, zk.ErrBadVersion):
			return 0, fmt.Errorf("%w: %s", ErrConflict, j.ID)
		case failed.Index == 0 && errors.Is(failed, zk.ErrNoNode):
			return 0, fmt.Errorf("%w: %s", ErrNotFound, j.ID)
		case failed.Index >= nOwn:
			return 0, fmt.Errorf("jobs: writing %s: %w", j.ID, failed.Shift(nOwn))
		}
		return 0, fmt.Errorf("jobs: writing %s: %w", j.ID, failed)
	}
	return ver + 1, nil
}
