package jobs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	states   []StateEvent
	logs     []LogEvent
	progress []ProgressEvent
}

func (r *recorder) OnState(ev StateEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, ev)
}

func (r *recorder) OnLog(ev LogEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, ev)
}

func (r *recorder) OnProgress(ev ProgressEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, ev)
}

// transitions lists the state events as "FROM→TO".
func (r *recorder) transitions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.states {
		out = append(out, string(ev.From)+"→"+string(ev.Job.State))
	}
	return out
}

// take holds the next entry of s's queue.
func take(t *testing.T, s *Store, name string) Hold {
	t.Helper()
	c := s.Queue().NewConsumer(queue.ConsumerOptions{Name: name})
	t.Cleanup(c.Close)
	it, err := c.Take(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return Hold{Consumer: c, Item: it}
}

func commit(t *testing.T, c *Change, err error, h Hold) *Change {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctxT(t), h); err != nil {
		t.Fatal(err)
	}
	return c
}

func queueStats(t *testing.T, s *Store) queue.Stats {
	t.Helper()
	st, err := s.Queue().Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A job's whole life through the lifecycle operations: each writes the
// document, does what it must with the entry, and tells the observers.
func TestLifecycleStartProgressFinish(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{a, b}})
	ctx := ctxT(t)
	created, err := s.Create(ctx, NewJob{Action: "deploy", UniqueKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)

	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	got, gotVer, _ := s.Get(ctx, j.ID)
	if got.State != Running || got.Attempt != 1 || got.Executor != "x1" || got.Started == nil || gotVer != start.Ver() {
		t.Fatalf("after StartAttempt: %+v (znode v%d, change says v%d)", got, gotVer, start.Ver())
	}
	if j.State != Queued || j.Attempt != 0 {
		t.Fatalf("StartAttempt modified the document it was given: %+v", j)
	}
	if st := queueStats(t, s); st.Entries != 1 || st.Taken != 1 {
		t.Fatalf("a started job's entry is not held: %+v", st)
	}

	c, err = s.RecordProgress(start.Job(), start.Ver(), Progress{Percent: 150, Status: "half", Affected: []string{"r/1", "r/2", "r/1"}})
	report := commit(t, c, err, h)
	got, _, _ = s.Get(ctx, j.ID)
	if got.Progress != 100 || got.StatusMessage != "half" || len(got.AffectedResources) != 2 || got.State != Running {
		t.Fatalf("after RecordProgress: %+v", got)
	}
	c, err = s.RecordProgress(report.Job(), report.Ver(), Progress{Percent: 60, Affected: []string{"r/2", "r/3"}})
	report = commit(t, c, err, h)
	if got, _, _ = s.Get(ctx, j.ID); got.Progress != 60 || got.StatusMessage != "half" || len(got.AffectedResources) != 3 {
		t.Fatalf("a second report: %+v", got)
	}

	logged := time.Date(2026, 5, 4, 10, 0, 0, 123, time.UTC)
	if err := s.AppendLog(ctx, j.UUID(), []LogLine{{Time: logged, Level: "warn", Message: "careful"}}); err != nil {
		t.Fatal(err)
	}

	rc := 0
	c, err = s.Finish(report.Job(), report.Ver(), "x1", Outcome{State: Success, ReturnCode: &rc, Message: "done"})
	commit(t, c, err, h)
	got, _, _ = s.Get(ctx, j.ID)
	if got.State != Success || got.ReturnCode == nil || *got.ReturnCode != 0 || got.Progress != 100 || got.Duration == nil || got.StatusMessage != "done" {
		t.Fatalf("after Finish: %+v", got)
	}
	if n, _ := s.Queue().Len(ctx); n != 0 {
		t.Fatalf("a finished job's entry is left: %d entries", n)
	}
	if _, err := s.Create(ctx, NewJob{Action: "deploy", UniqueKey: "k"}); err != nil {
		t.Fatalf("the unique key was not released by the final write: %v", err)
	}

	for _, r := range []*recorder{a, b} {
		if got := strings.Join(r.transitions(), " "); got != "QUEUED→RUNNING RUNNING→SUCCESS" {
			t.Fatalf("state events %q", got)
		}
		if len(r.progress) != 2 || r.progress[0].Job.Progress != 100 || r.progress[1].Job.Progress != 60 {
			t.Fatalf("progress events %+v", r.progress)
		}
		if len(r.logs) != 1 || r.logs[0].Job != j.ID || !r.logs[0].Line.Time.Equal(logged) || r.logs[0].Line.Level != "warn" {
			t.Fatalf("log events %+v", r.logs)
		}
	}
	if a.states[1].Job.Version != got.Version {
		t.Fatalf("the state event carries version %d, the document %d", a.states[1].Job.Version, got.Version)
	}
}

// A job that cannot start fails through RUNNING in one write; the final
// write deletes a cancel request the writer saw.
func TestFinishUnstartableAndCancelRequest(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "nope"})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.Finish(j, ver, "x1", Outcome{State: Failed, Message: "no such action: nope"})
	commit(t, c, err, h)
	got, _, _ := s.Get(ctx, j.ID)
	if got.State != Failed || got.Attempt != 1 || got.Executor != "x1" || got.Started == nil || got.ReturnCode == nil || *got.ReturnCode != 1 {
		t.Fatalf("an unstartable job: %+v", got)
	}
	if tr := strings.Join(rec.transitions(), " "); tr != "QUEUED→FAILED" {
		t.Fatalf("state events %q", tr)
	}

	created, _ = s.Create(ctx, NewJob{Action: "a"})
	h = take(t, s, "x2")
	j, ver, _ = s.Get(ctx, created.ID)
	c, err = s.StartAttempt(j, ver, "x2")
	start := commit(t, c, err, h)
	if _, err := s.Cancel(ctx, j.ID, "me"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.CancelRequested(j.UUID()); !ok {
		t.Fatal("no cancel request")
	}
	c, err = s.Finish(start.Job(), start.Ver(), "x2", Outcome{State: Canceled, Message: "canceled", CancelRequested: true})
	commit(t, c, err, h)
	if ok, _, _ := s.CancelRequested(j.UUID()); ok {
		t.Fatal("the cancel request outlived the final write")
	}
	if got, _, _ := s.Get(ctx, j.ID); got.State != Canceled || got.ReturnCode != nil {
		t.Fatalf("canceled job: %+v", got)
	}
}

func TestApplyLostPolicy(t *testing.T) {
	cases := []struct {
		name     string
		lost     Lost
		attempt  int
		state    State
		attempt2 int
		executor string
		message  string
	}{
		{"rerun", Lost{}, 1, Running, 2, "x1", ""},
		{"rerun, attempts left", Lost{Policy: action.Rerun, MaxAttempts: 5}, 3, Running, 4, "x1", ""},
		{"rerun, attempts exhausted", Lost{Policy: action.Rerun}, action.DefaultMaxAttempts, Failed, 3, "ghost", "executor lost (ghost, attempt 3 of 3)"},
		{"fail", Lost{Policy: action.Fail}, 1, Failed, 1, "ghost", "executor lost (ghost); action a does not rerun lost jobs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, StoreConfig{})
			ctx := ctxT(t)
			created, _ := s.Create(ctx, NewJob{Action: "a"})
			// A RUNNING job whose executor died: its entry is free.
			j, ver, _ := s.Get(ctx, created.ID)
			_ = j.Transition(Running, time.Now())
			j.Executor, j.Attempt = "ghost", tc.attempt
			if _, err := s.Update(ctx, j, ver); err != nil {
				t.Fatal(err)
			}
			h := take(t, s, "x1")
			j, ver, _ = s.Get(ctx, created.ID)
			c, err := s.ApplyLostPolicy(j, ver, "x1", tc.lost)
			if err != nil {
				t.Fatal(err)
			}
			if c.Job().State != tc.state {
				t.Fatalf("planned %s, want %s", c.Job().State, tc.state)
			}
			commit(t, c, nil, h)
			got, _, _ := s.Get(ctx, created.ID)
			if got.State != tc.state || got.Attempt != tc.attempt2 || got.Executor != tc.executor || got.StatusMessage != tc.message {
				t.Fatalf("got %s attempt %d executor %s %q", got.State, got.Attempt, got.Executor, got.StatusMessage)
			}
			st := queueStats(t, s)
			if tc.state == Running && (st.Entries != 1 || st.Taken != 1) || tc.state == Failed && st.Entries != 0 {
				t.Fatalf("queue after the policy: %+v", st)
			}
		})
	}
}

func TestRequeueReleasesTheEntry(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "a"})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	c, err = s.Requeue(start.Job(), start.Ver(), "executor x1 stopped")
	commit(t, c, err, h)
	got, _, _ := s.Get(ctx, j.ID)
	if got.State != Queued || got.Attempt != 0 || got.Executor != "" || got.Started != nil || got.StatusMessage != "requeued: executor x1 stopped" {
		t.Fatalf("requeued job: %+v", got)
	}
	if st := queueStats(t, s); st.Available != 1 || st.Taken != 0 {
		t.Fatalf("a requeued job's entry is not free: %+v", st)
	}
	if tr := strings.Join(rec.transitions(), " "); tr != "QUEUED→RUNNING RUNNING→QUEUED" {
		t.Fatalf("state events %q", tr)
	}
}

// The rules refuse what the state machine forbids, before anything is
// written.
func TestLifecycleRefusesIllegalTransitions(t *testing.T) {
	s := newStore(t, StoreConfig{})
	now := time.Now()
	queued := &Job{ID: "job/00000000-0000-4000-8000-000000000001", Action: "a", State: Queued, Version: 1}
	running := &Job{ID: queued.ID, Action: "a", State: Running, Attempt: 1, Started: &now, Version: 2}
	done := &Job{ID: queued.ID, Action: "a", State: Success, Version: 3}
	pending := &Job{ID: queued.ID, Action: "a", State: Pending, Version: 1}
	plans := []struct {
		name string
		plan func() (*Change, error)
		want error
	}{
		{"start a final job", func() (*Change, error) { return s.StartAttempt(done, 2, "x") }, ErrFinal},
		{"start a RUNNING job", func() (*Change, error) { return s.StartAttempt(running, 1, "x") }, ErrIllegalState},
		{"start a PENDING job", func() (*Change, error) { return s.StartAttempt(pending, 0, "x") }, ErrIllegalState},
		{"lost policy of a QUEUED job", func() (*Change, error) { return s.ApplyLostPolicy(queued, 0, "x", Lost{}) }, ErrIllegalState},
		{"requeue a QUEUED job", func() (*Change, error) { return s.Requeue(queued, 0, "why") }, ErrIllegalState},
		{"requeue a final job", func() (*Change, error) { return s.Requeue(done, 2, "why") }, ErrIllegalState},
		{"finish in a live state", func() (*Change, error) { return s.Finish(running, 1, "x", Outcome{State: Queued}) }, ErrIllegalState},
		{"finish a final job", func() (*Change, error) { return s.Finish(done, 2, "x", Outcome{State: Failed}) }, ErrFinal},
		{"succeed without running", func() (*Change, error) { return s.Finish(queued, 0, "x", Outcome{State: Success}) }, ErrIllegalState},
		{"progress of a QUEUED job", func() (*Change, error) { return s.RecordProgress(queued, 0, Progress{Percent: 5}) }, ErrIllegalState},
	}
	for _, tc := range plans {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.plan()
			if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("got %v, %v; want %v", c, err, tc.want)
			}
		})
	}
}

// A document changed since it was read (here by a cancel racing the
// take): the commit writes nothing, says ErrConflict with the failed
// operation, and the entry stays held.
func TestCommitOfAStaleDocumentConflicts(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "a"})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	if _, err := s.Cancel(ctx, j.ID, "me"); err != nil {
		t.Fatal(err)
	}
	c, err := s.StartAttempt(j, ver, "x1")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Commit(ctx, h)
	var opErr *zkconn.OpError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &opErr) || opErr.Index != 0 || !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("commit over a changed document: %v, want ErrConflict with an OpError at 0", err)
	}
	if ok, _ := h.Consumer.HoldsLock(ctx, h.Item); !ok {
		t.Fatal("a conflict gave up the hold")
	}
	if got, _, _ := s.Get(ctx, j.ID); got.State != Canceled {
		t.Fatalf("state %s after a refused write", got.State)
	}
	if tr := strings.Join(rec.transitions(), " "); tr != "QUEUED→CANCELED" {
		t.Fatalf("state events %q: a refused write was observed", tr)
	}
}

// The fence: a writer whose session expired while another took the job
// can write nothing under its old hold, and the new holder can.
func TestCommitRefusedAfterTheHoldIsLost(t *testing.T) {
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	fresh := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(dctx, zkconn.Config{Hosts: []string{proxy.Addr()}, Root: fresh.Conn().Root(), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rec := &recorder{}
	stale := NewStore(conn, StoreConfig{Observers: []Observer{rec}})
	created, _ := fresh.Create(ctx, NewJob{Action: "a"})
	old := take(t, stale, "stale")
	j, ver, _ := stale.Get(ctx, created.ID)
	c, err := stale.StartAttempt(j, ver, "stale")
	if err != nil {
		t.Fatal(err)
	}
	session := conn.SessionID()
	proxy.Block()
	h := take(t, fresh, "fresh") // once the stale session expired on the server
	proxy.Unblock()
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if s := conn.SessionID(); s == session || !conn.Connected() {
			return errors.New("no new session yet")
		}
		return nil
	})
	if err := c.Commit(ctx, old); !errors.Is(err, queue.ErrLockLost) {
		t.Fatalf("commit under an expired session: %v, want ErrLockLost", err)
	}
	if got, _, _ := fresh.Get(ctx, created.ID); got.State != Queued || got.Version != 1 {
		t.Fatalf("a stale writer changed the document: %+v", got)
	}
	if len(rec.transitions()) != 0 {
		t.Fatalf("a refused write was observed: %v", rec.transitions())
	}
	j, ver, _ = fresh.Get(ctx, created.ID)
	c, err = fresh.StartAttempt(j, ver, "fresh")
	commit(t, c, err, h)
	if got, _, _ := fresh.Get(ctx, created.ID); got.Executor != "fresh" || got.Attempt != 1 {
		t.Fatalf("the new holder's start: %+v", got)
	}
}

// expiredOnceCtx passes the first check of zkconn.Do and is done at once:
// the transaction is sent, its caller hears a timeout, and the server
// applies it. That is a commit with an unknown outcome that went through.
type expiredOnceCtx struct {
	context.Context
	checked bool
	done    chan struct{}
}

func newExpiredOnce() *expiredOnceCtx {
	c := &expiredOnceCtx{Context: context.Background(), done: make(chan struct{})}
	close(c.done)
	return c
}

func (c *expiredOnceCtx) Done() <-chan struct{} { return c.done }

func (c *expiredOnceCtx) Err() error {
	if !c.checked {
		c.checked = true
		return nil
	}
	return context.DeadlineExceeded
}

// Committing the same change again after an unknown outcome finds out that
// the first attempt went through, whatever the transition did to the
// entry, and observers hear of it once.
func TestCommitAgainAfterAnUnknownOutcome(t *testing.T) {
	for _, final := range []bool{false, true} {
		name := map[bool]string{false: "start (entry kept)", true: "finish (entry consumed)"}[final]
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			s := newStore(t, StoreConfig{Observers: []Observer{rec}})
			ctx := ctxT(t)
			created, _ := s.Create(ctx, NewJob{Action: "a"})
			h := take(t, s, "x1")
			j, ver, _ := s.Get(ctx, created.ID)
			c, err := s.StartAttempt(j, ver, "x1")
			if final {
				c, err = s.Finish(j, ver, "x1", Outcome{State: Failed, Message: "no such action"})
			}
			if err != nil {
				t.Fatal(err)
			}
			err = c.Commit(newExpiredOnce(), h)
			if !zkconn.Transient(err) {
				t.Fatalf("first commit: %v, want a timeout", err)
			}
			poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
				if got, _, _ := s.Get(ctx, created.ID); got.Version != c.Job().Version {
					return errors.New("the first commit has not landed yet")
				}
				return nil
			})
			if err := c.Commit(ctx, h); err != nil {
				t.Fatalf("second commit of a change that went through: %v", err)
			}
			if n := len(rec.transitions()); n != 1 {
				t.Fatalf("%d state events, want 1", n)
			}
			// A change planned anew from the old version is not taken for
			// one that went through.
			again, _ := s.StartAttempt(j, ver, "x1")
			if !final {
				if err := again.Commit(ctx, h); !errors.Is(err, ErrConflict) {
					t.Fatalf("a new change over the old version: %v, want ErrConflict", err)
				}
			}
		})
	}
}

// A start whose first commit went through with an unknown outcome, and
// whose session then expired: committing it again must not report the
// job as this writer's to run — the entry is free for others.
func TestStartWentThroughThenTheHoldWasLost(t *testing.T) {
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	fresh := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(dctx, zkconn.Config{Hosts: []string{proxy.Addr()}, Root: fresh.Conn().Root(), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rec := &recorder{}
	stale := NewStore(conn, StoreConfig{Observers: []Observer{rec}})
	created, _ := fresh.Create(ctx, NewJob{Action: "a"})
	old := take(t, stale, "stale")
	j, ver, _ := stale.Get(ctx, created.ID)
	c, err := stale.StartAttempt(j, ver, "stale")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(newExpiredOnce(), old); !zkconn.Transient(err) {
		t.Fatalf("first commit: %v, want a timeout", err)
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got, _, _ := fresh.Get(ctx, created.ID); got.Version != c.Job().Version {
			return errors.New("the first commit has not landed yet")
		}
		return nil
	})
	session := conn.SessionID()
	proxy.Block()
	h := take(t, fresh, "fresh") // once the stale session expired on the server
	proxy.Unblock()
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if s := conn.SessionID(); s == session || !conn.Connected() {
			return errors.New("no new session yet")
		}
		return nil
	})
	if err := c.Commit(ctx, old); !errors.Is(err, queue.ErrLockLost) {
		t.Fatalf("commit again after the hold was lost: %v, want ErrLockLost", err)
	}
	if tr := rec.transitions(); len(tr) != 1 {
		t.Fatalf("state events %v: the write that went through is observed once", tr)
	}
	if ok, _ := h.Consumer.HoldsLock(ctx, h.Item); !ok {
		t.Fatal("the new holder does not hold the entry")
	}
}
