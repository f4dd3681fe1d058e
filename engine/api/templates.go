package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/template"
)

// Templates: a system administrator creates them; read shows one (and its
// jobs), execute launches it, admin changes, deletes and grants on it.
// Pointing a template at an inventory, a project or a credential needs
// execute on it (system administrators excepted), and so does a launch
// that prompts for another inventory.

func (s *Server) templateRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/templates", handle: s.listTemplates},
		{method: "POST", pattern: Prefix + "/templates", handle: s.createTemplate},
		{method: "GET", pattern: Prefix + "/templates/{name}", handle: s.showTemplate},
		{method: "PUT", pattern: Prefix + "/templates/{name}", handle: s.replaceTemplate},
		{method: "PATCH", pattern: Prefix + "/templates/{name}", handle: s.patchTemplate},
		{method: "DELETE", pattern: Prefix + "/templates/{name}", handle: s.deleteTemplate},
		{method: "POST", pattern: Prefix + "/templates/{name}/launch", handle: s.launchTemplate},
	}
}

func templateMeta(t *template.Template) named {
	return named{Name: t.Name, Description: t.Description, Created: t.Created, Updated: t.Updated}
}

func (s *Server) listTemplates(rq *request) error {
	lp, f, err := rq.namedListParams("action", "inventory", "project")
	if err != nil {
		return err
	}
	all, _, err := s.templates.List(rq.ctx)
	if err != nil {
		return err
	}
	var out []*template.Template
	for _, t := range all {
		if !rq.p.Can(access.KindTemplate, t.Name, access.RoleRead) {
			continue
		}
		if v := rq.param("action"); v != "" && t.Action != v {
			continue
		}
		if v := rq.param("inventory"); v != "" && t.Inventory != v {
			continue
		}
		if v := rq.param("project"); v != "" && t.Project != v {
			continue
		}
		out = append(out, t)
	}
	for i, t := range out {
		out[i] = rq.templateView(t)
	}
	return rq.reply(http.StatusOK, pageOf(out, templateMeta, f, lp))
}

// readableTemplate reads a template the caller may see (404 otherwise).
func (rq *request) readableTemplate() (*template.Template, int32, error) {
	name, err := rq.name("template")
	if err != nil {
		return nil, 0, err
	}
	t, ver, err := rq.s.templates.Get(rq.ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindTemplate, name, access.RoleRead) {
		return nil, 0, notFound("template %s %v", name, configstore.ErrNotFound)
	}
	return t, ver, nil
}

func (s *Server) showTemplate(rq *request) error {
	return showVersioned(rq, rq.readableTemplate, rq.templateView)
}

// templateView hides the host config key from callers without the admin
// role on the template: with it, any host of the inventory could launch
// the template against itself.
func (rq *request) templateView(t *template.Template) *template.Template {
	if t.HostConfigKey == "" || rq.p.Can(access.KindTemplate, t.Name, access.RoleAdmin) {
		return t
	}
	cp := *t
	cp.HostConfigKey = "$hidden"
	return &cp
}

// checkUses refuses, for a caller who is not a system administrator, an
// inventory or project it may not use (execute).
func (rq *request) checkUses(inv, proj string) error {
	if inv != "" && !rq.p.Can(access.KindInventory, inv, access.RoleExecute) {
		return &Error{Status: http.StatusForbidden, Field: "inventory", Message: "using inventory " + inv + " needs the execute role on it"}
	}
	if proj != "" && !rq.p.Can(access.KindProject, proj, access.RoleExecute) {
		return &Error{Status: http.StatusForbidden, Field: "project", Message: "using project " + proj + " needs the execute role on it"}
	}
	return nil
}

// checkCredentialUses refuses, for a caller who is not a system
// administrator, credentials it may not use (execute): those of next that
// cur did not have (a template's admin keeps the ones already there).
func (rq *request) checkCredentialUses(cur, next []string) error {
	for _, name := range next {
		if !slices.Contains(cur, name) && !rq.p.Can(access.KindCredential, name, access.RoleExecute) {
			return &Error{Status: http.StatusForbidden, Field: "credentials", Message: "using credential " + name + " needs the execute role on it"}
		}
	}
	return nil
}

// checkRefs refuses a template whose inventory or project does not exist,
// as the command line does.
func (rq *request) checkRefs(t *template.Template) error {
	if t.Inventory != "" {
		if _, _, err := rq.s.inv.Get(rq.ctx, t.Inventory); isNotFound(err) {
			return badField("inventory", "inventory %s does not exist", t.Inventory)
		} else if err != nil {
			return err
		}
	}
	if t.Project != "" {
		if _, _, err := rq.s.projects.Get(rq.ctx, t.Project); isNotFound(err) {
			return badField("project", "project %s does not exist", t.Project)
		} else if err != nil {
			return err
		}
	}
	creds := credential.NewStore(rq.s.cfg.Conn, nil) // names only: no key needed
	for _, name := range t.Credentials {
		if _, err := creds.Get(rq.ctx, name); errors.Is(err, credential.ErrNotFound) {
			return badField("credentials", "credential %s does not exist", name)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// validated turns a validation error into a 400.
func validated(err error) error {
	if err != nil && !errors.As(err, new(*Error)) {
		return badField("", "%v", err)
	}
	return err
}

func (s *Server) createTemplate(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a template needs a system administrator")
	}
	var t template.Template
	if err := rq.decode(&t); err != nil {
		return err
	}
	if err := validated(t.Validate()); err != nil {
		return err
	}
	if err := rq.checkRefs(&t); err != nil {
		return err
	}
	if err := s.templates.Create(rq.ctx, &t); err != nil {
		return err
	}
	rq.w.Header().Set("Location", Prefix+"/templates/"+t.Name)
	return rq.reply(http.StatusCreated, &t)
}

// writableTemplate reads a template the caller may change: 404 when it
// may not see it, 403 when it sees it without the admin role.
func (rq *request) writableTemplate() (*template.Template, int32, error) {
	t, ver, err := rq.readableTemplate()
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindTemplate, t.Name, access.RoleAdmin) {
		return nil, 0, forbidden("changing template %s needs the admin role on it", t.Name)
	}
	return t, ver, nil
}

func (s *Server) replaceTemplate(rq *request) error { return s.writeTemplate(rq, false) }
func (s *Server) patchTemplate(rq *request) error   { return s.writeTemplate(rq, true) }

// writeTemplate replaces a template (PUT) or changes the fields given
// (PATCH), with compare-and-set on the version read.
func (s *Server) writeTemplate(rq *request, patch bool) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.writableTemplate()
	if err != nil {
		return err
	}
	if err := rq.ifMatch("template", cur.Name, ver); err != nil {
		return err
	}
	next := template.Template{}
	if patch {
		next = *cur
	}
	if err := rq.decode(&next); err != nil {
		return err
	}
	if next.Name == "" && !patch {
		next.Name = cur.Name
	}
	if next.Name != cur.Name {
		return badField("name", "the name of a template cannot change (create another one)")
	}
	next.Created = cur.Created
	if err := validated(next.Validate()); err != nil {
		return err
	}
	var inv, proj string
	if next.Inventory != cur.Inventory {
		inv = next.Inventory
	}
	if next.Project != cur.Project {
		proj = next.Project
	}
	if err := rq.checkUses(inv, proj); err != nil {
		return err
	}
	if err := rq.checkCredentialUses(cur.Credentials, next.Credentials); err != nil {
		return err
	}
	if err := rq.checkRefs(&next); err != nil {
		return err
	}
	if err := s.templates.Update(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "template", cur.Name)
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, rq.templateView(&next))
}

func (s *Server) deleteTemplate(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, _, err := rq.writableTemplate()
	if err != nil {
		return err
	}
	if err := s.templates.Delete(rq.ctx, t.Name); err != nil {
		return err
	}
	if err := s.access.ForgetObject(rq.ctx, access.KindTemplate, t.Name); err != nil {
		return errorf(http.StatusInternalServerError, "template %s deleted, but not the roles granted on it: %v", t.Name, err)
	}
	return rq.noContent()
}

func (s *Server) launchTemplate(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, _, err := rq.readableTemplate()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindTemplate, t.Name, access.RoleExecute) {
		return forbidden("launching template %s needs the execute role on it", t.Name)
	}
	var v jobs.LaunchValues
	if _, err := rq.decodeOptional(&v); err != nil {
		return err
	}
	if v.Inventory != nil && *v.Inventory != t.Inventory {
		if err := rq.checkUses(*v.Inventory, ""); err != nil {
			return err
		}
	}
	var values *jobs.LaunchValues
	if len(v.Fields()) > 0 {
		values = &v
	}
	if _, err := t.Resolve(values); err != nil {
		return validated(err)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	res, err := s.launcher.Launch(rq.ctx, template.Request{Template: t.Name, Values: values, CreatedBy: rq.p.Identity()})
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launchedOf(res))
}
