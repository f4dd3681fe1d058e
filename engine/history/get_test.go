package history

import (
	"errors"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

func TestGet(t *testing.T) {
	e := newEnv(t, true)
	r := e.reader()
	ctx := ctxT(t)
	live := e.live("a", time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	e.index(live) // a stale copy: ZooKeeper has the job RUNNING
	e.advance(live.ID, jobs.Running)
	old := indexed("a", jobs.Success, time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC))
	e.index(old)
	unknown, _ := jobs.NewID()

	if v, err := r.Get(ctx, live.UUID()); err != nil || v.Source != Live || v.State != jobs.Running {
		t.Fatalf("Get(live) = %+v, %v; want the RUNNING document from ZooKeeper", v, err)
	}
	if v, err := r.Get(ctx, old.ID); err != nil || v.Source != Indexed || v.State != jobs.Success {
		t.Fatalf("Get(old) = %+v, %v; want the indexed copy", v, err)
	}
	if _, err := r.Get(ctx, unknown); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := r.Get(ctx, "job/123"); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("Get(job/123) = %v, want ErrInvalid", err)
	}
	if _, err := New(Config{Store: e.store}).Get(ctx, old.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Get(old) without history = %v, want ErrNotFound", err)
	}

	e.es.Down()
	if v, err := r.Get(ctx, live.ID); err != nil || v.Source != Live {
		t.Fatalf("Get(live) with the history down = %+v, %v; the history is not needed", v, err)
	}
	if _, err := r.Get(ctx, old.ID); !errors.Is(err, ErrUnavailable) || !errors.Is(err, index.ErrUnavailable) {
		t.Fatalf("Get(old) with the history down = %v, want ErrUnavailable", err)
	}
}
