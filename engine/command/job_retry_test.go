package command

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/jobs"
)

// TestJobRetry retries with the real binary: a failed plain job runs again
// with its payload (and fails again, its inputs being the same); a sliced
// job whose one slice was canceled is retried as a new container of that
// one slice, which runs and succeeds; what cannot be retried is refused
// with what to do.
func TestJobRetry(t *testing.T) {
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--enable-test-actions", "--name", "x", "--threads", "2", "--plugin-dir", t.TempDir())
	startController(t, e.root)

	failed := e.add("fail", "--payload", `{"code": 3}`, "--tag", "nightly", "--priority", "7")
	if _, _, code := e.bin("job", "wait", failed, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on a failing job: exit %d, want 1", code)
	}
	r := decode[launchResult](t, e.binOK("job", "retry", failed, "--json")).Job
	if r.ID == failed || r.RetryOf != failed || r.LaunchType != jobs.LaunchRetry || r.CreatedBy != createdByCLI ||
		compact(t, r.Payload) != `{"code":3}` || r.Priority != 7 || strings.Join(r.Tags, ",") != "nightly" {
		t.Fatalf("retry of a plain job: %+v", r)
	}
	if _, _, code := e.bin("job", "wait", r.ID, "--timeout", "60s"); code != 1 {
		t.Fatalf("the retry of a failing job: exit %d, want 1 (same inputs, same outcome)", code)
	}
	if out := e.binOK("job", "show", r.ID); !strings.Contains(out, "retry-of") || !strings.Contains(out, failed) {
		t.Fatalf("job show of a retry does not name the job it retries:\n%s", out)
	}

	// Five slices of 1s; the fifth is canceled at once: the container
	// ends FAILED with four slices done.
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(5)))
	e.binOK("template", "create", "slow", "--action", "sleep", "--inventory", "inv", "--slices", "5", "--payload", `{"duration": "1s"}`)
	first := e.launch("slow")
	e.binOK("job", "cancel", first.Slices[4].ID)
	if _, _, code := e.bin("job", "wait", first.Job.ID, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on a container with a canceled slice: exit %d, want 1", code)
	}
	// A changed template does not change a retry (a relaunch would take it).
	e.binOK("template", "edit", "slow", "--payload", `{"duration": "1h"}`)
	again := decode[launchResult](t, e.binOK("job", "retry", first.Job.ID, "--json"))
	c := again.Job
	if c.RetryOf != first.Job.ID || !c.Sliced || c.SliceCount != 5 || len(again.Slices) != 1 || c.Hosts != 1 {
		t.Fatalf("retry of the container: %+v", again)
	}
	if s := again.Slices[0]; s.RetryOf != first.Slices[4].ID || s.SliceNumber != 5 || s.ParentJob != c.ID || compact(t, s.Payload) != `{"duration":"1s"}` {
		t.Fatalf("the retried slice: %+v", s)
	}
	if out := e.binOK("job", "wait", c.ID, "--timeout", "60s"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("job wait on the retry: %q", out)
	}
	if j := state(e, first.Job.ID); j.State != jobs.Failed {
		t.Fatalf("the retried container is now %s; it must stay as it ended", j.State)
	}

	// Refused: a job that succeeded, an unknown one, a malformed id.
	for _, tc := range []struct {
		id, want string
		code     int
	}{
		{c.ID, "only a FAILED job is retried", 1},
		{first.Slices[0].ID, "job relaunch", 1},
		{"job/00000000-0000-4000-8000-000000000000", "no such job", 1},
		{"nope", "job id", 2},
	} {
		if _, errOut, code := e.bin("job", "retry", tc.id); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("job retry %s: exit %d, want %d saying %q:\n%s", tc.id, code, tc.code, tc.want, errOut)
		}
	}
}

// TestJobRetryThroughAPI retries with --api: the new job is created by the
// token's user, who needs execute on the template.
func TestJobRetryThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	if _, errOut, code := e.zk("template", "edit", "tpl", "--action", "fail", "--payload", `{"code": 4}`); code != 0 {
		t.Fatalf("template edit: exit %d: %s", code, errOut)
	}
	xcfg := daemon.NewExecutorConfig()
	xcfg.ZK, xcfg.Name, xcfg.Threads, xcfg.EnableTestActions, xcfg.Plugins.Dir = e.zc, "x1", 1, true, t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := daemon.StartExecutor(ctx, xcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Stop)

	id := strings.TrimSpace(e.ok(e.alice, "template", "launch", "tpl"))
	if _, _, code := e.as(e.alice, "job", "wait", id, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on a failing job: exit %d, want 1", code)
	}
	_, errOut, code := e.as(e.carol, "job", "retry", id)
	if code != 1 || !strings.Contains(errOut, "execute role") {
		t.Fatalf("carol's retry: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	var v struct {
		Job    jobs.Job `json:"job"`
		Slices []string `json:"slices"`
	}
	if err := json.Unmarshal([]byte(e.ok(e.alice, "job", "retry", id, "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Job.RetryOf != id || v.Job.CreatedBy != "user/alice" || v.Job.LaunchType != jobs.LaunchRetry || v.Slices == nil {
		t.Fatalf("retry through the API: %+v", v)
	}
	// The retry is final too: retrying it again is allowed, a success is not.
	if _, _, code := e.as(e.alice, "job", "wait", v.Job.ID, "--timeout", "60s"); code != 1 {
		t.Fatalf("job wait on the retry: exit %d, want 1", code)
	}
	if _, errOut, code := e.as(e.alice, "job", "retry", "job/00000000-0000-4000-8000-000000000000"); code != 1 || !strings.Contains(errOut, "no such job") {
		t.Fatalf("retry of an unknown job: exit %d:\n%s", code, errOut)
	}
}

// compact is raw without spaces.
func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
