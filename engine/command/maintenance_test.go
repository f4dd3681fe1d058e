package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestMaintenanceMovesWhenItsHostIsKilled: two `distributor jobs_cleanup`
// processes, as two systemd instances on two hosts; the cleanup runs on
// the elected one (jobs_cleanup.yaml: every second). Killed with SIGKILL,
// it is replaced within its session timeout and the cleanup goes on in
// the other process.
func TestMaintenanceMovesWhenItsHostIsKilled(t *testing.T) {
	e := newDistEnv(t, map[string]string{"jobs_cleanup.yaml": "interval: 1s\noptions:\n  retention: 1h\n"})
	a := e.start("", "jobs_cleanup", "--config-dir", e.dir)
	b := e.start("", "--config-dir", e.dir, "jobs_cleanup")
	byPID := map[int]*proc{a.cmd.Process.Pid: a, b.cmd.Process.Pid: b}
	ctx := context.Background()
	pidOf := func(identifier string) int {
		var pid int
		_, _ = fmt.Sscanf(identifier[strings.LastIndexByte(identifier, '/')+1:], "%d", &pid)
		return pid
	}
	var leader *proc
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		cs, err := election.New(e.conn, maintenance.ElectionName, "", nil).Contenders(ctx)
		if err != nil || len(cs) != 2 {
			return fmt.Errorf("contenders %+v (%v), want 2", cs, err)
		}
		leader = byPID[pidOf(cs[0].Identifier)]
		return errorWhen(leader == nil, "the leader %s is neither process", cs[0].Identifier)
	})
	// The cleanup runs there: its passes are recorded by the leader.
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		st, _, err := maintenance.ReadState(ctx, e.conn, maintenance.CleanupName)
		if err != nil {
			return err
		}
		return errorWhen(pidOf(st.By) != leader.cmd.Process.Pid, "last cleanup by %q", st.By)
	})
	other := a
	if leader == a {
		other = b
	}

	leader.signal(syscall.SIGKILL)
	leader.wait(5 * time.Second)
	poll.For(t, distSessionTimeout+2*time.Second, 20*time.Millisecond, func() error {
		st, _, err := maintenance.ReadState(ctx, e.conn, maintenance.CleanupName)
		if err != nil {
			return err
		}
		return errorWhen(pidOf(st.By) != other.cmd.Process.Pid, "last cleanup by %q", st.By)
	})
	// And it cleans up.
	j, err := e.store.Create(ctx, jobs.NewJob{Action: "echo", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Transition(jobs.Canceled, time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Update(ctx, j, 0); err != nil {
		t.Fatal(err)
	}
	poll.For(t, 15*time.Second, 50*time.Millisecond, func() error {
		if _, _, err := e.store.Get(ctx, j.ID); !errors.Is(err, jobs.ErrNotFound) {
			return fmt.Errorf("the old job is still there (%v)", err)
		}
		return nil
	})
}

func errorWhen(cond bool, format string, args ...any) error {
	if cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}
