package scheduler

import (
	"fmt"
	"strings"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

// The decisions of a pass, in memory: what becomes of each pending job,
// given the executors, the groups, the active jobs' keys and what the
// jobs before it in the pass decided. Nothing here reads or writes
// ZooKeeper, so the rules are tested as tables.

// node is an executor as a pass sees it.
type node struct {
	name     string
	capacity int // 0: nothing may be placed on it (lost, disabled, draining)
	threads  int
	used     int // capacity its active jobs take
	jobs     int // its active jobs
	groups   []string
}

// remaining is the capacity left for one more job: 0 once every thread is
// busy.
func (n *node) remaining() int {
	if n.capacity <= 0 || n.threads > 0 && n.jobs >= n.threads {
		return 0
	}
	return max(0, n.capacity-n.used)
}

// idle reports whether the node runs nothing and may take a job.
func (n *node) idle() bool { return n.capacity > 0 && n.jobs == 0 }

// group is an instance group as a pass sees it.
type group struct {
	name     string
	maxJobs  int // 0: no limit
	maxForks int // 0: no limit
	members  []*node
}

// usage sums the jobs and the impact active on the group's executors.
func (g *group) usage() (jobs, forks int) {
	for _, n := range g.members {
		jobs += n.jobs
		forks += n.used
	}
	return jobs, forks
}

// model is the cluster as a pass sees it, updated as the pass places jobs.
type model struct {
	nodes  map[string]*node
	groups map[string]*group
	// active maps each concurrency key held by an active job to that job.
	active map[string]string
	// launch maps a job to its launch: the container of a slice, else the
	// job itself. Slices of one launch share its keys without blocking
	// one another.
	launch map[string]string
	// ahead maps a launch and a key to the job of another launch its
	// first job found ahead in the key's line ("" for none), so that its
	// later slices wait behind the same job.
	ahead map[string]string
}

// launchOf returns the launch a job belongs to.
func launchOf(j *jobs.Job) string {
	if j.IsSlice() {
		return j.ParentJob
	}
	return j.ID
}

// newModel builds the model of a cluster snapshot.
func newModel(c *instance.Cluster) *model {
	m := &model{nodes: map[string]*node{}, groups: map[string]*group{}, active: map[string]string{},
		launch: map[string]string{}, ahead: map[string]string{}}
	for _, e := range c.Executors {
		n := &node{name: e.Name, capacity: e.Capacity(), threads: e.Threads(), used: e.Used(), jobs: e.Jobs(), groups: e.Groups()}
		m.nodes[e.Name] = n
		for _, g := range n.groups {
			m.group(g).members = append(m.group(g).members, n)
		}
		for _, p := range e.Placed {
			if p.Parent != "" {
				m.launch[p.Job] = p.Parent
			}
			for _, k := range p.Keys {
				if _, ok := m.active[k]; !ok {
					m.active[k] = p.Job
				}
			}
		}
	}
	for name, g := range c.Groups {
		gr := m.group(name)
		gr.maxJobs, gr.maxForks = g.MaxJobs, g.MaxForks
	}
	return m
}

func (m *model) group(name string) *group {
	g, ok := m.groups[name]
	if !ok {
		g = &group{name: name}
		m.groups[name] = g
	}
	return g
}

// launchOfID returns the launch of a job the model knows, else the job.
func (m *model) launchOfID(id string) string {
	if l, ok := m.launch[id]; ok {
		return l
	}
	return id
}

// place records a job of impact placed on n, holding keys.
func (m *model) place(n *node, id string, impact int, keys []string) {
	n.used += impact
	n.jobs++
	for _, k := range keys {
		if _, ok := m.active[k]; !ok {
			m.active[k] = id
		}
	}
}

// fit returns the node of nodes with the most remaining capacity that
// fits impact (AWX's fit_task_to_most_remaining_capacity_instance), or
// nil; ties go to the first by name.
func fit(nodes []*node, impact int) *node {
	var best *node
	for _, n := range nodes {
		r := n.remaining()
		if r < impact || r == 0 {
			continue
		}
		if best == nil || r > best.remaining() || r == best.remaining() && n.name < best.name {
			best = n
		}
	}
	return best
}

// largestIdle returns the idle node of nodes with the largest capacity
// (AWX's find_largest_idle_instance), or nil: a job bigger than any
// executor still runs, alone.
func largestIdle(nodes []*node) *node {
	var best *node
	for _, n := range nodes {
		if !n.idle() {
			continue
		}
		if best == nil || n.capacity > best.capacity || n.capacity == best.capacity && n.name < best.name {
			best = n
		}
	}
	return best
}

// choose picks where a job of impact goes in group g: the node with the
// most remaining capacity that fits, else the largest idle one. Without a
// node it says why.
func (g *group) choose(impact int) (*node, string) {
	usable := 0
	for _, n := range g.members {
		if n.capacity > 0 {
			usable++
		}
	}
	if usable == 0 {
		return nil, fmt.Sprintf("no executor in group %s", g.name)
	}
	jobsNow, forks := g.usage()
	if g.maxJobs > 0 && jobsNow+1 > g.maxJobs {
		return nil, fmt.Sprintf("group %s is at its limit of %d jobs", g.name, g.maxJobs)
	}
	if g.maxForks > 0 && forks+impact > g.maxForks {
		return nil, fmt.Sprintf("group %s has %d of its %d forks in use: needs %d", g.name, forks, g.maxForks, impact)
	}
	if n := fit(g.members, impact); n != nil {
		return n, ""
	}
	if n := largestIdle(g.members); n != nil {
		return n, ""
	}
	most := 0
	for _, n := range g.members {
		most = max(most, n.remaining())
	}
	return nil, fmt.Sprintf("no capacity in group %s: needs %d, most free %d", g.name, impact, most)
}

// depState is what a pass knows of a job another depends on.
type depState struct {
	// final is the job's final state; "" while it is pending or active.
	final jobs.State
	// missing says the job is gone (or its document is not valid).
	missing bool
}

// verdict is what a pass decides for one pending job.
type verdict int

const (
	vPlace   verdict = iota // queue it on node, in group
	vWait                   // leave it PENDING, saying why
	vFail                   // FAILED: a dependency failed
	vEnd                    // a fan-out parent whose children have all ended
	vInvalid                // its scheduling fields are not valid: FAILED
)

// decision is a verdict with what goes with it.
type decision struct {
	verdict verdict
	node    *node
	group   string
	// text is the explanation (vWait), the failure (vFail, vInvalid) or
	// the summary (vEnd).
	text string
	// blocked says the job waits for another job (a key or a dependency)
	// rather than for capacity.
	blocked bool
	// state is the final state of a fan-out parent (vEnd).
	state jobs.State
}

// decide decides for j, the next pending job of the pass. deps answers for
// the jobs it depends on (and a fan-out parent's children); claimed maps
// the keys of the pending jobs before it in the pass to the first that
// holds each. decide records j's keys in claimed; the caller applies a
// vPlace with model.place.
func decide(m *model, j *jobs.Job, deps map[string]depState, claimed map[string]string) decision {
	if err := j.ValidateScheduling(); err != nil {
		return decision{verdict: vInvalid, text: "not scheduled: " + err.Error()}
	}
	if j.Priority < queue.MinPriority || j.Priority > queue.MaxPriority {
		return decision{verdict: vInvalid, text: fmt.Sprintf("not scheduled: priority %d is outside %d–%d", j.Priority, queue.MinPriority, queue.MaxPriority)}
	}
	if j.IsFanoutParent() {
		return decideParent(j, deps)
	}
	var waitDep string
	for _, d := range j.DependsOn {
		st, ok := deps[d]
		switch {
		case ok && st.missing:
			return decision{verdict: vFail, text: fmt.Sprintf("previous job failed: %s (it no longer exists)", d)}
		case ok && st.final == jobs.Canceled:
			return decision{verdict: vFail, text: fmt.Sprintf("previous job failed: %s (canceled)", d)}
		case ok && st.final.Final() && st.final != jobs.Success:
			return decision{verdict: vFail, text: "previous job failed: " + d}
		case !ok || !st.final.Final():
			if waitDep == "" {
				waitDep = d
			}
		}
	}
	// A job waits behind the job just ahead of it in the line of a key:
	// the newest older pending job that holds the key, else the active
	// one. The keys are claimed whatever becomes of the job, so a newer
	// job that shares one waits behind it (creation order within a
	// blocked group). Naming the job just ahead keeps each explanation
	// until that job has ended: when the line moves, only the job that
	// starts has a new state to write.
	//
	// The slices of one launch share its keys: a slice is not blocked by
	// its siblings but by what is ahead of its launch, which the first
	// slice of the pass found; a job blocked by a slice is told of the
	// slice's container.
	var blockedBy, blockKey string
	own := launchOf(j)
	if m.launch == nil {
		m.launch, m.ahead = map[string]string{}, map[string]string{}
	}
	m.launch[j.ID] = own
	for _, k := range j.ConcurrencyKeys {
		holder, ok := claimed[k]
		if !ok {
			holder = m.active[k]
		}
		line := own + "\x00" + k
		if holder != "" && m.launchOfID(holder) == own {
			holder = m.ahead[line]
		} else if _, seen := m.ahead[line]; !seen {
			m.ahead[line] = holder
		}
		if holder != "" && holder != j.ID && blockedBy == "" {
			blockedBy, blockKey = m.launchOfID(holder), k
		}
	}
	for _, k := range j.ConcurrencyKeys {
		claimed[k] = j.ID
	}
	switch {
	case waitDep != "":
		return decision{verdict: vWait, blocked: true, text: fmt.Sprintf("waiting for %s to finish (dependency)", waitDep)}
	case blockedBy != "":
		return decision{verdict: vWait, blocked: true, text: fmt.Sprintf("waiting for %s to finish (%s)", blockedBy, blockKey)}
	}
	impact := j.EffectiveImpact()
	var why []string
	for _, g := range j.Groups() {
		gr, ok := m.groups[g]
		if !ok {
			why = append(why, fmt.Sprintf("no executor in group %s", g))
			continue
		}
		n, reason := gr.choose(impact)
		if n != nil {
			return decision{verdict: vPlace, node: n, group: g}
		}
		why = append(why, reason)
	}
	return decision{verdict: vWait, text: strings.Join(why, "; ")}
}

// decideParent ends a fan-out parent once every child has ended: FAILED if
// one failed, else SUCCESS if one succeeded, else CANCELED (children
// canceled, or dropped because their executor was lost before they ran,
// do not fail it).
func decideParent(j *jobs.Job, deps map[string]depState) decision {
	counts := map[jobs.State]int{}
	waiting := 0
	for _, c := range j.NestedJobs {
		st, ok := deps[c]
		switch {
		case ok && st.missing:
			counts[jobs.Canceled]++
		case ok && st.final.Final():
			counts[st.final]++
		default:
			waiting++
		}
	}
	total := len(j.NestedJobs)
	if waiting > 0 {
		return decision{verdict: vWait, blocked: true, text: fmt.Sprintf("waiting for %d of %d fan-out jobs to finish", waiting, total)}
	}
	state := jobs.Canceled
	switch {
	case counts[jobs.Failed] > 0:
		state = jobs.Failed
	case counts[jobs.Success] > 0:
		state = jobs.Success
	}
	return decision{verdict: vEnd, state: state, text: fmt.Sprintf("%d fan-out jobs: %d succeeded, %d failed, %d canceled or not run",
		total, counts[jobs.Success], counts[jobs.Failed], counts[jobs.Canceled])}
}

// decideAll decides for the pending jobs in order — priority, then
// creation — and applies each placement to m, until stop says the pass has
// done enough (it is asked before each job, with the placements so far).
// It returns one decision per job decided.
func decideAll(m *model, pending []*jobs.Job, deps map[string]depState, stop func(placed int) bool) []decision {
	claimed := map[string]string{}
	out := make([]decision, 0, len(pending))
	placed := 0
	for _, j := range pending {
		if stop != nil && stop(placed) {
			break
		}
		d := decide(m, j, deps, claimed)
		if d.verdict == vPlace {
			m.place(d.node, j.ID, j.EffectiveImpact(), j.ConcurrencyKeys)
			placed++
		}
		out = append(out, d)
	}
	return out
}
