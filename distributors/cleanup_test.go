package distributors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

func TestBuiltinsRegistered(t *testing.T) {
	c, ok := distributor.Lookup(JobsCleanup)
	if !ok || !c.Enabled || c.Schedule.Cron != "@daily" || c.Options[OptRetention] != "7d" || c.Generator == nil {
		t.Errorf("jobs_cleanup = %+v, want enabled, daily, 7d retention", c)
	}
	d, ok := distributor.Lookup(DummyTest)
	if !ok || d.Enabled || d.Action != "dummy_test_action" || d.Schedule.Interval != 15*time.Second {
		t.Errorf("dummy_test_action = %+v, want disabled, every 15s", d)
	}
	for _, bad := range []map[string]string{{OptRetention: "soon"}, {OptRetention: "-1h"}, {OptBatch: "0"}, {"retain": "1d"}} {
		c.Options = bad
		if err := c.Validate(); !errors.Is(err, distributor.ErrConfig) {
			t.Errorf("options %v accepted: %v", bad, err)
		}
	}
}

// TestJobsCleanup creates jobs of every kind, runs jobs_cleanup with a one
// hour retention and checks that only finished, old and indexed jobs went.
func TestJobsCleanup(t *testing.T) {
	for _, indexing := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexing=%v", indexing), func(t *testing.T) {
			root := fmt.Sprintf("/cleanup-%v-%d", indexing, time.Now().UnixNano())
			conn := dial(t, root)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			store := jobs.NewStore(conn, jobs.StoreConfig{})
			if indexing {
				if err := index.EnsurePaths(ctx, conn); err != nil {
					t.Fatal(err)
				}
			}
			now := time.Now()
			old, young := now.Add(-2*time.Hour), now.Add(-10*time.Minute)
			made := map[string]string{} // id → label
			mk := func(label string, final jobs.State, when time.Time, pending bool) string {
				t.Helper()
				j, err := store.Create(ctx, jobs.NewJob{Action: "echo", CreatedBy: "test"})
				if err != nil {
					t.Fatal(err)
				}
				ver := int32(0)
				for _, s := range []jobs.State{jobs.Running, final} {
					if s == "" || (s == jobs.Running && final == jobs.Canceled) {
						continue
					}
					if err := j.Transition(s, when); err != nil {
						t.Fatal(err)
					}
					if ver, err = store.Update(ctx, j, ver); err != nil {
						t.Fatal(err)
					}
				}
				if pending {
					doc := []byte(`{}`)
					op := index.OutboxCreate(conn, j, doc)
					if _, err := conn.Create(op.Path, op.Data, 0, zkconn.ACL); err != nil {
						t.Fatal(err)
					}
				}
				if err := store.AppendLog(ctx, j.UUID(), []jobs.LogLine{{Time: when, Level: "info", Message: label}}); err != nil {
					t.Fatal(err)
				}
				made[j.ID] = label
				return j.ID
			}
			mk("success-old", jobs.Success, old, false)
			mk("failed-old", jobs.Failed, old, false)
			mk("canceled-old", jobs.Canceled, old, false)
			mk("success-young", jobs.Success, young, false)
			mk("running-old", "", old, false)
			mk("queued", "", now, false)
			if indexing {
				mk("success-old-not-indexed", jobs.Success, old, true)
			}
			want := []string{"queued", "running-old", "success-young"}
			if indexing {
				want = append(want, "success-old-not-indexed")
			}
			sort.Strings(want)

			def, ok := distributor.Lookup(JobsCleanup)
			if !ok {
				t.Fatal("jobs_cleanup is not registered")
			}
			def.Schedule = schedule.Spec{Interval: 10 * time.Second}
			def.Options[OptRetention] = "1h"
			def.Options[OptBatch] = "2" // several batches, each with its leadership check
			clock := schedule.NewFakeClock(now)
			x, err := distributor.New(distributor.Config{Conn: conn, Store: store, SessionTimeout: 2 * time.Second, Identifier: "t", Clock: clock}, def)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- x.Run(runCtx) }()
			defer func() { stop(); <-done }()
			if err := clock.WaitForTimers(ctx, 1); err != nil {
				t.Fatal(err)
			}
			clock.Advance(10 * time.Second)
			// The distributor sleeps again once the tick is done and
			// recorded.
			if err := clock.WaitForTimers(ctx, 1); err != nil {
				t.Fatal("the cleanup tick never finished")
			}
			if st, _, err := distributor.ReadState(ctx, conn, JobsCleanup); err != nil || st.Tick == "" {
				t.Fatalf("no tick recorded: %+v, %v", st, err)
			}
			var left []string
			if err := store.Walk(ctx, func(j *jobs.Job, _ int32) { left = append(left, made[j.ID]) }); err != nil {
				t.Fatal(err)
			}
			sort.Strings(left)
			if strings.Join(left, " ") != strings.Join(want, " ") {
				t.Errorf("jobs left %v, want %v", left, want)
			}
			for id, label := range made {
				uid := strings.TrimPrefix(id, "job/")
				ok, _, err := conn.Exists(store.LogPath(uid))
				if err != nil {
					t.Fatal(err)
				}
				kept := false
				for _, w := range want {
					kept = kept || w == label
				}
				if ok != kept {
					t.Errorf("%s: log tail exists=%v, want %v", label, ok, kept)
				}
			}
			if st, _, _ := distributor.ReadState(ctx, conn, JobsCleanup); st.Created != 0 {
				t.Errorf("jobs_cleanup created %d jobs; it deletes, it does not create", st.Created)
			}
		})
	}
}

func dial(t *testing.T, root string) *zkconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: root, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}
