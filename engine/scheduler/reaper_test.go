package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

func (c *cluster) reaper(grace time.Duration) *Reaper {
	c.t.Helper()
	r, err := NewReaper(ReaperConfig{Store: c.store, Logger: testLogger(c.t), Grace: grace})
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *cluster) reap(r *Reaper) ReapReport {
	c.t.Helper()
	rep, err := r.Reap(ctxT(c.t), c.term())
	if err != nil {
		c.t.Fatal(err)
	}
	return rep
}

// AWX's reaper cases on ZooKeeper's notion of held: a job placed on a lost
// executor and not started goes back to PENDING and runs elsewhere; a
// RUNNING one gets its action's lost-job policy (rerun: PENDING again, the
// attempt counted; fail: FAILED); a job canceled while it ran is CANCELED.
func TestReaperGivesBackTheJobsOfALostExecutor(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 10)
	r1 := c.add(jobs.Scheduling{Impact: 1})
	r2 := c.add(jobs.Scheduling{Impact: 1})
	failing := c.add(jobs.Scheduling{Impact: 1}, func(n *jobs.NewJob) { n.Action = "fail-lost" })
	canceled := c.add(jobs.Scheduling{Impact: 1})
	s := c.scheduler()
	if rep := c.pass(s); rep.Placed != 4 {
		t.Fatalf("pass: %+v", rep)
	}
	// x1 starts them all; one is canceled while it runs; one more is
	// placed and not started; then x1 dies.
	ctx := ctxT(t)
	for range 4 {
		if _, _, err := x1.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.store.Cancel(ctx, canceled.ID, "me"); err != nil {
		t.Fatal(err)
	}
	late := c.add(jobs.Scheduling{Impact: 1})
	if rep := c.pass(s); rep.Placed != 1 {
		t.Fatalf("pass: %+v", rep)
	}
	x1.leave()

	r := c.reaper(-1)
	rep := c.reap(r)
	if rep.Requeued != 1 || rep.Rerun != 2 || rep.Failed != 1 || rep.Canceled != 1 || rep.Held != 0 {
		t.Fatalf("reap: %+v", rep)
	}
	if j := c.get(late.ID); j.State != jobs.Pending || !strings.Contains(j.Explanation, "executor x1 was lost before the job started") {
		t.Fatalf("not started: %s %q", j.State, j.Explanation)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		if j := c.get(id); j.State != jobs.Pending || j.Attempt != 1 || j.ExecutionNode != "" {
			t.Fatalf("rerun %s: %s attempt %d on %q", id, j.State, j.Attempt, j.ExecutionNode)
		}
	}
	if j := c.get(failing.ID); j.State != jobs.Failed || !strings.Contains(j.StatusMessage, "executor lost") {
		t.Fatalf("fail policy: %s %q", j.State, j.StatusMessage)
	}
	if j := c.get(canceled.ID); j.State != jobs.Canceled {
		t.Fatalf("canceled while running: %s", j.State)
	}
	if n, _ := c.store.NodeQueue("x1").Len(ctx); n != 0 {
		t.Fatalf("%d entries left on the lost executor's queue", n)
	}
	// They run elsewhere.
	c.join("x2", 10, 10)
	if rep := c.pass(s); rep.Placed != 3 {
		t.Fatalf("pass after the reap: %+v", rep)
	}
	if j := c.get(r1.ID); j.ExecutionNode != "x2" {
		t.Fatalf("rerun placed on %q", j.ExecutionNode)
	}
	if rep := c.reap(r); rep != (ReapReport{}) {
		t.Fatalf("a second reap did something: %+v", rep)
	}
}

// Within the grace period nothing is reaped; past it, it is.
func TestReaperGrace(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 10)
	j := c.add(jobs.Scheduling{Impact: 1})
	c.pass(c.scheduler())
	x1.leave()
	if rep := c.reap(c.reaper(time.Hour)); rep.Waiting != 1 || rep.Requeued != 0 {
		t.Fatalf("within the grace: %+v", rep)
	}
	if got := c.get(j.ID); got.State != jobs.Queued {
		t.Fatalf("reaped within the grace: %s", got.State)
	}
	r := c.reaper(50 * time.Millisecond)
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if rep := c.reap(r); rep.Requeued != 1 {
			return fmt.Errorf("past the grace: %+v", rep)
		}
		return nil
	})
	if got := c.get(j.ID); got.State != jobs.Pending {
		t.Fatalf("past the grace: %s", got.State)
	}
}

// A held entry is never touched: a job held by a session that lives (its
// heartbeat gone), and a job taken after the reaper's snapshot.
func TestReaperNeverTouchesAHeldEntry(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 10)
	a := c.add(jobs.Scheduling{Impact: 1})
	b := c.add(jobs.Scheduling{Impact: 1})
	c.pass(c.scheduler())
	ctx := ctxT(t)
	if _, _, err := x1.start(ctx); err != nil {
		t.Fatal(err)
	}
	// The heartbeat goes, the session that holds a's entry stays.
	if err := x1.conn.Delete(x1.conn.Path(instance.HeartbeatsPath, "x1"), -1); err != nil {
		t.Fatal(err)
	}
	r := c.reaper(-1)
	snap, err := r.clust.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// b is taken after the snapshot, which still shows it free.
	if _, _, err := x1.start(ctx); err != nil {
		t.Fatal(err)
	}
	var rep ReapReport
	if err := r.reapExecutor(ctx, c.term(), snap.Executor("x1"), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Held != 2 || rep.Requeued+rep.Rerun+rep.Failed != 0 {
		t.Fatalf("reap of held entries: %+v", rep)
	}
	for _, id := range []string{a.ID, b.ID} {
		if j := c.get(id); j.State != jobs.Running || j.Attempt != 1 {
			t.Fatalf("%s touched: %s attempt %d", id, j.State, j.Attempt)
		}
	}
	if rep := c.reap(r); rep.Held != 2 {
		t.Fatalf("reap: %+v", rep)
	}
}

// A fan-out child runs on its own executor or not at all; its parent ends
// once every child has.
func TestReaperFanoutChildren(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 10, "edge")
	x2 := c.join("x2", 10, 10, "edge")
	x3 := c.join("x3", 10, 10, "edge")
	parent, err := Fanout(ctxT(t), c.store, jobs.NewJob{Action: "flush"}, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if len(parent.NestedJobs) != 3 {
		t.Fatalf("%d children", len(parent.NestedJobs))
	}
	x1.runOne(jobs.Success)
	if _, _, err := x2.start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	x2.leave()
	x3.leave()
	if rep := c.reap(c.reaper(-1)); rep.Canceled != 1 || rep.Failed != 1 {
		t.Fatalf("reap: %+v", rep)
	}
	s := c.scheduler()
	if rep := c.pass(s); rep.Ended != 1 {
		t.Fatalf("pass: %+v", rep)
	}
	if p := c.get(parent.ID); p.State != jobs.Failed || !strings.Contains(p.StatusMessage, "1 succeeded, 1 failed, 1 canceled") {
		t.Fatalf("parent: %s %q", p.State, p.StatusMessage)
	}
}

// The service reaps when an executor leaves, without waiting for its
// period.
func TestReaperServiceRunsWhenAnExecutorLeaves(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 10)
	j := c.add(jobs.Scheduling{Impact: 1})
	c.pass(c.scheduler())
	r, err := NewReaper(ReaperConfig{Store: c.store, Logger: testLogger(t), Grace: -1, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stop := c.lead(func(ctx context.Context) error {
		if err := r.Start(ctx); err != nil {
			return err
		}
		<-ctx.Done()
		r.Stop()
		return nil
	})
	defer stop()
	x1.leave()
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := c.get(j.ID); got.State != jobs.Pending {
			return fmt.Errorf("%s", got.State)
		}
		return nil
	})
}
