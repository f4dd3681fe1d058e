package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
