package command

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
)

// TestKilledProcessLeavesNoStuckJob: `process --job` holds the job's entry
// with its session; killed mid-run, it leaves the entry free, and an
// executor settles the job by the action's lost-job policy (FAILED
// "executor lost" for a playbook) instead of it staying RUNNING.
func TestKilledProcessLeavesNoStuckJob(t *testing.T) {
	ansibletest.Need(t)
	root := testRoot(t)
	s := testStore(t, root)
	project := ansibletest.Project(t, map[string]string{
		"slow.yml": "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: sleep 20.4242\n",
	})
	j := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "slow.yml", ansibletest.Inventory("h1"), nil))
	g := fmt.Sprintf("--zk-hosts %s --zk-root %s --zk-session-timeout 2s", testZK.ConnectString(), root)
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`"$JE" %s transmit %s | "$JE" worker | "$JE" %s process %s --job %s`, g, j.ID, g, t.TempDir(), j.ID))
	cmd.Env = append(os.Environ(), "JE="+filepath.Join(builtBinaries(t), "jobengine"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = cmd.Wait() })
	running := waitJob(t, s, j.ID, 60*time.Second, inState(jobs.Running))
	if !strings.HasPrefix(running.Executor, "process@") {
		t.Fatalf("claimed by %q", running.Executor)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	_ = cmd.Wait()
	startDaemon(t, root, "executor", "--threads", "1", "--plugin-dir", t.TempDir())
	got := waitJob(t, s, j.ID, 60*time.Second, func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s", j.State)
		}
		return nil
	})
	if got.State != jobs.Failed || !strings.Contains(got.StatusMessage, "executor lost") {
		t.Fatalf("after the killed process: %s %q", got.State, got.StatusMessage)
	}
}
