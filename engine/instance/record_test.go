package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var seq atomic.Int64

func newStore(t *testing.T) *jobs.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: fmt.Sprintf("/i%d", seq.Add(1)), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	s := jobs.NewStore(conn, jobs.StoreConfig{})
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// beat writes a heartbeat node for name, as a live executor does.
func beat(t *testing.T, conn *zkconn.Conn, h Heartbeat) {
	t.Helper()
	data, _ := json.Marshal(h)
	p := conn.Path(HeartbeatsPath, h.Name)
	if err := conn.EnsurePath(ctxT(t), conn.Path(HeartbeatsPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Set(p, data, -1); errors.Is(err, zk.ErrNoNode) {
		_, err = conn.Create(p, data, zk.FlagEphemeral, zkconn.ACL)
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRegisterKeepsEnabledAcrossRestarts(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	conn := s.Conn()
	r, err := Register(ctx, conn, Record{Name: "x1", Groups: []string{"edge"}, Capacity: 8, Threads: 2, Version: "1"})
	if err != nil || !r.Enabled || r.Registered.IsZero() {
		t.Fatalf("register: %+v %v", r, err)
	}
	if _, err := SetEnabled(ctx, conn, "x1", false); err != nil {
		t.Fatal(err)
	}
	// A restart with other settings keeps it disabled and registered.
	r2, err := Register(ctx, conn, Record{Name: "x1", Groups: []string{"edge", "default"}, Capacity: 16, Threads: 4, Version: "2"})
	if err != nil || r2.Enabled || !r2.Registered.Equal(r.Registered) || r2.Capacity != 16 {
		t.Fatalf("re-register: %+v %v", r2, err)
	}
	// Its direct queue exists at once.
	if ok, _, _ := conn.Exists(s.NodeQueue("x1").TakenPath()); !ok {
		t.Fatal("no direct queue")
	}
	if _, err := SetEnabled(ctx, conn, "nope", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("enabling an unknown executor: %v", err)
	}
	if _, err := Register(ctx, conn, Record{Name: "x2", Groups: []string{"bad group"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("register with a bad group: %v", err)
	}
	// A record that is not valid JSON is input: it is reported, not used,
	// and the next start replaces it.
	if _, err := conn.Set(conn.Path(RecordsPath, "x1"), []byte("{nope"), -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadRecord(ctx, conn, "x1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reading a bad record: %v", err)
	}
	if r3, err := Register(ctx, conn, Record{Name: "x1", Groups: []string{"edge"}, Capacity: 1}); err != nil || !r3.Enabled {
		t.Fatalf("register over a bad record: %+v %v", r3, err)
	}
}

func TestClusterSnapshot(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	conn := s.Conn()
	for _, r := range []Record{
		{Name: "a", Groups: []string{"edge"}, Capacity: 10, Threads: 4, Version: "1"},
		{Name: "b", Groups: []string{"edge", "default"}, Capacity: 6, Threads: 4, Version: "2"},
		{Name: "c", Groups: []string{"default"}, Capacity: 4, Threads: 4, Version: "1"},
	} {
		if _, err := Register(ctx, conn, r); err != nil {
			t.Fatal(err)
		}
	}
	// a and b are live; c is lost; b is disabled.
	beat(t, conn, Heartbeat{Name: "a", Version: "1", LastSeen: time.Now()})
	shared, _ := jobs.NewID()
	beat(t, conn, Heartbeat{Name: "b", Version: "2", LastSeen: time.Now(), Running: []RunningJob{{Job: shared}}})
	if _, err := SetEnabled(ctx, conn, "b", false); err != nil {
		t.Fatal(err)
	}
	// A job of impact 3 placed on a.
	j, err := s.Create(ctx, jobs.NewJob{Action: "x", Scheduling: jobs.Scheduling{Impact: 3, ConcurrencyKeys: []string{"k"}}})
	if err != nil {
		t.Fatal(err)
	}
	j, ver, _ := s.Get(ctx, j.ID)
	c, err := s.Place(j, ver, "a", "edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx); err != nil {
		t.Fatal(err)
	}
	if err := SetGroup(ctx, conn, Group{Name: "edge", MaxJobs: 5}); err != nil {
		t.Fatal(err)
	}
	if err := SetGroup(ctx, conn, Group{Name: "edge", MaxJobs: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad limits: %v", err)
	}
	// A bad group document is reported and left out.
	if _, err := conn.Create(conn.Path(GroupsPath, "weird"), []byte(`{"name":"weird","max-cpus":3}`), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}

	r := NewReader(s, nil)
	cl, err := r.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Executors) != 3 || len(cl.Problems) != 1 {
		t.Fatalf("snapshot: %d executors, problems %v", len(cl.Executors), cl.Problems)
	}
	a, b, cc := cl.Executor("a"), cl.Executor("b"), cl.Executor("c")
	if a.State() != StateLive || b.State() != StateDisabled || cc.State() != StateLost {
		t.Fatalf("states %s %s %s", a.State(), b.State(), cc.State())
	}
	if a.Capacity() != 10 || b.Capacity() != 0 || cc.Capacity() != 0 {
		t.Fatalf("capacities %d %d %d", a.Capacity(), b.Capacity(), cc.Capacity())
	}
	if a.Used() != 3 || a.Jobs() != 1 || len(a.Placed) != 1 || a.Placed[0].Keys[0] != "k" || a.Placed[0].Group != "edge" {
		t.Fatalf("a: used %d jobs %d placed %+v", a.Used(), a.Jobs(), a.Placed)
	}
	if b.Used() != 1 || b.Jobs() != 1 {
		t.Fatalf("b runs one job from the shared queue: used %d jobs %d", b.Used(), b.Jobs())
	}
	if got := cl.GroupNames(); len(got) != 2 || got[0] != "default" || got[1] != "edge" {
		t.Fatalf("groups %v", got)
	}
	if cl.Groups["edge"].MaxJobs != 5 || len(cl.Members("edge")) != 2 {
		t.Fatalf("edge: %+v, %d members", cl.Groups["edge"], len(cl.Members("edge")))
	}
	if v := cl.Versions(); len(v) != 2 {
		t.Fatalf("versions %v", v)
	}
	if cc.LastSeen.IsZero() {
		t.Fatal("a lost executor's last heartbeat is unknown")
	}

	// Remove refuses a live executor and one with jobs placed on it.
	if err := Remove(ctx, conn, "b"); !errors.Is(err, ErrLive) {
		t.Fatalf("removing a live executor: %v", err)
	}
	if err := Remove(ctx, conn, "c"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, conn, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	if err := conn.Delete(conn.Path(HeartbeatsPath, "a"), -1); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, conn, "a"); !errors.Is(err, ErrBusy) {
		t.Fatalf("removing an executor with a placed job: %v", err)
	}
	cl, err = r.Read(ctx)
	if err != nil || len(cl.Executors) != 2 || cl.Executor("c") != nil {
		t.Fatalf("after remove: %+v %v", cl, err)
	}
}
