package election

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// member is an in-process contender.
type member struct {
	id     string
	conn   *zkconn.Conn
	e      *Election
	cancel context.CancelFunc
	done   chan error
}

// group is a test's contenders, their shared record and the count of leader
// functions running at once in this process.
type group struct {
	t       *testing.T
	root    string
	name    string
	record  string
	active  atomic.Int32
	overlap atomic.Int32
}

func newGroup(t *testing.T) *group {
	return &group{t: t, root: newRoot(t), name: "dist", record: filepath.Join(t.TempDir(), "record")}
}

// start starts an in-process contender connected to hosts (the shared server
// by default).
func (g *group) start(id string, hosts ...string) *member {
	t := g.t
	t.Helper()
	conn := dial(t, g.root, hosts...)
	rec, err := openRecorder(g.record, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.f.Close() })
	m := &member{id: id, conn: conn, e: New(conn, g.name, id, testLogger(t).With(), WithSessionTimeout(sessionTimeout)), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- m.e.Run(ctx, work(rec, &g.active, &g.overlap)) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop ends the contender's Run and waits for it.
func (m *member) stop(t testing.TB) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("Run of %s: %v", m.id, err)
		}
		m.done <- nil // later stops return at once
	case <-time.After(2*sessionTimeout + 5*time.Second):
		t.Errorf("Run of %s did not return after its context ended", m.id)
	}
}

func (g *group) spans() []*span { return readSpans(g.t, g.record) }

// leader waits until exactly one term is open and returns its contender.
func (g *group) leader(wait time.Duration) string {
	g.t.Helper()
	var id string
	waitFor(g.t, wait, func() error {
		s, err := leading(g.spans())
		if err != nil {
			return err
		}
		id = s.id
		return nil
	})
	return id
}

// leaderOtherThan waits until a contender other than old holds an open term.
func (g *group) leaderOtherThan(old string, wait time.Duration) string {
	g.t.Helper()
	var id string
	waitFor(g.t, wait, func() error {
		s, err := leading(g.spans())
		if err != nil {
			return err
		}
		if s.id == old {
			return fmt.Errorf("%s still leads", old)
		}
		id = s.id
		return nil
	})
	return id
}

// check asserts the invariants every test ends with.
func (g *group) check() {
	g.t.Helper()
	if n := g.overlap.Load(); n > 0 {
		g.t.Errorf("%d times a leader function started while another one in this process was running", n)
	}
	assertNoOverlap(g.t, g.spans())
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func identifiers(cs []Contender) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Identifier)
	}
	return out
}

func TestOneLeaderAmongThreeAndHandOver(t *testing.T) {
	g := newGroup(t)
	ms := map[string]*member{}
	for _, id := range []string{"a", "b", "c"} {
		ms[id] = g.start(id)
	}
	first := g.leader(10 * time.Second)

	e := ms[first].e
	var cs []Contender
	waitFor(t, 10*time.Second, func() error {
		var err error
		cs, err = e.Contenders(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if len(cs) != 3 {
			return fmt.Errorf("contenders %q, want 3", identifiers(cs))
		}
		return nil
	})
	if cs[0].Identifier != first {
		t.Fatalf("contenders %q: the first is not the leader %s", identifiers(cs), first)
	}
	for _, c := range cs {
		if !strings.HasSuffix(c.Node[:len(c.Node)-10], lockMarker) || !contenderRE.MatchString(c.Node) || c.Session == 0 || c.Created.IsZero() {
			t.Errorf("contender %+v: not a kazoo-shaped ephemeral node", c)
		}
	}
	if got, err := e.Leader(ctxT(t, 5*time.Second)); err != nil || got != first {
		t.Fatalf("Leader() = %q, %v; want %q", got, err, first)
	}

	// The leader resigns: the next in line leads (at once, well within a
	// session timeout), then the one after it.
	ms[first].stop(t)
	second := g.leaderOtherThan(first, sessionTimeout+time.Second)
	if second != cs[1].Identifier {
		t.Errorf("after %s resigned %s leads; the next in line was %s", first, second, cs[1].Identifier)
	}
	ms[second].stop(t)
	third := g.leaderOtherThan(second, sessionTimeout+time.Second)
	if third != cs[2].Identifier {
		t.Errorf("after %s resigned %s leads; want %s", second, third, cs[2].Identifier)
	}
	ms[third].stop(t)
	waitFor(t, 5*time.Second, func() error {
		if _, err := leading(g.spans()); err == nil {
			return errors.New("a term is still open after every contender stopped")
		}
		return nil
	})
	if _, err := e.Leader(ctxT(t, 5*time.Second)); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader() with nobody contending: %v, want ErrNoLeader", err)
	}
	g.check()
}

func TestLeaderReturningGivesUpLeadership(t *testing.T) {
	root := newRoot(t)
	a := New(dial(t, root), "dist", "a", testLogger(t), WithSessionTimeout(sessionTimeout))
	b := New(dial(t, root), "dist", "b", testLogger(t), WithSessionTimeout(sessionTimeout))
	fail := errors.New("leader work failed")
	var fenced error
	errA := a.Run(ctxT(t, 20*time.Second), func(ctx context.Context) error {
		term := TermOf(ctx)
		if term == nil || term.Check() != nil {
			return errors.New("leader context without a valid term")
		}
		// A write fenced by the term commits while the term holds.
		_, err := a.conn.Multi(&zk.CreateRequest{Path: a.conn.Path("fenced-1"), Acl: zkconn.ACL}, term.Fence())
		fenced = err
		return fail
	})
	if !errors.Is(errA, fail) {
		t.Fatalf("Run = %v, want the leader function's error", errA)
	}
	if fenced != nil {
		t.Fatalf("fenced write while leading: %v", fenced)
	}
	// Run gave up the node: b wins at once.
	bDone := make(chan error, 1)
	go func() {
		bDone <- b.Run(ctxT(t, 20*time.Second), func(ctx context.Context) error { return nil })
	}()
	if err := <-bDone; err != nil {
		t.Fatalf("b.Run = %v", err)
	}
	cs, err := a.Contenders(ctxT(t, 5*time.Second))
	if err != nil || len(cs) != 0 {
		t.Fatalf("contenders after both returned: %v, %v; want none", cs, err)
	}
}

func TestFenceFailsOnceLeadershipIsGone(t *testing.T) {
	root := newRoot(t)
	conn := dial(t, root)
	e := New(conn, "dist", "a", testLogger(t), WithSessionTimeout(sessionTimeout))
	var term *Term
	if err := e.Run(ctxT(t, 20*time.Second), func(ctx context.Context) error {
		term = TermOf(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := term.Check(); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Check after the term: %v, want ErrNotLeader", err)
	}
	_, err := conn.Multi(&zk.CreateRequest{Path: conn.Path("fenced"), Acl: zkconn.ACL}, term.Fence())
	if err == nil {
		t.Fatal("a write fenced by an ended term committed")
	}
	if ok, _, _ := conn.Exists(conn.Path("fenced")); ok {
		t.Fatal("the fenced node exists")
	}
}

func TestBadNameIsAConfigError(t *testing.T) {
	conn := dial(t, newRoot(t))
	for _, name := range []string{"", "a/b", "..", "with space"} {
		e := New(conn, name, "x", nil)
		if err := e.Run(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, ErrConfig) {
			t.Errorf("Run with name %q: %v, want ErrConfig", name, err)
		}
		if _, err := e.Contenders(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("Contenders with name %q: %v, want ErrConfig", name, err)
		}
	}
}

func TestKilledLeaderIsReplacedWithinSessionTimeout(t *testing.T) {
	g := newGroup(t)
	kids := map[string]*child{}
	for _, id := range []string{"p1", "p2"} {
		kids[id] = startChild(t, g.root, g.name, id, g.record)
	}
	first := g.leader(15 * time.Second)
	if err := kids[first].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	g.leaderOtherThan(first, sessionTimeout+time.Second)
	t.Logf("failover took %s", time.Since(killed).Round(time.Millisecond))
	g.check()
}

func TestPausedLeaderNeverLeadsAlongsideItsSuccessor(t *testing.T) {
	g := newGroup(t)
	kids := map[string]*child{}
	for _, id := range []string{"p1", "p2", "p3"} {
		kids[id] = startChild(t, g.root, g.name, id, g.record)
	}
	first := g.leader(15 * time.Second)
	waitFor(t, 5*time.Second, func() error {
		if s := starts(g.spans(), first); len(s) == 0 || s[len(s)-1].works < 5 {
			return errors.New("the leader has not worked yet")
		}
		return nil
	})
	p := kids[first].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The frozen leader cannot step down; its session expires and another
	// contender takes over and works.
	next := g.leaderOtherThan(first, 3*sessionTimeout)
	waitFor(t, 5*time.Second, func() error {
		if s := starts(g.spans(), next); s[len(s)-1].works < 5 {
			return errors.New("the successor has not worked yet")
		}
		return nil
	})
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Thawed, it finds its term over without doing any more work, and joins
	// the election again.
	waitFor(t, 10*time.Second, func() error {
		s := starts(g.spans(), first)
		if s[len(s)-1].end.IsZero() {
			return errors.New("the thawed leader has not noticed its term ended")
		}
		return nil
	})
	e := New(dial(t, g.root), g.name, "observer", nil)
	waitFor(t, 10*time.Second, func() error {
		cs, err := e.Contenders(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if len(cs) != 3 {
			return fmt.Errorf("contenders %q, want the thawed one back", identifiers(cs))
		}
		return nil
	})
	if s, err := leading(g.spans()); err != nil || s.id != next {
		t.Errorf("after the thaw: %v, %v; want %s still leading", s, err, next)
	}
	g.check()
}

func TestPartitionedLeaderStepsDownBeforeAnotherLeads(t *testing.T) {
	g := newGroup(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	g.start("cut", proxy.Addr())
	if id := g.leader(10 * time.Second); id != "cut" {
		t.Fatalf("%s leads; want the first contender", id)
	}
	g.start("b")
	g.start("c")
	obs := New(dial(t, g.root), g.name, "", nil)
	waitFor(t, 10*time.Second, func() error {
		cs, err := obs.Contenders(ctxT(t, 5*time.Second))
		if err != nil || len(cs) != 3 {
			return fmt.Errorf("contenders %v, %v", cs, err)
		}
		return nil
	})
	proxy.Block()
	next := g.leaderOtherThan("cut", 3*sessionTimeout)
	cutTerm := starts(g.spans(), "cut")[0]
	nextTerm := starts(g.spans(), next)[0]
	if cutTerm.end.IsZero() || !cutTerm.end.Before(nextTerm.start) {
		t.Fatalf("the partitioned leader's context ended at %s, its successor started at %s", ts(cutTerm.end), ts(nextTerm.start))
	}
	t.Logf("partitioned leader stepped down %s before its successor started", nextTerm.start.Sub(cutTerm.end).Round(time.Millisecond))
	proxy.Unblock()
	// It comes back as a contender with a new session; the leader stays.
	waitFor(t, 15*time.Second, func() error {
		cs, err := obs.Contenders(ctxT(t, 5*time.Second))
		if err != nil || len(cs) != 3 {
			return fmt.Errorf("contenders %q, %v; want 3", identifiers(cs), err)
		}
		return nil
	})
	if id := g.leader(5 * time.Second); id != next {
		t.Errorf("%s leads after the partition healed; want %s", id, next)
	}
	g.check()
}

func TestZooKeeperPauseAndRestart(t *testing.T) {
	g := newGroup(t)
	g.start("a")
	g.start("b")
	first := g.leader(10 * time.Second)
	obs := New(dial(t, g.root), g.name, "", nil)
	srv := zkc.Servers[0]

	// A frozen server confirms nothing: the leader steps down on its own,
	// while the server is still frozen.
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Resume() })
	waitFor(t, sessionTimeout+time.Second, func() error {
		if s := starts(g.spans(), first); s[len(s)-1].end.IsZero() {
			return errors.New("the leader still leads with ZooKeeper frozen")
		}
		return nil
	})
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	after := g.leader(20 * time.Second)
	t.Logf("leader before the pause %s, after %s", first, after)

	// A restart: leadership resumes with one leader.
	if err := srv.Restart(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() error {
		cs, err := obs.Contenders(ctxT(t, 5*time.Second))
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("contenders %q, %v; want 2", identifiers(cs), err)
		}
		s, err := leading(g.spans())
		if err != nil {
			return err
		}
		if cs[0].Identifier != s.id {
			return fmt.Errorf("%s leads but %s is first", s.id, cs[0].Identifier)
		}
		return nil
	})
	g.check()
}

func TestContendersOfAnUnknownElection(t *testing.T) {
	e := New(dial(t, newRoot(t)), "nobody-here", "", nil)
	cs, err := e.Contenders(ctxT(t, 5*time.Second))
	if err != nil || len(cs) != 0 {
		t.Fatalf("Contenders = %v, %v; want none", cs, err)
	}
	if _, err := e.Leader(ctxT(t, 5*time.Second)); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader = %v, want ErrNoLeader", err)
	}
	if e.Path() != path.Join(newRootOf(e), "election", "nobody-here") {
		t.Fatalf("Path = %q", e.Path())
	}
}

func newRootOf(e *Election) string { return e.conn.Root() }

func TestRunLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root := newRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: root, SessionTimeout: sessionTimeout})
	if err != nil {
		t.Fatal(err)
	}
	e := New(conn, "dist", "a", nil, WithSessionTimeout(sessionTimeout))
	runCtx, stop := context.WithCancel(ctx)
	led := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- e.Run(runCtx, func(ctx context.Context) error {
			close(led)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-led:
	case <-ctx.Done():
		t.Fatal("never led")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cs, err := e.Contenders(ctx)
	if err != nil || len(cs) != 0 {
		t.Fatalf("contenders after Run returned: %v, %v; want none", cs, err)
	}
	conn.Close()
}
