package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/exectest"
	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// TestSlicedJobsRunOnExecutors runs sliced jobs on a real executor: the
// container follows its slices to SUCCESS or FAILED, and a canceled
// container ends CANCELED once its running slices have stopped.
func TestSlicedJobsRunOnExecutors(t *testing.T) {
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--enable-test-actions", "--name", "x", "--threads", "2", "--plugin-dir", t.TempDir())
	startController(t, e.root)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(5)))
	e.binOK("template", "create", "ok", "--action", "echo", "--inventory", "inv", "--slices", "4")
	e.binOK("template", "create", "bad", "--action", "fail", "--inventory", "inv", "--slices", "3", "--payload", `{"code": 3}`)
	e.binOK("template", "create", "slow", "--action", "sleep", "--inventory", "inv", "--slices", "5", "--payload", `{"duration": "1m"}`)

	c := strings.TrimSpace(e.binOK("template", "launch", "ok"))
	if out := e.binOK("job", "wait", c, "--timeout", "60s"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("job wait on the container: %q", out)
	}
	for _, id := range state(e, c).NestedJobs {
		if j := state(e, id); j.State != jobs.Success || j.Executor != "x" {
			t.Fatalf("slice %s: %s on %q", id, j.State, j.Executor)
		}
	}
	if j := state(e, c); j.Started == nil || j.Progress != 100 || !strings.Contains(j.StatusMessage, "4 of 4 slices ended: 4 succeeded") {
		t.Fatalf("container: %+v", j)
	}

	c = strings.TrimSpace(e.binOK("template", "launch", "bad"))
	if _, _, code := e.bin("job", "wait", c, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on a failed container: exit %d, want 1", code)
	}
	if j := state(e, c); j.State != jobs.Failed || !strings.Contains(j.StatusMessage, "3 failed") {
		t.Fatalf("container of failing slices: %s %q", j.State, j.StatusMessage)
	}

	// Two slices run (two threads), three wait; cancel the container.
	c = strings.TrimSpace(e.binOK("template", "launch", "slow"))
	poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
		if j := state(e, c); j.State != jobs.Running {
			return fmt.Errorf("container %s", j.State)
		}
		return nil
	})
	e.binOK("job", "cancel", c)
	if _, _, code := e.bin("job", "wait", c, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on a canceled container: exit %d, want 1", code)
	}
	if j := state(e, c); j.State != jobs.Canceled {
		t.Fatalf("canceled container ended %s", j.State)
	}
	started := 0
	for _, id := range state(e, c).NestedJobs {
		j := state(e, id)
		if j.State != jobs.Canceled {
			t.Fatalf("slice %s of a canceled container: %s", id, j.State)
		}
		if j.Started != nil {
			started++
		}
	}
	if started == 0 || started == 5 {
		t.Fatalf("%d of 5 slices had started; want some running and some queued at the cancel", started)
	}

	// Cancel one slice: the others run on, the container ends FAILED.
	e.binOK("template", "edit", "slow", "--payload", `{"duration": "200ms"}`)
	c = strings.TrimSpace(e.binOK("template", "launch", "slow"))
	e.binOK("job", "cancel", state(e, c).NestedJobs[4])
	if _, _, code := e.bin("job", "wait", c, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait: exit %d, want 1", code)
	}
	j := state(e, c)
	if j.State != jobs.Failed || !strings.Contains(j.StatusMessage, "4 succeeded, 0 failed, 1 canceled") {
		t.Fatalf("container with one canceled slice: %s %q", j.State, j.StatusMessage)
	}
}

func state(e *jobEnv, id string) *jobs.Job {
	e.t.Helper()
	j, _, err := e.store.Get(e.ctx(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// TestRelaunchAndDelete relaunches a sliced job, one of its slices, and
// refuses what cannot be relaunched; then deletes results.
func TestRelaunchAndDelete(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(9)))
	e.binOK("template", "create", "r", "--action", "echo", "--inventory", "inv", "--slices", "2", "--prompt", "limit")
	first := e.launch("r", "--limit", "odd") // h01 h03 h05 h07 h09
	again := decode[launchResult](t, e.binOK("job", "relaunch", first.Job.ID, "--json"))
	c := again.Job
	if c.RelaunchOf != first.Job.ID || c.LaunchType != jobs.LaunchRelaunch || c.Limit != "odd" || c.LaunchValues == nil ||
		*c.LaunchValues.Limit != "odd" || len(again.Slices) != 2 || c.Hosts != 5 || c.ID == first.Job.ID {
		t.Fatalf("relaunched container: %+v", c)
	}

	// One slice: a plain job over the same slice, no container.
	s2 := first.Slices[1]
	one := decode[launchResult](t, e.binOK("job", "relaunch", s2.ID, "--json")).Job
	if one.ParentJob != "" || one.IsContainer() || one.SliceNumber != 2 || one.SliceCount != 2 || one.Hosts != 2 ||
		one.RelaunchOf != s2.ID || one.Limit != "odd" || one.Template != "r" {
		t.Fatalf("relaunched slice: %+v", one)
	}
	if got, _ := scriptHosts(t, e.binOK("job", "inventory", one.ID)); strings.Join(got, " ") != "h03 h07" {
		t.Fatalf("relaunched slice runs over %v, want h03 h07", got)
	}

	// Refused: the slice count changed; the template is gone; no template.
	e.binOK("template", "edit", "r", "--slices", "3")
	if _, errOut, code := e.bin("job", "relaunch", first.Job.ID); code != 1 || !strings.Contains(errOut, "changed from 2 to 3") {
		t.Fatalf("relaunch after the slice count changed: exit %d, %q", code, errOut)
	}
	e.binOK("template", "delete", "r")
	if _, errOut, code := e.bin("job", "relaunch", first.Job.ID); code != 1 || !strings.Contains(errOut, "template r of") {
		t.Fatalf("relaunch of a deleted template's job: exit %d, %q", code, errOut)
	}
	plain := e.add("echo")
	if _, errOut, code := e.bin("job", "relaunch", plain); code != 1 || !strings.Contains(errOut, "not launched from a template") {
		t.Fatalf("relaunch of a plain job: exit %d, %q", code, errOut)
	}

	// Delete: refused while live; a container with its slices once final.
	if _, errOut, code := e.bin("job", "delete", first.Job.ID); code != 1 || !strings.Contains(errOut, "only a final job") {
		t.Fatalf("delete of a live container: exit %d, %q", code, errOut)
	}
	e.binOK("job", "cancel", first.Job.ID) // both slices waiting: CANCELED at once
	out := e.binOK("job", "delete", first.Job.ID)
	if strings.Count(out, "deleted") != 3 {
		t.Fatalf("delete of a container printed %q, want it and its two slices", out)
	}
	for _, id := range []string{first.Job.ID, first.Slices[0].ID, first.Slices[1].ID} {
		if _, _, err := e.store.Get(e.ctx(), id); err == nil {
			t.Fatalf("%s still in ZooKeeper", id)
		}
	}
	// A final slice alone.
	e.binOK("job", "cancel", again.Slices[0].ID)
	if out := e.binOK("job", "delete", again.Slices[0].ID); strings.Count(out, "deleted") != 1 {
		t.Fatalf("delete of a slice printed %q", out)
	}
	// No scheduler runs here: the other slice still waits for one.
	if j := state(e, again.Slices[1].ID); j.State != jobs.Pending || j.Explanation != jobs.NotScheduledYet {
		t.Fatalf("the other slice: %s %q", j.State, j.Explanation)
	}
}

func TestJobListFilters(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(4)))
	e.binOK("template", "create", "a", "--action", "echo", "--inventory", "inv", "--slices", "2")
	e.binOK("template", "create", "b", "--action", "echo")
	sliced := e.launch("a")
	plain := e.launch("b")
	re := decode[launchResult](t, e.binOK("job", "relaunch", sliced.Slices[0].ID, "--json")).Job
	other := e.add("echo")
	ids := func(args ...string) string {
		t.Helper()
		var out []string
		for _, j := range decode[[]map[string]any](t, e.binOK(append([]string{"job", "list", "--json"}, args...)...)) {
			out = append(out, j["id"].(string))
		}
		return strings.Join(out, " ")
	}
	c, s1, s2 := sliced.Job.ID, sliced.Slices[0].ID, sliced.Slices[1].ID
	sameSet := func(got string, want ...string) bool {
		g := strings.Fields(got)
		if len(g) != len(want) {
			return false
		}
		for _, w := range want {
			if !contains(g, w) {
				return false
			}
		}
		return true
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--template", "a"}, []string{c, s1, s2, re.ID}},
		{[]string{"--template", "b"}, []string{plain.Job.ID}},
		{[]string{"--slices-of", c}, []string{s1, s2}},
		{[]string{"--sliced"}, []string{c}},
		{[]string{"--slices"}, []string{s1, s2}},
		{[]string{"--launch-type", "relaunch"}, []string{re.ID}},
		{[]string{"--since", "1h"}, []string{c, s1, s2, plain.Job.ID, re.ID, other}},
		{[]string{"--until", "1h"}, nil},
		// Launches wait for the scheduler (none runs here); a job added
		// by hand is queued at once.
		{[]string{"--template", "a", "--state", "PENDING"}, []string{c, s1, s2, re.ID}},
		{[]string{"--state", "QUEUED"}, []string{other}},
	} {
		if got := ids(tc.args...); !sameSet(got, tc.want...) {
			t.Errorf("job list %v: %s, want %v", tc.args, got, tc.want)
		}
	}
	// A filtered listing pages like any other.
	_, errOut, code := e.bin("job", "list", "--template", "a", "--limit", "2")
	if code != 0 || !strings.Contains(errOut, "more match") || !strings.Contains(errOut, "--after") {
		t.Fatalf("job list --template a --limit 2: exit %d, %q", code, errOut)
	}
	after := strings.TrimSpace(errOut[strings.LastIndex(errOut, "--after ")+len("--after "):])
	first, second := ids("--template", "a", "--limit", "2"), ids("--template", "a", "--limit", "2", "--after", after)
	if !sameSet(first+" "+second, c, s1, s2, re.ID) {
		t.Fatalf("pages: %q then %q", first, second)
	}
	if show := e.binOK("job", "show", s2); !strings.Contains(show, "slice:") || !strings.Contains(show, "2 of 2") || !strings.Contains(show, "template:") {
		t.Fatalf("job show of a slice:\n%s", show)
	}
	for _, bad := range [][]string{
		{"--launch-type", "nope"}, {"--since", "yesterday"}, {"--sliced", "--slices"}, {"--slices-of", "x"},
		{"--template", "a b"}, {"--since", "1h", "--until", "2h"},
	} {
		if _, errOut, code := e.bin(append([]string{"job", "list"}, bad...)...); code != 2 {
			t.Errorf("job list %v: exit %d (%q), want 2", bad, code, errOut)
		}
	}
}

// TestJobDeleteFromTheHistory deletes a sliced job from ZooKeeper and from
// Elasticsearch: refused while its versions wait in the outbox, done once
// the pump has indexed them; a job only in the history is deleted there.
func TestJobDeleteFromTheHistory(t *testing.T) {
	es := estest.Start(t, estest.Options{})
	const prefix = "t-delete-"
	e := newJobEnv(t)
	e.extra = []string{"--es-hosts", es.URL(), "--es-index-prefix", prefix}
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(4)))
	e.binOK("template", "create", "tpl", "--action", "echo", "--inventory", "inv", "--slices", "2")
	res := e.launch("tpl")
	e.binOK("job", "cancel", res.Job.ID)
	if _, errOut, code := e.bin("job", "delete", res.Job.ID); code != 1 || !strings.Contains(errOut, "not yet indexed") {
		t.Fatalf("delete before indexing: exit %d, %q", code, errOut)
	}
	if _, _, err := e.store.Get(e.ctx(), res.Job.ID); err != nil {
		t.Fatalf("a refused delete removed the job: %v", err)
	}
	pump := index.NewPump(e.conn, ix, nil, index.PumpOptions{Name: "p", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pump.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		p, err := index.Pending(e.ctx(), e.conn)
		if err != nil || len(p) > 0 {
			return fmt.Errorf("%d pending (%v)", len(p), err)
		}
		return nil
	})
	if err := ix.Refresh(e.ctx()); err != nil {
		t.Fatal(err)
	}
	if got, err := ix.SearchJobs(e.ctx(), index.JobQuery{Launch: jobs.LaunchFilter{Template: "tpl"}}); err != nil || len(got) != 3 {
		t.Fatalf("indexed before the delete: %d (%v)", len(got), err)
	}
	if out := e.binOK("job", "delete", res.Job.ID); strings.Count(out, "deleted") != 3 {
		t.Fatalf("delete printed %q", out)
	}
	if got, err := ix.SearchJobs(e.ctx(), index.JobQuery{Launch: jobs.LaunchFilter{Template: "tpl"}}); err != nil || len(got) != 0 {
		t.Fatalf("left in the history: %d (%v)", len(got), err)
	}

	// A job that left ZooKeeper: deleted from the history alone.
	old := &jobs.Job{ID: "job/00000000-0000-4000-8000-000000000001", Action: "a", State: jobs.Success, Version: 3,
		Created: time.Now().UTC(), Updated: time.Now().UTC(), TimeOfStatusChange: time.Now().UTC()}
	if _, err := ix.IndexJobs(e.ctx(), old); err != nil {
		t.Fatal(err)
	}
	if out := e.binOK("job", "delete", old.ID); !strings.Contains(out, old.ID+" deleted") {
		t.Fatalf("delete from the history printed %q", out)
	}
	if _, err := ix.GetJob(e.ctx(), old.ID); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("still in the history: %v", err)
	}
}

// TestContainerCatchesUpWithItsSlices ends slices without updating their
// container, as an executor that died between the two writes would leave
// them: job wait and job show derive the container's state again. The
// test plays the executor the controller's scheduler queues the slices on.
func TestContainerCatchesUpWithItsSlices(t *testing.T) {
	e := newJobEnv(t)
	exectest.Join(t, e.conn, "x", 10)
	c := startController(t, e.root)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(4)))
	e.binOK("template", "create", "tpl", "--action", "echo", "--inventory", "inv", "--slices", "2")
	res := e.launch("tpl")
	e.waitScheduled(res.Slices[0].ID, res.Slices[1].ID)
	// With the controller gone, nothing but the CLI brings the container up
	// to date (its repair service would otherwise race this test).
	c.signal(syscall.SIGTERM)
	if rc := c.wait(30 * time.Second); rc != 0 {
		t.Fatalf("controller exited with %d", rc)
	}
	e.advance(res.Slices[0].ID, jobs.Running, jobs.Success)
	if j := state(e, res.Job.ID); j.State != jobs.Pending {
		t.Fatalf("container %s; the test needs it left behind", j.State)
	}
	if show := e.binOK("job", "show", res.Job.ID); !strings.Contains(show, "RUNNING") {
		t.Fatalf("job show did not bring the container up to date:\n%s", show)
	}
	e.advance(res.Slices[1].ID, jobs.Running, jobs.Success)
	if out := e.binOK("job", "wait", res.Job.ID, "--timeout", "30s"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("job wait: %q", out)
	}
}
