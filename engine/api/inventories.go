package api

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
)

// Inventories: a system administrator creates them (and imports a new one);
// read shows one, its hosts and its script; execute uses it in templates;
// admin changes it, imports into it, enables and disables hosts, deletes it
// and grants on it.

func (s *Server) inventoryRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/inventories", handle: s.listInventories},
		{method: "POST", pattern: Prefix + "/inventories", handle: s.createInventory},
		{method: "GET", pattern: Prefix + "/inventories/{name}", handle: s.showInventory},
		{method: "PUT", pattern: Prefix + "/inventories/{name}", handle: s.replaceInventory},
		{method: "PATCH", pattern: Prefix + "/inventories/{name}", handle: s.patchInventory},
		{method: "DELETE", pattern: Prefix + "/inventories/{name}", handle: s.deleteInventory},
		{method: "POST", pattern: Prefix + "/inventories/{name}/import", maxBody: -1, handle: s.importInventory},
		{method: "GET", pattern: Prefix + "/inventories/{name}/hosts", handle: s.listHosts},
		{method: "PATCH", pattern: Prefix + "/inventories/{name}/hosts/{host}", handle: s.patchHost},
		{method: "GET", pattern: Prefix + "/inventories/{name}/script", handle: s.inventoryScript},
	}
}

func inventoryMeta(i *inventory.Inventory) named {
	return named{Name: i.Name, Description: i.Description, Created: i.Created, Updated: i.Updated}
}

func (s *Server) listInventories(rq *request) error {
	lp, f, err := rq.namedListParams("kind")
	if err != nil {
		return err
	}
	kind := inventory.Kind(rq.param("kind"))
	if kind != "" && kind != inventory.Static && kind != inventory.Smart {
		return badField("kind", "kind=%q: want static or smart", kind)
	}
	all, _, err := s.inv.List(rq.ctx)
	if err != nil {
		return err
	}
	var out []*inventory.Inventory
	for _, i := range all {
		if rq.p.Can(access.KindInventory, i.Name, access.RoleRead) && (kind == "" || i.Kind == kind) {
			out = append(out, i)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, inventoryMeta, f, lp))
}

// inventoryInput is what a client writes of an inventory: its head without
// the snapshot (content comes with an import).
type inventoryInput struct {
	Name           string            `json:"name"`
	Kind           inventory.Kind    `json:"kind"`
	Description    string            `json:"description,omitempty"`
	InstanceGroups []string          `json:"instance-groups,omitempty"`
	Filter         *inventory.Filter `json:"filter,omitempty"`
}

func (s *Server) createInventory(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating an inventory needs a system administrator")
	}
	var in inventoryInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Kind == "" {
		in.Kind = inventory.Static
	}
	inv := &inventory.Inventory{Name: in.Name, Kind: in.Kind, Description: in.Description, InstanceGroups: in.InstanceGroups, Filter: in.Filter}
	if err := validated(inv.Validate()); err != nil {
		return err
	}
	if err := s.inv.Create(rq.ctx, inv, nil); err != nil {
		return err
	}
	rq.w.Header().Set("Location", Prefix+"/inventories/"+inv.Name)
	return rq.reply(http.StatusCreated, inv)
}

func (rq *request) readableInventory() (*inventory.Inventory, int32, error) {
	name, err := rq.name("inventory")
	if err != nil {
		return nil, 0, err
	}
	inv, ver, err := rq.s.inv.Get(rq.ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindInventory, name, access.RoleRead) {
		return nil, 0, notFound("inventory %s %v", name, configstore.ErrNotFound)
	}
	return inv, ver, nil
}

func (rq *request) writableInventory() (*inventory.Inventory, int32, error) {
	inv, ver, err := rq.readableInventory()
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindInventory, inv.Name, access.RoleAdmin) {
		return nil, 0, forbidden("changing inventory %s needs the admin role on it", inv.Name)
	}
	return inv, ver, nil
}

func (s *Server) showInventory(rq *request) error {
	return showVersioned(rq, rq.readableInventory, same)
}

func (s *Server) replaceInventory(rq *request) error { return s.writeInventory(rq, false) }
func (s *Server) patchInventory(rq *request) error   { return s.writeInventory(rq, true) }

// writeInventory changes an inventory's head: description, instance
// groups, filter. Its name and kind do not change; its content changes by
// import.
func (s *Server) writeInventory(rq *request, patch bool) error {
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
	in := inventoryInput{Name: cur.Name, Kind: cur.Kind}
	if patch {
		in.Description, in.InstanceGroups, in.Filter = cur.Description, cur.InstanceGroups, cur.Filter
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != cur.Name {
		return badField("name", "the name of an inventory cannot change")
	}
	if in.Kind != cur.Kind {
		return badField("kind", "the kind of an inventory cannot change (it is %s)", cur.Kind)
	}
	next := *cur
	next.Description, next.InstanceGroups, next.Filter = in.Description, in.InstanceGroups, in.Filter
	if err := validated(next.Validate()); err != nil {
		return err
	}
	if err := s.inv.UpdateHead(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "inventory", cur.Name)
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, &next)
}

func (s *Server) deleteInventory(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	inv, _, err := rq.writableInventory()
	if err != nil {
		return err
	}
	if err := s.inv.Delete(rq.ctx, inv.Name); err != nil {
		return err
	}
	if err := s.access.ForgetObject(rq.ctx, access.KindInventory, inv.Name); err != nil {
		return errorf(http.StatusInternalServerError, "inventory %s deleted, but not the roles granted on it: %v", inv.Name, err)
	}
	return rq.noContent()
}

// imported is the answer of an import.
type imported struct {
	Inventory *inventory.Inventory `json:"inventory"`
	Created   bool                 `json:"created"`
}

// importInventory replaces a static inventory's content with the body, in
// Ansible's JSON inventory format (`ansible-inventory --list`), creating
// the inventory when it does not exist (system administrators only).
func (s *Server) importInventory(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	name, err := rq.name("inventory")
	if err != nil {
		return err
	}
	inv, _, err := s.inv.Get(rq.ctx, name)
	switch {
	case errors.Is(err, configstore.ErrNotFound):
		if !rq.p.IsAdmin() {
			if rq.p.ReadsAll() {
				return forbidden("creating an inventory needs a system administrator")
			}
			return notFound("inventory %s %v", name, configstore.ErrNotFound)
		}
	case err != nil:
		return err
	default:
		if _, _, err := rq.writableInventory(); err != nil {
			return err
		}
		if inv.Kind != inventory.Static {
			return badField("", "%s is a smart inventory: its hosts come from its filter, not from an import", name)
		}
	}
	body, err := io.ReadAll(rq.r.Body)
	if err != nil {
		return err
	}
	c, err := inventory.ParseAnsible(body)
	if err != nil {
		return validated(err)
	}
	got, created, err := s.inv.Import(rq.ctx, name, c)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return rq.reply(status, imported{Inventory: got, Created: created})
}

// hostView is a host as listed, with its groups.
type hostView struct {
	inventory.Host
	Groups []string `json:"groups"`
}

func (s *Server) listHosts(rq *request) error {
	if err := rq.query(append(slices.Clone(listParamNames), "name", "enabled", "group")...); err != nil {
		return err
	}
	lp, err := rq.parseList("name", "-name")
	if err != nil {
		return err
	}
	if err := rq.parseCursor(&lp); err != nil {
		return err
	}
	f, err := rq.parseNameFilter()
	if err != nil {
		return err
	}
	var enabled *bool
	if v := rq.param("enabled"); v != "" {
		b, err := rq.boolParam("enabled")
		if err != nil {
			return err
		}
		enabled = &b
	}
	if _, _, err := rq.readableInventory(); err != nil {
		return err
	}
	_, c, err := s.inv.Content(rq.ctx, rq.r.PathValue("name"))
	if err != nil {
		return err
	}
	groupsOf := c.GroupsOf()
	group := rq.param("group")
	var hosts []hostView
	for _, h := range c.Hosts {
		if enabled != nil && h.Enabled != *enabled {
			continue
		}
		gs := groupsOf[h.Name]
		if group != "" && !slices.Contains(gs, group) {
			continue
		}
		if gs == nil {
			gs = []string{}
		}
		hosts = append(hosts, hostView{Host: h, Groups: gs})
	}
	return rq.reply(http.StatusOK, pageOf(hosts, func(h hostView) named { return named{Name: h.Name} }, f, lp))
}

// hostPatch is the body of PATCH /inventories/{name}/hosts/{host}.
type hostPatch struct {
	Enabled *bool `json:"enabled"`
}

func (s *Server) patchHost(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	inv, _, err := rq.writableInventory()
	if err != nil {
		return err
	}
	var in hostPatch
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Enabled == nil {
		return badField("enabled", "enabled is required (true or false)")
	}
	host := rq.r.PathValue("host")
	_, c, err := s.inv.Content(rq.ctx, inv.Name)
	if err != nil {
		return err
	}
	if c.HostIndex(host) < 0 {
		return notFound("inventory %s has no host %s", inv.Name, host)
	}
	if _, err := s.inv.SetEnabled(rq.ctx, inv.Name, []string{host}, *in.Enabled); err != nil {
		return err
	}
	_, c, err = s.inv.Content(rq.ctx, inv.Name)
	if err != nil {
		return err
	}
	i := c.HostIndex(host)
	if i < 0 {
		return notFound("inventory %s has no host %s", inv.Name, host)
	}
	return rq.reply(http.StatusOK, hostView{Host: c.Hosts[i], Groups: nonNilStrings(c.GroupsOf()[host])})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// inventoryScript answers the inventory in Ansible's JSON inventory format
// (what `ansible-inventory --list` prints, and what an inventory script
// returns), with limit=PATTERN selecting hosts and subset=sliceKofN
// keeping slice K of N of them, as slice K of a sliced job sees it.
func (s *Server) inventoryScript(rq *request) error {
	if err := rq.query("subset", "limit", "hostvars", "disabled"); err != nil {
		return err
	}
	hostvars, err := rq.boolParam("hostvars")
	if err != nil {
		return err
	}
	disabled, err := rq.boolParam("disabled")
	if err != nil {
		return err
	}
	k, n := 0, 0
	if v := rq.param("subset"); v != "" {
		if !strings.HasPrefix(v, "slice") {
			return badField("subset", "subset=%q: want sliceKofN, such as slice2of5", v)
		}
		if k, n, err = inventory.ParseSlice(v); err != nil {
			return badField("subset", "%v", err)
		}
	}
	limit := rq.param("limit")
	if _, err := inventory.ParseLimit(limit); err != nil {
		return badField("limit", "%v", err)
	}
	if disabled && (n > 0 || limit != "") {
		return badField("disabled", "disabled hosts are never in a slice or a limit: disabled=true goes without subset and limit")
	}
	inv, _, err := rq.readableInventory()
	if err != nil {
		return err
	}
	_, c, err := s.inv.Content(rq.ctx, inv.Name)
	if err != nil {
		return err
	}
	out := c
	if n > 0 || limit != "" {
		if out, _, err = c.SliceOf(limit, k, n); err != nil {
			return badField("subset", "%v", err)
		}
	}
	data, err := out.Ansible(inventory.ExportOptions{Hostvars: hostvars, Disabled: disabled})
	if err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "application/json")
	rq.w.Header().Set("Cache-Control", "no-store")
	_, err = rq.w.Write(append(data, '\n'))
	return err
}
