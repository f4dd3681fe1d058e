package distributor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

// waitJobs waits until the live jobs are exactly want ("tick target"
// lines, created-by left out) and returns them.
func (e *testEnv) waitJobs(want ...string) []*jobs.Job {
	e.t.Helper()
	var js []*jobs.Job
	poll.For(e.t, 15*time.Second, 10*time.Millisecond, func() error {
		js = e.jobs()
		var got []string
		for _, j := range js {
			got = append(got, strings.TrimSpace(j.Tick+" "+j.Target()))
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("jobs %q, want %q", got, want)
		}
		return nil
	})
	return js
}

// waitSleeping waits until the distributor sleeps on the fake clock.
func waitSleeping(t *testing.T, clock *schedule.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := clock.WaitForTimers(ctx, 1); err != nil {
		t.Fatal("the distributor never went to sleep on the schedule's clock")
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestTicksOnAFakeClock drives one leader through on-time ticks and an
// outage under each catch-up policy.
func TestTicksOnAFakeClock(t *testing.T) {
	t.Run("last", func(t *testing.T) {
		e := newEnv(t)
		clock := schedule.NewFakeClock(at("2026-05-04T10:00:03Z"))
		d := Definition{Name: "ticker", Action: "echo", Schedule: schedule.Spec{Interval: 10 * time.Second}, Dedup: DedupAlways}
		e.start(d, "a", clock)
		waitSleeping(t, clock)
		if js := e.jobs(); len(js) != 0 {
			t.Fatalf("jobs before the first tick: %v", ticksOf(js))
		}
		clock.Set(at("2026-05-04T10:00:10Z"))
		e.waitJobs("2026-05-04T10:00:10Z")
		waitSleeping(t, clock)
		clock.Set(at("2026-05-04T10:00:20Z"))
		e.waitJobs("2026-05-04T10:00:10Z", "2026-05-04T10:00:20Z")
		waitSleeping(t, clock)

		// An outage of 29 ticks: only the latest missed one runs.
		clock.Set(at("2026-05-04T10:05:07Z"))
		js := e.waitJobs("2026-05-04T10:00:10Z", "2026-05-04T10:00:20Z", "2026-05-04T10:05:00Z")
		waitSleeping(t, clock)
		if st := e.state("ticker"); st.Tick != "2026-05-04T10:05:00Z" || st.By != "a" || st.Created != 1 {
			t.Errorf("state %+v, want the 10:05:00 tick done by a with one job", st)
		}
		for _, j := range js {
			if j.CreatedBy != "ticker@a" || j.Action != "echo" || j.State != jobs.Queued {
				t.Errorf("job %s: created by %q, action %q, state %s", j.ID, j.CreatedBy, j.Action, j.State)
			}
		}
		clock.Set(at("2026-05-04T10:05:10Z"))
		e.waitJobs("2026-05-04T10:00:10Z", "2026-05-04T10:00:20Z", "2026-05-04T10:05:00Z", "2026-05-04T10:05:10Z")
	})

	t.Run("none", func(t *testing.T) {
		e := newEnv(t)
		clock := schedule.NewFakeClock(at("2026-05-04T10:00:03Z"))
		d := Definition{Name: "ticker", Action: "echo", Schedule: schedule.Spec{Interval: 10 * time.Second},
			Dedup: DedupAlways, CatchUp: schedule.CatchUpNone}
		e.start(d, "a", clock)
		waitSleeping(t, clock)
		clock.Set(at("2026-05-04T10:00:10Z"))
		e.waitJobs("2026-05-04T10:00:10Z")
		waitSleeping(t, clock)
		// Late by 7s of a 10s interval: missed, dropped.
		clock.Set(at("2026-05-04T10:05:07Z"))
		waitSleeping(t, clock)
		e.waitJobs("2026-05-04T10:00:10Z")
		// Late by less than half the interval: on time.
		clock.Set(at("2026-05-04T10:05:13Z"))
		e.waitJobs("2026-05-04T10:00:10Z", "2026-05-04T10:05:10Z")
	})
}

// TestTickFinishedByANewLeader: a leader created some of a tick's jobs and
// died before recording the tick. The next leader runs the tick again,
// finds those jobs by their ids and creates only the rest.
func TestTickFinishedByANewLeader(t *testing.T) {
	e := newEnv(t)
	d := Definition{Name: "multi", Action: "echo", Schedule: schedule.Spec{Interval: 10 * time.Second},
		Targets: []string{"t/a", "t/b"}, Dedup: DedupAlways}
	tick := tickAt("2026-05-04T10:00:10Z")
	half, err := TickJobs(d, tick, "dead", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Create(e.ctx(), half[0]); err != nil {
		t.Fatal(err)
	}
	st, _ := json.Marshal(State{Tick: "2026-05-04T10:00:00Z", By: "dead", Created: 2})
	if err := e.conn.EnsurePath(e.ctx(), e.conn.Path(StateDir, "multi")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Create(StatePath(e.conn, "multi"), st, 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}

	clock := schedule.NewFakeClock(at("2026-05-04T10:00:12Z"))
	e.start(d, "next", clock)
	js := e.waitJobs("2026-05-04T10:00:10Z t/a", "2026-05-04T10:00:10Z t/b")
	if js[0].CreatedBy != "multi@dead" || js[1].CreatedBy != "multi@next" {
		t.Errorf("created by %q and %q, want the dead leader's job kept and the rest made by the new one", js[0].CreatedBy, js[1].CreatedBy)
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := e.state("multi"); s.Tick != tick.ID() || s.Created != 1 || s.Existing != 1 || s.By != "next" {
			return fmt.Errorf("state %+v", s)
		}
		return nil
	})
}

// TestDedupSkip: no job while a live job holds the unique key; the tick
// counts as done, and the next tick after the job ended creates one.
func TestDedupSkip(t *testing.T) {
	e := newEnv(t)
	live, err := e.store.Create(e.ctx(), jobs.NewJob{Action: "echo", Target: "x/1", UniqueKey: "echo|x/1", CreatedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	clock := schedule.NewFakeClock(at("2026-05-04T10:00:03Z"))
	d := Definition{Name: "once", Action: "echo", Targets: []string{"x/1"}, Schedule: schedule.Spec{Interval: 10 * time.Second}}
	e.start(d, "a", clock)
	waitSleeping(t, clock)
	clock.Set(at("2026-05-04T10:00:10Z"))
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s := e.state("once"); s.Tick != "2026-05-04T10:00:10Z" || s.Skipped != 1 || s.Created != 0 {
			return fmt.Errorf("state %+v, want the tick done with one job skipped", s)
		}
		return nil
	})
	if js := e.jobs(); len(js) != 1 || js[0].ID != live.ID {
		t.Fatalf("jobs %v, want only the live one", ticksOf(js))
	}
	// The live job ends: its key is free.
	j, ver, err := e.store.Get(e.ctx(), live.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Transition(jobs.Canceled, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Update(e.ctx(), j, ver); err != nil {
		t.Fatal(err)
	}
	waitSleeping(t, clock)
	clock.Set(at("2026-05-04T10:00:20Z"))
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, j := range e.jobs() {
			if j.Tick == "2026-05-04T10:00:20Z" && j.UniqueKey == "echo|x/1" && j.State == jobs.Queued {
				return nil
			}
		}
		return errors.New("no job for the 10:00:20 tick")
	})
}

// TestOnlyTheLeaderCreates runs two, then three contenders: one creates
// every tick's job, and when it resigns another takes over without a
// duplicate.
func TestOnlyTheLeaderCreates(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d contenders", n), func(t *testing.T) {
			e := newEnv(t)
			d := Definition{Name: "every-second", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}, Dedup: DedupAlways}
			byID := map[string]*instance{}
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("c%d", i)
				byID[id] = e.start(d, id, nil)
			}
			var first []*jobs.Job
			poll.For(t, 15*time.Second, 20*time.Millisecond, func() error {
				if first = e.jobs(); len(first) < 3 {
					return fmt.Errorf("%d jobs", len(first))
				}
				return nil
			})
			leader := strings.TrimPrefix(first[0].CreatedBy, "every-second@")
			for _, j := range first {
				if j.CreatedBy != first[0].CreatedBy {
					t.Fatalf("two creators while one leader should run: %v", ticksOf(first))
				}
			}
			noDuplicateTicks(t, first)
			cs, err := election.New(e.conn, "every-second", "", nil).Contenders(e.ctx())
			if err != nil || len(cs) != n || cs[0].Identifier != leader {
				t.Fatalf("contenders %+v, %v; want %d with %s first", cs, err, n, leader)
			}

			// The leader resigns: another takes over at once (its node is
			// deleted, no session timeout to wait for).
			resigned := time.Now()
			byID[leader].stop()
			var all []*jobs.Job
			poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
				all = e.jobs()
				for _, j := range all {
					if j.CreatedBy != first[0].CreatedBy && j.Created.After(resigned) {
						return nil
					}
				}
				return errors.New("no job from a new leader yet")
			})
			noDuplicateTicks(t, all)
			for _, j := range all {
				if j.CreatedBy == first[0].CreatedBy && j.Created.After(resigned) {
					t.Errorf("the resigned leader created %s after it stopped", j.Tick)
				}
			}
		})
	}
}

// TestGeneratorPanicIsRecovered: a generator that panics is retried after a
// back-off, and the distributor keeps leading.
func TestGeneratorPanicIsRecovered(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	d := Definition{
		Name: "shaky", Schedule: schedule.Spec{Interval: time.Second},
		Generator: func(ctx context.Context, tick schedule.Tick, env *Env) ([]jobs.NewJob, error) {
			if calls.Add(1) <= 3 {
				panic("generator bug")
			}
			return []jobs.NewJob{{Action: "echo", Target: "g/" + env.Name}}, nil
		},
	}
	in := e.start(d, "a", nil)
	poll.For(t, 15*time.Second, 20*time.Millisecond, func() error {
		if js := e.jobs(); len(js) == 0 {
			return errors.New("no job yet")
		}
		return nil
	})
	if c := calls.Load(); c < 4 {
		t.Errorf("%d generator calls, want the three that panicked and more", c)
	}
	js := e.jobs()
	if js[0].Target() != "g/shaky" || js[0].CreatedBy != "shaky@a" || js[0].Action != "echo" {
		t.Errorf("job %+v", js[0])
	}
	select {
	case err := <-in.done:
		t.Fatalf("the distributor stopped: %v", err)
		in.done <- err
	default:
	}
}

// TestZooKeeperRestart: distribution resumes once ZooKeeper is back, with no
// tick created twice.
func TestZooKeeperRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ZooKeeper server of its own")
	}
	own := zktest.StartT(t, zkserver.Options{})
	e := newEnv(t, own.Addrs()...)
	d := Definition{Name: "survivor", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}, Dedup: DedupAlways}
	e.start(d, "a", nil)
	poll.For(t, 15*time.Second, 20*time.Millisecond, func() error {
		if len(e.jobs()) < 2 {
			return errors.New("fewer than two jobs")
		}
		return nil
	})
	if err := own.Servers[0].Restart(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now().UTC().Format(time.RFC3339)
	var all []*jobs.Job
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		all = nil
		err := e.store.Walk(e.ctx(), func(j *jobs.Job, _ int32) { all = append(all, j) })
		if err != nil {
			return err
		}
		after := 0
		for _, j := range all {
			if j.Tick > restarted {
				after++
			}
		}
		if after < 2 {
			return fmt.Errorf("%d jobs for ticks after the restart", after)
		}
		return nil
	})
	noDuplicateTicks(t, all)
}

// TestStaleLeaderIsFenced: a term whose election node is gone can neither
// create a job nor record a tick, even when it does not know yet.
func TestStaleLeaderIsFenced(t *testing.T) {
	e := newEnv(t)
	conn := e.dial()
	el := election.New(conn, "fenced", "old", nil, election.WithSessionTimeout(sessionTimeout))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	terms := make(chan *election.Term, 1)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- el.Run(ctx, func(lctx context.Context) error {
			terms <- election.TermOf(lctx)
			<-release
			<-lctx.Done()
			return nil
		})
	}()
	var term *election.Term
	select {
	case term = <-terms:
	case <-time.After(15 * time.Second):
		t.Fatal("never led")
	}
	// Someone deletes the leader's node (as a session expiry would).
	if err := e.conn.Delete(term.Node(), -1); err != nil {
		t.Fatal(err)
	}
	store := jobs.NewStore(conn, jobs.StoreConfig{})
	d := Definition{Name: "fenced", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}}
	js, _ := TickJobs(d, tickAt("2026-05-04T10:00:00Z"), "old", nil)
	_, err := store.CreateFenced(e.ctx(), js, term.Fence())
	var extra *zkconn.OpError
	if !errors.As(err, &extra) || extra.Index != 0 || !errors.Is(err, zk.ErrNoNode) {
		t.Errorf("create with a stale fence: %v, want an OpError of the fence, index 0 (no node)", err)
	}
	_, err = writeState(e.ctx(), conn, "fenced", State{Tick: "2026-05-04T10:00:00Z"}, -1, term.Fence())
	if !errors.Is(err, election.ErrNotLeader) {
		t.Errorf("state write with a stale fence: %v, want ErrNotLeader", err)
	}
	if n := len(e.jobs()); n != 0 {
		t.Errorf("%d jobs created by a stale leader", n)
	}
	close(release)
	cancel()
	<-done
}

// TestStopLeaksNothing: a stopped distributor leaves no goroutine behind.
func TestStopLeaksNothing(t *testing.T) {
	e := newEnv(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: e.hosts, Root: e.root, SessionTimeout: sessionTimeout})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := Definition{Name: "brief", Action: "echo", Schedule: schedule.Spec{Interval: time.Second}, Dedup: DedupAlways}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunAll(runCtx, Config{Conn: conn, Store: jobs.NewStore(conn, jobs.StoreConfig{}), SessionTimeout: sessionTimeout, Identifier: "x"}, []Definition{d})
	}()
	poll.For(t, 15*time.Second, 20*time.Millisecond, func() error {
		if len(e.jobs()) == 0 {
			return errors.New("no job yet")
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cs, err := election.New(e.conn, "brief", "", nil).Contenders(e.ctx()); err != nil || len(cs) != 0 {
		t.Errorf("contenders after the stop: %+v, %v", cs, err)
	}
	conn.Close()
}
