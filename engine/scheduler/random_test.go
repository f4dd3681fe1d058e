package scheduler

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

var (
	seedFlag  = flag.Uint64("scheduler.seed", 0, "seed of TestRandomized (0: from the clock); the test logs the one it used")
	stepsFlag = flag.Int("scheduler.steps", 40, "steps of TestRandomized")
)

// randomRun is one replayable run of TestRandomized.
type randomRun struct {
	t    *testing.T
	c    *cluster
	rng  *rand.Rand
	s    *Scheduler
	r    *Reaper
	ids  []string // every job launched, in order
	held map[string][]held
	next int // executor names
	// totals over the run's passes, to show the run exercised the rules
	placed, blocked, noRoom, failed int
}

// held is a job a simulated executor has started.
type held struct {
	h jobs.Hold
	c *jobs.Change
}

var randomGroups = []string{"default", "edge", "gpu"}

// TestRandomized drives launches, completions and executors that join,
// leave, change capacity and are disabled, from a seed, and checks after
// every step (two passes and a reap): no two active jobs share a key; no
// executor got a job beyond its capacity unless it runs that job alone;
// no job is queued twice; every pending job is blocked, lacks capacity and
// says so, or was placed.
func TestRandomized(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	steps := *stepsFlag
	if testing.Short() {
		steps = min(steps, 10)
	}
	t.Logf("seed %d (replay: go test ./engine/scheduler -run TestRandomized -scheduler.seed=%d -scheduler.steps=%d)", seed, seed, steps)
	c := newCluster(t)
	run := &randomRun{t: t, c: c, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), held: map[string][]held{}}
	run.s = c.scheduler()
	run.r = c.reaper(-1)
	if err := instance.SetGroup(ctxT(t), c.conn, instance.Group{Name: "gpu", MaxJobs: 3, MaxForks: 12}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		run.join()
	}
	for step := range steps {
		run.step(step)
	}
	t.Logf("%d jobs: %d placements, %d waits for other jobs, %d waits for room, %d failed dependencies over the passes",
		len(run.ids), run.placed, run.blocked, run.noRoom, run.failed)
	if steps >= 20 && (run.placed == 0 || run.blocked == 0 || run.noRoom == 0) {
		t.Fatalf("the run did not exercise placement, blocking and capacity (seed %d): try another seed", seed)
	}
}

func (r *randomRun) step(step int) {
	t := r.t
	ctx := ctxT(t)
	for range r.rng.IntN(6) {
		r.launch()
	}
	switch k := r.rng.IntN(10); {
	case k < 2:
		r.join()
	case k < 3 && len(r.c.execs) > 1:
		x := r.pick()
		delete(r.held, x.name)
		x.leave()
	case k < 4 && len(r.c.execs) > 0:
		x := r.pick()
		capa := 1 + r.rng.IntN(20)
		rec, _, err := instance.ReadRecord(ctx, x.conn, x.name)
		if err != nil {
			t.Fatal(err)
		}
		rec.Capacity = capa
		if _, err := instance.Register(ctx, x.conn, *rec); err != nil {
			t.Fatal(err)
		}
	case k < 5 && len(r.c.execs) > 0:
		x := r.pick()
		rec, _, _ := instance.ReadRecord(ctx, x.conn, x.name)
		if _, err := instance.SetEnabled(ctx, x.conn, x.name, !rec.Enabled); err != nil {
			t.Fatal(err)
		}
	}
	// Executors start some of their placed jobs and end some running ones.
	waiting := map[string]int{}
	for id, name := range r.placedJobs() {
		if !slices.ContainsFunc(r.held[name], func(h held) bool { return h.c.Job().ID == id }) {
			waiting[name]++
		}
	}
	for _, name := range r.names() {
		x := r.c.execs[name]
		for range min(waiting[name], r.rng.IntN(3)) {
			h, ch, err := x.start(ctx)
			if err != nil {
				t.Fatalf("step %d: %s starting a job: %v", step, name, err)
			}
			r.held[name] = append(r.held[name], held{h, ch})
		}
		for len(r.held[name]) > 0 && r.rng.IntN(3) > 0 {
			i := r.rng.IntN(len(r.held[name]))
			hd := r.held[name][i]
			r.held[name] = slices.Delete(r.held[name], i, i+1)
			state := jobs.Success
			if r.rng.IntN(5) == 0 {
				state = jobs.Failed
			}
			if err := x.finish(ctx, hd.h, hd.c, state); err != nil {
				t.Fatalf("step %d: finishing %s on %s: %v", step, hd.c.Job().ID, name, err)
			}
		}
	}
	if _, err := r.r.Reap(ctx, r.c.term()); err != nil {
		t.Fatal(err)
	}
	before := r.placedJobs()
	for pass := range 2 {
		rep, err := r.s.Pass(ctx, r.c.term())
		if err != nil {
			t.Fatalf("step %d pass %d: %v", step, pass, err)
		}
		if rep.Cut {
			t.Fatalf("step %d: pass cut short: %+v", step, rep)
		}
		r.placed += rep.Placed
		r.blocked += rep.Blocked
		r.noRoom += rep.NoCapacity
		r.failed += rep.Failed
	}
	r.check(step, before)
}

func (r *randomRun) names() []string {
	var out []string
	for n := range r.c.execs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (r *randomRun) pick() *fakeExecutor { return r.c.execs[r.names()[r.rng.IntN(len(r.c.execs))]] }

func (r *randomRun) join() {
	r.next++
	var groups []string
	for _, g := range randomGroups {
		if r.rng.IntN(2) == 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		groups = []string{"default"}
	}
	r.c.join(fmt.Sprintf("x%d", r.next), 1+r.rng.IntN(20), 1+r.rng.IntN(6), groups...)
}

func (r *randomRun) launch() {
	sc := jobs.Scheduling{Impact: 1 + r.rng.IntN(8)}
	if r.rng.IntN(2) == 0 {
		sc.ConcurrencyKeys = []string{fmt.Sprintf("template:t%d", r.rng.IntN(4))}
	}
	if r.rng.IntN(4) == 0 {
		sc.ConcurrencyKeys = append(sc.ConcurrencyKeys, jobs.SystemKey)
	}
	var groups []string
	for _, g := range randomGroups {
		if r.rng.IntN(3) == 0 {
			groups = append(groups, g)
		}
	}
	if len(r.ids) > 0 && r.rng.IntN(4) == 0 {
		sc.DependsOn = []string{r.ids[r.rng.IntN(len(r.ids))]}
	}
	r.ids = append(r.ids, r.c.add(sc, inGroups(groups...)).ID)
}

// placedJobs maps each job on a direct queue to its executor.
func (r *randomRun) placedJobs() map[string]string {
	snap, err := instance.NewReader(r.c.store, nil).Read(ctxT(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range snap.Executors {
		for _, p := range e.Placed {
			out[p.Job] = e.Name
		}
	}
	return out
}

// check verifies the invariants after a step; before are the jobs that
// were on direct queues before its passes.
func (r *randomRun) check(step int, before map[string]string) {
	t := r.t
	ctx := ctxT(t)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("step %d: "+format, append([]any{step}, args...)...)
	}
	snap, err := instance.NewReader(r.c.store, nil).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]*jobs.Job{}
	if err := r.c.store.Walk(ctx, func(j *jobs.Job, _ int32) { all[j.ID] = j }); err != nil {
		t.Fatal(err)
	}
	// No job is queued twice, and every job on a direct queue is active
	// and says it is there.
	seen := map[string]string{}
	for _, e := range snap.Executors {
		for _, p := range e.Placed {
			if other, ok := seen[p.Job]; ok {
				fail("%s is queued on %s and on %s", p.Job, other, e.Name)
			}
			seen[p.Job] = e.Name
			j := all[p.Job]
			if j == nil || (j.State != jobs.Queued && j.State != jobs.Running) || j.ExecutionNode != e.Name {
				fail("entry of %s on %s: job %+v", p.Job, e.Name, j)
			}
		}
	}
	// No two active jobs share a key.
	holders := map[string]string{}
	for _, j := range all {
		if j.State != jobs.Queued && j.State != jobs.Running {
			continue
		}
		if _, ok := seen[j.ID]; !ok {
			fail("%s is %s but on no direct queue", j.ID, j.State)
		}
		for _, k := range j.ConcurrencyKeys {
			if other, ok := holders[k]; ok {
				fail("active jobs %s and %s share the key %s", other, j.ID, k)
			}
			holders[k] = j.ID
		}
	}
	// An executor that got jobs in this step's passes is within its
	// capacity, or runs one job alone.
	for _, e := range snap.Executors {
		got := false
		for _, p := range e.Placed {
			if _, was := before[p.Job]; !was {
				got = true
			}
		}
		if !got {
			continue
		}
		if e.Capacity() == 0 {
			fail("%s (%s) got a job", e.Name, e.State())
		}
		if e.Used() > e.Capacity() && e.Jobs() > 1 {
			fail("%s got a job beyond its capacity: %d used of %d by %d jobs", e.Name, e.Used(), e.Capacity(), e.Jobs())
		}
	}
	// Every pending job says why it waits, and the reason holds.
	for _, j := range all {
		switch {
		case j.State == jobs.Failed && strings.HasPrefix(j.StatusMessage, "previous job failed: "):
			dep := all[j.DependsOn[0]]
			if dep != nil && dep.State != jobs.Failed && dep.State != jobs.Canceled {
				fail("%s failed for its dependency %s, which is %s", j.ID, dep.ID, dep.State)
			}
		case j.State != jobs.Pending:
		case j.Explanation == "":
			fail("%s is PENDING without an explanation", j.ID)
		case strings.HasPrefix(j.Explanation, "waiting for "):
			r.checkBlocked(j, all, fail)
		default:
			r.checkNoRoom(j, snap, fail)
		}
	}
}

// checkBlocked verifies that what a blocked job waits for is still there.
func (r *randomRun) checkBlocked(j *jobs.Job, all map[string]*jobs.Job, fail func(string, ...any)) {
	var id, why string
	if _, err := fmt.Sscanf(j.Explanation, "waiting for %s to finish %s", &id, &why); err != nil {
		fail("%s: explanation %q", j.ID, j.Explanation)
	}
	other := all[id]
	if other == nil || other.State.Final() {
		fail("%s waits for %s, which has ended (%v)", j.ID, id, other)
	}
	key := strings.Trim(why, "()")
	if key != "dependency" && !slices.Contains(other.ConcurrencyKeys, key) {
		fail("%s waits for %s for key %s, which it does not hold", j.ID, id, key)
	}
	if key != "dependency" && other.State == jobs.Pending && !other.Created.Before(j.Created) && other.Created != j.Created {
		fail("%s waits for %s, a newer pending job", j.ID, id)
	}
}

// checkNoRoom verifies, independently of the scheduler's own code, that no
// group of a job waiting for room has any: no usable executor with enough
// capacity and a free thread, nor an idle one, within the group's limits.
func (r *randomRun) checkNoRoom(j *jobs.Job, snap *instance.Cluster, fail func(string, ...any)) {
	impact := j.EffectiveImpact()
	for _, g := range j.Groups() {
		members := snap.Members(g)
		jobsNow, forks := 0, 0
		for _, e := range members {
			jobsNow += e.Jobs()
			forks += e.Used()
		}
		lim := snap.Groups[g]
		if lim.MaxJobs > 0 && jobsNow+1 > lim.MaxJobs || lim.MaxForks > 0 && forks+impact > lim.MaxForks {
			continue
		}
		for _, e := range members {
			if e.Capacity() == 0 {
				continue
			}
			free := e.Capacity() - e.Used()
			if e.Jobs() == 0 || free >= impact && e.Jobs() < e.Threads() {
				fail("%s waits (%q) but %s of group %s has room: capacity %d, used %d, %d jobs, %d threads",
					j.ID, j.Explanation, e.Name, g, e.Capacity(), e.Used(), e.Jobs(), e.Threads())
			}
		}
	}
}
