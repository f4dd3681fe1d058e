package api

import (
	"net/http"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/project"
)

// Projects: a system administrator creates them; read shows one; execute
// uses it in templates and starts its update; admin changes, deletes and
// grants on it.

func (s *Server) projectRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/projects", handle: s.listProjects},
		{method: "POST", pattern: Prefix + "/projects", handle: s.createProject},
		{method: "GET", pattern: Prefix + "/projects/{name}", handle: s.showProject},
		{method: "PUT", pattern: Prefix + "/projects/{name}", handle: s.replaceProject},
		{method: "PATCH", pattern: Prefix + "/projects/{name}", handle: s.patchProject},
		{method: "DELETE", pattern: Prefix + "/projects/{name}", handle: s.deleteProject},
		{method: "POST", pattern: Prefix + "/projects/{name}/update", handle: s.updateProject},
	}
}

func projectMeta(p *project.Project) named {
	return named{Name: p.Name, Description: p.Description, Created: p.Created, Updated: p.Updated}
}

func (s *Server) listProjects(rq *request) error {
	lp, f, err := rq.namedListParams("kind")
	if err != nil {
		return err
	}
	kind := project.Kind(rq.param("kind"))
	if kind != "" && kind != project.Git && kind != project.Directory {
		return badField("kind", "kind=%q: want git or directory", kind)
	}
	all, _, err := s.projects.List(rq.ctx)
	if err != nil {
		return err
	}
	var out []*project.Project
	for _, p := range all {
		if rq.p.Can(access.KindProject, p.Name, access.RoleRead) && (kind == "" || p.Kind == kind) {
			out = append(out, p)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, projectMeta, f, lp))
}

func (rq *request) readableProject() (*project.Project, int32, error) {
	name, err := rq.name("project")
	if err != nil {
		return nil, 0, err
	}
	p, ver, err := rq.s.projects.Get(rq.ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindProject, name, access.RoleRead) {
		return nil, 0, notFound("project %s %v", name, configstore.ErrNotFound)
	}
	return p, ver, nil
}

func (s *Server) showProject(rq *request) error {
	return showVersioned(rq, rq.readableProject, same)
}

// projectInput is what a client writes of a project: not the revision and
// last update, which its updates record.
type projectInput struct {
	Name           string       `json:"name"`
	Description    string       `json:"description,omitempty"`
	Kind           project.Kind `json:"kind"`
	URL            string       `json:"url,omitempty"`
	Branch         string       `json:"branch,omitempty"`
	Directory      string       `json:"directory,omitempty"`
	UpdateOnLaunch bool         `json:"update-on-launch,omitempty"`
	CacheTimeout   float64      `json:"cache-timeout,omitempty"`
}

func (in projectInput) apply(p *project.Project) {
	p.Name, p.Description, p.Kind, p.URL, p.Branch, p.Directory = in.Name, in.Description, in.Kind, in.URL, in.Branch, in.Directory
	p.UpdateOnLaunch, p.CacheTimeout = in.UpdateOnLaunch, in.CacheTimeout
}

func (s *Server) createProject(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a project needs a system administrator")
	}
	var in projectInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	var p project.Project
	in.apply(&p)
	if err := validated(p.Validate()); err != nil {
		return err
	}
	if err := s.projects.Create(rq.ctx, &p); err != nil {
		return err
	}
	rq.w.Header().Set("Location", Prefix+"/projects/"+p.Name)
	return rq.reply(http.StatusCreated, &p)
}

func (s *Server) replaceProject(rq *request) error { return s.writeProject(rq, false) }
func (s *Server) patchProject(rq *request) error   { return s.writeProject(rq, true) }

func (s *Server) writeProject(rq *request, patch bool) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.readableProject()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindProject, cur.Name, access.RoleAdmin) {
		return forbidden("changing project %s needs the admin role on it", cur.Name)
	}
	if err := rq.ifMatch("project", cur.Name, ver); err != nil {
		return err
	}
	in := projectInput{Name: cur.Name}
	if patch {
		in = projectInput{Name: cur.Name, Description: cur.Description, Kind: cur.Kind, URL: cur.URL, Branch: cur.Branch,
			Directory: cur.Directory, UpdateOnLaunch: cur.UpdateOnLaunch, CacheTimeout: cur.CacheTimeout}
	}
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != cur.Name {
		return badField("name", "the name of a project cannot change")
	}
	next := *cur
	in.apply(&next)
	if err := validated(next.Validate()); err != nil {
		return err
	}
	if err := s.projects.Update(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "project", cur.Name)
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, &next)
}

func (s *Server) deleteProject(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	p, _, err := rq.readableProject()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindProject, p.Name, access.RoleAdmin) {
		return forbidden("deleting project %s needs the admin role on it", p.Name)
	}
	if err := s.projects.Delete(rq.ctx, p.Name); err != nil {
		return err
	}
	if err := s.access.ForgetObject(rq.ctx, access.KindProject, p.Name); err != nil {
		return errorf(http.StatusInternalServerError, "project %s deleted, but not the roles granted on it: %v", p.Name, err)
	}
	return rq.noContent()
}

// updateProject starts the project's update job.
func (s *Server) updateProject(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	p, _, err := rq.readableProject()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindProject, p.Name, access.RoleExecute) {
		return forbidden("updating project %s needs the execute role on it", p.Name)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	j, err := s.projects.StartUpdate(rq.ctx, s.cfg.Jobs, p.Name, rq.p.Identity())
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launched{Job: j})
}
