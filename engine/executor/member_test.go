package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// member reads an executor's membership node.
func (e *env) member(conn *zkconn.Conn, name string) (Member, error) {
	var m Member
	data, _, err := conn.Get(conn.Path(MembersPath, name))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	return m, err
}

// TestMembershipFollowsJobsAtOnce: the membership node says a job runs as
// soon as it starts and that it ended as soon as it ends, not a heartbeat
// later (here the heartbeat is an hour).
func TestMembershipFollowsJobsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.start("x1", nil, func(c *Config) { c.Heartbeat = time.Hour })
	conn := e.dial(zkc.Addrs()...)
	j := e.add("block", "")
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		m, err := e.member(conn, "x1")
		if err == nil && (m.Busy != 1 || len(m.Running) != 1 || m.Running[0].Job != j.ID) {
			err = fmt.Errorf("member %+v", m)
		}
		return err
	})
	if _, err := e.store.Cancel(context.Background(), j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	e.waitState(j.ID, jobs.Canceled, 10*time.Second)
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		m, err := e.member(conn, "x1")
		if err == nil && (m.Busy != 0 || len(m.Running) != 0) {
			err = fmt.Errorf("member %+v", m)
		}
		return err
	})
}

// TestNameOfADeadExecutor: a membership node left by a killed process
// (its session not expired yet) does not keep the name taken; one of a
// live process, or of another host, does.
func TestNameOfADeadExecutor(t *testing.T) {
	host, _ := os.Hostname()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	liveStarted := time.Now()
	for _, tc := range []struct {
		name string
		m    Member
		free bool
	}{
		{"dead pid", Member{Host: host, PID: dead.Process.Pid, Started: time.Now().Add(-time.Minute)}, true},
		// The pid runs another program, started after the executor was.
		{"recycled pid", Member{Host: host, PID: live.Process.Pid, Started: liveStarted.Add(-time.Hour)}, true},
		{"live pid", Member{Host: host, PID: live.Process.Pid, Started: liveStarted.Add(5 * time.Second)}, false},
		{"this process", Member{Host: host, PID: os.Getpid(), Started: time.Now().Add(-time.Minute)}, false},
		{"other host", Member{Host: host + "-elsewhere", PID: dead.Process.Pid, Started: time.Now().Add(-time.Minute)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			// The node as its owner left it: ephemeral, in a session that
			// is still alive.
			owner := e.dial(zkc.Addrs()...)
			tc.m.Name = "x1"
			data, _ := json.Marshal(tc.m)
			if err := owner.EnsurePath(context.Background(), owner.Path(MembersPath)); err != nil {
				t.Fatal(err)
			}
			if _, err := owner.Create(owner.Path(MembersPath, "x1"), data, zk.FlagEphemeral, zkconn.ACL); err != nil {
				t.Fatal(err)
			}
			conn := e.dial(zkc.Addrs()...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			x, err := Start(ctx, conn, Config{Name: "x1", Threads: 1, Registry: e.reg, Store: jobs.NewStore(conn, jobs.StoreConfig{})})
			if !tc.free {
				if !errors.Is(err, ErrNameInUse) {
					t.Fatalf("started over %+v: %v", tc.m, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("the name of %+v is still taken: %v", tc.m, err)
			}
			defer x.Stop()
			if m, err := e.member(conn, "x1"); err != nil || m.PID != os.Getpid() {
				t.Fatalf("membership node %+v (%v)", m, err)
			}
		})
	}
}
