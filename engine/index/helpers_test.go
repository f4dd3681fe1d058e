package index_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// One ZooKeeper for the package, started on first use.
var (
	zkOnce    sync.Once
	zkCluster *zkserver.Cluster
	zkErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if zkCluster != nil {
		zkCluster.Close()
	}
	os.Exit(code)
}

func zookeeper(t *testing.T) *zkserver.Cluster {
	t.Helper()
	zkOnce.Do(func() { zkCluster, zkErr = zkserver.Start(zkserver.Options{}) })
	if errors.Is(zkErr, zkserver.ErrNotInstalled) {
		t.Skipf("needs ZooKeeper: %v", zkErr)
	}
	if zkErr != nil {
		t.Fatalf("starting ZooKeeper: %v", zkErr)
	}
	return zkCluster
}

// logs returns a logger that records every line, for assertions, and shows
// them when the test fails.
func logs(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, obs := observer.New(zapcore.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range obs.All() {
				t.Logf("%s %s %s %v", e.Time.Format("15:04:05.000"), e.Level, e.Message, e.ContextMap())
			}
		}
	})
	return zap.New(core), obs
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// root returns a ZooKeeper root unique to the test.
func root(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return "/t-" + strings.ToLower(name) + "-" + randHex(3)
}

// dial opens a session under root; addr defaults to the shared server.
func dial(t *testing.T, addr, rootPath string, timeout time.Duration) *zkconn.Conn {
	t.Helper()
	if addr == "" {
		addr = zookeeper(t).ConnectString()
	}
	if timeout == 0 {
		timeout = 4 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: strings.Split(addr, ","), Root: rootPath, SessionTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.EnsurePath(ctx, c.Path("/")); err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t *testing.T, s *estest.Server, log *zap.Logger) *index.Client {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	c, err := index.New(index.Config{Hosts: []string{s.URL()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// newJob returns a job at version 1, created i minutes after epoch.
func newJob(action string, i int) *jobs.Job {
	id, _ := jobs.NewID()
	at := epoch.Add(time.Duration(i) * time.Minute)
	return &jobs.Job{
		ID: id, Action: action, State: jobs.Queued, Priority: 100, Created: at, Updated: at,
		TimeOfStatusChange: at, Attempt: 1, Version: 1, Payload: json.RawMessage(`{"any":{"shape":[1,"x",null]}}`),
		TargetResource: &jobs.Resource{Href: "module/" + action}, Tags: []string{"t"},
	}
}

// next returns the job's next version in state st.
func next(j *jobs.Job, st jobs.State) *jobs.Job {
	n := *j
	n.Version++
	n.State = st
	n.Updated = n.Updated.Add(time.Second)
	n.TimeOfStatusChange = n.Updated
	switch st {
	case jobs.Running:
		started := n.Updated
		n.Started, n.Executor, n.Progress = &started, "exec-1", 10
	case jobs.Success, jobs.Failed:
		n.Progress = 100
		rc := 0
		if st == jobs.Failed {
			rc = 1
		}
		n.ReturnCode = &rc
		n.StatusMessage = "done"
	}
	return &n
}

// write stores a job version the way the job store does: the document and
// its outbox entry in one multi.
func write(t *testing.T, c *zkconn.Conn, j *jobs.Job) {
	t.Helper()
	data, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	doc := c.Path("jobs", j.UUID())
	var op interface{} = &zk.SetDataRequest{Path: doc, Data: data, Version: -1}
	if j.Version == 1 {
		op = &zk.CreateRequest{Path: doc, Data: data, Acl: zkconn.ACL}
	}
	ctx := ctxT(t, 10*time.Second)
	if err := c.EnsurePath(ctx, c.Path("jobs")); err != nil {
		t.Fatal(err)
	}
	if err := index.EnsurePaths(ctx, c); err != nil {
		t.Fatal(err)
	}
	err = zkconn.Do(ctx, func() error {
		return zkconn.MultiErrorOnly(c.Multi(op, index.OutboxCreate(c, j, data)))
	})
	if err != nil {
		t.Fatalf("writing %s v%d: %v", j.ID, j.Version, err)
	}
}

// putEntry writes a raw outbox entry, for malformed documents.
func putEntry(t *testing.T, c *zkconn.Conn, name string, data []byte) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	if err := index.EnsurePaths(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(c.Path("index", "outbox", name), data, 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
}

func childrenOf(t *testing.T, c *zkconn.Conn, p string) []string {
	t.Helper()
	names, _, err := c.Children(p)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		t.Fatal(err)
	}
	return names
}

// runPump starts a pump and stops it (waiting for Run to return) when the
// test ends; stop does the same earlier.
func runPump(t *testing.T, c *zkconn.Conn, es *index.Client, log *zap.Logger, name string) (p *index.Pump, stop func()) {
	t.Helper()
	p = index.NewPump(c, es, log, index.PumpOptions{
		Name: name, BatchSize: 25, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Resync: 5 * time.Second,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pump %s: Run: %v", name, err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("pump %s: Run did not return 30s after its context ended", name)
			}
		})
	}
	t.Cleanup(stop)
	return p, stop
}

func errorIf(cond bool, format string, args ...any) error {
	if cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}

func fieldStr(k, v string) zap.Field     { return zap.String(k, v) }
func fieldInt(k string, v int) zap.Field { return zap.Int(k, v) }
