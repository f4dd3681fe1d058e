package command

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

type statusRow struct {
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Groups   []string `json:"groups"`
	Capacity int      `json:"capacity"`
	Version  string   `json:"version"`
}

func clusterStatus(t *testing.T, root string) []statusRow {
	t.Helper()
	out, errOut, code := run(t, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "cluster", "status", "--json")
	if code != 0 {
		t.Fatalf("cluster status: exit %d: %s", code, errOut)
	}
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return rows
}

// An executor joins its groups with its capacity; `cluster disable`,
// `enable` and `remove` manage it; a stopped one shows as lost.
func TestClusterDisableEnableRemove(t *testing.T) {
	root := testRoot(t)
	zkArgs := []string{"--zk-hosts", testZK.ConnectString(), "--zk-root", root}
	x := startDaemon(t, root, "executor", "--name", "x1", "--threads", "1", "--groups", "edge,default",
		"--capacity", "7", "--plugin-dir", t.TempDir())
	poll.For(t, 15*time.Second, 50*time.Millisecond, func() error {
		rows := clusterStatus(t, root)
		if len(rows) != 1 || rows[0].State != "live" || rows[0].Capacity != 7 || strings.Join(rows[0].Groups, ",") != "edge,default" {
			return fmt.Errorf("status %+v", rows)
		}
		return nil
	})
	if out, _, code := run(t, append(zkArgs, "cluster", "disable", "x1")...); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatalf("disable: exit %d %q", code, out)
	}
	if rows := clusterStatus(t, root); rows[0].State != "disabled" {
		t.Fatalf("after disable: %+v", rows)
	}
	out, _, code := run(t, append(zkArgs, "cluster", "status")...)
	if code != 0 || !strings.Contains(out, "EXECUTOR") || !strings.Contains(out, "disabled") || !strings.Contains(out, "edge,default") {
		t.Fatalf("status table (%d):\n%s", code, out)
	}
	if _, _, code := run(t, append(zkArgs, "cluster", "enable", "x1")...); code != 0 {
		t.Fatalf("enable: exit %d", code)
	}
	if rows := clusterStatus(t, root); rows[0].State != "live" {
		t.Fatalf("after enable: %+v", rows)
	}
	if _, errOut, code := run(t, append(zkArgs, "cluster", "remove", "x1")...); code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Fatalf("removing a live executor: exit %d %q", code, errOut)
	}
	if _, errOut, code := run(t, append(zkArgs, "cluster", "disable", "nope")...); code != 2 || !strings.Contains(errOut, "no executor nope") {
		t.Fatalf("disabling an unknown executor: exit %d %q", code, errOut)
	}

	// Group limits.
	if _, _, code := run(t, append(zkArgs, "cluster", "group", "set", "edge", "--max-jobs", "3")...); code != 0 {
		t.Fatalf("group set: exit %d", code)
	}
	out, _, code = run(t, append(zkArgs, "cluster", "group", "list")...)
	if code != 0 || !strings.Contains(out, "edge") || !strings.Contains(out, "x1") {
		t.Fatalf("group list (%d):\n%s", code, out)
	}
	if _, errOut, code := run(t, append(zkArgs, "cluster", "group", "set", "edge", "--max-jobs", "-1")...); code != 2 {
		t.Fatalf("negative limit: exit %d %q", code, errOut)
	}

	x.signal(syscall.SIGTERM)
	if code := x.wait(30 * time.Second); code != 0 {
		t.Fatalf("executor exit %d", code)
	}
	if rows := clusterStatus(t, root); rows[0].State != "lost" {
		t.Fatalf("after stop: %+v", rows)
	}
	if out, _, code := run(t, append(zkArgs, "cluster", "remove", "x1")...); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove: exit %d %q", code, out)
	}
	if rows := clusterStatus(t, root); len(rows) != 0 {
		t.Fatalf("after remove: %+v", rows)
	}
}

func TestExecutorCapacityFlagsBadInput(t *testing.T) {
	for name, args := range map[string][]string{
		"negative adjustment": {"executor", "--capacity-adjustment", "-1"},
		"bad group":           {"executor", "--groups", "edge,a b"},
		"negative capacity":   {"executor", "--capacity", "-3"},
		"zero forks per cpu":  {"executor", "--forks-per-cpu", "0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", testRoot(t)}, args...)...)
			if code != 2 || !strings.Contains(errOut, "jobengine: ") {
				t.Fatalf("exit %d, want 2: %s", code, errOut)
			}
		})
	}
}

// `job add --fanout` queues one child per live executor of the group and
// prints the parent's id.
func TestJobAddFanout(t *testing.T) {
	e := newJobEnv(t)
	ctx := e.ctx()
	if _, _, code := e.run("job", "add", "flush", "--fanout", "--group", "edge"); code != 1 {
		t.Fatalf("fan-out to an empty group: exit %d, want 1", code)
	}
	for _, name := range []string{"x1", "x2"} {
		if _, err := instance.Register(ctx, e.conn, instance.Record{Name: name, Groups: []string{"edge"}, Capacity: 4, Threads: 1}); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(instance.Heartbeat{Name: name})
		if err := e.conn.EnsurePath(ctx, e.conn.Path(instance.HeartbeatsPath)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.conn.Create(e.conn.Path(instance.HeartbeatsPath, name), data, zk.FlagEphemeral, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
	}
	id := e.add("flush", "--fanout", "--group", "edge")
	parent, _, err := e.store.Get(ctx, id)
	if err != nil || parent.State != jobs.Pending || len(parent.NestedJobs) != 2 || parent.FanoutGroup != "edge" {
		t.Fatalf("parent %+v %v", parent, err)
	}
	for _, name := range []string{"x1", "x2"} {
		if n, _ := e.store.NodeQueue(name).Len(ctx); n != 1 {
			t.Fatalf("%s has %d jobs on its queue, want 1", name, n)
		}
	}
}
