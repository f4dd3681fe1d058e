package command

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// Two controllers and an executor: the leader of the maintenance services
// schedules PENDING jobs; when it is killed, the other takes over within a
// session timeout; SIGTERM stops a controller cleanly.
func TestControllerSchedulesAndFailsOver(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	startDaemon(t, root, "executor", "--name", "x1", "--threads", "2", "--capacity", "4", "--enable-test-actions", "--plugin-dir", t.TempDir())
	dir := t.TempDir()
	c1 := startDaemon(t, root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c1", "--reap-grace", "1s", "--config-dir", dir)
	ctx := context.Background()
	leader := func() string {
		cs, err := election.New(s.Conn(), maintenance.ElectionName, "", nil).Contenders(ctx)
		if err != nil || len(cs) == 0 {
			return ""
		}
		return cs[0].Identifier
	}
	poll.For(t, 15*time.Second, 50*time.Millisecond, func() error {
		if l := leader(); l != "c1" {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	c2 := startDaemon(t, root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c2", "--config-dir", dir)
	scheduled := func() *jobs.Job {
		t.Helper()
		j, err := s.Create(ctx, jobs.NewJob{Action: "echo", Payload: []byte(`{"message":"hi"}`), Scheduling: jobs.Scheduling{Impact: 2, ConcurrencyKeys: []string{"k"}}})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := scheduled()
	if got := waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Success)); got.ExecutionNode != "x1" {
		t.Fatalf("ran on %q", got.ExecutionNode)
	}
	c1.cmd.Process.Kill()
	poll.For(t, 15*time.Second, 50*time.Millisecond, func() error {
		if l := leader(); l != "c2" {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	j = scheduled()
	waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Success))
	c2.signal(syscall.SIGTERM)
	if code := c2.wait(30 * time.Second); code != 0 {
		t.Fatalf("controller exit %d after SIGTERM", code)
	}
	if l := leader(); l != "" {
		t.Fatalf("leader %q after both controllers stopped", l)
	}
}

func TestControllerBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"zero max starts": {"controller", "--max-starts", "0"},
		"negative grace":  {"controller", "--reap-grace", "-1s"},
		"an argument":     {"controller", "extra"},
		"unknown flag":    {"controller", "--nope"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", testRoot(t)}, args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
		})
	}
}
