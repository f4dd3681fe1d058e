package maintenance

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestCleanup creates jobs of every kind, runs the cleanup on an elected
// member with a one hour retention and checks that only finished, old and
// indexed jobs went, with their log tails.
func TestCleanup(t *testing.T) {
	for _, indexing := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexing=%v", indexing), func(t *testing.T) {
			conn := dial(t, "", testRoot(t))
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
			mk := func(label string, final jobs.State, when time.Time, pending bool) {
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
					op := index.OutboxCreate(conn, j, []byte(`{}`))
					if _, err := conn.Create(op.Path, op.Data, 0, zkconn.ACL); err != nil {
						t.Fatal(err)
					}
				}
				if err := store.AppendLog(ctx, j.UUID(), []jobs.LogLine{{Time: when, Level: "info", Message: label}}); err != nil {
					t.Fatal(err)
				}
				made[j.ID] = label
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

			clock := schedule.NewFakeClock(now)
			mb := startMember(t, "m", conn, Config{Store: store, Clock: clock, Containers: ContainersConfig{Disabled: true}, Cleanup: CleanupConfig{
				Schedule:  schedule.Spec{Interval: 10 * time.Second},
				Retention: time.Hour,
				Batch:     2, // several batches, each with its leadership check
			}})
			poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!mb.m.Leading(), "not leading yet") })
			// Two sleepers on the services' clock: the cleanup and the
			// schedule runner.
			if err := clock.WaitForTimers(ctx, 2); err != nil {
				t.Fatal(err)
			}
			clock.Advance(10 * time.Second)
			// The service sleeps again once the pass is done and recorded.
			if err := clock.WaitForTimers(ctx, 2); err != nil {
				t.Fatal("the cleanup pass never finished")
			}
			st, _, err := ReadState(ctx, conn, CleanupName)
			if err != nil || st.Tick == "" || st.By != "m" {
				t.Fatalf("no pass recorded: %+v, %v", st, err)
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
		})
	}
}

// TestCleanupCatchesUpAMissedPass: a new leader finds the last pass
// recorded before the latest tick and runs that tick at once; with the
// latest tick recorded, it waits for the next.
func TestCleanupCatchesUpAMissedPass(t *testing.T) {
	conn := dial(t, "", testRoot(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Date(2026, 5, 4, 10, 30, 0, 0, time.UTC)
	clock := schedule.NewFakeClock(now)
	// A pass recorded for the tick of the day before yesterday: today's
	// 00:00 tick was missed.
	writeStateT(t, conn, State{Tick: "2026-05-03T00:00:00Z", By: "earlier"})
	mb := startMember(t, "m", conn, Config{Clock: clock, Containers: ContainersConfig{Disabled: true}, Cleanup: CleanupConfig{}})
	poll.For(t, wait, 10*time.Millisecond, func() error {
		st, _, err := ReadState(ctx, conn, CleanupName)
		if err != nil {
			return err
		}
		return errorIf(st.Tick != "2026-05-04T00:00:00Z" || st.By != "m", "state %+v; want today's tick run by m", st)
	})
	mb.halt(t)

	// Nothing is due now: a new term sleeps until tomorrow.
	mb2 := startMember(t, "m2", conn, Config{Clock: clock, Containers: ContainersConfig{Disabled: true}, Cleanup: CleanupConfig{}})
	poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!mb2.m.Leading(), "not leading yet") })
	if err := clock.WaitForTimers(ctx, 2); err != nil { // the cleanup's and the schedule runner's
		t.Fatal(err)
	}
	if st, _, _ := ReadState(ctx, conn, CleanupName); st.By != "m" {
		t.Fatalf("the new leader ran a pass that was done: %+v", st)
	}
}

func writeStateT(t *testing.T, conn *zkconn.Conn, st State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.EnsurePath(ctx, conn.Path(StateDir)); err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"tick":%q,"by":%q}`, st.Tick, st.By)
	if _, err := conn.Create(StatePath(conn, CleanupName), []byte(data), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
}
