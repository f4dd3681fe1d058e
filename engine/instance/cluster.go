package instance

import (
	"slices"
	"sort"
	"time"
)

// Executor states as Cluster reports them.
const (
	StateLive     = "live"
	StateLost     = "lost"
	StateDisabled = "disabled"
	StateDraining = "draining"
)

// Placed is a job on an executor's direct queue: placed there by the
// scheduler (or a fan-out), and active until its final write consumes the
// entry.
type Placed struct {
	// Entry is the entry's name in the direct queue.
	Entry string `json:"entry"`
	// Job is the job's id.
	Job string `json:"job"`
	// Impact, Keys and Group are the job's impact, concurrency keys and
	// the group it was placed in; Fanout marks a fan-out child.
	Impact int      `json:"impact"`
	Keys   []string `json:"concurrency-keys,omitempty"`
	Group  string   `json:"instance-group,omitempty"`
	Fanout bool     `json:"fanout,omitempty"`
	// Parent is the container of a slice (whose sibling slices share its
	// concurrency keys without being blocked by it).
	Parent string `json:"parent-job,omitempty"`
	// Taken says a consumer holds the entry (the job runs, or is about to).
	Taken bool `json:"taken"`
	// Missing says the job's document is gone or unreadable: the entry is
	// stale.
	Missing bool `json:"missing,omitempty"`
}

// Executor is what the cluster knows of one executor.
type Executor struct {
	Name string `json:"name"`
	// Record is its instance record; nil for an executor of a version
	// that keeps none (it serves the shared queue only).
	Record *Record `json:"record,omitempty"`
	// Heartbeat is its heartbeat; nil when it is lost.
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
	// LastSeen is the time of its last heartbeat.
	LastSeen time.Time `json:"last-seen"`
	// Placed are the jobs on its direct queue, in queue order.
	Placed []Placed `json:"placed"`
}

// Live reports whether the executor has a heartbeat.
func (e *Executor) Live() bool { return e.Heartbeat != nil }

// State is live, lost, disabled or draining.
func (e *Executor) State() string {
	switch {
	case !e.Live():
		return StateLost
	case e.Record != nil && !e.Record.Enabled:
		return StateDisabled
	case e.Record != nil && e.Record.Draining:
		return StateDraining
	}
	return StateLive
}

// Groups returns the executor's instance groups.
func (e *Executor) Groups() []string {
	if e.Record != nil {
		return e.Record.Groups
	}
	return nil
}

// InGroup reports whether the executor joins group g.
func (e *Executor) InGroup(g string) bool { return slices.Contains(e.Groups(), g) }

// Capacity returns the capacity the scheduler may use: the record's while
// the executor is live, enabled and not draining, else 0.
func (e *Executor) Capacity() int {
	if e.Record == nil || e.State() != StateLive {
		return 0
	}
	return e.Record.Capacity
}

// Threads returns how many jobs the executor runs at once.
func (e *Executor) Threads() int {
	switch {
	case e.Record != nil:
		return e.Record.Threads
	case e.Heartbeat != nil:
		return e.Heartbeat.Threads
	}
	return 0
}

// sharedRunning counts the jobs it runs from the shared queue (by its
// heartbeat): the running jobs not on its direct queue.
func (e *Executor) sharedRunning() int {
	if e.Heartbeat == nil {
		return 0
	}
	placed := make(map[string]bool, len(e.Placed))
	for _, p := range e.Placed {
		placed[p.Job] = true
	}
	n := 0
	for _, r := range e.Heartbeat.Running {
		if !placed[r.Job] {
			n++
		}
	}
	return n
}

// Used returns the capacity its active jobs take: the impact of each job on
// its direct queue, and 1 for each job it runs from the shared queue.
func (e *Executor) Used() int {
	n := e.sharedRunning()
	for _, p := range e.Placed {
		n += p.Impact
	}
	return n
}

// Jobs returns how many jobs are active on it: placed or running.
func (e *Executor) Jobs() int { return len(e.Placed) + e.sharedRunning() }

// Cluster is a snapshot of the executors, their direct queues and the
// groups' settings.
type Cluster struct {
	// Executors are every executor with a record or a heartbeat, by name.
	Executors []*Executor `json:"executors"`
	// Groups are the settings of the groups that have some.
	Groups map[string]Group `json:"groups"`
	// Problems are the bad objects left out (records, heartbeats, group
	// settings that do not decode or validate).
	Problems []error `json:"-"`
	// ReadAt is when the snapshot was read.
	ReadAt time.Time `json:"read-at"`
}

// Executor returns the executor called name, or nil.
func (c *Cluster) Executor(name string) *Executor {
	i := sort.Search(len(c.Executors), func(i int) bool { return c.Executors[i].Name >= name })
	if i < len(c.Executors) && c.Executors[i].Name == name {
		return c.Executors[i]
	}
	return nil
}

// GroupNames returns every group some executor joins or that has
// settings, sorted.
func (c *Cluster) GroupNames() []string {
	set := map[string]bool{}
	for _, e := range c.Executors {
		for _, g := range e.Groups() {
			set[g] = true
		}
	}
	for g := range c.Groups {
		set[g] = true
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// Members returns the executors that join group g, by name.
func (c *Cluster) Members(g string) []*Executor {
	var out []*Executor
	for _, e := range c.Executors {
		if e.InGroup(g) {
			out = append(out, e)
		}
	}
	return out
}

// Versions maps each version that live executors run to their names.
func (c *Cluster) Versions() map[string][]string {
	out := map[string][]string{}
	for _, e := range c.Executors {
		if e.Heartbeat != nil {
			out[e.Heartbeat.Version] = append(out[e.Heartbeat.Version], e.Name)
		}
	}
	return out
}
