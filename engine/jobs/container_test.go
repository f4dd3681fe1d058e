package jobs

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestContainerStateForEveryMix(t *testing.T) {
	started := time.Now()
	job := func(s State) *Job {
		j := &Job{State: s}
		if s == Running || s.Final() {
			j.Started = &started
		}
		return j
	}
	canceledQueued := &Job{State: Canceled} // canceled before it started
	for _, tc := range []struct {
		name   string
		cancel bool
		slices []*Job
		want   State
	}{
		{"all queued", false, []*Job{job(Queued), job(Queued)}, Pending},
		{"one running", false, []*Job{job(Running), job(Queued)}, Running},
		{"one ended, one queued", false, []*Job{job(Success), job(Queued)}, Running},
		{"all succeeded", false, []*Job{job(Success), job(Success), job(Success)}, Success},
		{"one failed", false, []*Job{job(Success), job(Failed), job(Success)}, Failed},
		{"one failed, others running", false, []*Job{job(Failed), job(Running)}, Running},
		{"one canceled", false, []*Job{job(Success), job(Canceled)}, Failed},
		{"all canceled while queued", false, []*Job{canceledQueued, canceledQueued}, Failed},
		{"a slice is missing", false, []*Job{job(Success), nil}, Failed},
		{"cancel asked, still running", true, []*Job{job(Canceled), job(Running)}, Running},
		{"cancel asked, all ended", true, []*Job{job(Canceled), job(Success)}, Canceled},
		{"cancel asked, all canceled queued", true, []*Job{canceledQueued, canceledQueued}, Canceled},
		{"cancel asked, nothing started", true, []*Job{job(Queued)}, Pending},
	} {
		if got := ContainerState(tc.cancel, tc.slices); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// sliced creates a container and n slices as a launch does.
func sliced(t *testing.T, s *Store, n int) (*Job, []*Job) {
	t.Helper()
	cid, _ := NewID()
	c := NewJob{ID: cid, Action: "echo", Launch: Launch{Kind: KindWorkflow, Sliced: true, SliceCount: n, Template: "tpl"}}
	batch := []NewJob{c}
	for k := 1; k <= n; k++ {
		sid, _ := NewID()
		batch[0].NestedJobs = append(batch[0].NestedJobs, sid)
		batch = append(batch, NewJob{ID: sid, Action: "echo", ParentJob: cid,
			Launch: Launch{Kind: KindJob, SliceNumber: k, SliceCount: n, Template: "tpl"}})
	}
	js, err := s.CreateMany(ctxT(t), batch)
	if err != nil {
		t.Fatal(err)
	}
	if js[0].State != Pending {
		t.Fatalf("container created %s, want PENDING", js[0].State)
	}
	return js[0], js[1:]
}

// move writes a slice's transition as an executor would, then follows
// its container.
func move(t *testing.T, s *Store, id string, to State) {
	t.Helper()
	for {
		j, ver, err := s.Get(ctxT(t), id)
		if err != nil {
			t.Error(err)
			return
		}
		if err := j.Transition(to, time.Now()); err != nil {
			t.Error(err)
			return
		}
		if _, err := s.Update(ctxT(t), j, ver); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			t.Error(err)
			return
		}
		if err := s.FollowParent(ctxT(t), j); err != nil {
			t.Error(err)
		}
		return
	}
}

func state(t *testing.T, s *Store, id string) *Job {
	t.Helper()
	j, _, err := s.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestContainerFollowsItsSlices(t *testing.T) {
	s := newStore(t, StoreConfig{})
	for _, tc := range []struct {
		name  string
		final []State
		want  State
	}{
		{"all succeed", []State{Success, Success, Success}, Success},
		{"one fails", []State{Success, Failed, Success}, Failed},
		{"one canceled", []State{Canceled, Success, Success}, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, slices := sliced(t, s, 3)
			if n, _ := s.Queue().Len(ctxT(t)); n < 3 {
				t.Fatalf("%d entries", n)
			}
			move(t, s, slices[0].ID, Running)
			if got := state(t, s, c.ID); got.State != Running || got.Started == nil {
				t.Fatalf("after the first slice started: %s", got.State)
			}
			for i, st := range tc.final {
				if i != 0 {
					move(t, s, slices[i].ID, Running)
				}
				move(t, s, slices[i].ID, st)
				got := state(t, s, c.ID)
				if i < len(tc.final)-1 && got.State != Running {
					t.Fatalf("after slice %d ended: container %s, want RUNNING", i+1, got.State)
				}
			}
			got := state(t, s, c.ID)
			if got.State != tc.want || got.Progress != 100 || got.ReturnCode == nil || got.Duration == nil {
				t.Fatalf("container: %s (progress %d), want %s", got.State, got.Progress, tc.want)
			}
			if (*got.ReturnCode == 0) != (tc.want == Success) {
				t.Fatalf("return code %d for %s", *got.ReturnCode, got.State)
			}
		})
	}
}

// TestSlicesEndingAtOnce finishes every slice of a container at the same
// moment, from as many goroutines, many times: the container always ends
// in the one right state.
func TestSlicesEndingAtOnce(t *testing.T) {
	s := newStore(t, StoreConfig{})
	for round := 0; round < 15; round++ {
		fail := round%3 == 1
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			c, slices := sliced(t, s, 6)
			for _, sl := range slices {
				move(t, s, sl.ID, Running)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, sl := range slices {
				to := Success
				if fail && i == 3 {
					to = Failed
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					move(t, s, sl.ID, to)
				}()
			}
			close(start)
			wg.Wait()
			want := Success
			if fail {
				want = Failed
			}
			if got := state(t, s, c.ID); got.State != want {
				t.Fatalf("container %s after its slices ended at once, want %s (%s)", got.State, want, got.StatusMessage)
			}
		})
	}
}

func TestCancelContainerAndSlice(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	c, slices := sliced(t, s, 3)
	move(t, s, slices[0].ID, Running)
	got, err := s.CancelJob(ctx, c.ID, "tester")
	if err != nil {
		t.Fatal(err)
	}
	// Queued slices are canceled at once; the running one gets a request
	// and the container waits for it.
	if got.State != Running || !got.CancelRequested {
		t.Fatalf("container after cancel: %s, cancel requested %v", got.State, got.CancelRequested)
	}
	for _, sl := range slices[1:] {
		if st := state(t, s, sl.ID).State; st != Canceled {
			t.Fatalf("queued slice %s: %s", sl.ID, st)
		}
	}
	if ok, _, _ := s.CancelRequested(slices[0].UUID()); !ok {
		t.Fatal("no cancel request for the running slice")
	}
	move(t, s, slices[0].ID, Success) // it ended before the request reached it
	if got := state(t, s, c.ID); got.State != Canceled {
		t.Fatalf("container after its last slice ended: %s, want CANCELED", got.State)
	}
	if _, err := s.CancelJob(ctx, c.ID, "tester"); !errors.Is(err, ErrFinal) {
		t.Fatalf("cancel of a final container: %v", err)
	}

	// Canceling one slice: only it; the container ends FAILED.
	c, slices = sliced(t, s, 2)
	if _, err := s.CancelJob(ctx, slices[0].ID, "tester"); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, slices[1].ID).State; st != Queued {
		t.Fatalf("the other slice: %s", st)
	}
	move(t, s, slices[1].ID, Running)
	move(t, s, slices[1].ID, Success)
	if got := state(t, s, c.ID); got.State != Failed {
		t.Fatalf("container with a canceled slice: %s, want FAILED", got.State)
	}

	// Delete: the container with its slices; a slice alone; never a live job.
	ids, err := s.DeleteJob(ctx, c.ID)
	if err != nil || len(ids) != 3 {
		t.Fatalf("delete of a final container: %v, %v", ids, err)
	}
	for _, id := range append([]string{c.ID}, slices[0].ID, slices[1].ID) {
		if _, _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after delete: %v", id, err)
		}
	}
	c, slices = sliced(t, s, 2)
	if _, err := s.DeleteJob(ctx, c.ID); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("delete of a live container: %v", err)
	}
	move(t, s, slices[0].ID, Running)
	move(t, s, slices[0].ID, Failed)
	if ids, err := s.DeleteJob(ctx, slices[0].ID); err != nil || len(ids) != 1 {
		t.Fatalf("delete of a final slice: %v %v", ids, err)
	}
	if st := state(t, s, slices[1].ID).State; st != Queued {
		t.Fatalf("the other slice after deleting one: %s", st)
	}
}
