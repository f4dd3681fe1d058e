package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// A pass on real ZooKeeper: placements on direct queues, explanations
// written once, a blocked job placed once its blocker ended.
func TestPassPlacesBlocksAndExplains(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 4, "edge")
	c.join("x2", 4, 4, "default")
	deploy := []string{jobs.TemplateKey("deploy")}
	a := c.add(jobs.Scheduling{Impact: 6, ConcurrencyKeys: deploy}, inGroups("edge"))
	b := c.add(jobs.Scheduling{Impact: 2, ConcurrencyKeys: deploy}, inGroups("edge"))
	big := c.add(jobs.Scheduling{Impact: 6}, inGroups("default"))
	small := c.add(jobs.Scheduling{Impact: 3})
	s := c.scheduler()

	rep := c.pass(s)
	if rep.Pending != 4 || rep.Placed != 2 || rep.Blocked != 1 || rep.NoCapacity != 1 || rep.Explained != 2 {
		t.Fatalf("first pass: %+v", rep)
	}
	// big runs alone on the idle x2 (bigger than any executor of its group).
	for id, node := range map[string]string{a.ID: "x1", big.ID: "x2"} {
		if j := c.get(id); j.State != jobs.Queued || j.ExecutionNode != node {
			t.Fatalf("%s: %s on %q, want QUEUED on %s", id, j.State, j.ExecutionNode, node)
		}
	}
	if j := c.get(b.ID); j.State != jobs.Pending || j.Explanation != "waiting for "+a.ID+" to finish (template:deploy)" {
		t.Fatalf("b: %s %q", j.State, j.Explanation)
	}
	if j := c.get(small.ID); j.State != jobs.Pending || j.Explanation != "no capacity in group default: needs 3, most free 0" {
		t.Fatalf("small: %s %q", j.State, j.Explanation)
	}
	// Nothing changed: nothing is written.
	ver := c.get(b.ID).Version
	if rep = c.pass(s); rep.Explained != 0 || rep.Blocked != 1 || rep.NoCapacity != 1 || c.get(b.ID).Version != ver || rep.Duration <= 0 {
		t.Fatalf("a pass with nothing new wrote: %+v", rep)
	}

	// a ends: b is placed.
	if id := x1.runOne(jobs.Success); id != a.ID {
		t.Fatalf("x1 ran %s", id)
	}
	if rep = c.pass(s); rep.Placed != 1 {
		t.Fatalf("after a ended: %+v", rep)
	}
	if j := c.get(b.ID); j.State != jobs.Queued || j.ExecutionNode != "x1" || j.InstanceGroup != "edge" || j.Explanation != "" {
		t.Fatalf("b: %+v", j.Scheduling)
	}
}

// A deposed leader places nothing.
func TestDeposedLeaderPlacesNothing(t *testing.T) {
	c := newCluster(t)
	c.join("x1", 10, 4)
	j := c.add(jobs.Scheduling{Impact: 1})
	s := c.scheduler()
	term := c.term()
	if err := c.conn.Delete(term.path, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pass(ctxT(t), term); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("pass under a lost fence: %v", err)
	}
	if got := c.get(j.ID); got.State != jobs.Pending {
		t.Fatalf("placed by a deposed leader: %s", got.State)
	}
	if n, _ := c.store.NodeQueue("x1").Len(ctxT(t)); n != 0 {
		t.Fatalf("%d entries queued by a deposed leader", n)
	}
}

// A pass starts at most MaxStarts jobs and says it was cut; the next pass
// goes on.
func TestPassIsBounded(t *testing.T) {
	c := newCluster(t)
	c.join("x1", 100, 100)
	for range 10 {
		c.add(jobs.Scheduling{Impact: 1})
	}
	s := c.scheduler(func(cfg *Config) { cfg.MaxStarts = 4 })
	if rep := c.pass(s); rep.Placed != 4 || !rep.Cut {
		t.Fatalf("first pass: %+v", rep)
	}
	if rep := c.pass(s); rep.Placed != 4 || !rep.Cut {
		t.Fatalf("second pass: %+v", rep)
	}
	if rep := c.pass(s); rep.Placed != 2 || rep.Cut {
		t.Fatalf("third pass: %+v", rep)
	}
}

// Dependencies: on a job of the shared queue, on a scheduled one; a
// failed dependency fails its dependents; a stale pending node (a job
// ended behind the scheduler's back) is dropped.
func TestPassDependencies(t *testing.T) {
	c := newCluster(t)
	x1 := c.join("x1", 10, 4)
	fast, err := c.store.Create(ctxT(t), jobs.NewJob{Action: "a"})
	if err != nil {
		t.Fatal(err)
	}
	update := c.add(jobs.Scheduling{ConcurrencyKeys: []string{jobs.ProjectKey("web")}})
	onFast := c.add(jobs.Scheduling{DependsOn: []string{fast.ID}})
	onUpdate1 := c.add(jobs.Scheduling{DependsOn: []string{update.ID}})
	onUpdate2 := c.add(jobs.Scheduling{DependsOn: []string{update.ID}})
	s := c.scheduler()
	if rep := c.pass(s); rep.Placed != 1 || rep.Blocked != 3 {
		t.Fatalf("first pass: %+v", rep)
	}
	if j := c.get(onFast.ID); j.Explanation != "waiting for "+fast.ID+" to finish (dependency)" {
		t.Fatalf("onFast: %q", j.Explanation)
	}
	// The update fails: both its dependents fail.
	x1.runOne(jobs.Failed)
	if rep := c.pass(s); rep.Failed != 2 {
		t.Fatalf("after the update failed: %+v", rep)
	}
	for _, id := range []string{onUpdate1.ID, onUpdate2.ID} {
		if j := c.get(id); j.State != jobs.Failed || j.StatusMessage != "previous job failed: "+update.ID {
			t.Fatalf("%s: %s %q", id, j.State, j.StatusMessage)
		}
	}
	// The shared-queue job succeeds.
	h := takeShared(t, c)
	j, ver, _ := c.store.Get(ctxT(t), fast.ID)
	start, _ := c.store.StartAttempt(j, ver, "other")
	if err := start.Commit(ctxT(t), h); err != nil {
		t.Fatal(err)
	}
	fin, _ := c.store.Finish(start.Job(), start.Ver(), "other", jobs.Outcome{State: jobs.Success})
	if err := fin.Commit(ctxT(t), h); err != nil {
		t.Fatal(err)
	}
	if rep := c.pass(s); rep.Placed != 1 {
		t.Fatalf("after the shared job succeeded: %+v", rep)
	}
	// A job canceled behind the scheduler's back leaves its entry: dropped.
	stale := c.add(jobs.Scheduling{Impact: 1})
	sj, sver, _ := c.store.Get(ctxT(t), stale.ID)
	_ = sj.Transition(jobs.Canceled, time.Now())
	if _, err := c.store.Update(ctxT(t), sj, sver); err != nil {
		t.Fatal(err)
	}
	if rep := c.pass(s); rep.Dropped != 1 || rep.Pending != 0 {
		t.Fatalf("stale entry: %+v", rep)
	}
}

func takeShared(t *testing.T, c *cluster) jobs.Hold {
	t.Helper()
	cons := c.store.Queue().NewConsumer(queueOpts("other"))
	t.Cleanup(cons.Close)
	it, err := cons.Take(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return jobs.Hold{Consumer: cons, Item: it}
}

// The service, on a real election: events alone (the period is an hour)
// drive it — a new pending job, a job that ends, an executor that joins,
// one that is enabled again, a group's limits.
func TestServiceRunsOnEvents(t *testing.T) {
	c := newCluster(t)
	s := c.scheduler(func(cfg *Config) { cfg.Interval = time.Hour })
	stop := c.lead(func(ctx context.Context) error {
		if err := s.Start(ctx); err != nil {
			return err
		}
		<-ctx.Done()
		s.Stop()
		return nil
	})
	defer stop()
	waitState := func(id string, st jobs.State, node string) {
		t.Helper()
		poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
			j := c.get(id)
			if j.State != st || j.ExecutionNode != node {
				return fmt.Errorf("%s is %s on %q (%s), want %s on %q", id, j.State, j.ExecutionNode, j.Explanation, st, node)
			}
			return nil
		})
	}
	waitExplained := func(id, fragment string) {
		t.Helper()
		poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
			if j := c.get(id); !strings.Contains(j.Explanation, fragment) {
				return fmt.Errorf("%s: %q, want %q", id, j.Explanation, fragment)
			}
			return nil
		})
	}
	// No executor yet: it says so; one joins: the job is placed.
	a := c.add(jobs.Scheduling{Impact: 2, ConcurrencyKeys: []string{"k"}})
	waitExplained(a.ID, "no executor in group default")
	x1 := c.join("x1", 4, 4)
	waitState(a.ID, jobs.Queued, "x1")
	// A second job with the same key waits; the first ends: it is placed.
	b := c.add(jobs.Scheduling{Impact: 2, ConcurrencyKeys: []string{"k"}})
	waitExplained(b.ID, "waiting for "+a.ID)
	x1.runOne(jobs.Success)
	waitState(b.ID, jobs.Queued, "x1")
	// Disabled executors get nothing; enabled again, they do.
	if _, err := instance.SetEnabled(ctxT(t), c.conn, "x1", false); err != nil {
		t.Fatal(err)
	}
	d := c.add(jobs.Scheduling{Impact: 1})
	waitExplained(d.ID, "no executor in group default")
	if _, err := instance.SetEnabled(ctxT(t), c.conn, "x1", true); err != nil {
		t.Fatal(err)
	}
	waitState(d.ID, jobs.Queued, "x1")
	// A group limit: one job at a time in edge.
	if err := instance.SetGroup(ctxT(t), c.conn, instance.Group{Name: "edge", MaxJobs: 1}); err != nil {
		t.Fatal(err)
	}
	e1 := c.join("e1", 10, 10, "edge")
	f1 := c.add(jobs.Scheduling{}, inGroups("edge"))
	f2 := c.add(jobs.Scheduling{}, inGroups("edge"))
	waitState(f1.ID, jobs.Queued, "e1")
	waitExplained(f2.ID, "group edge is at its limit of 1 jobs")
	if err := instance.SetGroup(ctxT(t), c.conn, instance.Group{Name: "edge", MaxJobs: 2}); err != nil {
		t.Fatal(err)
	}
	waitState(f2.ID, jobs.Queued, "e1")
	_ = e1
}

// A read session that answers from behind (here: one that sees another
// root, where no job exists) shares the reads of a large backlog but never
// decides alone that a job is gone: every job is still placed or
// explained, and none is dropped from the index.
func TestReadSessionBehindDropsNothing(t *testing.T) {
	c := newCluster(t)
	c.join("x1", 10_000, 10_000, "default")
	elsewhere := newCluster(t)
	key := []string{jobs.TemplateKey("t")}
	var batch []jobs.NewJob
	for range minSharedReads + 44 {
		batch = append(batch, jobs.NewJob{Action: "a", Scheduling: jobs.Scheduling{Impact: 1, ConcurrencyKeys: key}})
	}
	if _, err := c.store.CreateMany(ctxT(t), batch); err != nil {
		t.Fatal(err)
	}
	s := c.scheduler(func(cfg *Config) { cfg.Readers = []*jobs.Store{elsewhere.store} })
	rep := c.pass(s)
	if rep.Pending != len(batch) || rep.Dropped != 0 || rep.Placed != 1 || rep.Blocked != len(batch)-1 || rep.Explained != len(batch)-1 {
		t.Fatalf("pass with a read session behind: %+v", rep)
	}
}
