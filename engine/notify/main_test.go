package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
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

// env is a test's root: a session, the job store (with the resolver) and
// the notification store.
type env struct {
	t     *testing.T
	root  string
	conn  *zkconn.Conn
	jobs  *jobs.Store
	store *Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, root: fmt.Sprintf("/n%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))}
	e.conn = e.dial()
	e.store = NewStore(e.conn)
	e.jobs = jobs.NewStore(e.conn, jobs.StoreConfig{Notifications: NewResolver(e.store)})
	ctx := e.ctx()
	if err := e.jobs.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) dial() *zkconn.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: e.root, SessionTimeout: 4 * time.Second})
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
	if os.Getenv("NOTIFY_TEST_LOG") != "" {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// lead runs svc under an election of its own session until the returned
// stop is called (or the test ends): a member leading alone.
func (e *env) lead(svc interface {
	Start(context.Context) error
	Stop()
}) (stop func()) {
	e.t.Helper()
	conn := e.dial()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		el := election.New(conn, "test-services", "member", testLogger(e.t), election.WithSessionTimeout(4*time.Second))
		done <- el.Run(ctx, func(lctx context.Context) error {
			err := svc.Start(lctx)
			started <- err
			if err != nil {
				return err
			}
			<-lctx.Done()
			svc.Stop()
			return nil
		})
	}()
	select {
	case err := <-started:
		if err != nil {
			e.t.Fatalf("starting the service: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Fatal("the service did not start within 20s")
	}
	var stopped atomic.Bool
	stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		<-done
	}
	e.t.Cleanup(stop)
	return stop
}

// sender starts a sender with short back-offs under lead.
func (e *env) sender(maxAttempts int) func() {
	e.t.Helper()
	s, err := NewSender(SenderConfig{Store: e.store, Logger: testLogger(e.t), MaxAttempts: maxAttempts,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Resync: 2 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.lead(s)
}

// runJob creates a job that notifies nt and takes it through start and
// the final state out.
func (e *env) runJob(action string, nt jobs.Notifications, out jobs.State) *jobs.Job {
	e.t.Helper()
	ctx := e.ctx()
	created, err := e.jobs.Create(ctx, jobs.NewJob{Action: action, Notifications: nt})
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.jobs.Queue().NewConsumer(queue.ConsumerOptions{Name: "x1"})
	defer c.Close()
	it, err := c.Take(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	h := jobs.Hold{Consumer: c, Item: it}
	j, ver, err := e.jobs.Get(ctx, created.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	ch, err := e.jobs.StartAttempt(j, ver, "x1")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := ch.Commit(ctx, h); err != nil {
		e.t.Fatal(err)
	}
	rc := 0
	if out != jobs.Success {
		rc = 3
	}
	fin, err := e.jobs.Finish(ch.Job(), ch.Ver(), "x1", jobs.Outcome{State: out, ReturnCode: &rc, Message: "it " + strings.ToLower(string(out))})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := fin.Commit(ctx, h); err != nil {
		e.t.Fatal(err)
	}
	return fin.Job()
}

// outbox returns the names of the notices waiting.
func (e *env) outbox() []string {
	names, _, err := e.conn.Children(e.store.OutboxPath())
	if err != nil {
		e.t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// smtpServer is a real SMTP server (testdata/smtpd.py, on Debian's
// python3-aiosmtpd) that writes each message it accepts to dir.
type smtpServer struct {
	port int
	dir  string
}

// startSMTP starts the server; args are smtpd.py's options.
func startSMTP(t *testing.T, args ...string) *smtpServer {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("the e-mail tests need /usr/bin/python3 with Debian's python3-aiosmtpd (apt-get install python3-aiosmtpd)")
	}
	dir := t.TempDir()
	script, _ := filepath.Abs("testdata/smtpd.py")
	cmd := exec.Command("/usr/bin/python3", append([]string{script, "--dir", dir}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var port int
			if _, err := fmt.Sscanf(sc.Text(), "ready %d", &port); err == nil {
				ready <- port
			}
		}
	}()
	select {
	case port := <-ready:
		return &smtpServer{port: port, dir: dir}
	case <-time.After(20 * time.Second):
		t.Fatalf("the SMTP server did not start (is python3-aiosmtpd installed?): %s", stderr.String())
	}
	return nil
}

// smtpMessage is a message the server accepted.
type smtpMessage struct {
	Raw   string
	From  string   `json:"from"`
	To    []string `json:"to"`
	Login string   `json:"login"`
	TLS   bool     `json:"tls"`
}

// messages returns what the server accepted, in order.
func (s *smtpServer) messages(t *testing.T) []smtpMessage {
	t.Helper()
	var out []smtpMessage
	for n := 1; ; n++ {
		raw, err := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("%d.eml", n)))
		if err != nil {
			return out
		}
		var m smtpMessage
		meta, err := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("%d.json", n)))
		if err != nil || json.Unmarshal(meta, &m) != nil {
			t.Fatalf("message %d has no envelope: %v", n, err)
		}
		m.Raw = string(raw)
		out = append(out, m)
	}
}

// waitFor polls fn for up to 30 seconds.
func waitFor(t *testing.T, fn func() error) {
	t.Helper()
	poll.For(t, 30*time.Second, 50*time.Millisecond, fn)
}
