package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// takeMany holds n entries of s's queue, taken in batches by one consumer.
func takeMany(t *testing.T, s *Store, name string, n int) []Hold {
	t.Helper()
	c := s.Queue().NewConsumer(queue.ConsumerOptions{Name: name})
	t.Cleanup(c.Close)
	var holds []Hold
	for len(holds) < n {
		items, _, err := queue.TakeMany(ctxT(t), n-len(holds), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			holds = append(holds, Hold{Consumer: c, Item: it})
		}
	}
	return holds
}

// startAll plans the start of the job of each hold.
func startAll(t *testing.T, s *Store, holds []Hold, executor string) []*Change {
	t.Helper()
	var cs []*Change
	for _, h := range holds {
		j, ver, err := s.Get(ctxT(t), string(h.Item.Data))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.StartAttempt(j, ver, executor)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// A batch with one conflicting job commits the others; the conflicting
// one fails alone, its entry still held.
func TestCommitHeldOneConflictCommitsTheOthers(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	if _, err := s.CreateMany(ctx, []NewJob{{Action: "a"}, {Action: "a"}, {Action: "a"}}); err != nil {
		t.Fatal(err)
	}
	holds := takeMany(t, s, "x1", 3)
	cs := startAll(t, s, holds, "x1")
	// A cancel of the second job races the start: its document moves on.
	victim := cs[1].Job().ID
	if _, err := s.Cancel(ctx, victim, "me"); err != nil {
		t.Fatal(err)
	}
	errs := CommitHeld(ctx, cs, holds)
	for i, err := range errs {
		if i == 1 {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("the conflicting job: %v, want ErrConflict", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("job %d of the batch: %v", i, err)
		}
		if got, _, _ := s.Get(ctx, cs[i].Job().ID); got.State != Running || got.Executor != "x1" {
			t.Fatalf("job %d: %s on %q, want RUNNING on x1", i, got.State, got.Executor)
		}
	}
	if ok, _ := holds[1].Consumer.HoldsLock(ctx, holds[1].Item); !ok {
		t.Fatal("the conflict gave up the hold")
	}
	// Both finish in one batch: their entries go, the third stays held.
	var fins []*Change
	for _, i := range []int{0, 2} {
		f, err := s.Finish(cs[i].Job(), cs[i].Ver(), "x1", Outcome{State: Success})
		if err != nil {
			t.Fatal(err)
		}
		fins = append(fins, f)
	}
	for i, err := range CommitHeld(ctx, fins, []Hold{holds[0], holds[2]}) {
		if err != nil {
			t.Fatalf("finish %d: %v", i, err)
		}
	}
	if st := queueStats(t, s); st.Entries != 1 || st.Taken != 1 {
		t.Fatalf("queue %+v: want the conflicting job's entry alone, held", st)
	}
	want := map[string]int{"QUEUED→RUNNING": 2, "RUNNING→SUCCESS": 2, "QUEUED→CANCELED": 1}
	got := map[string]int{}
	for _, tr := range rec.transitions() {
		got[tr]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("state events %v, want %v", got, want)
	}
}

// The fence holds for a batch: a writer whose session expired after it
// took the jobs writes none of them, and the new holder writes them all.
func TestCommitHeldFencedAfterTheSessionIsLost(t *testing.T) {
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	fresh := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(dctx, zkconn.Config{Hosts: []string{proxy.Addr()}, Root: fresh.Conn().Root(), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rec := &recorder{}
	stale := NewStore(conn, StoreConfig{Observers: []Observer{rec}})
	created, err := fresh.CreateMany(ctx, []NewJob{{Action: "a"}, {Action: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	old := takeMany(t, stale, "stale", 2)
	cs := startAll(t, stale, old, "stale")
	session := conn.SessionID()
	proxy.Block()
	holds := takeMany(t, fresh, "fresh", 2) // once the stale session expired on the server
	proxy.Unblock()
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if s := conn.SessionID(); s == session || !conn.Connected() {
			return errors.New("no new session yet")
		}
		return nil
	})
	for i, err := range CommitHeld(ctx, cs, old) {
		if !errors.Is(err, queue.ErrLockLost) {
			t.Fatalf("stale batch, job %d: %v, want ErrLockLost", i, err)
		}
	}
	for _, j := range created {
		if got, _, _ := fresh.Get(ctx, j.ID); got.State != Queued || got.Version != 1 {
			t.Fatalf("a stale writer changed the document: %+v", got)
		}
	}
	if len(rec.transitions()) != 0 {
		t.Fatalf("a refused write was observed: %v", rec.transitions())
	}
	for i, err := range CommitHeld(ctx, startAll(t, fresh, holds, "fresh"), holds) {
		if err != nil {
			t.Fatalf("the new holder's batch, job %d: %v", i, err)
		}
	}
	for _, j := range created {
		if got, _, _ := fresh.Get(ctx, j.ID); got.State != Running || got.Executor != "fresh" {
			t.Fatalf("after the new holder's batch: %s on %q", got.State, got.Executor)
		}
	}
}

// A batch whose outcome is unknown is found to have landed when its
// changes are committed again, each observed once.
func TestCommitHeldAgainAfterAnUnknownOutcome(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	if _, err := s.CreateMany(ctx, []NewJob{{Action: "a"}, {Action: "a"}}); err != nil {
		t.Fatal(err)
	}
	holds := takeMany(t, s, "x1", 2)
	cs := startAll(t, s, holds, "x1")
	var fins []*Change
	for _, c := range cs {
		f, err := s.Finish(c.Job(), c.Ver()-1, "x1", Outcome{State: Failed, Message: "boom"})
		if err != nil {
			t.Fatal(err)
		}
		fins = append(fins, f)
	}
	for _, err := range CommitHeld(newExpiredOnce(), fins, holds) {
		if !zkconn.Transient(err) {
			t.Fatalf("first commit: %v, want a timeout", err)
		}
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st := queueStats(t, s); st.Entries != 0 {
			return fmt.Errorf("%d entries left: the batch has not landed yet", st.Entries)
		}
		return nil
	})
	for i, err := range CommitHeld(ctx, fins, holds) {
		if err != nil {
			t.Fatalf("commit again, job %d: %v", i, err)
		}
	}
	if n := len(rec.transitions()); n != 2 {
		t.Fatalf("%d state events, want 2: %v", n, rec.transitions())
	}
}
