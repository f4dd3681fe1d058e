package api

import (
	"errors"
	"net/http"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
)

// Inventory sources: the source a static inventory is refreshed from (a
// file of a project), one per inventory, under the inventory's roles:
// read shows it, execute starts its update (as for a project), admin sets,
// changes and removes it — and naming a project needs read on it.

func (s *Server) inventorySourceRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/inventory-sources", handle: s.listInventorySources},
		{method: "GET", pattern: Prefix + "/inventories/{name}/source", handle: s.showInventorySource},
		{method: "PUT", pattern: Prefix + "/inventories/{name}/source", handle: s.replaceInventorySource},
		{method: "PATCH", pattern: Prefix + "/inventories/{name}/source", handle: s.patchInventorySource},
		{method: "DELETE", pattern: Prefix + "/inventories/{name}/source", handle: s.deleteInventorySource},
		{method: "POST", pattern: Prefix + "/inventories/{name}/source/update", handle: s.updateInventorySource},
	}
}

// sourceView is an inventory source as the API shows it.
type sourceView struct {
	Inventory string `json:"inventory"`
	inventory.Source
}

// sourceInput is what a client writes of a source: the last update job is
// the engine's to record.
type sourceInput struct {
	Project        string  `json:"project"`
	Path           string  `json:"path"`
	UpdateOnLaunch bool    `json:"update-on-launch,omitempty"`
	CacheTimeout   float64 `json:"cache-timeout,omitempty"`
}

func (s *Server) listInventorySources(rq *request) error {
	lp, f, err := rq.namedListParams("project")
	if err != nil {
		return err
	}
	proj := rq.param("project")
	all, _, err := s.inv.List(rq.ctx)
	if err != nil {
		return err
	}
	var out []sourceView
	for _, i := range all {
		if i.Source != nil && rq.p.Can(access.KindInventory, i.Name, access.RoleRead) && (proj == "" || i.Source.Project == proj) {
			out = append(out, sourceView{Inventory: i.Name, Source: *i.Source})
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(v sourceView) named { return named{Name: v.Inventory} }, f, lp))
}

// noSource is the answer about an inventory without a source.
func noSource(inv *inventory.Inventory) error {
	return notFound("inventory %s has no source (set one with PUT %s/inventories/%s/source)", inv.Name, Prefix, inv.Name)
}

func (s *Server) showInventorySource(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	inv, ver, err := rq.readableInventory()
	if err != nil {
		return err
	}
	if inv.Source == nil {
		return noSource(inv)
	}
	rq.setETag(ver)
	return rq.reply(http.StatusOK, sourceView{Inventory: inv.Name, Source: *inv.Source})
}

func (s *Server) replaceInventorySource(rq *request) error { return s.writeInventorySource(rq, false) }
func (s *Server) patchInventorySource(rq *request) error   { return s.writeInventorySource(rq, true) }

// writeInventorySource sets (PUT: creates or replaces) or changes (PATCH)
// the source of a static inventory, compare-and-set on the inventory read.
func (s *Server) writeInventorySource(rq *request, patch bool) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.writableInventory()
	if err != nil {
		return err
	}
	if err := rq.ifMatch("inventory", cur.Name, ver); err != nil {
		return err
	}
	if cur.Kind != inventory.Static {
		return badField("", "%s is a %s inventory: only a static inventory has a source", cur.Name, cur.Kind)
	}
	var in sourceInput
	if patch {
		if cur.Source == nil {
			return noSource(cur)
		}
		in = sourceInput{Project: cur.Source.Project, Path: cur.Source.Path, UpdateOnLaunch: cur.Source.UpdateOnLaunch, CacheTimeout: cur.Source.CacheTimeout}
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.CacheTimeout != 0 && !in.UpdateOnLaunch {
		return badField("cache-timeout", "cache-timeout goes with update-on-launch")
	}
	src := inventory.Source{Project: in.Project, Path: in.Path, UpdateOnLaunch: in.UpdateOnLaunch, CacheTimeout: in.CacheTimeout}
	if cur.Source != nil {
		src.LastUpdateJob = cur.Source.LastUpdateJob
	}
	if err := validated(src.Validate()); err != nil {
		return err
	}
	if _, _, err := s.projects.Get(rq.ctx, src.Project); err != nil || !rq.p.Can(access.KindProject, src.Project, access.RoleRead) {
		if err == nil || errors.Is(err, configstore.ErrNotFound) {
			return badField("project", "project %s does not exist", src.Project)
		}
		return err
	}
	next := *cur
	next.Source = &src
	if err := validated(next.Validate()); err != nil {
		return err
	}
	if err := s.inv.UpdateHead(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "inventory", cur.Name)
	}
	rq.written(ver)
	status := http.StatusOK
	if cur.Source == nil {
		status = http.StatusCreated
	}
	return rq.reply(status, sourceView{Inventory: next.Name, Source: src})
}

func (s *Server) deleteInventorySource(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.writableInventory()
	if err != nil {
		return err
	}
	if err := rq.ifMatch("inventory", cur.Name, ver); err != nil {
		return err
	}
	if cur.Source == nil {
		return noSource(cur)
	}
	next := *cur
	next.Source = nil
	if err := s.inv.UpdateHead(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "inventory", cur.Name)
	}
	rq.written(ver)
	return rq.noContent()
}

// updateInventorySource starts the inventory's update job.
func (s *Server) updateInventorySource(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	inv, _, err := rq.readableInventory()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindInventory, inv.Name, access.RoleExecute) {
		return forbidden("updating inventory %s needs the execute role on it", inv.Name)
	}
	if inv.Source == nil {
		return noSource(inv)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	st := invsource.Stores{Inventories: s.inv, Projects: s.projects, Jobs: s.cfg.Jobs}
	j, err := st.StartUpdate(rq.ctx, inv.Name, rq.p.Identity())
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launched{Job: j})
}
