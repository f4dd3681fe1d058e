package schedules

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

// sessionTimeout is short so a killed leader is replaced quickly.
const sessionTimeout = 2 * time.Second

// env is a test's root with a fake clock shared by every member.
type env struct {
	t     *testing.T
	root  string
	clock *schedule.FakeClock
	conn  *zkconn.Conn
	// launcher makes a member's LaunchFunc (JobLauncher when nil).
	launcher func(*zkconn.Conn, *jobs.Store) LaunchFunc
	store    *Store
	jobs     *jobs.Store
}

func newEnv(t *testing.T, now time.Time) *env {
	t.Helper()
	e := &env{t: t, root: fmt.Sprintf("/sc%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_")), clock: schedule.NewFakeClock(now)}
	e.conn = e.dial()
	e.store = NewStore(e.conn)
	e.store.now = e.clock.Now
	e.jobs = jobs.NewStore(e.conn, jobs.StoreConfig{})
	if err := e.jobs.Ensure(e.ctx()); err != nil {
		t.Fatal(err)
	}
	return e
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
	if os.Getenv("SCHEDULES_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// member is one contender hosting a runner on its own session.
type member struct {
	e       *env
	conn    *zkconn.Conn
	cancel  context.CancelFunc
	done    chan error
	leading atomic.Bool
}

// start makes a member that contends and runs a runner while it leads.
func (e *env) start(id string) *member {
	e.t.Helper()
	m := &member{e: e, conn: e.dial(), done: make(chan error, 1)}
	js := jobs.NewStore(m.conn, jobs.StoreConfig{})
	launch := JobLauncher(js)
	if e.launcher != nil {
		launch = e.launcher(m.conn, js)
	}
	r, err := NewRunner(RunnerConfig{Store: NewStore(m.conn), Jobs: js, Launch: launch, Identifier: id, Clock: e.clock, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	// The scheduler runs beside the runner, as on the elected controller:
	// it queues the template launches the schedules make.
	sch, err := scheduler.New(scheduler.Config{Store: js, Interval: 50 * time.Millisecond, Logger: testLogger(e.t).Named(id)})
	if err != nil {
		e.t.Fatal(err)
	}
	var ctx context.Context
	ctx, m.cancel = context.WithCancel(context.Background())
	go func() {
		el := election.New(m.conn, "test-services", id, testLogger(e.t), election.WithSessionTimeout(sessionTimeout))
		m.done <- el.Run(ctx, func(lctx context.Context) error {
			if err := sch.Start(lctx); err != nil {
				return err
			}
			if err := r.Start(lctx); err != nil {
				sch.Stop()
				return err
			}
			m.leading.Store(true)
			<-lctx.Done()
			m.leading.Store(false)
			r.Stop()
			sch.Stop()
			return nil
		})
	}()
	e.t.Cleanup(m.stop)
	return m
}

// stop gives up leadership cleanly.
func (m *member) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
}

// kill ends the member's session as a crash would: its election node goes
// with it, and its runner loses its term.
func (m *member) kill() {
	m.conn.Close()
	m.stop()
}

// waitLeading waits until m runs its runner.
func (m *member) waitLeading() {
	m.e.t.Helper()
	poll.For(m.e.t, 30*time.Second, 20*time.Millisecond, func() error {
		if !m.leading.Load() {
			return fmt.Errorf("not leading yet")
		}
		return nil
	})
}

// settle waits until the runner sleeps on the fake clock (a timer is set).
func (e *env) settle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.clock.WaitForTimers(ctx, 1); err != nil {
		e.t.Fatal("the runner did not go to sleep")
	}
}

// scheduledJobs returns the live jobs created by schedule name, as
// "<tick> <state>" sorted by tick.
func (e *env) scheduledJobs(name string) []string {
	e.t.Helper()
	var out []string
	err := e.jobs.Walk(e.ctx(), func(j *jobs.Job, _ int32) {
		if strings.HasPrefix(j.CreatedBy, "schedule:"+name+"@") {
			out = append(out, j.Tick+" "+string(j.State))
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// waitJobs waits until schedule name has created exactly want.
func (e *env) waitJobs(name string, want ...string) {
	e.t.Helper()
	poll.For(e.t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := e.scheduledJobs(name); strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("jobs %q, want %q", got, want)
		}
		return nil
	})
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func jobSpec(action string) Launch {
	return Launch{Job: &JobSpec{Action: action}}
}
