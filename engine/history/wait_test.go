package history

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// waitResult is what a Wait running in the background returned.
type waitResult struct {
	v   Job
	err error
}

// startWait runs Wait in the background and returns once it watches the
// job document, so that what the test does next is seen through the watch.
func startWait(t *testing.T, e *env, ctx context.Context, id string) (<-chan waitResult, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	r := New(Config{Store: e.store, Index: e.ix, Timeout: 5 * time.Second, Logger: zap.New(core)})
	done := make(chan waitResult, 1)
	go func() {
		v, err := r.Wait(ctx, id)
		done <- waitResult{v, err}
	}()
	poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
		if logs.FilterMessage(LogWatching).Len() == 0 {
			return errors.New("Wait does not watch the document yet")
		}
		return nil
	})
	return done, logs
}

func result(t *testing.T, done <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
	}
	return waitResult{}
}

func TestWaitUntilFinal(t *testing.T) {
	e := newEnv(t, false)
	j := e.live("a", time.Now())
	done, logs := startWait(t, e, ctxT(t), j.ID)
	e.advance(j.ID, jobs.Running)
	poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
		if logs.FilterMessage(LogWatching).FilterField(zap.String("state", "RUNNING")).Len() == 0 {
			return errors.New("Wait has not seen RUNNING yet")
		}
		return nil
	})
	e.advance(j.ID, jobs.Success)
	r := result(t, done)
	if r.err != nil || r.v.State != jobs.Success || r.v.Source != Live {
		t.Fatalf("Wait = %+v, %v; want SUCCESS from ZooKeeper", r.v, r.err)
	}
	// One read to start and one per change: it waits on its watch.
	if n := logs.FilterMessage(LogWatching).Len(); n != 2 {
		t.Fatalf("the document was read %d times before it was final, want 2 (QUEUED, RUNNING)", n)
	}

	// Already final: at once.
	if v, err := e.reader().Wait(ctxT(t), j.ID); err != nil || v.State != jobs.Success {
		t.Fatalf("Wait(final) = %+v, %v", v, err)
	}
	unknown, _ := jobs.NewID()
	if _, err := e.reader().Wait(ctxT(t), unknown); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Wait(unknown) = %v, want ErrNotFound", err)
	}
}

func TestWaitEndsWithItsContext(t *testing.T) {
	e := newEnv(t, false)
	j := e.live("a", time.Now())
	cause := errors.New("enough")
	ctx, cancel := context.WithCancelCause(ctxT(t))
	done, _ := startWait(t, e, ctx, j.ID)
	cancel(cause)
	r := result(t, done)
	if !errors.Is(r.err, cause) || r.v.Job == nil || r.v.State != jobs.Queued {
		t.Fatalf("Wait = %+v, %v; want the last document read (QUEUED) and the context's cause", r.v, r.err)
	}
}

// TestWaitFindsTheEndInTheHistory: the document is removed while Wait
// watches it, and its final version is in the history only.
func TestWaitFindsTheEndInTheHistory(t *testing.T) {
	e := newEnv(t, true)
	j := e.live("a", time.Now())
	running := e.advance(j.ID, jobs.Running)
	done, _ := startWait(t, e, ctxT(t), j.ID)
	final := *running
	if err := final.Transition(jobs.Failed, time.Now()); err != nil {
		t.Fatal(err)
	}
	final.Version++
	e.index(&final)
	_, ver, err := e.store.Get(ctxT(t), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(ctxT(t), j.UUID(), ver); err != nil {
		t.Fatal(err)
	}
	r := result(t, done)
	if r.err != nil || r.v.State != jobs.Failed || r.v.Source != Indexed {
		t.Fatalf("Wait = %+v, %v; want FAILED from the history", r.v, r.err)
	}

	// Removed before its final version was indexed.
	k := e.live("a", time.Now())
	e.index(k)
	_, ver, err = e.store.Get(ctxT(t), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(ctxT(t), k.UUID(), ver); err != nil {
		t.Fatal(err)
	}
	if v, err := e.reader().Wait(ctxT(t), k.ID); !errors.Is(err, ErrNotFinal) || v.State != jobs.Queued {
		t.Fatalf("Wait(removed, indexed QUEUED) = %+v, %v; want ErrNotFinal", v, err)
	}
}
