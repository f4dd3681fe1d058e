package election

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

// The tests share one ZooKeeper server; each test works under its own root.
var zkc *zkserver.Cluster

// sessionTimeout is short so failovers are quick; the test server's tick
// (250ms) grants anything from 0.5s to 5s.
const sessionTimeout = 2 * time.Second

// childEnv makes the test binary a contender process instead of running the
// tests (see contenderMain).
const childEnv = "JOBENGINE_ELECTION_CONTENDER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(contenderMain())
	}
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

func newRoot(t testing.TB) string {
	return fmt.Sprintf("/t%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))
}

// dial connects to hosts (the shared server by default) under root.
func dial(t testing.TB, root string, hosts ...string) *zkconn.Conn {
	t.Helper()
	if len(hosts) == 0 {
		hosts = zkc.Addrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: hosts, Root: root, SessionTimeout: sessionTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("ELECTION_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

// recorder appends leadership records to a file shared by every contender
// of a test, one write per line with O_APPEND so lines from several
// processes never mix: "start|work|end <identifier> <unix-nanos>".
type recorder struct {
	mu sync.Mutex
	f  *os.File
	id string
}

func openRecorder(file, id string) (*recorder, error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &recorder{f: f, id: id}, nil
}

func (r *recorder) write(kind string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.f.WriteString(fmt.Sprintf("%s %s %d\n", kind, r.id, at.UnixNano()))
}

// work is the leader function of the tests: it records its start, then a
// work record every few milliseconds as long as Term.Check passes (the time
// is read before the check, so a work record's time is a moment at which the
// contender certainly led), and its end when the leader context is done.
// active counts leader functions running in this process at once; a value
// above one is recorded in overlap.
func work(rec *recorder, active, overlap *atomic.Int32) func(context.Context) error {
	return func(ctx context.Context) error {
		term := TermOf(ctx)
		if active != nil && active.Add(1) > 1 {
			overlap.Add(1)
		}
		rec.write("start", time.Now())
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				if active != nil {
					active.Add(-1)
				}
				rec.write("end", time.Now())
				return context.Cause(ctx)
			case <-tick.C:
				now := time.Now()
				if term.Check() == nil {
					rec.write("work", now)
				}
			}
		}
	}
}

// contenderMain is a contender process: it runs one election with the work
// leader function until SIGTERM.
func contenderMain() int {
	hosts, _ := zkconn.ParseHosts(os.Getenv("ZK_HOSTS"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log, _ := zap.NewDevelopment()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	conn, err := zkconn.Dial(dctx, zkconn.Config{Hosts: hosts, Root: os.Getenv("ZK_ROOT"), SessionTimeout: sessionTimeout, Logger: log})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	id := os.Getenv("CONTENDER_ID")
	rec, err := openRecorder(os.Getenv("RECORD"), id)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e := New(conn, os.Getenv("ELECTION"), id, log, WithSessionTimeout(sessionTimeout))
	if err := e.Run(ctx, work(rec, nil, nil)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a contender process started by a test.
type child struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startChild starts a contender process; it is stopped when the test ends
// and dies with the test binary.
func startChild(t *testing.T, root, election, id, record string) *child {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), id+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		"ZK_HOSTS="+strings.Join(zkc.Addrs(), ","),
		"ZK_ROOT="+root,
		"ELECTION="+election,
		"CONTENDER_ID="+id,
		"RECORD="+record)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{id: id, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("log of contender %s:\n%s", id, tail(string(b), 60))
			}
		}
	})
	return c
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// span is one term of one contender as seen in the record: from its start to
// the last moment it certainly led (its last work record).
type span struct {
	id          string
	start, last time.Time
	works       int
	end         time.Time // when it noticed the end; zero if it never did
}

// readSpans parses a record file.
func readSpans(t testing.TB, file string) []*span {
	t.Helper()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []*span
	open := map[string]*span{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			t.Fatalf("bad record line %q", sc.Text())
		}
		ns, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			t.Fatalf("bad record line %q", sc.Text())
		}
		at := time.Unix(0, ns)
		switch kind, id := fs[0], fs[1]; kind {
		case "start":
			s := &span{id: id, start: at, last: at}
			all = append(all, s)
			open[id] = s
		case "work", "end":
			s := open[id]
			if s == nil {
				t.Fatalf("record %q before any start of %s", sc.Text(), id)
			}
			if kind == "end" {
				s.end = at
				delete(open, id)
			} else {
				s.works++
				if at.After(s.last) {
					s.last = at
				}
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	return all
}

// assertNoOverlap fails the test if two terms were ever leading at the same
// moment.
func assertNoOverlap(t testing.TB, spans []*span) {
	t.Helper()
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if !a.start.After(b.last) && !b.start.After(a.last) {
				t.Errorf("two leaders at once: %s led %s..%s and %s led %s..%s", a.id, ts(a.start), ts(a.last), b.id, ts(b.start), ts(b.last))
			}
		}
	}
}

func ts(t time.Time) string { return t.Format("15:04:05.000000") }

// starts returns the terms begun by id.
func starts(spans []*span, id string) []*span {
	var out []*span
	for _, s := range spans {
		if s.id == id {
			out = append(out, s)
		}
	}
	return out
}

// leading returns the latest term, or an error if it has ended. Terms of
// killed contenders never record an end, so "open" alone says nothing;
// that two terms never overlap is what assertNoOverlap checks.
func leading(spans []*span) (*span, error) {
	if len(spans) == 0 {
		return nil, errors.New("nobody has led yet")
	}
	s := spans[len(spans)-1]
	if !s.end.IsZero() {
		return nil, fmt.Errorf("the last term (%s) has ended; nobody leads", s.id)
	}
	return s, nil
}

func waitFor(t testing.TB, wait time.Duration, fn func() error) {
	t.Helper()
	poll.For(t, wait, 20*time.Millisecond, fn)
}
