package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// workflowFile writes a file in a temporary directory and returns its path.
func workflowFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWorkflowFromYAMLRuns defines a workflow in a YAML file with the
// binary, launches it, and lets a real executor and the maintenance
// leader (`jobengine services`) run it: the failing node's failure edge
// runs, the node after a success that did not happen never runs, and the
// workflow succeeds; a sliced template's node runs as a sliced job. Its
// relaunch runs again; once a node's template is gone the relaunch is
// refused with the reason.
func TestWorkflowFromYAMLRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts daemons: not in -short mode")
	}
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--name", "x1", "--threads", "2", "--enable-test-actions", "--plugin-dir", t.TempDir())
	e.services("s1")
	e.ok("template", "create", "ok", "--action", "echo")
	e.ok("template", "create", "bad", "--action", "fail")
	e.ok("template", "create", "greet", "--action", "echo", "--prompt", "payload")
	e.ok("inventory", "import", "fleet", e.writeFile("fleet.json", ansibleHosts(4)))
	e.ok("template", "create", "spread", "--action", "echo", "--inventory", "fleet", "--slices", "2")
	file := workflowFile(t, "deploy.yaml", `
description: build, deploy, roll back on failure
nodes:
  - id: build
    template: ok
    success: [deploy]
    failure: [cleanup]
  - id: deploy
    template: bad
    success: [announce]
    failure: [rollback]
  - id: rollback
    template: greet
    values:
      payload: {message: rolling back}
  - id: announce
    template: ok
  - id: cleanup
    template: ok
  - id: sliced
    template: spread
`)
	if out := e.ok("workflow", "create", "deploy", "--file", file); !strings.Contains(out, "workflow deploy created") {
		t.Fatalf("create printed %q", out)
	}
	if out := e.ok("workflow", "show", "deploy"); !strings.Contains(out, "rollback") || !strings.Contains(out, "payload") {
		t.Fatalf("show printed %q", out)
	}
	// What show --yaml prints, edit takes back.
	yml := workflowFile(t, "again.yaml", e.ok("workflow", "show", "deploy", "--yaml"))
	e.ok("workflow", "edit", "deploy", "--file", yml)

	id := strings.TrimSpace(e.ok("workflow", "launch", "deploy"))
	if out, errOut, code := e.run("job", "wait", id, "--timeout", "60s"); code != 0 {
		t.Fatalf("job wait: exit %d: %s %s", code, out, errOut)
	}
	rows := decode[[]nodeRow](t, e.ok("workflow", "nodes", id, "--json"))
	got := map[string]string{}
	for _, r := range rows {
		got[r.Node] = r.Status + "/" + r.State
	}
	want := map[string]string{"build": "succeeded/SUCCESS", "deploy": "failed/FAILED", "rollback": "succeeded/SUCCESS",
		"announce": "do-not-run/", "cleanup": "do-not-run/", "sliced": "succeeded/SUCCESS"}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("node %s: %s, want %s", n, got[n], w)
		}
	}
	j, _, err := e.store.Get(e.ctx(), rows[2].Job)
	if err != nil || !strings.Contains(string(j.Payload), "rolling back") || j.WorkflowNode != "rollback" || j.LaunchType != jobs.LaunchWorkflow {
		t.Fatalf("the rollback node's job: %+v, %v", j, err)
	}

	// The sliced node ran as a sliced job inside the workflow.
	sl, _, err := e.store.Get(e.ctx(), rows[5].Job)
	if err != nil || !sl.Sliced || len(sl.NestedJobs) != 2 || sl.ParentJob != id {
		t.Fatalf("the sliced node's job: %+v, %v", sl, err)
	}

	again := strings.TrimSpace(e.ok("workflow", "relaunch", id))
	if out, errOut, code := e.run("job", "wait", again, "--timeout", "60s"); code != 0 {
		t.Fatalf("job wait of the relaunch: exit %d: %s %s", code, out, errOut)
	}
	e.ok("template", "delete", "greet")
	_, errOut, code := e.run("workflow", "relaunch", id)
	if code != 1 || !strings.Contains(errOut, "node rollback of "+id+": template greet no longer exists") {
		t.Fatalf("relaunch with a template gone: exit %d: %s", code, errOut)
	}
}

// TestWorkflowBadDefinitions refuses what must not be stored, with exit 2
// and a message naming the problem, and writes nothing.
func TestWorkflowBadDefinitions(t *testing.T) {
	e := newJobEnv(t)
	e.ok("template", "create", "ok", "--action", "echo")
	e.ok("workflow", "create", "inner", "--file", workflowFile(t, "inner.yaml", "nodes: [{id: a, template: ok}]\n"))
	e.ok("workflow", "create", "outer", "--file", workflowFile(t, "outer.yaml", "nodes: [{id: n, workflow: inner}]\n"))
	for _, tc := range []struct {
		name, command, workflow, file, want string
	}{
		{"cycle", "create", "w", "nodes:\n- {id: a, template: ok, success: [b]}\n- {id: b, template: ok, failure: [a]}\n", "the edges loop: a → b → a"},
		{"itself", "create", "w", "nodes: [{id: n, workflow: w}]\n", "cannot contain itself"},
		{"through another", "edit", "inner", "nodes: [{id: n, workflow: outer}]\n", "workflow inner contains itself: inner → outer → inner"},
		{"no template", "create", "w", "nodes: [{id: a, template: nope}]\n", "template nope does not exist"},
		{"no project", "create", "w", "nodes: [{id: a, project: nope}]\n", "project nope does not exist"},
		{"no inventory", "create", "w", "nodes: [{id: a, inventory: nope}]\n", "inventory nope does not exist"},
		{"two kinds", "create", "w", "nodes: [{id: a, template: ok, project: ok}]\n", "exactly one of template, workflow, project and inventory"},
		{"not promptable", "create", "w", "nodes: [{id: a, template: ok, values: {limit: web}}]\n", "limit"},
		{"unknown field", "create", "w", "nodes: [{id: a, template: ok, sucess: [b]}]\n", "sucess"},
		{"unknown edge", "create", "w", "nodes: [{id: a, template: ok, success: [b]}]\n", `"b", which is not a node`},
		{"no nodes", "create", "w", "description: empty\n", "at least one node"},
		{"not a mapping", "create", "w", "- a\n", "want a mapping"},
	} {
		_, errOut, code := e.run("workflow", tc.command, tc.workflow, "--file", workflowFile(t, "w.yaml", tc.file))
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 saying %q", tc.name, code, errOut, tc.want)
		}
	}
	list := decode[[]map[string]any](t, e.ok("workflow", "list", "--json"))
	if len(list) != 2 {
		t.Fatalf("workflows stored: %v", list)
	}
	if out := e.ok("workflow", "show", "inner", "--json"); !strings.Contains(out, `"template": "ok"`) {
		t.Fatalf("inner changed: %s", out)
	}
}
