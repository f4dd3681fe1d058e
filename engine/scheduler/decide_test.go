package scheduler

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

// ex describes an executor of a test model: name, groups, capacity,
// capacity used and active jobs; threads default to plenty.
type ex struct {
	name     string
	groups   string // comma-separated
	capacity int
	used     int
	jobs     int
	threads  int
	disabled bool
}

// newTestModel builds a model of executors and group limits
// ("group=maxJobs/maxForks").
func newTestModel(execs []ex, limits ...string) *model {
	c := &instance.Cluster{Groups: map[string]instance.Group{}}
	m := &model{nodes: map[string]*node{}, groups: map[string]*group{}, active: map[string]string{}}
	for _, e := range execs {
		threads := e.threads
		if threads == 0 {
			threads = 100
		}
		capacity := e.capacity
		if e.disabled {
			capacity = 0
		}
		n := &node{name: e.name, capacity: capacity, threads: threads, used: e.used, jobs: e.jobs, groups: strings.Split(e.groups, ",")}
		m.nodes[n.name] = n
		for _, g := range n.groups {
			m.group(g).members = append(m.group(g).members, n)
		}
	}
	for _, l := range limits {
		var name string
		var maxJobs, maxForks int
		if _, err := fmt.Sscanf(strings.Replace(l, "=", " ", 1), "%s %d/%d", &name, &maxJobs, &maxForks); err != nil {
			panic(err)
		}
		c.Groups[name] = instance.Group{Name: name, MaxJobs: maxJobs, MaxForks: maxForks}
		g := m.group(name)
		g.maxJobs, g.maxForks = maxJobs, maxForks
	}
	return m
}

// pj is a pending job of a test: its id is "job/<name>".
func pj(name string, impact int, mod ...func(*jobs.Job)) *jobs.Job {
	j := &jobs.Job{ID: "job/" + name, State: jobs.Pending, Scheduling: jobs.Scheduling{Impact: impact}}
	for _, m := range mod {
		m(j)
	}
	return j
}

func keys(k ...string) func(*jobs.Job) { return func(j *jobs.Job) { j.ConcurrencyKeys = k } }

func groups(g ...string) func(*jobs.Job) { return func(j *jobs.Job) { j.InstanceGroups = g } }

func dependsOn(ids ...string) func(*jobs.Job) { return func(j *jobs.Job) { j.DependsOn = ids } }

// outcome renders a decision: "x1" (placed there), "wait: …", "fail: …".
func outcome(d decision) string {
	switch d.verdict {
	case vPlace:
		return d.node.name
	case vWait:
		return "wait: " + d.text
	case vFail, vInvalid:
		return "fail: " + d.text
	case vEnd:
		return "end " + string(d.state) + ": " + d.text
	}
	return "?"
}

func outcomes(m *model, pending []*jobs.Job, deps map[string]depState) []string {
	var out []string
	for _, d := range decideAll(m, pending, deps, nil) {
		out = append(out, outcome(d))
	}
	return out
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Placement: the executor with the most remaining capacity that fits,
// else the largest idle one, never a disabled one, never past its
// threads.
func TestPlacementTable(t *testing.T) {
	const gib = int64(1) << 30
	machine := instance.Resources{CPUs: 4, MemoryBytes: 8 * gib} // CPU 16, memory 61
	capa := func(adj float64) int {
		return instance.Compute(machine, instance.CapacitySettings{Adjustment: adj}).Total
	}
	cases := []struct {
		name   string
		execs  []ex
		impact int
		want   string
	}{
		{"most remaining capacity that fits", []ex{{"a", "g", 10, 2, 1, 0, false}, {"b", "g", 6, 0, 0, 0, false}}, 3, "a"},
		{"the fuller one when only it fits", []ex{{"a", "g", 10, 8, 1, 0, false}, {"b", "g", 20, 10, 1, 0, false}}, 10, "b"},
		{"ties go by name", []ex{{"b", "g", 5, 0, 0, 0, false}, {"a", "g", 5, 0, 0, 0, false}}, 1, "a"},
		{"nothing fits: the largest idle one", []ex{{"a", "g", 4, 0, 0, 0, false}, {"b", "g", 8, 0, 0, 0, false}, {"c", "g", 50, 45, 1, 0, false}}, 10, "b"},
		{"nothing fits, nothing idle", []ex{{"a", "g", 4, 1, 1, 0, false}, {"b", "g", 8, 2, 1, 0, false}}, 10, "wait: no capacity in group g: needs 10, most free 6"},
		{"a disabled executor is never chosen", []ex{{"a", "g", 100, 0, 0, 0, true}}, 1, "wait: no executor in group g"},
		{"disabled beside an enabled one", []ex{{"a", "g", 100, 0, 0, 0, true}, {"b", "g", 2, 1, 1, 0, false}}, 1, "b"},
		{"all threads busy", []ex{{"a", "g", 10, 1, 1, 1, false}}, 1, "wait: no capacity in group g: needs 1, most free 0"},
		{"adjustment 0 (16): a job of 20 runs alone", []ex{{"a", "g", capa(0), 0, 0, 0, false}}, 20, "a"},
		{"adjustment 0 (16): not beside another", []ex{{"a", "g", capa(0), 1, 1, 0, false}}, 20, "wait: no capacity in group g: needs 20, most free 15"},
		{"adjustment 0.5 (38) fits 20 beside 1", []ex{{"a", "g", capa(0.5), 1, 1, 0, false}}, 20, "a"},
		{"adjustment 1 (61) fits 20 beside 40", []ex{{"a", "g", capa(1), 40, 2, 0, false}}, 20, "a"},
		{"adjustment 1.5 (83) fits 40 beside 40", []ex{{"a", "g", capa(1.5), 40, 2, 0, false}}, 40, "a"},
		{"adjustment 1 (61) does not", []ex{{"a", "g", capa(1), 40, 2, 0, false}}, 40, "wait: no capacity in group g: needs 40, most free 21"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel(tc.execs)
			check(t, outcomes(m, []*jobs.Job{pj("j", tc.impact, groups("g"))}, nil), tc.want)
		})
	}
}

// AWX: a second launch of a template waits until the first ends, unless
// the template allows simultaneous runs (its jobs then carry no key).
func TestSecondLaunchBlockedUnlessSimultaneous(t *testing.T) {
	execs := []ex{{"x1", "default", 100, 0, 0, 0, false}}
	key := keys(jobs.TemplateKey("deploy"))
	check(t, outcomes(newTestModel(execs), []*jobs.Job{pj("a", 1, key), pj("b", 1, key)}, nil),
		"x1", "wait: waiting for job/a to finish (template:deploy)")
	// The first is running: the second still waits.
	m := newTestModel(execs)
	m.active[jobs.TemplateKey("deploy")] = "job/a"
	check(t, outcomes(m, []*jobs.Job{pj("b", 1, key)}, nil), "wait: waiting for job/a to finish (template:deploy)")
	// Simultaneous runs allowed: both start.
	check(t, outcomes(newTestModel(execs), []*jobs.Job{pj("a", 1), pj("b", 1)}, nil), "x1", "x1")
}

// AWX: jobs of different templates wait for capacity, not for each other;
// a smaller job may pass a bigger one that waits.
func TestCapacityBlockingAcrossTemplates(t *testing.T) {
	execs := []ex{{"x1", "default", 10, 0, 0, 0, false}}
	check(t, outcomes(newTestModel(execs), []*jobs.Job{
		pj("a", 6, keys(jobs.TemplateKey("one"))),
		pj("b", 6, keys(jobs.TemplateKey("two"))),
		pj("c", 3, keys(jobs.TemplateKey("three"))),
	}, nil), "x1", "wait: no capacity in group default: needs 6, most free 4", "x1")
}

// An older pending job holds its keys even while it waits for capacity:
// within a blocked group, jobs run in creation order.
func TestOlderPendingJobHoldsItsKeys(t *testing.T) {
	execs := []ex{{"x1", "default", 4, 2, 1, 0, false}}
	check(t, outcomes(newTestModel(execs), []*jobs.Job{pj("big", 5, keys("k")), pj("small", 1, keys("k"))}, nil),
		"wait: no capacity in group default: needs 5, most free 2", "wait: waiting for job/big to finish (k)")
}

// AWX: group limits — max concurrent jobs, max forks — fail a job over to
// its next group.
func TestGroupLimits(t *testing.T) {
	execs := []ex{{"x1", "edge", 100, 0, 0, 0, false}, {"x2", "default", 100, 0, 0, 0, false}}
	check(t, outcomes(newTestModel(execs, "edge=1/0"), []*jobs.Job{pj("a", 1, groups("edge")), pj("b", 1, groups("edge"))}, nil),
		"x1", "wait: group edge is at its limit of 1 jobs")
	check(t, outcomes(newTestModel(execs, "edge=0/10"), []*jobs.Job{pj("a", 6, groups("edge")), pj("b", 6, groups("edge", "default"))}, nil),
		"x1", "x2")
	check(t, outcomes(newTestModel(execs, "edge=0/10"), []*jobs.Job{pj("a", 6, groups("edge")), pj("b", 6, groups("edge"))}, nil),
		"x1", "wait: group edge has 6 of its 10 forks in use: needs 6")
}

// AWX: a job fails over to the next of its groups when the first has no
// room; a full group does not block jobs of other groups; every group
// that was tried says why.
func TestFailoverAndFullGroupsDoNotBlockOthers(t *testing.T) {
	execs := []ex{{"e1", "edge", 4, 4, 1, 0, false}, {"d1", "default", 10, 0, 0, 0, false}}
	check(t, outcomes(newTestModel(execs), []*jobs.Job{
		pj("a", 2, groups("edge", "default")),
		pj("b", 2, groups("edge")),
		pj("c", 2, groups("default")),
		pj("d", 2, groups("nowhere", "edge")),
	}, nil),
		"d1",
		"wait: no capacity in group edge: needs 2, most free 0",
		"d1",
		"wait: no executor in group nowhere; no capacity in group edge: needs 2, most free 0")
}

// AWX: jobs that share a dependency wait for it, start once it succeeded,
// fail once it failed.
const upd = "job/00000000-0000-4000-8000-0000000000a1"

func TestSharedDependency(t *testing.T) {
	execs := []ex{{"x1", "default", 100, 0, 0, 0, false}}
	pending := func() []*jobs.Job {
		return []*jobs.Job{pj("a", 1, dependsOn(upd)), pj("b", 1, dependsOn(upd))}
	}
	check(t, outcomes(newTestModel(execs), pending(), nil),
		"wait: waiting for "+upd+" to finish (dependency)", "wait: waiting for "+upd+" to finish (dependency)")
	check(t, outcomes(newTestModel(execs), pending(), map[string]depState{upd: {final: jobs.Success}}), "x1", "x1")
	check(t, outcomes(newTestModel(execs), pending(), map[string]depState{upd: {final: jobs.Failed}}),
		"fail: previous job failed: "+upd, "fail: previous job failed: "+upd)
	check(t, outcomes(newTestModel(execs), pending()[:1], map[string]depState{upd: {final: jobs.Canceled}}),
		"fail: previous job failed: "+upd+" (canceled)")
	check(t, outcomes(newTestModel(execs), pending()[:1], map[string]depState{upd: {missing: true}}),
		"fail: previous job failed: "+upd+" (it no longer exists)")
}

func TestFanoutParentEndsWithItsChildren(t *testing.T) {
	parent := func() *jobs.Job {
		return pj("p", 0, func(j *jobs.Job) { j.FanoutGroup = "edge"; j.NestedJobs = []string{"job/c1", "job/c2", "job/c3"} })
	}
	m := newTestModel(nil)
	check(t, outcomes(m, []*jobs.Job{parent()}, map[string]depState{"job/c1": {final: jobs.Success}}),
		"wait: waiting for 2 of 3 fan-out jobs to finish")
	check(t, outcomes(m, []*jobs.Job{parent()}, map[string]depState{
		"job/c1": {final: jobs.Success}, "job/c2": {final: jobs.Canceled}, "job/c3": {missing: true}}),
		"end SUCCESS: 3 fan-out jobs: 1 succeeded, 0 failed, 2 canceled or not run")
	check(t, outcomes(m, []*jobs.Job{parent()}, map[string]depState{
		"job/c1": {final: jobs.Success}, "job/c2": {final: jobs.Failed}, "job/c3": {final: jobs.Success}}),
		"end FAILED: 3 fan-out jobs: 2 succeeded, 1 failed, 0 canceled or not run")
}

// A pending document is input: scheduling fields that do not validate
// fail the job instead of being acted on.
func TestInvalidSchedulingFieldsFailTheJob(t *testing.T) {
	got := outcomes(newTestModel(nil), []*jobs.Job{
		pj("bad", 1, groups("no/slashes")),
		pj("prio", 1, func(j *jobs.Job) { j.Priority = 1000 }),
	}, nil)
	if len(got) != 2 || !strings.HasPrefix(got[0], "fail: not scheduled: ") || !strings.HasPrefix(got[1], "fail: not scheduled: priority 1000") {
		t.Fatalf("got %v", got)
	}
}

// decideAll stops when told to, with the placements so far.
func TestDecideAllStops(t *testing.T) {
	m := newTestModel([]ex{{"x1", "default", 100, 0, 0, 0, false}})
	ds := decideAll(m, []*jobs.Job{pj("a", 1), pj("b", 1), pj("c", 1)}, nil, func(placed int) bool { return placed >= 2 })
	if len(ds) != 2 || m.nodes["x1"].used != 2 {
		t.Fatalf("%d decisions, used %d", len(ds), m.nodes["x1"].used)
	}
}

// A job waits behind the one just ahead of it for a key, so its
// explanation holds until that one has ended: when the line moves, only
// the job that starts changes.
func TestExplanationsHoldWhileTheLineMoves(t *testing.T) {
	execs := []ex{{"x1", "default", 100, 0, 0, 0, false}}
	line := func() []*jobs.Job {
		return []*jobs.Job{pj("j2", 1, keys("k")), pj("j3", 1, keys("k")), pj("j4", 1, keys("k"))}
	}
	m := newTestModel(execs)
	m.active["k"] = "job/j1"
	check(t, outcomes(m, line(), nil),
		"wait: waiting for job/j1 to finish (k)", "wait: waiting for job/j2 to finish (k)", "wait: waiting for job/j3 to finish (k)")
	// j1 ends: j2 starts; j3 and j4 say what they said.
	check(t, outcomes(newTestModel(execs), line(), nil),
		"x1", "wait: waiting for job/j2 to finish (k)", "wait: waiting for job/j3 to finish (k)")
}

// slice is a mod making a test job slice k of container c.
func slice(c string, k, n int) func(*jobs.Job) {
	return func(j *jobs.Job) {
		j.ParentJob, j.SliceNumber, j.SliceCount = "job/"+c, k, n
	}
}

// The slices of one launch share its template key without blocking one
// another; another launch waits behind the whole launch, named by its
// container; slices behind another launch all wait for it.
func TestSlicesShareTheirLaunchKey(t *testing.T) {
	tk := keys(jobs.TemplateKey("deploy"))
	m := newTestModel([]ex{{"x", "default", 100, 0, 0, 0, false}})
	check(t, outcomes(m, []*jobs.Job{
		pj("a1", 2, tk, slice("a", 1, 3)), pj("a2", 2, tk, slice("a", 2, 3)), pj("a3", 2, tk, slice("a", 3, 3)),
		pj("b", 2, tk), pj("c1", 2, tk, slice("c", 1, 2)), pj("c2", 2, tk, slice("c", 2, 2)),
	}, nil), "x", "x", "x",
		"wait: waiting for job/a to finish (template:deploy)",
		"wait: waiting for job/b to finish (template:deploy)",
		"wait: waiting for job/b to finish (template:deploy)")

	// A plain launch is running: every slice of the next one waits for it.
	m = newTestModel([]ex{{"x", "default", 100, 2, 1, 0, false}})
	m.active[jobs.TemplateKey("deploy")] = "job/p"
	check(t, outcomes(m, []*jobs.Job{pj("a1", 2, tk, slice("a", 1, 2)), pj("a2", 2, tk, slice("a", 2, 2))}, nil),
		"wait: waiting for job/p to finish (template:deploy)", "wait: waiting for job/p to finish (template:deploy)")

	// One slice of a launch runs: its sibling is placed, another launch waits.
	m = newTestModel([]ex{{"x", "default", 100, 2, 1, 0, false}})
	m.active[jobs.TemplateKey("deploy")] = "job/a1"
	m.launch = map[string]string{"job/a1": "job/a"}
	m.ahead = map[string]string{}
	check(t, outcomes(m, []*jobs.Job{pj("a2", 2, tk, slice("a", 2, 2)), pj("b", 2, tk)}, nil),
		"x", "wait: waiting for job/a to finish (template:deploy)")
}
