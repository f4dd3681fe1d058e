package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/remote"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// sh runs a shell pipeline of the built binary ($JE) and returns its
// output and exit code (of the last command).
func sh(t *testing.T, script string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.Env = append(os.Environ(), "JE="+filepath.Join(builtBinaries(t), "jobengine"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return string(out), code
}

// TestTransmitWorkerProcessAJob: a QUEUED playbook job goes through
// `transmit | worker | process --job`: it is claimed, its events and log
// are applied, and it ends with the play recap, as if an executor ran it.
// A second job whose stream is cut before its end marker ends FAILED,
// saying so.
func TestTransmitWorkerProcessAJob(t *testing.T) {
	ansibletest.Need(t)
	es := estest.Start(t, estest.Options{})
	root := testRoot(t)
	s := testStore(t, root)
	project := ansibletest.Project(t, map[string]string{"site.yml": ansibletest.Playbook})
	j := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "site.yml", ansibletest.Inventory("bad", "good"), nil))
	dir := t.TempDir()
	g := fmt.Sprintf("--zk-hosts %s --zk-root %s", testZK.ConnectString(), root)
	out, code := sh(t, fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker | "$JE" %s --es-hosts %s process %s --job %s`, g, j.ID, g, es.URL(), dir, j.ID))
	if code != 1 || !strings.Contains(out, "fatal: [bad]") || !strings.Contains(out, j.ID+" FAILED") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	got, _, err := s.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.Failed || got.ReturnCode == nil || *got.ReturnCode != 2 || got.HostSummary == nil ||
		strings.Join(got.HostSummary.FailedHosts, ",") != "bad" || !strings.Contains(got.StatusMessage, "failed hosts: bad") {
		t.Fatalf("job after process: %s rc %v %q %+v", got.State, got.ReturnCode, got.StatusMessage, got.HostSummary)
	}
	logs, errOut, code := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "job", "logs", j.ID)
	if code != 0 || !strings.Contains(logs, "ok: [good]") || !strings.Contains(logs, "PLAY RECAP") {
		t.Fatalf("job logs: %s %s", logs, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts", "job_events")); err != nil {
		t.Errorf("no artifacts: %v", err)
	}
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: "jobengine-"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ix.Refresh(context.Background())
	evs, err := ix.JobEvents(context.Background(), j.ID, time.Time{}, 1000)
	hosts := map[string]bool{}
	for _, ev := range evs {
		if ev.Type == index.EventAction && ev.Name == ansible.EventOK {
			hosts[ev.Host] = true
		}
	}
	if err != nil || !hosts["good"] || !hosts["bad"] {
		t.Errorf("indexed events: %d, hosts with ok results %v, %v", len(evs), hosts, err)
	}
	// The job is final: transmitting it again is refused.
	if _, errOut, code := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "transmit", j.ID); code == 0 || !strings.Contains(errOut, "FAILED") {
		t.Errorf("transmit of a final job: exit %d %s", code, errOut)
	}

	// A stream cut before its end marker (a connection that dropped).
	cut := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "site.yml", ansibletest.Inventory("good"), nil))
	out, code = sh(t, fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker | head -n 3 | "$JE" %s process %s --job %s`, g, cut.ID, g, t.TempDir(), cut.ID))
	got, _, _ = s.Get(context.Background(), cut.ID)
	if code != 1 || got.State != jobs.Failed || !strings.Contains(got.StatusMessage, "ended before its end marker") {
		t.Fatalf("cut stream: exit %d, job %s %q\n%s", code, got.State, got.StatusMessage, out)
	}
}

func TestWorkerInfoAndCleanupCommands(t *testing.T) {
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	out, errOut, code := runBinary(t, nil, "worker", "--worker-info", "--uuid-file", uuidFile)
	var info remote.Info
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.UUID == "" || info.Capacity < 1 || info.CPUCount < 1 || info.MemInBytes < 1 {
		t.Fatalf("worker --worker-info: exit %d %s %s", code, out, errOut)
	}
	again, _, _ := runBinary(t, nil, "worker", "--worker-info", "--uuid-file", uuidFile)
	if !strings.Contains(again, info.UUID) {
		t.Errorf("the uuid changed: %s", again)
	}

	base := t.TempDir()
	for _, d := range []string{"jobengine-worker-a", "jobengine-worker-b"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pattern := filepath.Join(base, "jobengine-worker-*")
	out, _, code = runBinary(t, nil, "worker", "cleanup", "--file-pattern", pattern, "--grace-period", "0", "--exclude-strings", "-b")
	if code != 0 || !strings.Contains(out, "changed: removed 1") {
		t.Fatalf("cleanup: exit %d %s", code, out)
	}
	out, _, code = runBinary(t, nil, "worker", "cleanup", "--file-pattern", pattern, "--grace-period", "0", "--exclude-strings", "-b")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("second cleanup: exit %d %s", code, out)
	}
	for _, args := range [][]string{
		{"worker", "cleanup", "--file-pattern", "/*"},
		{"worker", "cleanup"},
		{"worker", "--delete"},
		{"worker", "--keepalive-seconds", "-1"},
		{"process"},
		{"transmit", "nope"},
		{"transmit", base},
	} {
		_, errOut, code := runBinary(t, nil, args...)
		if code != 2 || !strings.HasPrefix(errOut, "jobengine: ") {
			t.Errorf("%v: exit %d %q, want a usage error", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "jobengine-worker-b")); err != nil {
		t.Error("the excluded directory was removed")
	}
}

// TestWorkerRunsItsNodesPlugins: `jobengine worker` runs a job of an
// action that is not built in with the plugin of that name in its own
// --plugin-dir, and --worker-info bounds how long a run outlives its
// connection when keepalives are on (and gives no bound without them).
func TestWorkerRunsItsNodesPlugins(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	j := createJob(t, s, "hello", `{"name": "node", "steps": 1, "delay": "10ms"}`)
	g := fmt.Sprintf("--zk-hosts %s --zk-root %s", testZK.ConnectString(), root)
	plugins := filepath.Join(builtBinaries(t), "actions")
	out, code := sh(t, fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker --plugin-dir %s | "$JE" %s process %s --job %s`, g, j.ID, plugins, g, t.TempDir(), j.ID))
	got, _, err := s.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || got.State != jobs.Success || !strings.Contains(got.StatusMessage, "Hello node") {
		t.Fatalf("a plugin's job on a worker: exit %d, job %s %q\n%s", code, got.State, got.StatusMessage, out)
	}
	// Without the plugin on the node, the job fails saying so.
	miss := createJob(t, s, "hello", `{"steps": 1}`)
	out, code = sh(t, fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker --plugin-dir %s | "$JE" %s process %s --job %s`, g, miss.ID, t.TempDir(), g, t.TempDir(), miss.ID))
	got, _, _ = s.Get(context.Background(), miss.ID)
	if code != 1 || got.State != jobs.Failed || !strings.Contains(out+got.StatusMessage, "no such action on this worker: hello") {
		t.Fatalf("a job whose plugin the node lacks: exit %d, job %s %q\n%s", code, got.State, got.StatusMessage, out)
	}

	uuidFile := filepath.Join(t.TempDir(), "uuid")
	for _, tc := range []struct {
		args  []string
		bound bool
	}{{[]string{"--keepalive-seconds", "2", "--plugin-kill-grace", "3s"}, true}, {nil, false}} {
		out, errOut, code := runBinary(t, nil, append([]string{"worker", "--worker-info", "--uuid-file", uuidFile}, tc.args...)...)
		var info remote.Info
		if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
			t.Fatalf("worker --worker-info %v: exit %d %s %s", tc.args, code, out, errOut)
		}
		// 2s·5/4 + the larger kill grace (a playbook's 5s) + 1s.
		if want := 8.5; tc.bound && info.OrphanSeconds != want || !tc.bound && info.OrphanSeconds != 0 {
			t.Errorf("worker --worker-info %v: orphan_seconds %v (bound expected: %v)", tc.args, info.OrphanSeconds, tc.bound)
		}
	}
}

// TestWorkerStopsWhenItsStreamCloses: a worker whose result stream's
// reader goes away stops its run at once, without keepalives to fail:
// the pipeline ends long before the action's ten minutes.
func TestWorkerStopsWhenItsStreamCloses(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	j := createJob(t, s, "sleep", `{"duration": "600s"}`)
	g := fmt.Sprintf("--zk-hosts %s --zk-root %s", testZK.ConnectString(), root)
	// head leaves after the first two lines (the starting and running
	// statuses); the worker then has nothing to write for ten minutes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker --enable-test-actions | head -n 2`, g, j.ID))
	cmd.Env = append(os.Environ(), "JE="+filepath.Join(builtBinaries(t), "jobengine"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the worker went on after its stream's reader left (killed after a minute):\n%s", out)
	}
	if err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), `running`) {
		t.Fatalf("the worker did not start the run:\n%s", out)
	}
}
