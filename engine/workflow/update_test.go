package workflow

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// TestUpdateNodes runs workflows whose first node is a project update or
// an inventory update, then a template: the node job is the update job
// itself (its action, keys and record on the project or inventory), and
// the template runs once it succeeded.
func TestUpdateNodes(t *testing.T) {
	e := newEnv(t)
	m := e.start("m1")
	e.waitLeading(m)
	e.template("ok", nil)
	projects := project.NewStore(e.conn, nil)
	if err := projects.Create(e.ctx(), &project.Project{Name: "src", Kind: project.Directory, Directory: "/srv/src"}); err != nil {
		t.Fatal(err)
	}
	if err := e.invs.Create(e.ctx(), &inventory.Inventory{Name: "lab", Kind: inventory.Static}, &inventory.Content{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.invs.SetSource(e.ctx(), "lab", &inventory.Source{Project: "src", Path: "hosts.yml"}); err != nil {
		t.Fatal(err)
	}
	create := func(name string, first jobs.WorkflowNode) {
		t.Helper()
		first.ID, first.Success = "update", []string{"run"}
		w := &Template{Name: name, Nodes: []jobs.WorkflowNode{first, {ID: "run", Template: "ok"}}}
		if err := w.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := Check(e.ctx(), w, e.wfs, e.tpls); err != nil {
			t.Fatal(err)
		}
		if err := e.wfs.Create(e.ctx(), w); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string) (*jobs.Job, *jobs.Job) {
		t.Helper()
		wf, err := e.wl.Launch(e.ctx(), Request{Workflow: name, CreatedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		up := e.waitNode(wf, "update")
		if up.ParentJob != wf.ID || up.WorkflowNode != "update" || up.LaunchType != jobs.LaunchWorkflow || up.CreatedBy != "test" {
			t.Errorf("update node job: parent %q, node %q, launch type %q, by %q", up.ParentJob, up.WorkflowNode, up.LaunchType, up.CreatedBy)
		}
		if e.nodeJob(wf, "run") != nil {
			t.Fatal("the template node launched before the update ended")
		}
		e.end(up.ID, jobs.Success)
		e.end(e.waitNode(wf, "run").ID, jobs.Success)
		e.waitState(wf.ID, jobs.Success)
		return wf, up
	}

	create("refresh-project", jobs.WorkflowNode{Project: "src"})
	_, up := run("refresh-project")
	if up.Action != project.UpdateAction || up.UniqueKey != "project-update:src" {
		t.Errorf("project node job: action %q, unique key %q", up.Action, up.UniqueKey)
	}
	if p, _, err := projects.Get(e.ctx(), "src"); err != nil || p.LastUpdateJob != up.ID {
		t.Errorf("project src records update %v (err %v), want %s", p, err, up.ID)
	}

	create("refresh-inventory", jobs.WorkflowNode{Inventory: "lab"})
	_, up = run("refresh-inventory")
	if up.Action != invsource.UpdateAction || !slices.Contains(up.ConcurrencyKeys, jobs.InventorySourceKey("lab")) {
		t.Errorf("inventory node job: action %q, concurrency keys %v", up.Action, up.ConcurrencyKeys)
	}
	if inv, _, err := e.invs.Get(e.ctx(), "lab"); err != nil || inv.Source.LastUpdateJob != up.ID {
		t.Errorf("inventory lab records update %+v (err %v), want %s", inv.Source, err, up.ID)
	}

	// A project deleted while its node waits: the node's launch is
	// refused at its time, and a FAILED job says why.
	w := &Template{Name: "late", Nodes: []jobs.WorkflowNode{{ID: "first", Template: "ok", Success: []string{"update"}}, {ID: "update", Project: "src"}}}
	if err := e.wfs.Create(e.ctx(), w); err != nil {
		t.Fatal(err)
	}
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "late", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	first := e.waitNode(wf, "first")
	// The project is the source of inventory lab: not deleted while it is.
	if err := projects.Delete(e.ctx(), "src"); !errors.Is(err, project.ErrInUse) {
		t.Fatalf("deleting the project of a source: %v, want project.ErrInUse", err)
	}
	if _, err := e.invs.SetSource(e.ctx(), "lab", nil); err != nil {
		t.Fatal(err)
	}
	if err := projects.Delete(e.ctx(), "src"); err != nil {
		t.Fatal(err)
	}
	e.end(first.ID, jobs.Success)
	e.waitState(wf.ID, jobs.Failed)
	if j := e.nodeJob(wf, "update"); j == nil || j.State != jobs.Failed || j.Action != RefusedAction || j.Target() != "project/src" ||
		!strings.Contains(j.StatusMessage, "src") {
		t.Errorf("the refused update node's job: %+v", j)
	}
}

// TestUpdateNodesRefused: a node naming a missing project, a missing
// inventory or one without a source is refused when the workflow is
// written, and a node naming two things by Validate.
func TestUpdateNodesRefused(t *testing.T) {
	e := newEnv(t)
	e.template("ok", nil)
	if err := e.invs.Create(e.ctx(), &inventory.Inventory{Name: "bare", Kind: inventory.Static}, &inventory.Content{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node jobs.WorkflowNode
		want string
	}{
		{jobs.WorkflowNode{ID: "u", Project: "missing"}, "project missing does not exist"},
		{jobs.WorkflowNode{ID: "u", Inventory: "absent"}, "inventory absent does not exist"},
		{jobs.WorkflowNode{ID: "u", Inventory: "bare"}, "inventory bare has no source"},
	} {
		w := &Template{Name: "w", Nodes: []jobs.WorkflowNode{c.node}}
		if err := w.Validate(); err != nil {
			t.Fatal(err)
		}
		err := Check(e.ctx(), w, e.wfs, e.tpls)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("node %+v: got %v, want ErrInvalid saying %q", c.node, err, c.want)
		}
	}
	w := &Template{Name: "w", Nodes: []jobs.WorkflowNode{{ID: "u", Project: "src", Template: "ok"}}}
	if err := w.Validate(); !errors.Is(err, jobs.ErrInvalid) || !strings.Contains(err.Error(), "exactly one of") {
		t.Errorf("a node naming a project and a template: got %v", err)
	}
}
