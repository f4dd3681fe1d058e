package jobs

import (
	"testing"
)

// TestCancelTakesTheDependencyMadeForTheJob: canceling a job cancels the
// update made for it as a dependency once no other pending job waits for
// it — not while another launch shares it, never a job that was not made
// as a dependency — and canceling a sliced job's container does the same
// for the update its slices waited for.
func TestCancelTakesTheDependencyMadeForTheJob(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	create := func(n NewJob) *Job {
		t.Helper()
		if n.ID == "" {
			n.ID, _ = NewID()
		}
		if n.Action == "" {
			n.Action = "echo"
		}
		j, err := s.Create(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	state := func(id string) State {
		t.Helper()
		j, _, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return j.State
	}
	update := func() *Job {
		return create(NewJob{Action: "project_update", Launch: Launch{Kind: KindJob, LaunchType: LaunchDependency},
			Scheduling: Scheduling{ConcurrencyKeys: []string{ProjectKey("site")}}})
	}
	waiting := func(dep string) NewJob {
		return NewJob{Action: "echo", Launch: Launch{Kind: KindJob, LaunchType: LaunchManual}, Scheduling: Scheduling{DependsOn: []string{dep}}}
	}

	up := update()
	a, b := create(waiting(up.ID)), create(waiting(up.ID))
	if _, err := s.CancelJob(ctx, a.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if st := state(up.ID); st != Pending {
		t.Fatalf("the update another launch waits for is %s", st)
	}
	if _, err := s.CancelJob(ctx, b.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if st := state(up.ID); st != Canceled {
		t.Fatalf("the update nothing waits for any more is %s, want CANCELED", st)
	}

	manual := create(NewJob{Scheduling: Scheduling{ConcurrencyKeys: []string{"k"}}})
	x := create(waiting(manual.ID))
	if _, err := s.CancelJob(ctx, x.ID, "t"); err != nil {
		t.Fatal(err)
	}
	if st := state(manual.ID); st != Pending {
		t.Fatalf("a job not made as a dependency was canceled: %s", st)
	}

	up2 := update()
	cid, _ := NewID()
	s1, _ := NewID()
	s2, _ := NewID()
	slice := func(id string, k int) NewJob {
		n := waiting(up2.ID)
		n.ID, n.ParentJob, n.Launch.SliceNumber, n.Launch.SliceCount = id, cid, k, 2
		return n
	}
	c := waiting(up2.ID)
	c.ID, c.NestedJobs, c.Launch.Kind, c.Launch.Sliced, c.Launch.SliceCount = cid, []string{s1, s2}, KindWorkflow, true, 2
	if _, err := s.CreateFenced(ctx, []NewJob{c, slice(s1, 1), slice(s2, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CancelJob(ctx, cid, "t"); err != nil {
		t.Fatal(err)
	}
	if st := state(up2.ID); st != Canceled {
		t.Fatalf("the update of a canceled sliced job is %s, want CANCELED", st)
	}
	if st := state(cid); st != Canceled {
		t.Fatalf("container %s", st)
	}
}
