package maintenance

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// testZK is the ZooKeeper every test of this package shares; each test
// works under a root of its own.
var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

// sessionTimeout is the members' session timeout: short, so takeovers are
// quick, and long enough that a loaded machine does not lose sessions.
const sessionTimeout = 3 * time.Second

var rootSeq atomic.Int64

func testRoot(t *testing.T) string {
	return fmt.Sprintf("/m%d-%s", rootSeq.Add(1), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
}

// dial opens a session under root through addr (the shared server when
// empty).
func dial(t *testing.T, addr, root string) *zkconn.Conn {
	t.Helper()
	if addr == "" {
		addr = testZK.ConnectString()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: strings.Split(addr, ","), Root: root, SessionTimeout: sessionTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.EnsurePath(ctx, c.Path("/")); err != nil {
		t.Fatal(err)
	}
	return c
}

// logs returns a logger that records its lines, and shows them when the
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

// member is one Maintainer running in the test, as a process would run it.
type member struct {
	name string
	conn *zkconn.Conn
	m    *Maintainer
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// startMember builds a Maintainer from cfg (Conn, Store and Identifier
// filled in when empty) and runs it until the test ends or halt.
func startMember(t *testing.T, name string, conn *zkconn.Conn, cfg Config) *member {
	t.Helper()
	cfg.Conn = conn
	if cfg.Store == nil {
		cfg.Store = jobs.NewStore(conn, jobs.StoreConfig{})
	}
	cfg.Identifier = name
	cfg.SessionTimeout = sessionTimeout
	if cfg.Logger == nil {
		log, _ := logs(t)
		cfg.Logger = log.With(zap.String("member", name))
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{name: name, conn: conn, m: m, stop: cancel, done: make(chan error, 1)}
	go func() { mb.done <- m.Run(ctx) }()
	t.Cleanup(func() { mb.halt(t) })
	return mb
}

// halt stops the member and waits for Run to return.
func (mb *member) halt(t *testing.T) {
	mb.once.Do(func() {
		mb.stop()
		select {
		case err := <-mb.done:
			if err != nil {
				t.Errorf("member %s: Run: %v", mb.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("member %s: Run did not return 30s after its context ended", mb.name)
		}
	})
}

// probe is a service that counts how many of its instances run at once,
// across members.
type probe struct {
	running, max, starts atomic.Int64
}

func (p *probe) service(member string) Service {
	return Func("probe", func(ctx context.Context) {
		n := p.running.Add(1)
		p.starts.Add(1)
		for {
			m := p.max.Load()
			if n <= m || p.max.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
		p.running.Add(-1)
	})
}

// leaders returns the members that lead now.
func leaders(ms ...*member) []*member {
	var out []*member
	for _, m := range ms {
		if m.m.Leading() {
			out = append(out, m)
		}
	}
	return out
}

// oneLeader returns the single leader once there is exactly one, else an
// error.
func oneLeader(ms ...*member) (*member, error) {
	ls := leaders(ms...)
	if len(ls) != 1 {
		names := make([]string, len(ls))
		for i, l := range ls {
			names[i] = l.name
		}
		return nil, fmt.Errorf("%d members lead (%v), want 1", len(ls), names)
	}
	return ls[0], nil
}

func errorIf(cond bool, format string, args ...any) error {
	if cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}

func storeOf(conn *zkconn.Conn) *jobs.Store { return jobs.NewStore(conn, jobs.StoreConfig{}) }

// pumpOf returns the index pump a Maintainer runs, nil when none.
func pumpOf(m *Maintainer) *index.Pump {
	for _, s := range m.services {
		if p, ok := s.(*pump); ok {
			return p.p
		}
	}
	return nil
}
