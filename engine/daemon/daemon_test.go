package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	// The built-in actions, as the binary has them.
	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

const wait = 30 * time.Second

var rootSeq atomic.Int64

func zkFor(t *testing.T) zkconn.Config {
	root := fmt.Sprintf("/d%d-%s", rootSeq.Add(1), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	return zkconn.Config{Hosts: testZK.Addrs(), Root: root, SessionTimeout: 3 * time.Second}
}

// logs returns a logger that records its lines and shows them when the
// test fails.
func logs(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, obs := observer.New(zapcore.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range obs.All() {
				t.Logf("%s %s %s %s %v", e.Time.Format("15:04:05.000"), e.LoggerName, e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return zap.New(core), obs
}

// TestExecutorAndDistributor starts an executor and a distributor with one
// call each, as the command line does, with indexing on: the distributor
// creates jobs, the executor runs them, the distributor (elected for the
// maintenance services) indexes them, the metrics are served; then both
// stop with one call each and leave nothing behind, in ZooKeeper or in the
// process.
func TestExecutorAndDistributor(t *testing.T) {
	before := goleak.IgnoreCurrent()
	log, obs := logs(t)
	zc := zkFor(t)
	func() {
		s, err := estest.New(estest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		esCfg := &index.Config{Hosts: []string{s.URL()}}

		xcfg := NewExecutorConfig()
		xcfg.ZK, xcfg.Logger, xcfg.Elasticsearch = zc, log, esCfg
		xcfg.Name, xcfg.Threads, xcfg.MetricsListen = "x1", 2, "127.0.0.1:0"
		xcfg.EnableTestActions = true // the distributor's jobs run echo
		xcfg.Plugins.Dir = t.TempDir()
		x, err := StartExecutor(context.Background(), xcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Stop()

		dcfg := NewDistributorConfig()
		dcfg.ZK, dcfg.Logger, dcfg.Elasticsearch, dcfg.Identifier = zc, log, esCfg, "d1"
		dcfg.Distributors = []distributor.Definition{{Name: "ticker", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}, Dedup: distributor.DedupAlways}}
		d, err := StartDistributor(context.Background(), dcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Stop()

		conn := dialT(t, zc)
		defer conn.Close()
		store := jobs.NewStore(conn, jobs.StoreConfig{})
		es, err := index.New(*esCfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = es.Close(context.Background()) }()
		// A job of the distributor, run by the executor, indexed by the
		// pump of the maintenance leader.
		poll.For(t, wait, 50*time.Millisecond, func() error {
			var done *jobs.Job
			err := store.Walk(context.Background(), func(j *jobs.Job, _ int32) {
				if j.State == jobs.Success && strings.HasPrefix(j.CreatedBy, "ticker@d1") && j.Executor == "x1" {
					done = j
				}
			})
			if err != nil || done == nil {
				return fmt.Errorf("no job of the distributor finished yet (%v)", err)
			}
			doc, ok := s.Doc(es.JobsIndex(), done.UUID())
			if !ok || doc.Version != done.Version {
				return fmt.Errorf("%s not indexed at version %d (%v, %+v)", done.ID, done.Version, ok, doc)
			}
			return nil
		})
		if !d.Maintenance().Leading() || fmt.Sprint(d.Maintenance().Services()) != "[cleanup containers index-pump scheduler reaper workflows schedules notifications]" {
			t.Fatalf("maintenance: leading %v, services %v", d.Maintenance().Leading(), d.Maintenance().Services())
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + x.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `jobengine_jobs_finished_total{action="echo",state="SUCCESS"}`) {
			t.Fatalf("metrics lack the finished echo jobs:\n%s", body)
		}

		d.Stop()
		x.Stop()
		for _, ch := range []<-chan struct{}{d.Done(), x.Done()} {
			select {
			case <-ch:
			default:
				t.Fatal("Done not closed after Stop")
			}
		}
		// Stopping again is harmless.
		d.Stop()
		x.Shutdown(context.Background())
		ctx := context.Background()
		for _, name := range []string{"ticker", maintenance.ElectionName} {
			if cs, err := election.New(conn, name, "", nil).Contenders(ctx); err != nil || len(cs) != 0 {
				t.Errorf("election %s: contenders %v (%v) after the stop", name, cs, err)
			}
		}
		if ok, _, err := conn.Exists(conn.Path(executor.MembersPath, "x1")); ok || err != nil {
			t.Errorf("membership node left (%v, %v)", ok, err)
		}
	}()
	if obs.FilterMessage("serving metrics").Len() != 1 {
		t.Error("the metrics server was not logged")
	}
	goleak.VerifyNone(t, before)
}

func dialT(t *testing.T, zc zkconn.Config) *zkconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := zkconn.Dial(ctx, zc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigErrors: a bad configuration is a *ConfigError that names the
// field and wraps ErrConfig, found before any server is contacted.
func TestConfigErrors(t *testing.T) {
	unreachable := zkconn.Config{Hosts: []string{"127.0.0.1:1"}, Root: "/", SessionTimeout: time.Second}
	x := func(mod func(*ExecutorConfig)) ExecutorConfig {
		c := NewExecutorConfig()
		c.ZK = unreachable
		mod(&c)
		return c
	}
	d := func(mod func(*DistributorConfig)) DistributorConfig {
		c := NewDistributorConfig()
		c.ZK = unreachable
		mod(&c)
		return c
	}
	ticker := distributor.Definition{Name: "ticker", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}}
	for _, tc := range []struct {
		name  string
		field string
		start func() error
	}{
		{"no hosts", "ZK.Hosts", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.ZK.Hosts = nil }))
			return err
		}},
		{"bad root", "ZK.Root", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.ZK.Root = "no-slash" }))
			return err
		}},
		{"zero threads", "Threads", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.Threads = 0 }))
			return err
		}},
		{"zero grace", "ShutdownGrace", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.ShutdownGrace = 0 }))
			return err
		}},
		{"bad timeout", "ActionTimeouts", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.ActionTimeouts = map[string]time.Duration{"echo": -1} }))
			return err
		}},
		{"bad name", "Name", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.Name = "a b" }))
			return err
		}},
		{"bad metrics address", "MetricsListen", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.MetricsListen = "nowhere:-1" }))
			return err
		}},
		{"bad es", "Elasticsearch", func() error {
			_, err := StartExecutor(context.Background(), x(func(c *ExecutorConfig) { c.Elasticsearch = &index.Config{Hosts: []string{"ftp://x"}} }))
			return err
		}},
		{"nothing to run", "Distributors", func() error {
			_, err := StartDistributor(context.Background(), d(func(c *DistributorConfig) { c.Maintenance = false }))
			return err
		}},
		{"twice", "Distributors", func() error {
			_, err := StartDistributor(context.Background(), d(func(c *DistributorConfig) { c.Distributors = []distributor.Definition{ticker, ticker} }))
			return err
		}},
		{"bad distributor", "Distributors", func() error {
			_, err := StartDistributor(context.Background(), d(func(c *DistributorConfig) { c.Distributors = []distributor.Definition{{Name: "x"}} }))
			return err
		}},
		{"bad cleanup", "Cleanup", func() error {
			_, err := StartDistributor(context.Background(), d(func(c *DistributorConfig) { c.Cleanup.Batch = -1 }))
			return err
		}},
		{"negative backlog", "MaxBacklog", func() error {
			_, err := StartDistributor(context.Background(), d(func(c *DistributorConfig) { c.MaxBacklog = -1 }))
			return err
		}},
	} {
		err := tc.start()
		var ce *ConfigError
		if !errors.Is(err, ErrConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v; want a ConfigError of %s", tc.name, err, tc.field)
		}
	}
}

// TestStartFailures: an unknown action in the timeouts is a configuration
// error found once the plugins are loaded; an unreachable ZooKeeper is not
// one. Neither leaves anything running.
func TestStartFailures(t *testing.T) {
	before := goleak.IgnoreCurrent()
	cfg := NewExecutorConfig()
	cfg.ZK, cfg.Plugins.Dir = zkFor(t), t.TempDir()
	cfg.ActionTimeouts = map[string]time.Duration{"nope": time.Second}
	_, err := StartExecutor(context.Background(), cfg)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "ActionTimeouts" || !strings.Contains(ce.Problem, `"nope"`) {
		t.Fatalf("unknown action timeout: %v", err)
	}
	cfg.ActionTimeouts = nil
	cfg.ZK.Hosts, cfg.ConnectTimeout = []string{"127.0.0.1:1"}, 500*time.Millisecond
	if _, err := StartExecutor(context.Background(), cfg); !errors.Is(err, zkconn.ErrUnavailable) || errors.Is(err, ErrConfig) {
		t.Fatalf("unreachable ZooKeeper: %v", err)
	}
	dcfg := NewDistributorConfig()
	dcfg.ZK, dcfg.ConnectTimeout = cfg.ZK, cfg.ConnectTimeout
	if _, err := StartDistributor(context.Background(), dcfg); !errors.Is(err, zkconn.ErrUnavailable) {
		t.Fatalf("unreachable ZooKeeper: %v", err)
	}
	goleak.VerifyNone(t, before)
}

// TestDumpState: the dump is a summary line, a line per running job and
// a line per group of goroutines, none with a line break.
func TestDumpState(t *testing.T) {
	log, obs := logs(t)
	cfg := NewExecutorConfig()
	cfg.ZK, cfg.Plugins.Dir, cfg.Logger, cfg.Threads, cfg.EnableTestActions = zkFor(t), t.TempDir(), log, 1, true
	x, err := StartExecutor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Stop()
	conn := dialT(t, cfg.ZK)
	defer conn.Close()
	j, err := jobs.NewStore(conn, jobs.StoreConfig{}).Create(context.Background(), jobs.NewJob{Action: "sleep", Payload: []byte(`{"duration":"1h"}`)})
	if err != nil {
		t.Fatal(err)
	}
	poll.For(t, wait, 20*time.Millisecond, func() error { return errorIf(len(x.Running()) != 1, "not running yet") })
	x.DumpState()
	dumps := obs.FilterMessage(LogDump).All()
	if len(dumps) != 1 {
		t.Fatalf("%d dumps logged", len(dumps))
	}
	if f := dumps[0].ContextMap(); f["running"] != int64(1) || f["plugin-processes"] != int64(0) || f["goroutines"].(int64) < 5 {
		t.Fatalf("summary: %v", f)
	}
	jl := obs.FilterMessage(LogDumpJob).All()
	if len(jl) != 1 || jl[0].ContextMap()["job"] != j.ID || jl[0].ContextMap()["action"] != "sleep" {
		t.Fatalf("running job lines: %v", jl)
	}
	groups := obs.FilterMessage(LogDumpGoroutines).All()
	worker := false
	for _, g := range groups {
		f := g.ContextMap()
		// The worker running the sleep action: where it waits is the action.
		if strings.HasPrefix(fmt.Sprint(f["where"]), "actions.") && strings.Contains(fmt.Sprint(f["stack"]), "executor.(*Executor).worker executor.go:") {
			worker = true
		}
	}
	if !worker || int64(len(groups)) != dumps[0].ContextMap()["goroutine-groups"] {
		t.Fatalf("goroutine groups (%d): no worker, or not as many as the summary says: %v", len(groups), groups)
	}
	for _, e := range obs.All() {
		for k, v := range e.ContextMap() {
			if strings.Contains(fmt.Sprint(v), "\n") {
				t.Errorf("%s: field %s holds a line break", e.Message, k)
			}
		}
	}
}

func errorIf(cond bool, format string, args ...any) error {
	if cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}
