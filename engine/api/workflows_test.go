package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/workflow"
)

// TestWorkflowAPI drives workflow templates and workflow jobs through the
// API: invalid graphs refused with a message naming what is wrong, a
// launch and its nodes, visibility by the workflow template's roles, a
// relaunch from a node, a cancel by a user with execute on the workflow,
// and schedules of a workflow, which need execute on it.
func TestWorkflowAPI(t *testing.T) {
	e := newEnv(t)
	e.setup()
	node := func(id, tpl string, success ...string) map[string]any {
		return map[string]any{"id": id, "template": tpl, "success": success}
	}
	// Bad graphs: 400 with a message, nothing written.
	for name, c := range map[string]struct {
		nodes []any
		want  string
	}{
		"cycle":       {[]any{node("a", "db", "b"), node("b", "db", "a")}, "the edges loop: a → b → a"},
		"no node":     {[]any{}, "at least one node"},
		"no template": {[]any{node("a", "nope")}, "template nope does not exist"},
		"bad edge":    {[]any{node("a", "db", "z")}, `leads to "z"`},
		"itself":      {[]any{map[string]any{"id": "a", "workflow": "bad"}}, "cannot contain itself"},
	} {
		var ae Error
		e.must(400, uAdmin, "POST", Prefix+"/workflows", map[string]any{"name": "bad", "nodes": c.nodes}).json(t, &ae)
		if !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: %q, want it to say %q", name, ae.Message, c.want)
		}
	}
	e.must(404, uAdmin, "GET", Prefix+"/workflows/bad", nil)

	// deploy: db, then web on success.
	e.must(201, uAdmin, "POST", Prefix+"/workflows", map[string]any{"name": "deploy", "description": "db then web",
		"nodes": []any{node("migrate", "db", "roll"), node("roll", "web")}})
	var cyc Error
	e.must(400, uAdmin, "PUT", Prefix+"/workflows/deploy", map[string]any{"nodes": []any{node("a", "db", "a")}}).json(t, &cyc)
	if !strings.Contains(cyc.Message, "follows itself") {
		t.Errorf("a self edge: %q", cyc.Message)
	}
	var wt workflow.Template
	e.must(200, uAdmin, "GET", Prefix+"/workflows/deploy", nil).json(t, &wt)
	if len(wt.Nodes) != 2 || wt.Nodes[0].Success[0] != "roll" {
		t.Fatalf("the PUT refused changed the workflow: %+v", wt)
	}

	var l launchedWorkflow
	e.must(201, uAdmin, "POST", Prefix+"/workflows/deploy/launch", nil).json(t, &l)
	if !l.Job.IsWorkflow() || l.Job.WorkflowTemplate != "deploy" || len(l.Nodes) != 2 || l.Nodes[0] != jobs.NodeJobID(l.Job.ID, "migrate") {
		t.Fatalf("launched %+v", l)
	}
	var nodes workflowNodesReply
	e.must(200, uAdmin, "GET", Prefix+"/jobs/"+uid(l.Job.ID)+"/nodes", nil).json(t, &nodes)
	if len(nodes.Nodes) != 2 || nodes.Nodes[0].Status != workflow.Ready || nodes.Nodes[1].Status != workflow.Waiting ||
		nodes.Nodes[0].Template != "db" || nodes.Nodes[1].Job != l.Nodes[1] || nodes.Nodes[0].State != "" {
		t.Fatalf("nodes %+v", nodes)
	}
	// A job that is not a workflow has no nodes.
	var plain launched
	e.must(201, uAdmin, "POST", Prefix+"/templates/db/launch", nil).json(t, &plain)
	e.must(400, uAdmin, "GET", Prefix+"/jobs/"+uid(plain.Job.ID)+"/nodes", nil)
	e.must(400, uAdmin, "POST", Prefix+"/jobs/"+uid(plain.Job.ID)+"/relaunch?from=migrate", nil)

	// Carol sees the workflow job only with a role on deploy.
	e.must(404, uCarol, "GET", Prefix+"/jobs/"+uid(l.Job.ID)+"/nodes", nil)
	e.must(404, uCarol, "GET", Prefix+"/workflows/deploy", nil)
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindWorkflow, Object: "deploy", Role: access.RoleRead})
	e.must(200, uCarol, "GET", Prefix+"/jobs/"+uid(l.Job.ID)+"/nodes", nil)
	var page jobPage
	e.must(200, uCarol, "GET", Prefix+"/jobs", nil).json(t, &page)
	found := false
	for _, j := range page.Items {
		found = found || j.ID == l.Job.ID
	}
	if !found {
		t.Errorf("carol, reader of deploy, does not list its workflow job")
	}
	e.must(200, uCarol, "GET", Prefix+"/jobs?workflow=deploy", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != l.Job.ID {
		t.Errorf("the jobs of workflow deploy: %+v", page.Items)
	}
	e.must(400, uCarol, "GET", Prefix+"/jobs?workflow=no/such", nil)
	e.must(403, uCarol, "POST", Prefix+"/workflows/deploy/launch", nil)
	e.must(403, uCarol, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/relaunch", nil)
	e.must(403, uCarol, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/cancel", nil)
	e.must(403, uCarol, "POST", Prefix+"/schedules", map[string]any{"name": "s-deploy", "cron": "0 9 * * 1", "launch": map[string]any{"workflow": "deploy"}})
	e.must(404, uNobody, "POST", Prefix+"/schedules", map[string]any{"name": "s-deploy", "cron": "0 9 * * 1", "launch": map[string]any{"workflow": "deploy"}})

	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindWorkflow, Object: "deploy", Role: access.RoleExecute})
	// Relaunch from a node: the new graph is that node and what follows.
	var rl launchedWorkflow
	e.must(201, uCarol, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/relaunch?from=roll", nil).json(t, &rl)
	if len(rl.Nodes) != 1 || rl.Job.RelaunchOf != l.Job.ID || rl.Job.CreatedBy != "user/carol" || rl.Nodes[0] != jobs.NodeJobID(rl.Job.ID, "roll") {
		t.Fatalf("relaunched from roll: %+v", rl)
	}
	var ae Error
	e.must(409, uCarol, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/relaunch?from=nowhere", nil).json(t, &ae)
	if !strings.Contains(ae.Message, "no node nowhere") {
		t.Errorf("relaunch from an unknown node: %q", ae.Message)
	}
	e.must(200, uCarol, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/cancel", nil)
	// Canceled before any node started: none will run.
	e.must(200, uCarol, "GET", Prefix+"/jobs/"+uid(l.Job.ID)+"/nodes", nil).json(t, &nodes)
	for _, n := range nodes.Nodes {
		if n.Status != workflow.DoNotRun {
			t.Errorf("node %s of the canceled workflow is %s", n.ID, n.Status)
		}
	}
	// A schedule of the workflow: carol may make it now, and see it.
	e.must(201, uCarol, "POST", Prefix+"/schedules", map[string]any{"name": "s-deploy", "cron": "0 9 * * 1", "launch": map[string]any{"workflow": "deploy"}})
	e.must(200, uCarol, "GET", Prefix+"/schedules/s-deploy", nil)
	e.must(404, uNobody, "GET", Prefix+"/schedules/s-deploy", nil)
	e.must(400, uAdmin, "POST", Prefix+"/schedules", map[string]any{"name": "s-none", "cron": "0 9 * * 1", "launch": map[string]any{"workflow": "none"}})
	e.must(204, uCarol, "DELETE", Prefix+"/schedules/s-deploy", nil)
	// Deleting the workflow template forgets the roles granted on it.
	e.must(403, uCarol, "DELETE", Prefix+"/workflows/deploy", nil)
	e.must(204, uAdmin, "DELETE", Prefix+"/workflows/deploy", nil)
	e.must(404, uAdmin, "GET", Prefix+"/workflows/deploy", nil)
	if r := e.do(uCarol, "GET", Prefix+"/jobs/"+uid(l.Job.ID), nil); r.status != http.StatusNotFound {
		t.Errorf("carol still sees the workflow job once deploy and its grants are gone: %d", r.status)
	}
}
