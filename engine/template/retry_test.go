package template

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
)

// failPending fails a PENDING job as the scheduler does, and brings its
// container up to date.
func failPending(t *testing.T, js *jobs.Store, id string) {
	t.Helper()
	ctx := ctxT(t)
	j, ver, err := js.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.FailPending(j, ver, "failed by the test")
	if err != nil {
		t.Fatal(err)
	}
	if err := js.CommitBatch(ctx, []*jobs.Change{c}); err != nil {
		t.Fatal(err)
	}
	if j.ParentJob != "" {
		if _, err := js.SyncContainer(ctx, j.ParentJob); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRetry retries a failed sliced job over the snapshot it ran over,
// pinned again by the retry, and refuses what cannot be retried: a job
// not FAILED, one whose dependency failed, one whose snapshot is gone.
func TestRetry(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	// Pins of final jobs are released, as the controller's store does.
	e.l.Inventories = inventory.NewStore(e.conn, inventory.Config{Live: func(ctx context.Context, uid string) (bool, error) {
		j, _, err := e.l.Jobs.Get(ctx, uid)
		if errors.Is(err, jobs.ErrNotFound) {
			return false, nil
		}
		return err == nil && !j.State.Final(), err
	}})
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(5)); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "t", Action: "echo", Inventory: "inv", SliceCount: 2, Priority: 5}); err != nil {
		t.Fatal(err)
	}
	first, err := e.l.Launch(ctx, Request{Template: "t", CreatedBy: "user/a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Retry(ctx, first.Job.ID, "user/b"); !errors.Is(err, ErrCannotRetry) || !strings.Contains(err.Error(), "wait for it to end") {
		t.Fatalf("retry of a pending container: %v", err)
	}
	failPending(t, e.l.Jobs, first.Slices[1].ID)
	if _, err := e.l.Jobs.CancelJob(ctx, first.Slices[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	// The template changes: a retry does not see it.
	tp, ver, err := e.l.Templates.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	tp.Priority = 9
	if err := e.l.Templates.Update(ctx, tp, ver); err != nil {
		t.Fatal(err)
	}
	r, err := e.l.Retry(ctx, first.Job.ID, "user/b")
	if err != nil {
		t.Fatal(err)
	}
	if r.Job.RetryOf != first.Job.ID || r.Job.CreatedBy != "user/b" || r.Job.InventorySnapshot != first.Job.InventorySnapshot ||
		len(r.Slices) != 2 || r.Job.Hosts != 5 || r.Job.Priority != 5 {
		t.Fatalf("retry: %+v", r.Job)
	}
	for i, s := range r.Slices {
		if s.RetryOf != first.Slices[i].ID || s.SliceNumber != i+1 || s.Hosts != first.Slices[i].Hosts || s.Priority != 5 ||
			strings.Join(s.ConcurrencyKeys, ",") != "template:t" || s.State != jobs.Pending {
			t.Errorf("slice %d: %+v", i+1, s)
		}
	}
	pins, err := e.l.Inventories.Pins(ctx, "inv", first.Job.InventorySnapshot)
	if err != nil || !strings.Contains(strings.Join(pins, " "), strings.TrimPrefix(r.Job.ID, "job/")) {
		t.Fatalf("pins %v (%v): the retry does not pin its snapshot", pins, err)
	}

	// A job whose dependency failed: a retry would fail at once.
	dep, err := e.l.Jobs.Create(ctx, jobs.NewJob{Action: "echo", Launch: jobs.Launch{InstanceGroups: []string{"default"}}})
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := e.l.Jobs.Create(ctx, jobs.NewJob{Action: "echo", Scheduling: jobs.Scheduling{DependsOn: []string{dep.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	failPending(t, e.l.Jobs, dep.ID)
	failPending(t, e.l.Jobs, waiter.ID)
	if _, err := e.l.Retry(ctx, waiter.ID, "user/b"); !errors.Is(err, ErrCannotRetry) || !strings.Contains(err.Error(), "waited for "+dep.ID) {
		t.Fatalf("retry of a job whose dependency failed: %v", err)
	}
	// The dependency itself is retried alone.
	if d, err := e.l.Retry(ctx, dep.ID, "user/b"); err != nil || d.Job.RetryOf != dep.ID || strings.Join(d.Job.InstanceGroups, ",") != "default" {
		t.Fatalf("retry of a failed job: %+v, %v", d, err)
	}

	// Once no live job pins it, a new import removes the snapshot: the
	// failed job's inputs are gone.
	for _, s := range r.Slices {
		if _, err := e.l.Jobs.CancelJob(ctx, s.ID, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(6)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Retry(ctx, first.Job.ID, "user/b"); !errors.Is(err, ErrCannotRetry) || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("retry over a removed snapshot: %v", err)
	}
	pin, err := e.l.Inventories.PinOp("inv", first.Job.InventorySnapshot, strings.TrimPrefix(first.Job.ID, "job/"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := e.conn.Exists(path.Dir(pin.Path)); ok || err != nil {
		t.Fatalf("the removed snapshot's pins directory is back (%v)", err)
	}
}
