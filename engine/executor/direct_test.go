package executor

import (
	"context"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

// An executor registers its instance record (groups, capacity, its
// actions' lost-job policies), runs what is placed on its direct queue as
// well as what is on the shared queue, and marks itself draining when it
// stops.
func TestDirectQueueAndInstanceRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	x := e.start("x1", nil, func(c *Config) {
		c.Groups = []string{"edge", "default"}
		c.Capacity = instance.CapacitySettings{Adjustment: 0}
		c.Resources = &instance.Resources{CPUs: 2, MemoryBytes: 8 << 30}
	})
	conn := e.store.Conn()
	rec, _, err := instance.ReadRecord(ctx, conn, "x1")
	if err != nil {
		t.Fatal(err)
	}
	// The smaller of 2 × 4 and (8 GiB − 2 GiB) / 100 MB.
	if rec.Capacity != 8 || !rec.Enabled || rec.Threads != 2 || len(rec.Groups) != 2 || rec.Draining {
		t.Fatalf("record %+v", rec)
	}
	policies := map[string]instance.ActionPolicy{}
	for _, a := range rec.Actions {
		policies[a.Name] = a
	}
	if policies["block-fail-lost"].LostPolicy != action.Fail || policies["block"].LostPolicy != action.Rerun {
		t.Fatalf("lost-job policies %+v", rec.Actions)
	}

	// A job placed on x1's direct queue runs there.
	placed := e.add("echo", `{"message":"hi"}`, func(n *jobs.NewJob) { n.Scheduling.Impact = 2 })
	j, ver, _ := e.store.Get(ctx, placed.ID)
	c, err := e.store.Place(j, ver, "x1", "edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.waitState(placed.ID, jobs.Success, 10*time.Second); got.Executor != "x1" || got.ExecutionNode != "x1" {
		t.Fatalf("placed job ran as %+v", got)
	}
	if n, _ := e.store.NodeQueue("x1").Len(ctx); n != 0 {
		t.Fatalf("%d entries left on the direct queue", n)
	}
	// The shared queue still works.
	shared := e.add("echo", `{"message":"hi"}`)
	e.waitState(shared.ID, jobs.Success, 10*time.Second)

	// The heartbeat says the groups and the capacity.
	snap, err := instance.NewReader(e.store, nil).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ex := snap.Executor("x1"); ex == nil || !ex.Live() || ex.Heartbeat.Capacity != 8 || len(ex.Heartbeat.Groups) != 2 {
		t.Fatalf("snapshot %+v", ex)
	}

	x.Shutdown(ctx)
	rec, _, err = instance.ReadRecord(ctx, conn, "x1")
	if err != nil || !rec.Draining {
		t.Fatalf("record after shutdown: %+v %v", rec, err)
	}
	if ok, _, _ := conn.Exists(conn.Path(instance.HeartbeatsPath, "x1")); ok {
		t.Fatal("heartbeat left after shutdown")
	}
	// A restart clears draining and keeps the record's enabled flag.
	if _, err := instance.SetEnabled(ctx, conn, "x1", false); err != nil {
		t.Fatal(err)
	}
	e.start("x1", nil)
	rec, _, _ = instance.ReadRecord(ctx, conn, "x1")
	if rec.Draining || rec.Enabled {
		t.Fatalf("record after restart: %+v", rec)
	}
}
