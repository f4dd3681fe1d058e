package history

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// zkc is the ZooKeeper every test of the package shares, each under a root
// of its own.
var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

// env is a test's own root on the shared ZooKeeper, a store whose clock the
// test sets, and (with withES) an Elasticsearch history.
type env struct {
	t     *testing.T
	conn  *zkconn.Conn
	store *jobs.Store
	es    *estest.Server
	ix    *index.Client

	mu  sync.Mutex
	now time.Time
}

func newEnv(t *testing.T, withES bool) *env {
	t.Helper()
	root := fmt.Sprintf("/h%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))
	conn, err := zkconn.Dial(ctxT(t), zkconn.Config{Hosts: zkc.Addrs(), Root: root, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	e := &env{t: t, conn: conn, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	e.store = jobs.NewStore(conn, jobs.StoreConfig{Now: e.clock})
	if withES {
		e.es = estest.Start(t, estest.Options{RefreshInterval: -1})
		e.ix, err = index.New(index.Config{Hosts: []string{e.es.URL()}, Prefix: "t-"}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// at sets the time the store writes as the next creation time.
func (e *env) at(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func (e *env) reader() *Reader {
	return New(Config{Store: e.store, Index: e.ix, Timeout: 5 * time.Second})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// live creates a QUEUED job in ZooKeeper created at the given time.
func (e *env) live(action string, created time.Time) *jobs.Job {
	e.t.Helper()
	e.at(created)
	j, err := e.store.Create(ctxT(e.t), jobs.NewJob{Action: action, Priority: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// advance moves a live job to state st, as an executor would.
func (e *env) advance(id string, st jobs.State) *jobs.Job {
	e.t.Helper()
	j, ver, err := e.store.Get(ctxT(e.t), id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := j.Transition(st, e.clock()); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.Update(ctxT(e.t), j, ver); err != nil {
		e.t.Fatal(err)
	}
	return j
}

// indexed returns a job that is only in the history (never in ZooKeeper).
func indexed(action string, st jobs.State, created time.Time) *jobs.Job {
	id, _ := jobs.NewID()
	return &jobs.Job{ID: id, Action: action, State: st, Priority: 100, Created: created, Updated: created,
		TimeOfStatusChange: created, Attempt: 1, Version: 3}
}

// index writes jobs into the history and makes them searchable.
func (e *env) index(js ...*jobs.Job) {
	e.t.Helper()
	if _, err := e.ix.IndexJobs(ctxT(e.t), js...); err != nil {
		e.t.Fatal(err)
	}
	if err := e.ix.Refresh(ctxT(e.t)); err != nil {
		e.t.Fatal(err)
	}
}

// ids lists the ids of jobs, each with its state and the first letter of
// its source.
func ids(js []Job) string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.ID + ":" + string(j.State) + "@" + string(j.Source)[:1]
	}
	return strings.Join(out, " ")
}
