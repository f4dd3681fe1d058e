package maintenance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// slicedJob creates a container and its n slices, as a template launch
// does.
func slicedJob(t *testing.T, s *jobs.Store, n int) (*jobs.Job, []*jobs.Job) {
	t.Helper()
	ctx := context.Background()
	cid, _ := jobs.NewID()
	c := jobs.NewJob{ID: cid, Action: "echo", Launch: jobs.Launch{Kind: jobs.KindWorkflow, Sliced: true, SliceCount: n, Template: "t"}}
	batch := []jobs.NewJob{c}
	for k := 1; k <= n; k++ {
		id, _ := jobs.NewID()
		batch[0].NestedJobs = append(batch[0].NestedJobs, id)
		batch = append(batch, jobs.NewJob{ID: id, Action: "echo", ParentJob: cid,
			Launch: jobs.Launch{Kind: jobs.KindJob, Template: "t", SliceNumber: k, SliceCount: n}})
	}
	created, err := s.CreateFenced(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	return created[0], created[1:]
}

// endUnfollowed writes a slice's final state the way a writer killed
// between its two writes leaves it: the slice final, its container not
// told.
func endUnfollowed(t *testing.T, s *jobs.Store, id string, st jobs.State) {
	t.Helper()
	ctx := context.Background()
	j, ver, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	j.State, j.Started, j.TimeOfStatusChange = st, &now, now
	if _, err := s.Update(ctx, j, ver); err != nil {
		t.Fatal(err)
	}
}

func containerState(t *testing.T, s *jobs.Store, id string, want jobs.State, msg string) func() error {
	return func() error {
		j, _, err := s.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if j.State != want || !strings.Contains(j.StatusMessage, msg) {
			return fmt.Errorf("container %s %q, want %s %q", j.State, j.StatusMessage, want, msg)
		}
		return nil
	}
}

// TestContainerRepair: containers whose slices all ended without telling
// them are brought up to date by the leader's repair — SUCCESS, FAILED
// with a slice whose document is gone counted as missing — and a
// container with a slice still queued is left PENDING. With the leader
// halted, the next member repairs what is left behind after it.
func TestContainerRepair(t *testing.T) {
	root := testRoot(t)
	conn := dial(t, "", root)
	s := storeOf(conn)
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	ok, okSlices := slicedJob(t, s, 3)
	gone, goneSlices := slicedJob(t, s, 2)
	open, openSlices := slicedJob(t, s, 2)
	for _, sl := range okSlices {
		endUnfollowed(t, s, sl.ID, jobs.Success)
	}
	endUnfollowed(t, s, goneSlices[0].ID, jobs.Success)
	endUnfollowed(t, s, goneSlices[1].ID, jobs.Success)
	if _, err := s.DeleteJob(context.Background(), goneSlices[1].ID); err != nil {
		t.Fatal(err)
	}
	endUnfollowed(t, s, openSlices[0].ID, jobs.Failed)

	cfg := Config{Containers: ContainersConfig{Interval: time.Second}}
	px, err := zktest.NewProxy(testZK.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	a := startMember(t, "a", dial(t, px.Addr(), root), cfg)
	poll.For(t, 30*time.Second, 100*time.Millisecond, containerState(t, s, ok.ID, jobs.Success, "3 of 3 slices ended: 3 succeeded"))
	poll.For(t, 30*time.Second, 100*time.Millisecond, containerState(t, s, gone.ID, jobs.Failed, "1 missing"))
	poll.For(t, 30*time.Second, 100*time.Millisecond, containerState(t, s, open.ID, jobs.Running, "1 of 2 slices ended"))

	// The leader's process dies (silence: its session expires); another
	// member takes the repair over.
	b := startMember(t, "b", dial(t, "", root), cfg)
	px.Block()
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		l, err := oneLeader(a, b)
		if err == nil && l != b {
			err = fmt.Errorf("%s leads", l.name)
		}
		return err
	})
	endUnfollowed(t, s, openSlices[1].ID, jobs.Success)
	poll.For(t, 30*time.Second, 100*time.Millisecond, containerState(t, s, open.ID, jobs.Failed, "2 of 2 slices ended: 1 succeeded, 1 failed"))
}
