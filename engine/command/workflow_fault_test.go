package command

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/workflow"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestWorkflowSurvivesKilledControllers runs a workflow on real
// processes — controllers hosting the maintenance services, an executor —
// and kills the leading controller (SIGKILL) twice while it runs: once
// when the first node runs, once when the next ones do. Another
// controller takes over each time from what ZooKeeper holds; the workflow
// ends exact: every node that had to run ran once (one job, one attempt),
// the others never, the failure had its handler, and the result is
// SUCCESS with the workflow out of the index of open ones.
func TestWorkflowSurvivesKilledControllers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills daemons: not in -short mode")
	}
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--name", "x1", "--threads", "3", "--enable-test-actions", "--plugin-dir", t.TempDir())
	dir := t.TempDir()
	ctls := map[string]*proc{}
	start := func(id string) {
		ctls[id] = startDaemon(t, e.root, "controller", "--listen", "127.0.0.1:0", "--identifier", id, "--config-dir", dir)
	}
	ctx := context.Background()
	leader := func() string {
		cs, err := election.New(e.conn, maintenance.ElectionName, "", nil).Contenders(ctx)
		if err != nil || len(cs) == 0 {
			return ""
		}
		return cs[0].Identifier
	}
	waitLeader := func(not string) string {
		t.Helper()
		var l string
		poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
			if l = leader(); l == "" || l == not || ctls[l] == nil {
				return fmt.Errorf("leader %q", l)
			}
			return ctls[l].hasLog("leading: maintenance services started")
		})
		return l
	}
	start("c1")
	waitLeader("")
	start("c2")

	e.ok("template", "create", "nap", "--action", "sleep", "--payload", `{"duration": "1500ms"}`)
	e.ok("template", "create", "bad", "--action", "fail")
	e.ok("workflow", "create", "release", "--file", workflowFile(t, "release.yaml", `
nodes:
  - {id: a, template: nap, success: [b, c], failure: [never]}
  - {id: b, template: nap, success: [d]}
  - {id: c, template: bad, success: [never], failure: [e]}
  - {id: e, template: nap, success: [d]}
  - {id: d, template: nap}
  - {id: never, template: nap}
`))
	id := strings.TrimSpace(e.ok("workflow", "launch", "release"))
	wf, _, err := e.store.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	running := func(node string) {
		t.Helper()
		poll.For(t, 60*time.Second, 20*time.Millisecond, func() error {
			j, _, err := e.store.Get(ctx, jobs.NodeJobID(wf.ID, node))
			if err != nil {
				return err
			}
			return errorWhen(j.State != jobs.Running, "node %s is %s", node, j.State)
		})
	}

	running("a")
	first := leader()
	ctls[first].signal(syscall.SIGKILL)
	ctls[first].wait(5 * time.Second)
	start("c3")
	second := waitLeader(first)

	running("b")
	ctls[second].signal(syscall.SIGKILL)
	ctls[second].wait(5 * time.Second)
	waitLeader(second)

	if out, errOut, code := e.run("job", "wait", id, "--timeout", "90s"); code != 0 {
		t.Fatalf("job wait: exit %d: %s %s", code, out, errOut)
	}
	var ran []string
	if err := e.store.Walk(ctx, func(j *jobs.Job, _ int32) {
		if j.ParentJob == wf.ID {
			ran = append(ran, fmt.Sprintf("%s:%s:%d", j.WorkflowNode, j.State, j.Attempt))
			if j.ID != jobs.NodeJobID(wf.ID, j.WorkflowNode) {
				t.Errorf("node %s has job %s, not its own id", j.WorkflowNode, j.ID)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(ran)
	if got := strings.Join(ran, " "); got != "a:SUCCESS:1 b:SUCCESS:1 c:FAILED:1 d:SUCCESS:1 e:SUCCESS:1" {
		t.Fatalf("node jobs %s", got)
	}
	if e.exists(workflow.IndexDir + "/" + wf.UUID()) {
		t.Fatal("the workflow is still in the index of open workflows")
	}
}
