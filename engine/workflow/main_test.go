package workflow

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/exectest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

// sessionTimeout is short so that a killed leader is replaced quickly.
const sessionTimeout = 2 * time.Second

// wait bounds every poll of these tests.
const wait = 30 * time.Second

// env is a test's root: its stores and launchers on one session.
type env struct {
	t    *testing.T
	root string
	conn *zkconn.Conn
	jobs *jobs.Store
	tpls *template.Store
	invs *inventory.Store
	wfs  *Store
	tl   *template.Launcher
	wl   *Launcher
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, root: fmt.Sprintf("/wf%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))}
	e.conn = e.dial()
	e.jobs, e.tpls, e.invs, e.wfs, e.tl, e.wl = stores(e.conn)
	if err := e.jobs.Ensure(e.ctx()); err != nil {
		t.Fatal(err)
	}
	// An executor of the default group, roomy enough for every job of a
	// test, for the scheduler to place template launches on (the test
	// plays the executor: see end).
	exectest.Join(t, e.dial(), "x1", 1000)
	return e
}

func stores(conn *zkconn.Conn) (*jobs.Store, *template.Store, *inventory.Store, *Store, *template.Launcher, *Launcher) {
	// Jobs notify what is attached to them, as in the daemons.
	js := jobs.NewStore(conn, jobs.StoreConfig{Notifications: notify.NewResolver(notify.NewStore(conn))})
	tpls := template.NewStore(conn, nil)
	invs := inventory.NewStore(conn, inventory.Config{})
	wfs := NewStore(conn, nil)
	return js, tpls, invs, wfs, &template.Launcher{Jobs: js, Templates: tpls, Inventories: invs},
		&Launcher{Jobs: js, Workflows: wfs, Templates: tpls}
}

func (e *env) dial() *zkconn.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: e.root, SessionTimeout: sessionTimeout})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Close)
	return c
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *zap.Logger {
	if os.Getenv("WORKFLOW_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// member contends on a session of its own and runs the workflow service
// while it leads.
type member struct {
	conn    *zkconn.Conn
	cancel  context.CancelFunc
	done    chan error
	leading atomic.Bool
}

func (e *env) start(id string) *member { return e.startEvery(id, 50*time.Millisecond) }

// startEvery starts a member whose service passes every interval.
func (e *env) startEvery(id string, interval time.Duration) *member {
	e.t.Helper()
	m := &member{conn: e.dial(), done: make(chan error, 1)}
	js, _, _, _, tl, wl := stores(m.conn)
	s, err := NewService(ServiceConfig{Jobs: js, Templates: tl, Workflows: wl, Interval: interval, Logger: testLogger(e.t).Named(id)})
	if err != nil {
		e.t.Fatal(err)
	}
	// The scheduler queues the launches of the nodes, as on the elected
	// controller.
	sch, err := scheduler.New(scheduler.Config{Store: js, Interval: interval, Logger: testLogger(e.t).Named(id)})
	if err != nil {
		e.t.Fatal(err)
	}
	var ctx context.Context
	ctx, m.cancel = context.WithCancel(context.Background())
	go func() {
		el := election.New(m.conn, "test-maintenance", id, testLogger(e.t), election.WithSessionTimeout(sessionTimeout))
		m.done <- el.Run(ctx, func(lctx context.Context) error {
			if err := sch.Start(lctx); err != nil {
				return err
			}
			if err := s.Start(lctx); err != nil {
				sch.Stop()
				return err
			}
			m.leading.Store(true)
			<-lctx.Done()
			m.leading.Store(false)
			s.Stop()
			sch.Stop()
			return nil
		})
	}()
	e.t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
}

// kill ends the member's session as a crash would.
func (m *member) kill() {
	m.conn.Close()
	m.stop()
}

func (e *env) waitLeading(m *member) {
	e.t.Helper()
	poll.For(e.t, wait, 20*time.Millisecond, func() error {
		if !m.leading.Load() {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})
}

// template creates a job template of action echo. Its launches may run
// side by side: the nodes of these tests that share a template run at
// once, as the workflow under test has them.
func (e *env) template(name string, edit func(*template.Template)) {
	e.t.Helper()
	tpl := &template.Template{Name: name, Action: "echo", Priority: 100, AllowSimultaneous: true}
	if edit != nil {
		edit(tpl)
	}
	if err := e.tpls.Create(e.ctx(), tpl); err != nil {
		e.t.Fatal(err)
	}
}

// workflow creates a workflow template of nodes given as
// "id=template:success,..:failure,..:always,.." ("id=@wf" for a workflow
// node).
func (e *env) workflow(name string, specs ...string) {
	e.t.Helper()
	w := &Template{Name: name}
	for _, s := range specs {
		id, rest, _ := strings.Cut(s, "=")
		f := strings.Split(rest+":::", ":")
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		n := jobs.WorkflowNode{ID: id, Success: split(f[1]), Failure: split(f[2]), Always: split(f[3])}
		if w, ok := strings.CutPrefix(f[0], "@"); ok {
			n.Workflow = w
		} else {
			n.Template = f[0]
		}
		w.Nodes = append(w.Nodes, n)
	}
	if err := w.Validate(); err != nil {
		e.t.Fatal(err)
	}
	if err := Check(e.ctx(), w, e.wfs, e.tpls); err != nil {
		e.t.Fatal(err)
	}
	if err := e.wfs.Create(e.ctx(), w); err != nil {
		e.t.Fatal(err)
	}
}

// nodeJob returns the job of a node, nil when it has none.
func (e *env) nodeJob(wf *jobs.Job, node string) *jobs.Job {
	e.t.Helper()
	j, _, err := e.jobs.Get(e.ctx(), jobs.NodeJobID(wf.ID, node))
	if err != nil {
		return nil
	}
	return j
}

// waitNode waits for the job of a node to exist and returns it.
func (e *env) waitNode(wf *jobs.Job, node string) *jobs.Job {
	e.t.Helper()
	var j *jobs.Job
	poll.For(e.t, wait, 20*time.Millisecond, func() error {
		if j = e.nodeJob(wf, node); j == nil {
			return fmt.Errorf("node %s of %s not launched", node, wf.ID)
		}
		return nil
	})
	return j
}

// end ends a job as an executor would, in state to (the test plays the
// executor: what is under test is what follows from the state). A job
// still PENDING is first waited for until the scheduler has queued it.
func (e *env) end(id string, to jobs.State) {
	e.t.Helper()
	j, ver := e.scheduled(id)
	now := time.Now()
	if j.State != jobs.Running {
		if err := j.Transition(jobs.Running, now); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := j.Transition(to, now); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.jobs.Update(e.ctx(), j, ver); err != nil {
		e.t.Fatal(err)
	}
}

// scheduled waits for a job to be past PENDING (queued by the scheduler,
// or ended) and returns it; a container is returned at once.
func (e *env) scheduled(id string) (*jobs.Job, int32) {
	e.t.Helper()
	var j *jobs.Job
	var ver int32
	poll.For(e.t, wait, 20*time.Millisecond, func() error {
		var err error
		if j, ver, err = e.jobs.Get(e.ctx(), id); err != nil {
			return err
		}
		if j.State == jobs.Pending && !j.IsContainer() {
			return fmt.Errorf("%s is PENDING (%s)", id, j.Explanation)
		}
		return nil
	})
	return j, ver
}

// waitState waits for a job to be in state want and returns it.
func (e *env) waitState(id string, want jobs.State) *jobs.Job {
	e.t.Helper()
	var j *jobs.Job
	poll.For(e.t, wait, 20*time.Millisecond, func() error {
		var err error
		if j, _, err = e.jobs.Get(e.ctx(), id); err != nil {
			return err
		}
		if j.State != want {
			return fmt.Errorf("%s is %s (%s), want %s", id, j.State, j.StatusMessage, want)
		}
		return nil
	})
	return j
}
