package command

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestTemplateLaunchesBlockEachOther: with a controller scheduling, the
// slices of one launch of a template run at once, while a second launch
// waits, each of its slices saying for which job and key; a template that
// allows simultaneous runs is not blocked; once the first launch ends the
// second runs.
func TestTemplateLaunchesBlockEachOther(t *testing.T) {
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--name", "x", "--threads", "6", "--enable-test-actions", "--plugin-dir", t.TempDir())
	startController(t, e.root)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(4)))
	for _, args := range [][]string{
		{"slow", "--slices", "2"},
		{"free", "--allow-simultaneous"},
	} {
		e.binOK(append([]string{"template", "create", args[0], "--action", "sleep", "--payload", `{"duration": "1m"}`,
			"--inventory", "inv", "--instance-group", "default"}, args[1:]...)...)
	}
	first := strings.TrimSpace(e.binOK("template", "launch", "slow"))
	second := strings.TrimSpace(e.binOK("template", "launch", "slow"))
	free1 := strings.TrimSpace(e.binOK("template", "launch", "free"))
	free2 := strings.TrimSpace(e.binOK("template", "launch", "free"))
	want := fmt.Sprintf("waiting for %s to finish (template:slow)", first)
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, id := range append(state(e, first).NestedJobs, free1, free2) {
			if j := state(e, id); j.State != jobs.Running {
				return fmt.Errorf("%s is %s (%s)", id, j.State, j.Explanation)
			}
		}
		for _, id := range state(e, second).NestedJobs {
			if j := state(e, id); j.State != jobs.Pending || j.Explanation != want {
				return fmt.Errorf("slice %s of the second launch: %s %q", id, j.State, j.Explanation)
			}
		}
		return nil
	})
	e.binOK("job", "cancel", first)
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, id := range state(e, second).NestedJobs {
			if j := state(e, id); j.State != jobs.Running {
				return fmt.Errorf("slice %s of the second launch: %s %q", id, j.State, j.Explanation)
			}
		}
		return nil
	})
	for _, id := range []string{second, free1, free2} {
		e.binOK("job", "cancel", id)
	}
}

// startController starts a controller, whose elected member runs the
// scheduler: a template's launches wait PENDING until it queues them.
func startController(t *testing.T, root string) *proc {
	t.Helper()
	return startDaemon(t, root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c1", "--config-dir", t.TempDir())
}

// waitScheduled waits until the scheduler has queued each job (or it has
// gone further).
func (e *jobEnv) waitScheduled(ids ...string) {
	e.t.Helper()
	poll.For(e.t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, id := range ids {
			if j := state(e, id); j.State == jobs.Pending {
				return fmt.Errorf("%s is PENDING (%s)", id, j.Explanation)
			}
		}
		return nil
	})
}
