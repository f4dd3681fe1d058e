package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

type env struct {
	t     *testing.T
	root  string
	store *jobs.Store
	reg   *action.Registry
	// runs counts action runs by job id, for the blocking test actions.
	mu   sync.Mutex
	runs map[string]int
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, root: fmt.Sprintf("/x%d", rootSeq.Add(1)), reg: action.BuiltinsWithTests(), runs: map[string]int{}}
	e.store = jobs.NewStore(e.dial(zkc.Addrs()...), jobs.StoreConfig{})
	add := func(d action.Definition) {
		if err := e.reg.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	add(action.Definition{Name: "panic", Runner: action.RunnerFunc(func(context.Context, *action.Job, action.Reporter) (action.Result, error) {
		panic("boom")
	})})
	// block runs until its context ends and counts its runs.
	block := action.RunnerFunc(func(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
		e.mu.Lock()
		e.runs[j.ID]++
		e.mu.Unlock()
		r.Progress(42)
		r.Status("blocking")
		r.Log("info", "blocking until canceled")
		<-ctx.Done()
		return action.Result{}, ctx.Err()
	})
	add(action.Definition{Name: "block", Runner: block, DefaultTimeout: time.Hour})
	add(action.Definition{Name: "block-fail-lost", Runner: block, DefaultTimeout: time.Hour, LostPolicy: action.Fail})
	return e
}

func (e *env) dial(hosts ...string) *zkconn.Conn {
	return e.dialTimeout(2*time.Second, hosts...)
}

func (e *env) dialTimeout(session time.Duration, hosts ...string) *zkconn.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: hosts, Root: e.root, SessionTimeout: session})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *env) start(name string, conn *zkconn.Conn, mod ...func(*Config)) *Executor {
	e.t.Helper()
	if conn == nil {
		conn = e.dial(zkc.Addrs()...)
	}
	cfg := Config{
		Name: name, Threads: 2, Registry: e.reg, Store: jobs.NewStore(conn, jobs.StoreConfig{}),
		Heartbeat: 100 * time.Millisecond, ReportInterval: 50 * time.Millisecond,
		SessionTimeout: 2 * time.Second, MaxBackoff: 500 * time.Millisecond,
		Logger: zaptest.NewLogger(e.t, zaptest.Level(testLogLevel)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x, err := Start(ctx, conn, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(x.Stop)
	return x
}

func (e *env) add(action string, payload string, mod ...func(*jobs.NewJob)) *jobs.Job {
	e.t.Helper()
	nj := jobs.NewJob{Action: action, Priority: 100}
	if payload != "" {
		nj.Payload = json.RawMessage(payload)
	}
	for _, m := range mod {
		m(&nj)
	}
	j, err := e.store.Create(context.Background(), nj)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// waitState polls the job until it is in state (or any final state when
// state is "final") and returns it.
func (e *env) waitState(id string, state jobs.State, within time.Duration) *jobs.Job {
	e.t.Helper()
	var got *jobs.Job
	poll.For(e.t, within, 20*time.Millisecond, func() error {
		j, _, err := e.store.Get(context.Background(), id)
		if err != nil {
			return err
		}
		got = j
		if j.State != state {
			return fmt.Errorf("%s is %s (%q), want %s", id, j.State, j.StatusMessage, state)
		}
		return nil
	})
	return got
}

func (e *env) queueLen() int {
	n, err := e.store.Queue().Len(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) runCount(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[id]
}

func TestOutcomes(t *testing.T) {
	e := newEnv(t)
	e.start("x1", nil)
	cases := []struct {
		action, payload string
		state           jobs.State
		rc              int
		msg             string
	}{
		{"echo", `{"hello":"world"}`, jobs.Success, 0, `{"hello":"world"}`},
		{"sleep", `{"duration":"50ms"}`, jobs.Success, 0, "slept 50ms"},
		{"fail", `{"code":3,"message":"bad"}`, jobs.Failed, 3, "bad"},
		{"fail", `{"code":0}`, jobs.Success, 0, ""},
		{"fail", ``, jobs.Failed, 1, "return code 1"},
		{"nope", ``, jobs.Failed, 1, "no such action: nope"},
		{"panic", ``, jobs.Failed, 1, "action panicked: boom"},
		{"sleep", `{"duration":"forever"}`, jobs.Failed, 1, `payload: duration "forever" is not a duration like "1.5s"`},
	}
	for _, tc := range cases {
		t.Run(tc.action+tc.payload, func(t *testing.T) {
			j := e.add(tc.action, tc.payload)
			got := e.waitState(j.ID, tc.state, 10*time.Second)
			if got.ReturnCode == nil || *got.ReturnCode != tc.rc || got.StatusMessage != tc.msg {
				t.Fatalf("rc %v message %q, want %d %q", got.ReturnCode, got.StatusMessage, tc.rc, tc.msg)
			}
			if got.Progress != 100 || got.TimeOfStatusChange.IsZero() {
				t.Fatalf("final fields: %+v", got)
			}
			if got.Duration == nil || got.Started == nil || got.Executor != "x1" || got.Attempt != 1 {
				t.Fatalf("run fields: %+v", got)
			}
		})
	}
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := e.queueLen(); n != 0 {
			return fmt.Errorf("%d entries left", n)
		}
		return nil
	})
}

// TestTestActionsOff runs an executor with the production registry: the
// test actions are compiled in but a job of one fails, saying why.
func TestTestActionsOff(t *testing.T) {
	e := newEnv(t)
	e.start("prod", nil, func(c *Config) { c.Registry = action.Builtins() })
	j := e.add("echo", `{"hello":"world"}`)
	got := e.waitState(j.ID, jobs.Failed, 10*time.Second)
	if want := "no such action: echo (a test action: this executor runs without --enable-test-actions)"; got.StatusMessage != want {
		t.Errorf("status message %q, want %q", got.StatusMessage, want)
	}
}

func TestMissingDocumentIsConsumed(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.Queue().Put(context.Background(), []byte("job/00000000-0000-4000-8000-000000000001"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Queue().Put(context.Background(), []byte("not a job id"), 1); err != nil {
		t.Fatal(err)
	}
	e.start("x1", nil)
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := e.queueLen(); n != 0 {
			return fmt.Errorf("%d entries left", n)
		}
		return nil
	})
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	e.start("x1", nil, func(c *Config) { c.ActionTimeouts = map[string]time.Duration{"block": 300 * time.Millisecond} })
	j := e.add("block", "")
	got := e.waitState(j.ID, jobs.Failed, 10*time.Second)
	if got.StatusMessage != "timed out after 300ms" {
		t.Fatalf("message %q", got.StatusMessage)
	}
	// The job's own timeout wins over the executor's.
	j = e.add("block", "", func(n *jobs.NewJob) { n.Timeout = 100 * time.Millisecond })
	if got := e.waitState(j.ID, jobs.Failed, 10*time.Second); got.StatusMessage != "timed out after 100ms" {
		t.Fatalf("message %q", got.StatusMessage)
	}
}

func TestUnknownActionTimeoutIsAConfigError(t *testing.T) {
	e := newEnv(t)
	conn := e.dial(zkc.Addrs()...)
	_, err := Start(context.Background(), conn, Config{Registry: e.reg, Store: jobs.NewStore(conn, jobs.StoreConfig{}), ActionTimeouts: map[string]time.Duration{"nope": time.Second}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelRunningJob(t *testing.T) {
	e := newEnv(t)
	e.start("x1", nil)
	j := e.add("block", "")
	running := e.waitState(j.ID, jobs.Running, 10*time.Second)
	if running.Executor != "x1" || running.Attempt != 1 {
		t.Fatalf("running: %+v", running)
	}
	// Progress reports reach the document.
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		cur, _, _ := e.store.Get(context.Background(), j.ID)
		if cur.Progress != 42 || cur.StatusMessage != "blocking" {
			return fmt.Errorf("progress %d status %q", cur.Progress, cur.StatusMessage)
		}
		return nil
	})
	if _, err := e.store.Cancel(context.Background(), j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	e.waitState(j.ID, jobs.Canceled, time.Second+500*time.Millisecond)
	if ok, _, _ := e.store.CancelRequested(j.UUID()); ok {
		t.Fatal("the cancel request outlived the job")
	}
	lines, _ := e.store.Logs(context.Background(), j.UUID())
	if len(lines) == 0 || lines[0].Message != "blocking until canceled" {
		t.Fatalf("log tail %+v", lines)
	}
}

func TestLostJobPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A RUNNING job whose executor died: its entry is free again.
	lost := func(action string, attempt int) *jobs.Job {
		j := e.add(action, `{"duration":"10ms"}`)
		cur, ver, _ := e.store.Get(ctx, j.ID)
		_ = cur.Transition(jobs.Running, time.Now())
		cur.Executor, cur.Attempt = "ghost", attempt
		if _, err := e.store.Update(ctx, cur, ver); err != nil {
			t.Fatal(err)
		}
		return j
	}
	rerun := lost("sleep", 1)
	exhausted := lost("sleep", action.DefaultMaxAttempts)
	failLost := lost("block-fail-lost", 1)
	e.start("x1", nil)
	if got := e.waitState(rerun.ID, jobs.Success, 10*time.Second); got.Attempt != 2 || got.Executor != "x1" {
		t.Fatalf("rerun: attempt %d executor %s", got.Attempt, got.Executor)
	}
	if got := e.waitState(exhausted.ID, jobs.Failed, 10*time.Second); !strings.HasPrefix(got.StatusMessage, "executor lost (ghost, attempt 3 of 3)") {
		t.Fatalf("exhausted: %q", got.StatusMessage)
	}
	if got := e.waitState(failLost.ID, jobs.Failed, 10*time.Second); !strings.Contains(got.StatusMessage, "does not rerun lost jobs") {
		t.Fatalf("fail policy: %q", got.StatusMessage)
	}
	if n := e.runCount(failLost.ID); n != 0 {
		t.Fatalf("a fail-policy lost job ran %d times", n)
	}
}

// A partitioned executor's session expires; another executor reruns the
// job; the stale one can never overwrite the newer state.
func TestSessionExpiryFencing(t *testing.T) {
	e := newEnv(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	staleConn := e.dial(proxy.Addr())
	stale := e.start("stale", staleConn, func(c *Config) { c.Threads = 1 })
	j := e.add("block", "", func(n *jobs.NewJob) { n.Timeout = 20 * time.Second })
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	proxy.Block() // partition: the server expires the session after 2 s
	fresh := e.start("fresh", nil, func(c *Config) { c.Threads = 1 })
	poll.For(t, 15*time.Second, 20*time.Millisecond, func() error {
		cur, _, _ := e.store.Get(context.Background(), j.ID)
		if cur.Executor != "fresh" || cur.Attempt != 2 {
			return fmt.Errorf("executor %s attempt %d", cur.Executor, cur.Attempt)
		}
		return nil
	})
	// The stale executor noticed on its own and canceled its action.
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r := stale.Running(); len(r) != 0 {
			return fmt.Errorf("stale executor still runs %v", r)
		}
		return nil
	})
	proxy.Unblock()
	if _, err := e.store.Cancel(context.Background(), j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	got := e.waitState(j.ID, jobs.Canceled, 5*time.Second)
	// Give the reconnected stale executor every chance to write: it must not.
	poll.For(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !staleConn.Connected() {
			return errors.New("stale executor not reconnected")
		}
		return nil
	})
	final, _, _ := e.store.Get(context.Background(), j.ID)
	if final.Version != got.Version || final.State != jobs.Canceled || final.Executor != "fresh" {
		t.Fatalf("stale executor wrote over the final state: %+v", final)
	}
	_ = fresh
}

// A partition longer than the executor's lease but shorter than the session
// timeout: the action is canceled (its job might have been taken elsewhere),
// and since the session survived, the executor gives the job back instead of
// holding it forever; it then runs again and finishes.
func TestShortPartitionRequeuesHeldJob(t *testing.T) {
	e := newEnv(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	conn := e.dialTimeout(4*time.Second, proxy.Addr())
	e.start("x1", conn, func(c *Config) { c.SessionTimeout = 4 * time.Second; c.Threads = 1 })
	j := e.add("sleep", `{"duration":"4s"}`)
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	session := conn.SessionID()
	proxy.Block()
	// Lease 2.67 s < 3.1 s < 4 s − the pinger's 0.5 s: the session survives.
	time.Sleep(3100 * time.Millisecond) // the fault itself, not a synchronisation
	proxy.Unblock()
	got := e.waitState(j.ID, jobs.Success, 30*time.Second)
	if conn.SessionID() != session {
		t.Skip("the session expired during the partition (a slow machine); the requeue path was not exercised")
	}
	if got.Attempt != 1 || got.Executor != "x1" {
		t.Fatalf("after the requeue: attempt %d executor %s", got.Attempt, got.Executor)
	}
}

func TestFenceRefusesStaleWrite(t *testing.T) {
	e := newEnv(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	conn := e.dial(proxy.Addr())
	store := jobs.NewStore(conn, jobs.StoreConfig{})
	j := e.add("sleep", "")
	c := store.Queue().NewConsumer(queueOpts("a"))
	defer c.Close()
	it, err := c.Take(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cur, ver, _ := store.Get(context.Background(), j.ID)
	old := conn.SessionID()
	proxy.Block()
	poll.For(t, 10*time.Second, 50*time.Millisecond, func() error {
		// The session is expired on the server once the owner is gone.
		st, _ := e.store.Queue().Stats(context.Background())
		if st.Taken != 0 {
			return errors.New("entry still taken")
		}
		return nil
	})
	proxy.Unblock()
	poll.For(t, 10*time.Second, 50*time.Millisecond, func() error {
		if conn.SessionID() == old || !conn.Connected() {
			return errors.New("no new session")
		}
		return nil
	})
	start, err := store.StartAttempt(cur, ver, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := start.Commit(context.Background(), jobs.Hold{Consumer: c, Item: it}); !errors.Is(err, queue.ErrLockLost) {
		t.Fatalf("a write fenced by an expired session: %v, want ErrLockLost", err)
	}
	if got, _, _ := e.store.Get(context.Background(), j.ID); got.State != jobs.Queued {
		t.Fatalf("state %s after a refused write", got.State)
	}
}

func TestZooKeeperRestartMidRun(t *testing.T) {
	e := newEnv(t)
	e.start("x1", nil, func(c *Config) { c.Threads = 4 })
	var ids []string
	for range 40 {
		ids = append(ids, e.add("sleep", `{"duration":"100ms"}`).ID)
	}
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		js, _ := e.store.List(context.Background(), jobs.Filter{State: jobs.Success})
		if len(js) < 4 {
			return fmt.Errorf("%d done", len(js))
		}
		return nil
	})
	if err := zkc.Servers[0].Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.waitState(id, jobs.Success, 60*time.Second)
	}
	if n := e.queueLen(); n != 0 {
		t.Fatalf("%d entries left", n)
	}
}

func TestShutdownDrainsThenRequeues(t *testing.T) {
	e := newEnv(t)
	x := e.start("x1", nil, func(c *Config) { c.ShutdownGrace = 5 * time.Second; c.Threads = 1 })
	short := e.add("sleep", `{"duration":"300ms"}`)
	e.waitState(short.ID, jobs.Running, 10*time.Second)
	x.Shutdown(context.Background())
	if got, _, _ := e.store.Get(context.Background(), short.ID); got.State != jobs.Success {
		t.Fatalf("a job within the grace did not finish: %s", got.State)
	}
	// A job longer than the grace is canceled and requeued, not failed.
	y := e.start("x2", nil, func(c *Config) { c.ShutdownGrace = 200 * time.Millisecond; c.Threads = 1 })
	long := e.add("block", "")
	e.waitState(long.ID, jobs.Running, 10*time.Second)
	y.Shutdown(context.Background())
	got := e.waitState(long.ID, jobs.Queued, 10*time.Second)
	if got.Attempt != 0 || !strings.Contains(got.StatusMessage, "requeued") {
		t.Fatalf("requeued job: attempt %d %q", got.Attempt, got.StatusMessage)
	}
	if st, _ := e.store.Queue().Stats(context.Background()); st.Available != 1 {
		t.Fatalf("queue after requeue: %+v", st)
	}
	z := e.start("x3", nil)
	e.waitState(long.ID, jobs.Running, 10*time.Second)
	_ = z
}

func TestMembershipAndNameInUse(t *testing.T) {
	e := newEnv(t)
	x := e.start("x1", nil)
	j := e.add("block", "")
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	conn := e.dial(zkc.Addrs()...)
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		data, _, err := conn.Get(conn.Path(MembersPath, "x1"))
		if err != nil {
			return err
		}
		var m Member
		if err := json.Unmarshal(data, &m); err != nil {
			return err
		}
		if m.Busy != 1 || len(m.Running) != 1 || m.Running[0].Job != j.ID || m.PID != os.Getpid() || len(m.Actions) == 0 {
			return fmt.Errorf("member %+v", m)
		}
		return nil
	})
	_, err := Start(context.Background(), conn, Config{Name: "x1", Registry: e.reg, Store: jobs.NewStore(conn, jobs.StoreConfig{})})
	if !errors.Is(err, ErrNameInUse) {
		t.Fatalf("second executor with the same name: %v", err)
	}
	x.Stop()
	if ok, _, _ := conn.Exists(conn.Path(MembersPath, "x1")); ok {
		t.Fatal("membership node left after stop")
	}
}

func TestStopLeaksNoGoroutine(t *testing.T) {
	e := newEnv(t)
	conn := e.dial(zkc.Addrs()...)
	opts := goleak.IgnoreCurrent()
	x := e.start("x1", conn)
	j := e.add("sleep", `{"duration":"10ms"}`)
	e.waitState(j.ID, jobs.Success, 10*time.Second)
	x.Stop()
	goleak.VerifyNone(t, opts)
}

func TestConcurrentExecutorsRunEachJobOnce(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	runs := map[string]int{}
	if err := e.reg.Add(action.Definition{Name: "count", Runner: action.RunnerFunc(func(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		return action.Result{}, nil
	})}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		e.start(fmt.Sprintf("x%d", i), nil, func(c *Config) { c.Threads = 4 })
	}
	var ids []string
	for range 300 {
		ids = append(ids, e.add("count", "").ID)
	}
	for _, id := range ids {
		e.waitState(id, jobs.Success, 30*time.Second)
	}
	for _, id := range ids {
		if runs[id] != 1 {
			t.Fatalf("%s ran %d times", id, runs[id])
		}
	}
}

func queueOpts(name string) queue.ConsumerOptions { return queue.ConsumerOptions{Name: name} }

// testLogLevel is the level of the executors' logs in test output.
var testLogLevel = zap.WarnLevel
