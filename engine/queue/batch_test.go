package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// A batch take takes the head of the queue in queue order: strictly by
// priority, FIFO within one; what is left comes next.
func TestTakeManyRespectsPriorityOrder(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 20*time.Second)
	for _, p := range []struct {
		id  string
		pri int
	}{{"low-1", 500}, {"high-1", 10}, {"mid-1", 100}, {"high-2", 10}, {"low-2", 500}, {"mid-2", 100}} {
		if _, err := q.Put(ctx, []byte(p.id), p.pri); err != nil {
			t.Fatal(err)
		}
	}
	c := consumer(t, q)
	var got []string
	items, from, err := TakeMany(ctx, 4, c)
	if err != nil {
		t.Fatal(err)
	}
	if from != c {
		t.Fatal("TakeMany names another consumer")
	}
	for _, it := range items {
		got = append(got, string(it.Data))
	}
	if want := []string{"high-1", "high-2", "mid-1", "mid-2"}; !slices.Equal(got, want) {
		t.Fatalf("first batch %v, want %v", got, want)
	}
	taken, _, err := conn.Children(q.taken)
	if err != nil || len(taken) != 4 {
		t.Fatalf("taken nodes %v (%v): want 4, one per entry (kazoo's layout)", taken, err)
	}
	for _, name := range taken {
		data, st, err := conn.Get(q.taken + "/" + name)
		if err != nil || !slices.Equal(data, items[0].TakerID()) || st.EphemeralOwner != conn.SessionID() {
			t.Fatalf("taken node %s: %q owner %x (%v): want this session's taker id", name, data, st.EphemeralOwner, err)
		}
	}
	rest, _, err := TakeMany(ctx, 10, c)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, it := range rest {
		got = append(got, string(it.Data))
	}
	if want := []string{"low-1", "low-2"}; !slices.Equal(got, want) {
		t.Fatalf("second batch %v, want %v", got, want)
	}
	if err := c.ApplyMany(ctx, []Part{{Item: items[0], End: Consume}, {Item: items[1], End: Consume}, {Item: items[2], End: Release}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Len(ctx); n != 4 {
		t.Fatalf("len = %d after consuming two of six, want 4", n)
	}
	// The released entry is the head of the queue again.
	it, err := c.Take(ctx)
	if err != nil || string(it.Data) != "mid-1" {
		t.Fatalf("take after the release: %v %v, want mid-1", it, err)
	}
}

// An entry lost to another consumer between the listing and the batch
// take is left out; the rest of the batch is taken.
func TestTakeManySkipsALostEntry(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	names, err := q.PutMany(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, 100)
	if err != nil {
		t.Fatal(err)
	}
	c := q.newConsumer(ConsumerOptions{Name: "batch"})
	c.relistOverride = time.Hour
	var once sync.Once
	c.beforeTake = func(string) {
		once.Do(func() {
			if _, err := conn.Create(q.taken+"/"+names[1], []byte("other"), zk.FlagEphemeral, zkconn.ACL); err != nil {
				t.Error(err)
			}
		})
	}
	go c.loop()
	t.Cleanup(c.Close)
	items, _, err := TakeMany(ctx, 3, c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, string(it.Data))
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("took %v, want a and c (b was taken elsewhere)", got)
	}
	if st := c.Stats(); st.Contended != 1 || st.Taken != 2 {
		t.Fatalf("stats %+v: want one contended entry and two taken", st)
	}
}

// A batch one of whose parts fails writes nothing, names the part, and
// leaves every hold as it was.
func TestApplyManyIsAllOrNothing(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := q.PutMany(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, 100); err != nil {
		t.Fatal(err)
	}
	doc := conn.Path("doc")
	if _, err := conn.Create(doc, []byte("v0"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	var items []*Item
	poll.For(t, 5*time.Second, 10*time.Millisecond, func() error {
		more, _, err := TakeMany(ctx, 3-len(items), c)
		items = append(items, more...)
		if err != nil || len(items) < 3 {
			return fmt.Errorf("%d of 3 taken (%v)", len(items), err)
		}
		return nil
	})
	err := c.ApplyMany(ctx, []Part{
		{Item: items[0], End: Consume, Ops: []interface{}{&zk.SetDataRequest{Path: doc, Data: []byte("a"), Version: 0}}},
		{Item: items[1], End: Consume, Ops: []interface{}{&zk.SetDataRequest{Path: doc, Data: []byte("b"), Version: 7}}}, // a conflict
		{Item: items[2], End: Keep, Ops: []interface{}{&zk.CheckVersionRequest{Path: doc, Version: -1}}},
	})
	var pe *PartError
	var opErr *zkconn.OpError
	if !errors.As(err, &pe) || pe.Index != 1 || !errors.As(err, &opErr) || opErr.Index != 2 || !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("batch with a conflict: %v, want part 1 failing at its operation 2 with a bad version", err)
	}
	if n, _ := q.Len(ctx); n != 3 {
		t.Fatalf("len = %d, want 3: nothing consumed", n)
	}
	if data, _, _ := conn.Get(doc); string(data) != "v0" {
		t.Fatalf("doc = %q, want v0", data)
	}
	// Each part alone: the good ones go through, the bad one fails alone.
	if err := c.Consume(ctx, items[0], &zk.SetDataRequest{Path: doc, Data: []byte("a"), Version: 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.Consume(ctx, items[1], &zk.SetDataRequest{Path: doc, Data: []byte("b"), Version: 7}); !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("the conflicting part alone: %v", err)
	}
	if err := c.ApplyMany(ctx, []Part{{Item: items[1], End: Consume}, {Item: items[2], End: Consume}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := q.Len(ctx); n != 0 {
		t.Fatalf("len = %d, want 0", n)
	}
}

// A consumer whose session expired after a batch take writes nothing of
// a batch under its old holds, while another consumer holds the entries.
func TestApplyManyFencedAfterSessionExpiry(t *testing.T) {
	root := newRoot(t)
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	connA := dial(t, root, proxy.Addr())
	qa := New(connA, "job")
	ctx := ctxT(t, 60*time.Second)
	if err := qa.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := qa.PutMany(ctx, [][]byte{[]byte("x"), []byte("y")}, 1); err != nil {
		t.Fatal(err)
	}
	doc := connA.Path("doc")
	if _, err := connA.Create(doc, []byte("v0"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	a := consumer(t, qa)
	var itsA []*Item
	poll.For(t, 5*time.Second, 10*time.Millisecond, func() error {
		more, _, err := TakeMany(ctx, 2-len(itsA), a)
		itsA = append(itsA, more...)
		if err != nil || len(itsA) < 2 {
			return fmt.Errorf("%d of 2 taken (%v)", len(itsA), err)
		}
		return nil
	})
	oldSession := connA.SessionID()
	proxy.Block()
	connB := dial(t, root)
	b := consumer(t, New(connB, "job"))
	var itsB []*Item
	for len(itsB) < 2 { // once A's session expired on the server
		more, _, err := TakeMany(ctx, 2-len(itsB), b)
		if err != nil {
			t.Fatal(err)
		}
		itsB = append(itsB, more...)
	}
	proxy.Unblock()
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if s := connA.SessionID(); s == 0 || s == oldSession || !connA.Connected() {
			return errors.New("A has no new session yet")
		}
		return nil
	})
	stale := []Part{
		{Item: itsA[0], End: Keep, Ops: []interface{}{&zk.SetDataRequest{Path: doc, Data: []byte("stale"), Version: -1}}},
		{Item: itsA[1], End: Consume},
	}
	if err := a.ApplyMany(ctx, stale); !errors.Is(err, ErrLockLost) {
		t.Fatalf("batch under an expired session: %v, want ErrLockLost", err)
	}
	if err := a.ApplyMany(ctx, stale); !errors.Is(err, ErrLockLost) {
		t.Fatalf("second stale batch: %v, want ErrLockLost", err)
	}
	if data, _, _ := connB.Get(doc); string(data) != "v0" {
		t.Fatalf("doc = %q: the stale batch wrote", data)
	}
	for _, it := range itsB {
		if ok, err := b.HoldsLock(ctx, it); !ok || err != nil {
			t.Fatalf("the new holder lost %s (%v)", it.Name, err)
		}
	}
	if err := b.ApplyMany(ctx, []Part{{Item: itsB[0], End: Consume}, {Item: itsB[1], End: Consume}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := qa.Len(ctx); n != 0 {
		t.Fatalf("len = %d, want 0", n)
	}
}

// A take whose outcome is unknown (its context ended with the multi in
// flight) leaves no taken node behind when the multi went through: the
// consumer gives it back, so the entry is free for others again.
func TestTakeOfUnknownOutcomeIsGivenBack(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 20*time.Second)
	if _, err := q.PutMany(ctx, [][]byte{[]byte("first"), []byte("a"), []byte("b")}, 100); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	// A first take makes the consumer's owner node, so that the next take
	// sends its multi at once.
	first, err := c.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Consume(ctx, first); err != nil {
		t.Fatal(err)
	}
	poll.For(t, 5*time.Second, 10*time.Millisecond, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.avail) < 2 {
			return errors.New("not listed yet")
		}
		return nil
	})
	// The context ends after zkconn.Do's first check: the multi is sent,
	// its caller hears a timeout.
	if _, _, err := TakeMany(&expiredOnce{done: closedChan()}, 2, c); err == nil {
		t.Fatal("a take with an ended context succeeded")
	}
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		taken, _, err := conn.Children(q.taken)
		if err != nil || len(taken) != 0 {
			return fmt.Errorf("taken nodes %v (%v), want none", taken, err)
		}
		return nil
	})
	// Both entries are free again; the consumer may list them one at a
	// time, so a take may return only one of them.
	var got []string
	for len(got) < 2 {
		items, _, err := TakeMany(ctx, 2-len(got), c)
		if err != nil {
			t.Fatalf("take after the give-back: %v (after %v)", err, got)
		}
		for _, it := range items {
			got = append(got, string(it.Data))
		}
	}
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("taken after the give-back: %q, want a and b once each", got)
	}
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// expiredOnce passes the first check of its error and is done at once.
type expiredOnce struct {
	checks int
	done   chan struct{}
}

func (c *expiredOnce) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *expiredOnce) Done() <-chan struct{}       { return c.done }
func (c *expiredOnce) Value(any) any               { return nil }
func (c *expiredOnce) Err() error {
	c.checks++
	if c.checks == 1 {
		return nil
	}
	return context.DeadlineExceeded
}

// A release whose outcome is unknown may have gone through, and another
// consumer may hold the entry by the time it is tried again: the retry
// must not delete that consumer's taken node (the fence, this consumer's
// owner node, still passes). Found by the soak: a requeue's answer lost in
// an ensemble restart, retried after another executor took the job.
func TestReleaseOfUnknownOutcomeLeavesTheNextHolderAlone(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			q, _ := newQueue(t)
			ctx := ctxT(t, 20*time.Second)
			if _, err := q.Put(ctx, []byte("job"), 100); err != nil {
				t.Fatal(err)
			}
			a, b := consumer(t, q), q.NewConsumer(ConsumerOptions{Name: "b"})
			t.Cleanup(b.Close)
			it, err := a.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			release := func(ctx context.Context) error {
				if batch {
					return a.ApplyMany(ctx, []Part{{Item: it, End: Release}})
				}
				return a.Release(ctx, it)
			}
			// The multi is sent; its caller hears a timeout.
			if err := release(&expiredOnce{done: closedChan()}); err == nil {
				t.Fatal("a release with an ended context succeeded")
			}
			got, err := b.Take(ctx)
			if err != nil {
				t.Fatal(err)
			}
			err = release(ctx)
			if !errors.Is(err, ErrLockLost) {
				t.Fatalf("the retried release: %v, want ErrLockLost", err)
			}
			if held, err := b.HoldsLock(ctx, got); !held || err != nil {
				t.Fatalf("the retried release took the entry from its next holder (held %v, %v)", held, err)
			}
			if err := b.Consume(ctx, got); err != nil {
				t.Fatal(err)
			}
		})
	}
}
