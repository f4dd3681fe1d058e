package api

import (
	"net/http"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/workflow"
)

// Workflow templates, as job templates: a system administrator creates
// them; read shows one (and its workflow jobs), execute launches it (and
// relaunches and cancels its workflow jobs), admin changes, deletes and
// grants on it. A graph that loops, a node naming a template or workflow
// that does not exist, or values a node's template does not prompt for
// are refused with a 400 saying which node (workflow.Check).

func (s *Server) workflowRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/workflows", handle: s.listWorkflows},
		{method: "POST", pattern: Prefix + "/workflows", handle: s.createWorkflow},
		{method: "GET", pattern: Prefix + "/workflows/{name}", handle: s.showWorkflow},
		{method: "PUT", pattern: Prefix + "/workflows/{name}", handle: s.replaceWorkflow},
		{method: "PATCH", pattern: Prefix + "/workflows/{name}", handle: s.patchWorkflow},
		{method: "DELETE", pattern: Prefix + "/workflows/{name}", handle: s.deleteWorkflow},
		{method: "POST", pattern: Prefix + "/workflows/{name}/launch", handle: s.launchWorkflow},
		{method: "GET", pattern: Prefix + "/jobs/{id}/nodes", handle: s.workflowNodes},
	}
}

func workflowMeta(t *workflow.Template) named {
	return named{Name: t.Name, Description: t.Description, Created: t.Created, Updated: t.Updated}
}

func (s *Server) listWorkflows(rq *request) error {
	lp, f, err := rq.namedListParams()
	if err != nil {
		return err
	}
	all, _, err := s.workflows.List(rq.ctx)
	if err != nil {
		return err
	}
	out := []*workflow.Template{}
	for _, t := range all {
		if rq.p.Can(access.KindWorkflow, t.Name, access.RoleRead) {
			out = append(out, t)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, workflowMeta, f, lp))
}

// readableWorkflow reads a workflow template the caller may see (404
// otherwise).
func (rq *request) readableWorkflow() (*workflow.Template, int32, error) {
	name, err := rq.name("workflow")
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindWorkflow, name, access.RoleRead) {
		return nil, 0, notFound("workflow %s %v", name, configstore.ErrNotFound)
	}
	return rq.s.workflows.Get(rq.ctx, name)
}

// writableWorkflow reads a workflow template the caller may change: 404
// when it may not see it, 403 when it sees it without the admin role.
func (rq *request) writableWorkflow() (*workflow.Template, int32, error) {
	t, ver, err := rq.readableWorkflow()
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.Can(access.KindWorkflow, t.Name, access.RoleAdmin) {
		return nil, 0, forbidden("changing workflow %s needs the admin role on it", t.Name)
	}
	return t, ver, nil
}

func (s *Server) showWorkflow(rq *request) error {
	return showVersioned(rq, rq.readableWorkflow, same)
}

// checkWorkflow validates a workflow template and what its nodes name.
func (rq *request) checkWorkflow(t *workflow.Template) error {
	if err := validated(t.Validate()); err != nil {
		return err
	}
	return validated(workflow.Check(rq.ctx, t, rq.s.workflows, rq.s.templates))
}

func (s *Server) createWorkflow(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a workflow template needs a system administrator")
	}
	var t workflow.Template
	if err := rq.decode(&t); err != nil {
		return err
	}
	if err := rq.checkWorkflow(&t); err != nil {
		return err
	}
	if err := s.workflows.Create(rq.ctx, &t); err != nil {
		return err
	}
	rq.w.Header().Set("Location", Prefix+"/workflows/"+t.Name)
	return rq.reply(http.StatusCreated, &t)
}

func (s *Server) replaceWorkflow(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.writableWorkflow()
	if err != nil {
		return err
	}
	if err := rq.ifMatch("workflow", cur.Name, ver); err != nil {
		return err
	}
	var next workflow.Template
	if err := rq.decode(&next); err != nil {
		return err
	}
	if next.Name == "" {
		next.Name = cur.Name
	}
	if next.Name != cur.Name {
		return badField("name", "the name of a workflow template cannot change (create another one)")
	}
	next.Created = cur.Created
	if err := rq.checkWorkflow(&next); err != nil {
		return err
	}
	if err := s.workflows.Update(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "workflow", cur.Name)
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, &next)
}

// workflowPatch is the body of PATCH /workflows/{name}: the fields given
// change (nodes as a whole), the others stay.
type workflowPatch struct {
	Name        *string              `json:"name"`
	Description *string              `json:"description"`
	Nodes       *[]jobs.WorkflowNode `json:"nodes"`
}

func (s *Server) patchWorkflow(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.writableWorkflow()
	if err != nil {
		return err
	}
	if err := rq.ifMatch("workflow", cur.Name, ver); err != nil {
		return err
	}
	var in workflowPatch
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != nil && *in.Name != cur.Name {
		return badField("name", "the name of a workflow template cannot change (create another one)")
	}
	next := *cur
	if in.Description != nil {
		next.Description = *in.Description
	}
	if in.Nodes != nil {
		next.Nodes = *in.Nodes
	}
	if err := rq.checkWorkflow(&next); err != nil {
		return err
	}
	if err := s.workflows.Update(rq.ctx, &next, ver); err != nil {
		return rq.conflicted(err, "workflow", cur.Name)
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, &next)
}

func (s *Server) deleteWorkflow(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, _, err := rq.writableWorkflow()
	if err != nil {
		return err
	}
	if err := s.workflows.Delete(rq.ctx, t.Name); err != nil {
		return err
	}
	if err := s.access.ForgetObject(rq.ctx, access.KindWorkflow, t.Name); err != nil {
		return errorf(http.StatusInternalServerError, "workflow %s deleted, but not the roles granted on it: %v", t.Name, err)
	}
	return rq.noContent()
}

// launchedWorkflow is the answer of a workflow launch or relaunch: the
// workflow job, and the ids of its node jobs in node order (made as the
// nodes become due).
type launchedWorkflow struct {
	Job   *jobs.Job `json:"job"`
	Nodes []string  `json:"nodes"`
}

func (s *Server) launchWorkflow(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, _, err := rq.readableWorkflow()
	if err != nil {
		return err
	}
	if !rq.p.Can(access.KindWorkflow, t.Name, access.RoleExecute) {
		return forbidden("launching workflow %s needs the execute role on it", t.Name)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	j, err := s.wfLauncher.Launch(rq.ctx, workflow.Request{Workflow: t.Name, CreatedBy: rq.p.Identity()})
	if err != nil {
		return validated(err)
	}
	return rq.reply(http.StatusCreated, launchedWorkflow{Job: j, Nodes: j.NestedJobs})
}

// relaunchWorkflowJob relaunches a workflow job (from one of its nodes
// when from is set): execute on its workflow template is needed.
func (s *Server) relaunchWorkflowJob(rq *request, j *jobs.Job, from string) error {
	if from != "" {
		if err := configstore.ValidName("node", from); err != nil {
			return badField("from", "%v", err)
		}
	}
	if !canRunWorkflowJob(rq.p, j) {
		return forbidden("relaunching %s needs the execute role on workflow %s", j.ID, j.WorkflowTemplate)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	nj, err := s.wfLauncher.Relaunch(rq.ctx, j.ID, from, rq.p.Identity())
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launchedWorkflow{Job: nj, Nodes: nj.NestedJobs})
}

// canRunWorkflowJob reports whether the caller may relaunch or cancel the
// workflow job j.
func canRunWorkflowJob(p *access.Principal, j *jobs.Job) bool {
	return p.IsAdmin() || j.WorkflowTemplate != "" && p.Can(access.KindWorkflow, j.WorkflowTemplate, access.RoleExecute)
}

// WorkflowNodeView is a node of a workflow job as GET /jobs/{id}/nodes
// shows it: the node of the graph, where it stands, its job's id, and
// that job's state once it exists.
type WorkflowNodeView struct {
	jobs.WorkflowNode
	Status workflow.NodeStatus `json:"status"`
	Job    string              `json:"job"`
	State  jobs.State          `json:"state,omitempty"`
}

// workflowNodesReply is the answer of GET /jobs/{id}/nodes.
type workflowNodesReply struct {
	Job   string             `json:"job"`
	State jobs.State         `json:"state"`
	Nodes []WorkflowNodeView `json:"nodes"`
}

func (s *Server) workflowNodes(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	hj, err := rq.visibleJob()
	if err != nil {
		return err
	}
	j := hj.Job
	if !j.IsWorkflow() {
		return badField("", "%s is not a workflow job (it has no nodes)", j.ID)
	}
	if len(j.NestedJobs) != len(j.Workflow.Nodes) {
		return errorf(http.StatusInternalServerError, "%s: its node jobs do not match its graph", j.ID)
	}
	nodeJobs, err := s.cfg.Jobs.Slices(rq.ctx, j)
	if err != nil {
		return err
	}
	if j.State.Final() {
		// Node jobs of an old workflow may be in the history only (moved
		// out of ZooKeeper); a live workflow's missing ones are not made yet.
		for i, nj := range nodeJobs {
			if nj != nil {
				continue
			}
			hj, err := s.history.Get(rq.ctx, j.NestedJobs[i])
			switch {
			case err == nil:
				nodeJobs[i] = hj.Job
			case !isNotFound(err):
				return err
			}
		}
	}
	ev, err := workflow.Evaluate(j.Workflow, nodeJobs, j.CancelRequested)
	if err != nil {
		return err
	}
	out := workflowNodesReply{Job: j.ID, State: j.State, Nodes: make([]WorkflowNodeView, len(j.Workflow.Nodes))}
	for i, n := range j.Workflow.Nodes {
		out.Nodes[i] = WorkflowNodeView{WorkflowNode: n, Status: ev.Status[i], Job: j.NestedJobs[i]}
		if nodeJobs[i] != nil {
			out.Nodes[i].State = nodeJobs[i].State
		}
	}
	return rq.reply(http.StatusOK, out)
}
