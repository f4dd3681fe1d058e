package scheduler

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

// A fan-out reaches every live, enabled executor of its group through the
// direct queues; its parent ends when every child has.
func TestFanout(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	x1 := c.join("x1", 10, 10, "edge")
	x2 := c.join("x2", 10, 10, "edge", "default")
	c.join("x3", 10, 10, "edge")
	c.join("other", 10, 10, "default")
	if _, err := instance.SetEnabled(ctx, c.conn, "x3", false); err != nil {
		t.Fatal(err)
	}
	parent, err := Fanout(ctx, c.store, jobs.NewJob{Action: "flush", Scheduling: jobs.Scheduling{Impact: 2}}, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if parent.State != jobs.Pending || !parent.IsFanoutParent() || len(parent.NestedJobs) != 2 {
		t.Fatalf("parent %+v", parent)
	}
	var nodes []string
	for _, id := range parent.NestedJobs {
		ch := c.get(id)
		if ch.State != jobs.Queued || ch.ParentJob != parent.ID || ch.Impact != 2 || !ch.IsFanoutChild() {
			t.Fatalf("child %+v", ch)
		}
		nodes = append(nodes, ch.ExecutionNode)
	}
	sort.Strings(nodes)
	if strings.Join(nodes, ",") != "x1,x2" {
		t.Fatalf("children on %v", nodes)
	}
	s := c.scheduler()
	if rep := c.pass(s); rep.Ended != 0 || rep.Blocked != 1 {
		t.Fatalf("pass: %+v", rep)
	}
	if p := c.get(parent.ID); p.Explanation != "waiting for 2 of 2 fan-out jobs to finish" {
		t.Fatalf("parent: %q", p.Explanation)
	}
	x1.runOne(jobs.Success)
	x2.runOne(jobs.Success)
	if rep := c.pass(s); rep.Ended != 1 {
		t.Fatalf("pass: %+v", rep)
	}
	if p := c.get(parent.ID); p.State != jobs.Success || *p.ReturnCode != 0 {
		t.Fatalf("parent: %s", p.State)
	}
	if n, _ := c.store.PendingCount(ctx); n != 0 {
		t.Fatalf("%d pending nodes left", n)
	}

	if _, err := Fanout(ctx, c.store, jobs.NewJob{Action: "flush"}, "nowhere"); !errors.Is(err, ErrNoExecutor) {
		t.Fatalf("fan-out to an empty group: %v", err)
	}
	if _, err := Fanout(ctx, c.store, jobs.NewJob{Action: "flush", Scheduling: jobs.Scheduling{ConcurrencyKeys: []string{"k"}}}, "edge"); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("fan-out with a key: %v", err)
	}
}
