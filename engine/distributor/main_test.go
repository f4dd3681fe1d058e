package distributor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

// The integration tests share one ZooKeeper server; each test works under
// its own root.
var zkc *zkserver.Cluster

// sessionTimeout is short so failovers are quick; the test server's tick
// (250ms) grants it.
const sessionTimeout = 2 * time.Second

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

// testEnv is a test's root on a ZooKeeper server, with a connection and a
// store for setting up and checking.
type testEnv struct {
	t     *testing.T
	root  string
	hosts []string
	conn  *zkconn.Conn
	store *jobs.Store
}

func newEnv(t *testing.T, hosts ...string) *testEnv {
	t.Helper()
	if len(hosts) == 0 {
		hosts = zkc.Addrs()
	}
	e := &testEnv{t: t, hosts: hosts, root: fmt.Sprintf("/t%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))}
	e.conn = e.dial()
	e.store = jobs.NewStore(e.conn, jobs.StoreConfig{})
	return e
}

// dial opens a new session under the test's root.
func (e *testEnv) dial() *zkconn.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: e.hosts, Root: e.root, SessionTimeout: sessionTimeout})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *testEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *zap.Logger {
	if os.Getenv("DISTRIBUTOR_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// instance is a distributor running in the test process on its own
// session.
type instance struct {
	id     string
	conn   *zkconn.Conn
	cancel context.CancelFunc
	done   chan error
}

// start runs d as instance id, on a session of its own, with clock (the
// system clock when nil).
func (e *testEnv) start(d Definition, id string, clock schedule.Clock) *instance {
	e.t.Helper()
	conn := e.dial()
	x, err := New(Config{
		Conn: conn, Store: jobs.NewStore(conn, jobs.StoreConfig{}), SessionTimeout: sessionTimeout,
		Identifier: id, Logger: testLogger(e.t).Named(id), Clock: clock, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}, d)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{id: id, conn: conn, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- x.Run(ctx) }()
	e.t.Cleanup(in.stop)
	return in
}

// stop stops the instance and waits for it (idempotent).
func (in *instance) stop() {
	in.cancel()
	<-in.done
	in.done <- nil // for the next stop
}

// jobs returns the live jobs, sorted by tick and target.
func (e *testEnv) jobs() []*jobs.Job {
	e.t.Helper()
	var out []*jobs.Job
	if err := e.store.Walk(e.ctx(), func(j *jobs.Job, _ int32) { out = append(out, j) }); err != nil {
		e.t.Fatal(err)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Tick != out[b].Tick {
			return out[a].Tick < out[b].Tick
		}
		return out[a].Target() < out[b].Target()
	})
	return out
}

// ticksOf lists the jobs as "tick target created-by" lines.
func ticksOf(js []*jobs.Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, strings.TrimSpace(j.Tick+" "+j.Target()+" "+j.CreatedBy))
	}
	return out
}

// noDuplicateTicks fails the test when two jobs share a tick and target.
func noDuplicateTicks(t *testing.T, js []*jobs.Job) {
	t.Helper()
	seen := map[string]string{}
	for _, j := range js {
		k := j.Tick + " " + j.Target()
		if prev, ok := seen[k]; ok {
			t.Errorf("tick %s has two jobs: %s and %s (%s)", k, prev, j.ID, j.CreatedBy)
		}
		seen[k] = j.ID
	}
}

func (e *testEnv) state(name string) State {
	e.t.Helper()
	st, _, err := ReadState(e.ctx(), e.conn, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}
