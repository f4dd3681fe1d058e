package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/jobengine/jobengine/engine/instance"
)

// Instances are the executors as the scheduler sees them: their instance
// records (capacity, groups, enabled), heartbeats (live or lost, last
// seen, running jobs) and direct queues (capacity in use), read with
// engine/instance's Reader. An executor whose heartbeat is gone stays
// listed, as lost, with its last heartbeat.

// DefaultGroup is the instance group of an executor that names none.
const DefaultGroup = "default"

func (s *Server) instanceRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/instances", handle: s.listInstances},
		{method: "GET", pattern: Prefix + "/instances/{name}", handle: s.showInstance},
		{method: "GET", pattern: Prefix + "/instance-groups", handle: s.listInstanceGroups},
		{method: "GET", pattern: Prefix + "/instance-groups/{name}", handle: s.showInstanceGroup},
	}
}

// Instance is an executor as the API shows it.
type Instance struct {
	Name    string `json:"name"`
	Host    string `json:"host"`
	Version string `json:"version"`
	// State is live, lost, disabled or draining.
	State   string `json:"state"`
	Enabled bool   `json:"enabled"`
	// Capacity is its capacity (AWX's formula, from its record); Used the
	// capacity its active jobs take. The scheduler places nothing on a
	// lost, disabled or draining executor.
	Capacity int `json:"capacity"`
	Used     int `json:"capacity-used"`
	// Threads is how many jobs it runs at once; Busy how many it runs.
	Threads int `json:"threads"`
	Busy    int `json:"busy"`
	// Started is when it started; LastSeen its last heartbeat.
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last-seen"`
	Actions  []string  `json:"actions"`
	Groups   []string  `json:"instance-groups"`
	// Running lists the jobs it runs.
	Running []instance.RunningJob `json:"running"`
}

// InstanceGroup is a group of instances with their capacity (of its live,
// enabled members).
type InstanceGroup struct {
	Name      string   `json:"name"`
	Instances []string `json:"instances"`
	Capacity  int      `json:"capacity"`
	Used      int      `json:"capacity-used"`
	// Busy counts the jobs its members run.
	Busy int `json:"busy"`
}

// cluster reads a snapshot of the executors.
func (s *Server) cluster(ctx context.Context) (*instance.Cluster, error) {
	return instance.NewReader(s.cfg.Jobs, nil).Read(ctx)
}

// instanceOf is the API's view of an executor.
func instanceOf(e *instance.Executor) Instance {
	in := Instance{Name: e.Name, State: e.State(), Capacity: e.Capacity(), Used: e.Used(), Threads: e.Threads(),
		LastSeen: e.LastSeen, Actions: []string{}, Groups: e.Groups(), Running: []instance.RunningJob{}}
	if r := e.Record; r != nil {
		in.Host, in.Version, in.Enabled, in.Started = r.Host, r.Version, r.Enabled, r.Started
		if in.State != instance.StateLive {
			// What it would offer: shown as total, while the scheduler
			// uses none of it.
			in.Capacity = r.Capacity
		}
		for _, a := range r.Actions {
			in.Actions = append(in.Actions, a.Name)
		}
	}
	if hb := e.Heartbeat; hb != nil {
		in.Host, in.Version, in.Started, in.Busy = hb.Host, hb.Version, hb.Started, hb.Busy
		if e.Record == nil {
			in.Enabled, in.Actions = true, append([]string{}, hb.Actions...)
		}
		if hb.Running != nil {
			in.Running = hb.Running
		}
	}
	if len(in.Groups) == 0 {
		in.Groups = []string{DefaultGroup}
	}
	return in
}

// instances is every executor with a record or a heartbeat, by name.
func (s *Server) instances(ctx context.Context) ([]Instance, error) {
	c, err := s.cluster(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Instance, 0, len(c.Executors))
	for _, e := range c.Executors {
		out = append(out, instanceOf(e))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// groups derives the instance groups from the instances: every group some
// executor joins, and the default group.
func groups(insts []Instance) []InstanceGroup {
	byName := map[string]*InstanceGroup{DefaultGroup: {Name: DefaultGroup, Instances: []string{}}}
	for _, in := range insts {
		for _, g := range in.Groups {
			ig := byName[g]
			if ig == nil {
				ig = &InstanceGroup{Name: g, Instances: []string{}}
				byName[g] = ig
			}
			ig.Instances = append(ig.Instances, in.Name)
			if in.State == instance.StateLive {
				ig.Capacity += in.Capacity
			}
			ig.Used += in.Used
			ig.Busy += in.Busy
		}
	}
	out := make([]InstanceGroup, 0, len(byName))
	for _, g := range byName {
		out = append(out, *g)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

func (s *Server) listInstances(rq *request) error {
	lp, f, err := rq.namedListParams()
	if err != nil {
		return err
	}
	insts, err := s.instances(rq.ctx)
	if err != nil {
		return err
	}
	return rq.reply(http.StatusOK, pageOf(insts, func(i Instance) named { return named{Name: i.Name, Created: i.Started, Updated: i.LastSeen} }, f, lp))
}

func (s *Server) showInstance(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	insts, err := s.instances(rq.ctx)
	if err != nil {
		return err
	}
	name := rq.r.PathValue("name")
	for _, in := range insts {
		if in.Name == name {
			return rq.reply(http.StatusOK, in)
		}
	}
	return notFound("instance %s is not known (no record and no heartbeat)", name)
}

func (s *Server) listInstanceGroups(rq *request) error {
	lp, f, err := rq.namedListParams()
	if err != nil {
		return err
	}
	insts, err := s.instances(rq.ctx)
	if err != nil {
		return err
	}
	return rq.reply(http.StatusOK, pageOf(groups(insts), func(g InstanceGroup) named { return named{Name: g.Name} }, f, lp))
}

func (s *Server) showInstanceGroup(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	insts, err := s.instances(rq.ctx)
	if err != nil {
		return err
	}
	name := rq.r.PathValue("name")
	for _, g := range groups(insts) {
		if g.Name == name {
			return rq.reply(http.StatusOK, g)
		}
	}
	return notFound("instance group %s has no instance", name)
}
