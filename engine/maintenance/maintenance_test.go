package maintenance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

const wait = 30 * time.Second

// TestServicesRunOnOneMember runs three members, each behind a proxy that
// can silence it: the services run on exactly one; when the leader's
// process goes silent (as a dead or frozen process does), another member
// runs them within the session timeout and the two never overlap; a leader
// that stops hands over at once.
func TestServicesRunOnOneMember(t *testing.T) {
	root := testRoot(t)
	var p probe
	var ms []*member
	proxies := map[*member]*zktest.Proxy{}
	for i := 0; i < 3; i++ {
		px, err := zktest.NewProxy(testZK.Servers[0].Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(px.Close)
		name := fmt.Sprintf("m%d", i)
		mb := startMember(t, name, dial(t, px.Addr(), root), Config{
			Cleanup:  CleanupConfig{Disabled: true},
			Services: []Service{p.service(name)},
		})
		ms = append(ms, mb)
		proxies[mb] = px
	}
	var first *member
	poll.For(t, wait, 10*time.Millisecond, func() error {
		var err error
		first, err = oneLeader(ms...)
		if err == nil && p.running.Load() != 1 {
			err = fmt.Errorf("%d probes running, want 1", p.running.Load())
		}
		return err
	})
	if got := fmt.Sprint(first.m.Services()); got != "[containers scheduler reaper workflows schedules notifications probe]" {
		t.Fatalf("services %v, want the container repair, the scheduler, the reaper, the control plane's services and the probe (cleanup disabled, no Elasticsearch)", got)
	}
	poll.For(t, wait, 10*time.Millisecond, func() error {
		cs, err := election.New(first.conn, ElectionName, "", nil).Contenders(context.Background())
		if err != nil {
			return err
		}
		return errorIf(len(cs) != 3 || cs[0].Identifier != first.name, "contenders %+v; want 3, %s first", cs, first.name)
	})

	// The leader's process dies: its server sees silence and expires the
	// session after the session timeout; another member takes over.
	proxies[first].Block()
	var second *member
	poll.For(t, 2*sessionTimeout, 10*time.Millisecond, func() error {
		var err error
		second, err = oneLeader(ms...)
		if err == nil && second == first {
			err = errors.New("the silenced member still leads")
		}
		return err
	})
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(p.running.Load() != 1, "%d probes running, want 1", p.running.Load())
	})
	// Back on the network with a new session, it contends again behind
	// the others and does not lead.
	proxies[first].Unblock()
	poll.For(t, wait, 10*time.Millisecond, func() error {
		cs, err := election.New(second.conn, ElectionName, "", nil).Contenders(context.Background())
		if err != nil {
			return err
		}
		return errorIf(len(cs) != 3 || cs[len(cs)-1].Identifier != first.name, "contenders %+v; want 3, %s last", cs, first.name)
	})
	if l, err := oneLeader(ms...); err != nil || l != second {
		t.Fatalf("after the old leader came back: %v", err)
	}

	// A leader that stops gives up its node: the next takes over without
	// waiting for a session timeout.
	second.halt(t)
	poll.For(t, wait, 10*time.Millisecond, func() error {
		l, err := oneLeader(ms...)
		if err == nil && l == second {
			err = errors.New("the stopped member still leads")
		}
		return err
	})
	if n := p.max.Load(); n != 1 {
		t.Fatalf("the services ran on %d members at once", n)
	}
	if n := p.starts.Load(); n != 3 {
		t.Fatalf("the services started %d times, want 3 (one per term)", n)
	}
}

// TestServiceStartFailureGivesUpLeadership: a member whose service does
// not start gives leadership up, so another member runs the services.
func TestServiceStartFailureGivesUpLeadership(t *testing.T) {
	root := testRoot(t)
	var p probe
	bad := startMember(t, "bad", dial(t, "", root), Config{
		Cleanup:  CleanupConfig{Disabled: true},
		Services: []Service{p.service("bad"), failing{}},
	})
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(p.starts.Load() == 0, "the first service never started")
	})
	good := startMember(t, "good", dial(t, "", root), Config{
		Cleanup:  CleanupConfig{Disabled: true},
		Services: []Service{p.service("good")},
	})
	poll.For(t, wait, 10*time.Millisecond, func() error {
		l, err := oneLeader(bad, good)
		if err == nil && l != good {
			err = errors.New("the failing member leads")
		}
		return err
	})
	if n := p.max.Load(); n != 1 {
		t.Fatalf("the probe ran on %d members at once", n)
	}
}

// failing is a service that never starts.
type failing struct{}

func (failing) Name() string                { return "failing" }
func (failing) Start(context.Context) error { return errors.New("cannot start") }
func (failing) Stop()                       {}

// TestStopLeaksNoGoroutine starts every built-in service on a leader, then
// stops it: nothing is left running.
func TestStopLeaksNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	func() {
		s, err := estest.New(estest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := index.New(index.Config{Hosts: []string{s.URL()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = es.Close(context.Background()) }()
		conn := dial(t, "", testRoot(t))
		defer conn.Close()
		var p probe
		mb := startMember(t, "m", conn, Config{
			Index:    es,
			Cleanup:  CleanupConfig{Schedule: schedule.Spec{Interval: time.Second}},
			Services: []Service{p.service("m")},
		})
		if got := fmt.Sprint(mb.m.Services()); got != "[cleanup containers index-pump scheduler reaper workflows schedules notifications probe]" {
			t.Fatalf("services %s", got)
		}
		poll.For(t, wait, 10*time.Millisecond, func() error {
			return errorIf(!mb.m.Leading() || !pumpOf(mb.m).Active(), "not leading with an active pump yet")
		})
		mb.halt(t)
		if mb.m.Leading() || p.running.Load() != 0 || pumpOf(mb.m).Active() {
			t.Fatal("services still running after Run returned")
		}
	}()
	goleak.VerifyNone(t, before)
}

// TestConfigErrors: bad settings are refused by New with ErrConfig.
func TestConfigErrors(t *testing.T) {
	conn := dial(t, "", testRoot(t))
	for name, cfg := range map[string]Config{
		"no connection":    {},
		"bad schedule":     {Conn: conn, Cleanup: CleanupConfig{Schedule: schedule.Spec{Cron: "99 * * * *"}}},
		"negative keep":    {Conn: conn, Cleanup: CleanupConfig{Retention: -time.Hour}},
		"batch too large":  {Conn: conn, Cleanup: CleanupConfig{Batch: MaxCleanupBatch + 1}},
		"unknown catch-up": {Conn: conn, Cleanup: CleanupConfig{CatchUp: "all"}},
		"nil service":      {Conn: conn, Services: []Service{nil}},
	} {
		if cfg.Conn != nil {
			cfg.Store = storeOf(conn)
		}
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", name, err)
		}
	}
}
