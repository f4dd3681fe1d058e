package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	// The benchmarks leave a backlog of 10,000 jobs behind per run, more
	// than the default heap holds through a whole -count run.
	os.Exit(zktest.RunTests(m, zkserver.Options{HeapMB: 1024}, &zkc))
}

var rootSeq atomic.Int64

// cluster is a test's own root on the shared ZooKeeper: a job store, and
// executors simulated through the same library calls a real one makes
// (its instance record, its heartbeat node, takes from its direct queue
// and the job store's transitions), so that tests choose when jobs end.
type cluster struct {
	t     testing.TB
	root  string
	conn  *zkconn.Conn
	store *jobs.Store
	execs map[string]*fakeExecutor
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{t: t, root: fmt.Sprintf("/sched%d", rootSeq.Add(1)), execs: map[string]*fakeExecutor{}}
	c.conn = c.dial()
	c.store = jobs.NewStore(c.conn, jobs.StoreConfig{})
	if err := c.store.Ensure(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cluster) dial() *zkconn.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Tests keep sessions short so that expiry is quick to provoke; a
	// benchmark's large first pass keeps its session through ZooKeeper's
	// pauses instead of losing it halfway ("zk: connection closed").
	timeout := 4 * time.Second
	if _, ok := c.t.(*testing.B); ok {
		timeout = 15 * time.Second
	}
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: c.root, SessionTimeout: timeout})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(conn.Close)
	return conn
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("SCHEDULER_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// fakeExecutor is a simulated executor on a session of its own.
type fakeExecutor struct {
	c      *cluster
	name   string
	conn   *zkconn.Conn
	store  *jobs.Store
	direct *queue.Consumer
}

// join starts a simulated executor: record, heartbeat node.
func (c *cluster) join(name string, capacity, threads int, groups ...string) *fakeExecutor {
	c.t.Helper()
	if len(groups) == 0 {
		groups = []string{jobs.DefaultGroup}
	}
	conn := c.dial()
	x := &fakeExecutor{c: c, name: name, conn: conn, store: jobs.NewStore(conn, jobs.StoreConfig{})}
	ctx := ctxT(c.t)
	rec := instance.Record{Name: name, Groups: groups, Capacity: capacity, Threads: threads, Version: "test",
		Actions: []instance.ActionPolicy{{Name: "fail-lost", LostPolicy: action.Fail, MaxAttempts: 1}}}
	if _, err := instance.Register(ctx, conn, rec); err != nil {
		c.t.Fatal(err)
	}
	data, _ := json.Marshal(instance.Heartbeat{Name: name, Threads: threads, LastSeen: time.Now(), Groups: groups, Capacity: capacity})
	if err := conn.EnsurePath(ctx, conn.Path(instance.HeartbeatsPath)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := conn.Create(conn.Path(instance.HeartbeatsPath, name), data, zk.FlagEphemeral, zkconn.ACL); err != nil {
		c.t.Fatal(err)
	}
	x.direct = x.store.NodeQueue(name).NewConsumer(queue.ConsumerOptions{Name: name})
	c.t.Cleanup(x.direct.Close)
	c.execs[name] = x
	return x
}

// close ends the sessions of the cluster's executors and its own (they
// also end with the test).
func (c *cluster) close() {
	for _, x := range c.execs {
		x.leave()
	}
	c.conn.Close()
}

// leave ends the executor's session: its heartbeat and holds go.
func (x *fakeExecutor) leave() {
	x.direct.Close()
	x.conn.Close()
	delete(x.c.execs, x.name)
}

// start takes the next job of its direct queue and starts it.
func (x *fakeExecutor) start(ctx context.Context) (jobs.Hold, *jobs.Change, error) {
	it, err := x.direct.Take(ctx)
	if err != nil {
		return jobs.Hold{}, nil, err
	}
	h := jobs.Hold{Consumer: x.direct, Item: it}
	j, ver, err := x.store.Get(ctx, string(it.Data))
	if err != nil {
		return h, nil, err
	}
	c, err := x.store.StartAttempt(j, ver, x.name)
	if err != nil {
		return h, nil, err
	}
	return h, c, c.Commit(ctx, h)
}

// finish ends a started job with state.
func (x *fakeExecutor) finish(ctx context.Context, h jobs.Hold, started *jobs.Change, state jobs.State) error {
	c, err := x.store.Finish(started.Job(), started.Ver(), x.name, jobs.Outcome{State: state})
	if err != nil {
		return err
	}
	return c.Commit(ctx, h)
}

// runOne starts and finishes the next job of its direct queue.
func (x *fakeExecutor) runOne(state jobs.State) string {
	x.c.t.Helper()
	ctx := ctxT(x.c.t)
	h, c, err := x.start(ctx)
	if err != nil {
		x.c.t.Fatal(err)
	}
	if err := x.finish(ctx, h, c, state); err != nil {
		x.c.t.Fatal(err)
	}
	return c.Job().ID
}

// inGroups gives a new job instance groups.
func inGroups(g ...string) func(*jobs.NewJob) {
	return func(n *jobs.NewJob) { n.Launch.InstanceGroups = g }
}

// add creates a job with scheduling fields.
func (c *cluster) add(sc jobs.Scheduling, mod ...func(*jobs.NewJob)) *jobs.Job {
	c.t.Helper()
	n := jobs.NewJob{Action: "a", Scheduling: sc}
	for _, m := range mod {
		m(&n)
	}
	j, err := c.store.Create(ctxT(c.t), n)
	if err != nil {
		c.t.Fatal(err)
	}
	return j
}

func (c *cluster) get(id string) *jobs.Job {
	c.t.Helper()
	j, _, err := c.store.Get(ctxT(c.t), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return j
}

// fenceTerm is a term fenced by a node of the test's own: delete the node
// and the term is over.
type fenceTerm struct{ path string }

func (f fenceTerm) Check() error { return nil }

func (f fenceTerm) Fence() *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: f.path, Version: -1}
}

func (c *cluster) term() fenceTerm {
	c.t.Helper()
	p := c.conn.Path("test-term")
	if err := c.conn.EnsurePath(ctxT(c.t), p); err != nil {
		c.t.Fatal(err)
	}
	return fenceTerm{p}
}

func (c *cluster) scheduler(mod ...func(*Config)) *Scheduler {
	c.t.Helper()
	cfg := Config{Store: c.store, Logger: testLogger(c.t)}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

// readSession is a job store over a session of its own, as the
// controller gives its scheduler to share a large pass's reads.
func (c *cluster) readSession(cfg *Config) {
	cfg.Readers = append(cfg.Readers, jobs.NewStore(c.dial(), jobs.StoreConfig{}))
}

func (c *cluster) pass(s *Scheduler) Report {
	c.t.Helper()
	rep, err := s.Pass(ctxT(c.t), c.term())
	if err != nil {
		c.t.Fatal(err)
	}
	return rep
}

// lead runs f as the leader of an election of the test's own.
func (c *cluster) lead(f func(ctx context.Context) error) (stop func()) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	e := election.New(c.dial(), "controller", "test", testLogger(c.t), election.WithSessionTimeout(4*time.Second))
	go func() { done <- e.Run(ctx, f) }()
	return func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			c.t.Errorf("election: %v", err)
		}
	}
}

func queueOpts(name string) queue.ConsumerOptions { return queue.ConsumerOptions{Name: name} }
