package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Instances are the executors, read from their heartbeat nodes
// (/executors/<name>, refreshed every few seconds). Until executors
// declare instance groups, every one of them is in the group "default".

// DefaultGroup is the instance group of every executor.
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
	// Capacity is how many jobs it runs at once; Busy how many it runs.
	Capacity int `json:"capacity"`
	Busy     int `json:"busy"`
	// Started is when it started; LastSeen its last heartbeat.
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last-seen"`
	Actions  []string  `json:"actions"`
	Groups   []string  `json:"instance-groups"`
	// Running lists the jobs it runs.
	Running []executor.RunningJob `json:"running"`
}

// InstanceGroup is a group of instances with their capacity.
type InstanceGroup struct {
	Name      string   `json:"name"`
	Instances []string `json:"instances"`
	Capacity  int      `json:"capacity"`
	Busy      int      `json:"busy"`
}

// instances reads every executor's heartbeat node, sorted by name. A node
// that is not a heartbeat is left out.
func (s *Server) instances(ctx context.Context) ([]Instance, error) {
	conn := s.cfg.Conn
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = conn.Children(conn.Path(executor.MembersPath))
		if errors.Is(err, zk.ErrNoNode) {
			names, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Instance{}
	for _, n := range names {
		var data []byte
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, err = conn.Get(conn.Path(executor.MembersPath, n))
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var m executor.Member
		if json.Unmarshal(data, &m) != nil || m.Name != n {
			continue
		}
		if m.Actions == nil {
			m.Actions = []string{}
		}
		if m.Running == nil {
			m.Running = []executor.RunningJob{}
		}
		out = append(out, Instance{Name: m.Name, Host: m.Host, Version: m.Version, Capacity: m.Threads, Busy: m.Busy,
			Started: m.Started, LastSeen: m.LastSeen, Actions: m.Actions, Groups: []string{DefaultGroup}, Running: m.Running})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// groups derives the instance groups from the instances.
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
			ig.Capacity += in.Capacity
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
	return notFound("instance %s is not running (no heartbeat)", name)
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
