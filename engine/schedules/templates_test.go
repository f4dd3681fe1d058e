package schedules

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/exectest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// templateLauncher is the LaunchFunc the maintenance leader runs with.
func templateLauncher(conn *zkconn.Conn, js *jobs.Store) LaunchFunc {
	tpls := template.NewStore(conn, nil)
	tl := &template.Launcher{Jobs: js, Templates: tpls, Inventories: inventory.NewStore(conn, inventory.Config{})}
	wl := &workflow.Launcher{Jobs: js, Workflows: workflow.NewStore(conn, nil), Templates: tpls}
	return TemplateLauncher(js, tl, wl)
}

// Schedules launch a job template with its launch values and a workflow
// template, each occurrence once with the occurrence's id, across a
// leader kill; the template's launches are scheduled (the second waits
// behind the first, which holds the template's key); a template that is
// gone or a value it does not prompt for leaves a FAILED job saying why.
func TestSchedulesLaunchTemplatesAndWorkflows(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:30Z"))
	e.launcher = templateLauncher
	ctx := e.ctx()
	tpls := template.NewStore(e.conn, nil)
	if err := tpls.Create(ctx, &template.Template{Name: "greet", Action: "echo", Priority: 100, Prompts: []string{template.PromptPayload}}); err != nil {
		t.Fatal(err)
	}
	w := &workflow.Template{Name: "flow", Nodes: []jobs.WorkflowNode{{ID: "a", Template: "greet"}}}
	if err := workflow.NewStore(e.conn, nil).Create(ctx, w); err != nil {
		t.Fatal(err)
	}
	for _, sc := range []Schedule{
		{Name: "tpl", Launch: Launch{Template: "greet", Values: json.RawMessage(`{"payload": {"who": "world"}}`)}},
		{Name: "wf", Launch: Launch{Workflow: "flow"}},
		{Name: "gone", Launch: Launch{Template: "nope"}},
		{Name: "refused", Launch: Launch{Template: "greet", Values: json.RawMessage(`{"limit": "web"}`)}},
	} {
		sc.Cron, sc.Enabled = "0 * * * *", true
		if err := e.store.Create(ctx, &sc); err != nil {
			t.Fatal(err)
		}
	}
	exectest.Join(t, e.dial(), "x1", 10)
	a := e.start("a")
	a.waitLeading()
	b := e.start("b")
	e.settle()
	e.clock.Set(utc("2027-03-01T01:00:00Z"))
	e.waitJobs("tpl", "2027-03-01T01:00:00Z QUEUED")
	e.waitJobs("wf", "2027-03-01T01:00:00Z PENDING")
	e.waitJobs("gone", "2027-03-01T01:00:00Z FAILED")
	e.waitJobs("refused", "2027-03-01T01:00:00Z FAILED")
	e.settle()
	a.kill()
	b.waitLeading()
	e.settle()
	e.clock.Set(utc("2027-03-01T02:00:00Z"))
	e.waitJobs("tpl", "2027-03-01T01:00:00Z QUEUED", "2027-03-01T02:00:00Z PENDING")
	e.waitJobs("wf", "2027-03-01T01:00:00Z PENDING", "2027-03-01T02:00:00Z PENDING")

	getAt := func(name, at string) *jobs.Job {
		t.Helper()
		sc, _, err := e.store.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		j, _, err := e.jobs.Get(ctx, JobID(sc.UID, schedule.Tick{At: utc(at)}))
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	get := func(name string) *jobs.Job { t.Helper(); return getAt(name, "2027-03-01T01:00:00Z") }
	first := get("tpl")
	if j := first; j.ExecutionNode != "x1" || j.InstanceGroup != jobs.DefaultGroup {
		t.Fatalf("the first launch is on %q in %q, want x1 in the default group", j.ExecutionNode, j.InstanceGroup)
	}
	want := "waiting for " + first.ID + " to finish (" + jobs.TemplateKey("greet") + ")"
	poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
		if j := getAt("tpl", "2027-03-01T02:00:00Z"); j.Explanation != want {
			return fmt.Errorf("the second launch says %q, want %q", j.Explanation, want)
		}
		return nil
	})
	if j := get("tpl"); j.Template != "greet" || j.LaunchType != jobs.LaunchScheduled || !strings.Contains(string(j.Payload), "world") {
		t.Fatalf("the template's job: %+v", j)
	}
	if j := get("wf"); !j.IsWorkflow() || j.WorkflowTemplate != "flow" || j.LaunchType != jobs.LaunchScheduled {
		t.Fatalf("the workflow job: %+v", j.Launch)
	}
	if j := get("gone"); !strings.Contains(j.StatusMessage, "template nope does not exist") || j.Target() != "template/nope" {
		t.Fatalf("the refused job: %s", j.StatusMessage)
	}
	if j := get("refused"); !strings.Contains(j.StatusMessage, "limit") {
		t.Fatalf("the refused job: %s", j.StatusMessage)
	}
}
