package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// failPending fails a PENDING job as the scheduler does when its
// dependency failed, and brings its container up to date.
func (e *env) failPending(id string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	j, ver, err := e.store.Get(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.store.FailPending(j, ver, "made to fail by the test")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CommitBatch(ctx, []*jobs.Change{c}); err != nil {
		e.t.Fatal(err)
	}
	if j.ParentJob != "" {
		if _, err := e.store.SyncContainer(ctx, j.ParentJob); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestRetryJob retries failed jobs through the API: refused (409, with
// what to do) for a job that did not fail; a sliced job's container
// retried by a user with execute on its template, as a new container of
// retries of its slices, created by that user; one slice alone; and the
// permissions of relaunch.
func TestRetryJob(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	retry := func(id string) string { return Prefix + "/jobs/" + uid(id) + "/retry" }

	var ae Error
	e.must(409, uAdmin, "POST", retry(f.container), nil).json(t, &ae)
	if !strings.Contains(ae.Message, "only a FAILED job is retried") || !strings.Contains(ae.Message, "wait for it to end") {
		t.Errorf("retry of a pending container: %q", ae.Message)
	}
	e.must(400, uAdmin, "POST", retry(f.container)+"?from=a", nil)

	// Slice 1 fails, slice 2 is canceled: the container ends FAILED.
	e.failPending(f.slices[0])
	e.must(200, uAdmin, "POST", Prefix+"/jobs/"+uid(f.slices[1])+"/cancel", nil)
	var old struct{ jobs.Job }
	e.must(200, uAdmin, "GET", Prefix+"/jobs/"+uid(f.container), nil).json(t, &old)
	if old.State != jobs.Failed {
		t.Fatalf("container after its slices failed: %s", old.State)
	}

	e.must(404, uNobody, "POST", retry(f.container), nil)
	e.must(403, uAuditor, "POST", retry(f.container), nil)
	var l launched
	e.must(201, uCarol, "POST", retry(f.container), nil).json(t, &l)
	c := l.Job
	if c.RetryOf != f.container || c.LaunchType != jobs.LaunchRetry || c.CreatedBy != "user/"+uCarol || !c.Sliced || c.SliceCount != 2 ||
		c.Template != "web" || c.InventorySnapshot != old.InventorySnapshot || c.Hosts != old.Hosts || len(l.Slices) != 2 {
		t.Fatalf("retry of the container: %+v (of %+v)", l, old.Job)
	}
	for i, id := range l.Slices {
		var s struct{ jobs.Job }
		e.must(200, uCarol, "GET", Prefix+"/jobs/"+uid(id), nil).json(t, &s)
		if s.RetryOf != f.slices[i] || s.ParentJob != c.ID || s.SliceNumber != i+1 || s.SliceCount != 2 || s.CreatedBy != "user/"+uCarol ||
			s.State != jobs.Pending || s.InventorySnapshot != old.InventorySnapshot {
			t.Errorf("slice %d of the retry: %+v", i+1, s.Job)
		}
	}
	// The failed container is left as it was.
	e.must(200, uAdmin, "GET", Prefix+"/jobs/"+uid(f.container), nil).json(t, &old)
	if old.State != jobs.Failed || len(old.NestedJobs) != 2 {
		t.Errorf("the retried container changed: %+v", old.Job)
	}

	// One failed slice alone: a job of its own, over the same slice.
	var one launched
	e.must(201, uCarol, "POST", retry(f.slices[0]), nil).json(t, &one)
	if s := one.Job; s.RetryOf != f.slices[0] || s.ParentJob != "" || s.SliceNumber != 1 || s.SliceCount != 2 || s.IsContainer() || len(one.Slices) != 0 {
		t.Fatalf("retry of a slice: %+v", one)
	}
	// A canceled job: relaunch it instead.
	e.must(409, uCarol, "POST", retry(f.slices[1]), nil).json(t, &ae)
	if !strings.Contains(ae.Message, "ended CANCELED") || !strings.Contains(ae.Message, "job relaunch") {
		t.Errorf("retry of a canceled slice: %q", ae.Message)
	}
	// carol may not run db's jobs; the administrator may.
	e.failPending(f.dbJob)
	e.must(404, uCarol, "POST", retry(f.dbJob), nil)
	var db launched
	e.must(201, uAdmin, "POST", retry(f.dbJob), nil).json(t, &db)
	if db.Job.RetryOf != f.dbJob || db.Job.CreatedBy != "user/"+uAdmin || db.Job.Action != "echo" {
		t.Errorf("retry of db's job: %+v", db.Job)
	}
	e.must(404, uAdmin, "POST", Prefix+"/jobs/00000000-0000-4000-8000-000000000000/retry", nil)
}
