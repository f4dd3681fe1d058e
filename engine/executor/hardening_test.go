package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// observed returns a logger that writes to the test's log and keeps its
// WARN and ERROR entries for the test to count.
func observed(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.WarnLevel)
	test := zaptest.NewLogger(t, zaptest.Level(testLogLevel)).Core()
	return zap.New(zapcore.NewTee(test, core)), logs
}

func counter(t *testing.T, m *Metrics, kind string) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Quarantined.WithLabelValues(kind).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}

// rewrite replaces a job's document behind the engine's back.
func (e *env) rewrite(j *jobs.Job, edit func(m map[string]any) []byte) {
	e.t.Helper()
	conn := e.store.Conn()
	data, _, err := conn.Get(e.store.DocPath(j.UUID()))
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatal(err)
	}
	if _, err := conn.Conn.Set(e.store.DocPath(j.UUID()), edit(m), -1); err != nil {
		e.t.Fatal(err)
	}
}

func set(key string, v any) func(map[string]any) []byte {
	return func(m map[string]any) []byte {
		m[key] = v
		b, _ := json.Marshal(m)
		return b
	}
}

// Documents that are not what the engine writes — an id that climbs out of
// the root, an unknown state, another job's id, bytes that are not JSON, a
// document too large to be written back — and an entry that names no job are each quarantined once, with one ERROR
// line and a count in the metrics; none is looped on, none blocks the
// queue, and nothing outside the root is touched.
func TestInvalidObjectsAreQuarantinedOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// The node a document id of job/../../../<victim>/victim would reach
	// from this root: the job's document and log paths are built from it.
	victimRoot := "/" + strings.TrimPrefix(e.root, "/") + "-victim"
	raw := e.store.Conn().Conn
	if _, err := raw.Create(victimRoot, nil, 0, zkconn.OpenACL); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Create(victimRoot+"/victim", []byte("untouched"), 0, zkconn.OpenACL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Delete(victimRoot+"/victim", -1); _ = raw.Delete(victimRoot, -1) })

	traversal := e.add("echo", "")
	e.rewrite(traversal, set("id", "job/../../.."+victimRoot+"/victim"))
	bogus := e.add("echo", "")
	e.rewrite(bogus, set("state", "BOGUS"))
	other := e.add("echo", "")
	e.rewrite(other, set("id", "job/00000000-0000-4000-8000-000000000000"))
	notJSON := e.add("echo", "")
	e.rewrite(notJSON, func(map[string]any) []byte { return []byte("\x00 not json") })
	// Just under ZooKeeper's request limit: every RUNNING write of it was
	// over the limit, and dropped the connection.
	huge := e.add("echo", "")
	e.rewrite(huge, set("payload", map[string]string{"pad": strings.Repeat("p", 1_040_000)}))
	if _, err := e.store.Queue().Put(ctx, []byte("no job here"), 100); err != nil {
		t.Fatal(err)
	}
	// Queued behind them all.
	probe := e.add("echo", `{"probe":true}`, func(n *jobs.NewJob) { n.Priority = 500 })

	log, errs := observed(t)
	m := NewMetrics()
	e.start("x1", nil, func(c *Config) { c.Logger, c.Metrics = log, m })
	e.waitState(probe.ID, jobs.Success, 30*time.Second)
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := e.queueLen(); n != 0 {
			return fmt.Errorf("%d entries left", n)
		}
		// A worker consumes an entry before it counts and logs it.
		if d, n := counter(t, m, jobs.KindDocument)+counter(t, m, jobs.KindEntry), errs.FilterMessage(LogQuarantined).Len(); d < 6 || n < 6 {
			return fmt.Errorf("%v counted, %d logged", d, n)
		}
		return nil
	})

	if got := counter(t, m, jobs.KindDocument); got != 5 {
		t.Errorf("%v documents quarantined, want 5", got)
	}
	if got := counter(t, m, jobs.KindEntry); got != 1 {
		t.Errorf("%v entries quarantined, want 1", got)
	}
	if n := errs.FilterMessage(LogQuarantined).Len(); n != 6 {
		t.Errorf("%d quarantine lines, want one per object (6)", n)
	}
	qs, err := e.store.QuarantineList(ctx)
	if err != nil || len(qs) != 6 {
		t.Fatalf("%d records, %v", len(qs), err)
	}
	for _, q := range qs {
		if q.Job == huge.ID && (!q.Truncated || q.Size < 1_040_000 || len(q.Text) != jobs.MaxQuarantinedBytes) {
			t.Errorf("record of the huge document: truncated %v, size %d, kept %d", q.Truncated, q.Size, len(q.Text))
		}
	}
	for _, j := range []*jobs.Job{traversal, bogus, other, notJSON, huge} {
		if _, _, err := e.store.Get(ctx, j.ID); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("%s: %v, want its document moved aside", j.ID, err)
		}
	}
	data, st, err := raw.Get(victimRoot + "/victim")
	if err != nil || string(data) != "untouched" || st.Version != 0 || st.NumChildren != 0 {
		t.Fatalf("the node outside the root was touched: %q version %d children %d (%v)", data, st.Version, st.NumChildren, err)
	}
}

// An action that reports 1,000 affected resources of 1 KB — what the plugin
// protocol allows — gets its job finished, trimmed and saying so, with
// indexing's outbox copy in every write; before, the final write was over
// ZooKeeper's limit and the job stayed RUNNING.
func TestAffectedResourcesOverTheBudgetFinish(t *testing.T) {
	e := newEnv(t)
	big := action.RunnerFunc(func(_ context.Context, _ *action.Job, r action.Reporter) (action.Result, error) {
		for i := range jobs.MaxAffected {
			p := fmt.Sprintf("deployment/%04d/", i)
			r.Affected(p + strings.Repeat("x", jobs.MaxIDBytes-len(p)))
		}
		return action.Result{Message: "affected a thousand"}, nil
	})
	if err := e.reg.Add(action.Definition{Name: "affect-many", Runner: big}); err != nil {
		t.Fatal(err)
	}
	conn := e.dial(zkc.Addrs()...)
	if err := conn.EnsurePath(context.Background(), conn.Path("outbox")); err != nil {
		t.Fatal(err)
	}
	store := jobs.NewStore(conn, jobs.StoreConfig{Outbox: func(j *jobs.Job, doc []byte) *zk.CreateRequest {
		return &zk.CreateRequest{Path: conn.Path("outbox", fmt.Sprintf("%s-%010d", j.UUID(), j.Version)), Data: doc, Acl: zkconn.ACL}
	}})
	e.start("x1", conn, func(c *Config) { c.Store = store })
	j := e.add("affect-many", "")
	got := e.waitState(j.ID, jobs.Success, 30*time.Second)
	if n := len(got.AffectedResources); n == 0 || n >= jobs.MaxAffected || got.Trimmed == "" {
		t.Fatalf("%d affected resources kept, note %q", n, got.Trimmed)
	}
	if e.queueLen() != 0 {
		t.Fatal("the entry was not consumed")
	}
}

// A server whose jute.maxbuffer is below the engine's budget closes the
// connection on a large write. The executor does not send it again as it
// was: it lowers its document limit and writes the report trimmed, so the
// affected resources are neither lost without a word nor looped on.
func TestWriteRefusedByTheServerIsTrimmed(t *testing.T) {
	small := zktest.StartT(t, zkserver.Options{JuteMaxBuffer: 200_000})
	e := newEnv(t)
	e.store = jobs.NewStore(e.dial(small.Addrs()...), jobs.StoreConfig{})
	report := action.RunnerFunc(func(_ context.Context, _ *action.Job, r action.Reporter) (action.Result, error) {
		for i := range 300 {
			p := fmt.Sprintf("deployment/%04d/", i)
			r.Affected(p + strings.Repeat("x", jobs.MaxIDBytes-len(p)))
		}
		return action.Result{}, nil
	})
	if err := e.reg.Add(action.Definition{Name: "affect-300", Runner: report}); err != nil {
		t.Fatal(err)
	}
	// Each refusal costs a reconnection (about a second): a session long
	// enough that the executor does not take it for a lost session.
	conn := e.dialTimeout(6*time.Second, small.Addrs()...)
	store := jobs.NewStore(conn, jobs.StoreConfig{})
	e.start("x1", conn, func(c *Config) { c.Store = store; c.Threads = 1; c.SessionTimeout = 6 * time.Second })
	j := e.add("affect-300", "")
	got := e.waitState(j.ID, jobs.Success, 60*time.Second)
	if n := len(got.AffectedResources); n == 0 || n >= 300 || got.Trimmed == "" {
		t.Fatalf("%d affected resources kept, note %q", n, got.Trimmed)
	}
	if store.DocumentLimit() >= jobs.MaxDocumentBytes {
		t.Fatalf("document limit still %d", store.DocumentLimit())
	}
}

// A stop at once ends the retries of a write that cannot reach ZooKeeper:
// the executor stops, and the job's entry goes with its session.
func TestStopEndsTheRetriesOfAnOutcome(t *testing.T) {
	e := newEnv(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	release, started := make(chan struct{}), make(chan struct{})
	var once sync.Once
	gate := action.RunnerFunc(func(ctx context.Context, _ *action.Job, _ action.Reporter) (action.Result, error) {
		once.Do(func() { close(started) })
		<-release // returns even when canceled: its outcome must still be written
		return action.Result{}, nil
	})
	if err := e.reg.Add(action.Definition{Name: "gate", Runner: gate}); err != nil {
		t.Fatal(err)
	}
	// A session long enough that the action ends well within its lease:
	// the outcome is written (and retried), not given up as in doubt.
	conn := e.dialTimeout(10*time.Second, proxy.Addr())
	log, errs := observed(t)
	x := e.start("x1", conn, func(c *Config) {
		c.Threads, c.MaxBackoff, c.SessionTimeout, c.Logger = 1, 200*time.Millisecond, 10*time.Second, log
	})
	j := e.add("gate", "")
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	// The document says RUNNING before the executor has the answer: cut
	// only once the action runs, or the RUNNING write is what is retried.
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the action did not start within 10s of its job being RUNNING")
	}
	proxy.Block()
	close(release)
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if errs.FilterMessage("writing the outcome failed; retrying").Len() == 0 {
			return errors.New("the outcome is not being retried")
		}
		return nil
	})
	stopped := make(chan struct{})
	go func() { x.Stop(); close(stopped) }()
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		select {
		case <-stopped:
			return nil
		default:
			return errors.New("the executor is still retrying")
		}
	})
	conn.Close() // the session ends: the job is another executor's
	e.start("x2", nil)
	e.waitState(j.ID, jobs.Success, 30*time.Second)
}
