// Package exectest registers stand-in executors for tests that run the
// scheduler (engine/scheduler) but play the executor themselves: a record
// and a heartbeat, so that the scheduler has an executor of a group to
// place jobs on. The test then takes the jobs it placed, or writes their
// states, as an executor would.
package exectest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Join registers executor name in groups (the default group when none)
// with capacity, its heartbeat an ephemeral node of conn's session: it
// leaves when conn closes.
func Join(t testing.TB, conn *zkconn.Conn, name string, capacity int, groups ...string) {
	t.Helper()
	if len(groups) == 0 {
		groups = []string{jobs.DefaultGroup}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := instance.Record{Name: name, Groups: groups, Capacity: capacity, Threads: capacity, Version: "test"}
	if _, err := instance.Register(ctx, conn, rec); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(instance.Heartbeat{Name: name, Threads: rec.Threads, LastSeen: time.Now(), Groups: groups, Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.EnsurePath(ctx, conn.Path(instance.HeartbeatsPath)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create(conn.Path(instance.HeartbeatsPath, name), data, zk.FlagEphemeral, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
}
