package workflow

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/template"
)

// TestShapes runs a workflow of each shape to its end state: a chain, a
// fan-out and fan-in, a failure handler, an always edge, a failure
// without a handler, a nested workflow and a sliced node.
func TestShapes(t *testing.T) {
	e := newEnv(t)
	m := e.start("m1")
	e.waitLeading(m)
	e.template("ok", nil)
	inv := &inventory.Content{}
	for _, h := range []string{"h1", "h2", "h3"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: h, Enabled: true})
	}
	if err := e.invs.Create(e.ctx(), &inventory.Inventory{Name: "lab", Kind: inventory.Static}, inv); err != nil {
		t.Fatal(err)
	}
	e.template("sliced", func(t *template.Template) { t.Inventory, t.SliceCount = "lab", 3 })

	launch := func(name string) *jobs.Job {
		t.Helper()
		j, err := e.wl.Launch(e.ctx(), Request{Workflow: name, CreatedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// run ends the nodes in order with the outcomes given ("" for a node
	// that must never run) and waits for the workflow's end.
	run := func(wf *jobs.Job, want jobs.State, steps ...string) {
		t.Helper()
		for _, s := range steps {
			node, outcome, _ := strings.Cut(s, "=")
			if outcome == "" {
				continue
			}
			j := e.waitNode(wf, node)
			e.end(j.ID, jobs.State(outcome))
		}
		e.waitState(wf.ID, want)
		for _, s := range steps {
			if node, outcome, _ := strings.Cut(s, "="); outcome == "" {
				if j := e.nodeJob(wf, node); j != nil {
					t.Errorf("node %s ran (%s), it should not have", node, j.State)
				}
			}
		}
	}

	// chain
	{
		e.workflow("chain", "a=ok:b", "b=ok:c", "c=ok")
		wf := launch("chain")
		if e.nodeJob(wf, "b") != nil {
			t.Fatal("b launched before a ended")
		}
		run(wf, jobs.Success, "a=SUCCESS", "b=SUCCESS", "c=SUCCESS")
	}
	// fan-out and fan-in
	{
		e.workflow("diamond", "a=ok:b,c", "b=ok:d", "c=ok:d", "d=ok")
		wf := launch("diamond")
		e.end(e.waitNode(wf, "a").ID, jobs.Success)
		e.waitNode(wf, "c")
		e.end(e.waitNode(wf, "b").ID, jobs.Success)
		if e.nodeJob(wf, "d") != nil {
			t.Fatal("d launched before c ended")
		}
		run(wf, jobs.Success, "c=SUCCESS", "d=SUCCESS")
	}
	// failure handler
	{
		e.workflow("handled", "a=ok:b:h", "b=ok", "h=ok")
		run(launch("handled"), jobs.Success, "a=FAILED", "b=", "h=SUCCESS")
	}
	// failure without handler
	{
		e.workflow("unhandled", "a=ok:b", "b=ok")
		wf := launch("unhandled")
		run(wf, jobs.Failed, "a=FAILED", "b=")
		if j := e.waitState(wf.ID, jobs.Failed); !strings.Contains(j.StatusMessage, "failed without a failure edge: [a]") {
			t.Fatalf("status %q", j.StatusMessage)
		}
	}
	// always
	{
		e.workflow("always", "a=ok:::z", "z=ok")
		run(launch("always"), jobs.Success, "a=CANCELED", "z=SUCCESS")
	}
	// nested
	{
		e.workflow("inner", "x=ok")
		e.workflow("outer", "n=@inner:after", "after=ok")
		wf := launch("outer")
		inner := e.waitNode(wf, "n")
		if !inner.IsWorkflow() || inner.ParentJob != wf.ID || inner.WorkflowNode != "n" {
			t.Fatalf("node n is %+v", inner.Launch)
		}
		e.end(e.waitNode(inner, "x").ID, jobs.Success)
		e.waitState(inner.ID, jobs.Success)
		run(wf, jobs.Success, "after=SUCCESS")
	}
	// sliced node
	{
		e.workflow("slices", "s=sliced:after", "after=ok")
		wf := launch("slices")
		c := e.waitNode(wf, "s")
		if !c.Sliced || len(c.NestedJobs) != 3 || c.ParentJob != wf.ID {
			t.Fatalf("node s is %+v", c)
		}
		for _, id := range c.NestedJobs {
			e.end(id, jobs.Success)
		}
		run(wf, jobs.Success, "after=SUCCESS")
		if j := e.waitState(c.ID, jobs.Success); j.State != jobs.Success {
			t.Fatal(j.State)
		}
		// Deleting the workflow job deletes its node jobs and the sliced
		// node's slices.
		deleted, err := e.jobs.DeleteJob(e.ctx(), wf.ID)
		if err != nil || len(deleted) != 6 {
			t.Fatalf("deleted %v, %v; want the workflow, its 2 node jobs and 3 slices", deleted, err)
		}
	}
	// refused node
	{
		e.template("doomed", nil)
		e.workflow("refused", "a=doomed:ok1:h", "ok1=ok", "h=ok")
		if err := e.tpls.Delete(e.ctx(), "doomed"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.wl.Launch(e.ctx(), Request{Workflow: "refused"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "template doomed does not exist") {
			t.Fatalf("launch with a node's template gone: %v", err)
		}
	}
}

// TestCancel cancels a workflow with a node running: the node is
// canceled, the nodes after it never run, the workflow ends CANCELED.
func TestCancel(t *testing.T) {
	e := newEnv(t)
	e.waitLeading(e.start("m1"))
	e.template("ok", nil)
	e.workflow("w", "a=ok:b", "b=ok", "c=ok:::d", "d=ok")
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	a, c := e.waitNode(wf, "a"), e.waitNode(wf, "c")
	// a runs, c is still queued.
	j, ver := e.scheduled(a.ID)
	if err := j.Transition(jobs.Running, j.Created); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Update(e.ctx(), j, ver); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.CancelJob(e.ctx(), wf.ID, "test"); err != nil {
		t.Fatal(err)
	}
	e.waitState(c.ID, jobs.Canceled)
	// a's executor acts on the cancel request.
	e.end(a.ID, jobs.Canceled)
	got := e.waitState(wf.ID, jobs.Canceled)
	for _, n := range []string{"b", "d"} {
		if e.nodeJob(wf, n) != nil {
			t.Errorf("node %s ran after the cancel", n)
		}
	}
	if !strings.Contains(got.StatusMessage, "do-not-run") {
		t.Errorf("status %q", got.StatusMessage)
	}
}

// TestRelaunch relaunches a workflow job: a new run of the same graph;
// refused with the reason when a node's template is gone or a sliced
// node's slice count changed; from a failed node, only what follows it.
func TestRelaunch(t *testing.T) {
	e := newEnv(t)
	e.waitLeading(e.start("m1"))
	e.template("ok", nil)
	e.template("flaky", nil)
	limit := "web"
	e.template("prompted", func(t *template.Template) { t.Prompts = []string{template.PromptLimit} })
	w := &Template{Name: "w", Nodes: []jobs.WorkflowNode{
		{ID: "a", Template: "ok", Success: []string{"b"}},
		{ID: "b", Template: "flaky", Success: []string{"c"}},
		{ID: "c", Template: "prompted", Values: &jobs.LaunchValues{Limit: &limit}},
	}}
	if err := Check(e.ctx(), w, e.wfs, e.tpls); err != nil {
		t.Fatal(err)
	}
	if err := e.wfs.Create(e.ctx(), w); err != nil {
		t.Fatal(err)
	}
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	e.end(e.waitNode(wf, "a").ID, jobs.Success)
	e.end(e.waitNode(wf, "b").ID, jobs.Failed)
	e.waitState(wf.ID, jobs.Failed)

	// The workflow template changes; the relaunch runs the graph as it was.
	if err := e.wfs.Delete(e.ctx(), "w"); err != nil {
		t.Fatal(err)
	}
	again, err := e.wl.Relaunch(e.ctx(), wf.ID, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if again.RelaunchOf != wf.ID || again.LaunchType != jobs.LaunchRelaunch || len(again.Workflow.Nodes) != 3 {
		t.Fatalf("relaunch %+v", again.Launch)
	}
	e.end(e.waitNode(again, "a").ID, jobs.Success)
	e.end(e.waitNode(again, "b").ID, jobs.Success)
	c := e.waitNode(again, "c")
	if c.Limit != "web" {
		t.Fatalf("node c's limit %q: the launch values were not kept", c.Limit)
	}
	e.end(c.ID, jobs.Success)
	e.waitState(again.ID, jobs.Success)

	// From the failed node: b and c only.
	from, err := e.wl.Relaunch(e.ctx(), wf.ID, "b", "test")
	if err != nil {
		t.Fatal(err)
	}
	if n := from.Workflow.Nodes; len(n) != 2 || n[0].ID != "b" || n[1].ID != "c" {
		t.Fatalf("from b: %+v", n)
	}
	e.end(e.waitNode(from, "b").ID, jobs.Success)
	e.end(e.waitNode(from, "c").ID, jobs.Success)
	e.waitState(from.ID, jobs.Success)
	if e.nodeJob(from, "a") != nil {
		t.Fatal("a ran in a relaunch from b")
	}

	// A sliced node's slice count changed; a node's template gone.
	tpl, ver, err := e.tpls.Get(e.ctx(), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	tpl.SliceCount = 4
	if err := e.tpls.Update(e.ctx(), tpl, ver); err != nil {
		t.Fatal(err)
	}
	if _, err := e.wl.Relaunch(e.ctx(), wf.ID, "", "test"); !errors.Is(err, ErrCannotRelaunch) || !strings.Contains(err.Error(), "slice count of template flaky changed from 0 to 4") {
		t.Fatalf("relaunch after the slice count changed: %v", err)
	}
	if err := e.tpls.Delete(e.ctx(), "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.wl.Relaunch(e.ctx(), wf.ID, "", "test"); !errors.Is(err, ErrCannotRelaunch) || !strings.Contains(err.Error(), "node a of "+wf.ID+": template ok no longer exists") {
		t.Fatalf("relaunch with a template gone: %v", err)
	}
	if _, err := e.wl.Relaunch(e.ctx(), wf.ID, "nope", "test"); !errors.Is(err, ErrCannotRelaunch) {
		t.Fatalf("relaunch from an unknown node: %v", err)
	}
}

// TestLeaderKilledMidWorkflow kills the leading member while a workflow
// runs: the next leader goes on from what ZooKeeper holds, launches every
// node exactly once, and the workflow ends exact.
func TestLeaderKilledMidWorkflow(t *testing.T) {
	e := newEnv(t)
	m1 := e.start("m1")
	e.waitLeading(m1)
	m2 := e.start("m2")
	e.template("ok", nil)
	e.workflow("w", "a=ok:b,c", "b=ok:d", "c=ok:d", "d=ok")
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	e.end(e.waitNode(wf, "a").ID, jobs.Success)
	m1.kill()
	e.end(e.waitNode(wf, "b").ID, jobs.Success)
	e.waitLeading(m2)
	e.end(e.waitNode(wf, "c").ID, jobs.Failed)
	e.end(e.waitNode(wf, "d").ID, jobs.Success)
	// c failed without a failure edge: the workflow fails, once d ended.
	got := e.waitState(wf.ID, jobs.Failed)
	// Every node job is the one of its deterministic id, and no other job
	// names the workflow as its parent.
	var children []string
	if err := e.jobs.Walk(e.ctx(), func(j *jobs.Job, _ int32) {
		if j.ParentJob == wf.ID {
			children = append(children, j.WorkflowNode)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(children) != 4 {
		t.Fatalf("node jobs %v, want one per node", children)
	}
	if got.Progress != 100 {
		t.Fatalf("progress %d", got.Progress)
	}
	// Its index node went with the final write.
	if ok, _, err := e.conn.Exists(IndexPath(e.conn, wf.UUID())); err != nil || ok {
		t.Fatalf("index node left: %v %v", ok, err)
	}
}

// TestNotifiesAsAWhole: a workflow notifies by its workflow template's
// attachments, once started and once ended; its node jobs by their own
// templates'; a sliced node once as a whole, never per slice.
func TestNotifiesAsAWhole(t *testing.T) {
	e := newEnv(t)
	e.waitLeading(e.start("m1"))
	ctx := e.ctx()
	ns := notify.NewStore(e.conn)
	if err := ns.Create(ctx, notify.Template{Name: "pager", Kind: notify.Command, Command: &notify.CommandSpec{Argv: []string{"/bin/true"}}}, nil); err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Content{}
	for _, h := range []string{"h1", "h2", "h3"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: h, Enabled: true})
	}
	if err := e.invs.Create(ctx, &inventory.Inventory{Name: "lab", Kind: inventory.Static}, inv); err != nil {
		t.Fatal(err)
	}
	e.template("ok", nil)
	e.template("sliced", func(t *template.Template) { t.Inventory, t.SliceCount = "lab", 3 })
	e.workflow("w", "s=sliced:a", "a=ok")
	for _, att := range []struct {
		kind   notify.AttachKind
		target string
	}{{notify.AttachWorkflow, "w"}, {notify.AttachTemplate, "ok"}, {notify.AttachTemplate, "sliced"}} {
		for _, ev := range jobs.NotifyEvents {
			if err := ns.Attach(ctx, att.kind, att.target, ev, "pager"); err != nil {
				t.Fatal(err)
			}
		}
	}
	wf, err := e.wl.Launch(ctx, Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.waitNode(wf, "s")
	// A first slice starts: the sliced job starts (an executor's write
	// would make the container follow at once; here the service does).
	first, ver := e.scheduled(c.NestedJobs[0])
	if err := first.Transition(jobs.Running, first.Created); err != nil {
		t.Fatal(err)
	}
	if _, err := e.jobs.Update(ctx, first, ver); err != nil {
		t.Fatal(err)
	}
	e.waitState(c.ID, jobs.Running)
	for _, id := range c.NestedJobs {
		e.end(id, jobs.Success)
	}
	e.end(e.waitNode(wf, "a").ID, jobs.Success)
	e.waitState(wf.ID, jobs.Success)

	names, _, err := e.conn.Children(ns.OutboxPath())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		data, _, err := e.conn.Get(ns.OutboxPath() + "/" + n)
		if err != nil {
			t.Fatal(err)
		}
		var notice jobs.Notice
		if err := json.Unmarshal(data, &notice); err != nil {
			t.Fatal(err)
		}
		who := map[string]string{wf.ID: "workflow", c.ID: "sliced", jobs.NodeJobID(wf.ID, "a"): "a"}[notice.Job.ID]
		if who == "" {
			who = "other " + notice.Job.ID
		}
		got = append(got, who+":"+string(notice.Event))
	}
	sort.Strings(got)
	// The test plays the executor of a and of the slices with writes that
	// notify nothing (an executor's writes do): what they would notify is
	// on their documents.
	want := "sliced:started sliced:success workflow:started workflow:success"
	if strings.Join(got, " ") != want {
		t.Fatalf("notices %v, want %s", got, want)
	}
	if a := e.nodeJob(wf, "a"); a.Notifications == nil || strings.Join(a.Notifications.Success, ",") != "pager" {
		t.Fatalf("node a notifies %+v, want its template's", a.Notifications)
	}
	for _, id := range c.NestedJobs {
		if sl, _, err := e.jobs.Get(ctx, id); err != nil || sl.Notifications != nil {
			t.Fatalf("slice %s notifies %+v (%v), want nothing: its container does", id, sl.Notifications, err)
		}
	}
}

// TestRestoreIndexesAgain: an open workflow job whose index node was
// removed by hand is indexed again by `queue restore`, and runs.
func TestRestoreIndexesAgain(t *testing.T) {
	e := newEnv(t)
	e.template("ok", nil)
	e.workflow("w", "a=ok")
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.conn.Delete(IndexPath(e.conn, wf.UUID()), -1); err != nil {
		t.Fatal(err)
	}
	rep, err := e.jobs.Restore(e.ctx())
	if err != nil || len(rep.Requeued) != 1 || rep.Requeued[0] != wf.ID {
		t.Fatalf("restore: %+v, %v", rep, err)
	}
	if rep, err := e.jobs.Restore(e.ctx()); err != nil || len(rep.Requeued) != 0 {
		t.Fatalf("a second restore: %+v, %v", rep, err)
	}
	e.waitLeading(e.start("m1"))
	e.end(e.waitNode(wf, "a").ID, jobs.Success)
	e.waitState(wf.ID, jobs.Success)
}

// TestWokenByEvents: with no periodic pass in sight, a launch wakes the
// service (the index's children change) and so does a node job's end
// (its writer bumps the index's data): the workflow goes on at once.
func TestWokenByEvents(t *testing.T) {
	e := newEnv(t)
	e.waitLeading(e.startEvery("m1", time.Hour))
	inv := &inventory.Content{}
	for _, h := range []string{"h1", "h2"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: h, Enabled: true})
	}
	if err := e.invs.Create(e.ctx(), &inventory.Inventory{Name: "lab", Kind: inventory.Static}, inv); err != nil {
		t.Fatal(err)
	}
	e.template("ok", nil)
	e.template("sliced", func(t *template.Template) { t.Inventory, t.SliceCount = "lab", 2 })
	e.workflow("w", "s=sliced:after", "after=ok")
	wf, err := e.wl.Launch(e.ctx(), Request{Workflow: "w"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.waitNode(wf, "s") // woken by the launch
	for _, id := range c.NestedJobs {
		e.end(id, jobs.Success)
	}
	// The sliced node's container is derived (as `job show` would) and
	// ends: that write tells the service.
	if got, err := e.jobs.SyncContainer(e.ctx(), c.ID); err != nil || got.State != jobs.Success {
		t.Fatalf("the sliced node: %v, %v", got, err)
	}
	e.waitNode(wf, "after")
}
