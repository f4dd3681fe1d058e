package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// A fenced write applies the caller's operations and keeps the hold; a
// failing operation of the caller's is reported by its index and keeps the
// hold too; a write of an entry no longer held writes nothing.
func TestWriteKeepsTheHold(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := q.Put(ctx, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	doc := conn.Path("doc")
	if _, err := conn.Create(doc, []byte("v0"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	it, err := c.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, it, &zk.SetDataRequest{Path: doc, Data: []byte("v1"), Version: 0}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.HoldsLock(ctx, it); !ok {
		t.Fatal("a fenced write gave up the hold")
	}
	if st, _ := q.Stats(ctx); st.Entries != 1 || st.Taken != 1 {
		t.Fatalf("a fenced write consumed or released the entry: %+v", st)
	}
	var opErr *zkconn.OpError
	err = c.Write(ctx, it, &zk.CheckVersionRequest{Path: doc, Version: 1}, &zk.SetDataRequest{Path: doc, Data: []byte("v2"), Version: 0})
	if !errors.As(err, &opErr) || opErr.Index != 1 || opErr.Op != "set" || !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("write with a stale operation: %v, want an OpError at index 1", err)
	}
	if ok, _ := c.HoldsLock(ctx, it); !ok {
		t.Fatal("lost the hold after a failed operation of the caller's")
	}
	if err := c.Write(ctx, it); !errors.Is(err, ErrInvalid) {
		t.Fatalf("write of nothing: %v, want ErrInvalid", err)
	}
	if err := c.Release(ctx, it); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, it, &zk.SetDataRequest{Path: doc, Data: []byte("late"), Version: -1}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("write after release: %v, want ErrLockLost", err)
	}
	if data, _, _ := conn.Get(doc); string(data) != "v1" {
		t.Fatalf("doc = %q, want v1", data)
	}
}

// A consumer whose session expired cannot write under its old hold, while
// another consumer holds the entry now; the new holder's writes go through.
func TestWriteRefusedAfterSessionExpiry(t *testing.T) {
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
	if _, err := qa.Put(ctx, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	doc := connA.Path("doc")
	if _, err := connA.Create(doc, []byte("v0"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	a := consumer(t, qa)
	itA, err := a.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldSession := connA.SessionID()
	proxy.Block()
	connB := dial(t, root)
	b := consumer(t, New(connB, "job"))
	itB, err := b.Take(ctx) // succeeds once A's session expired on the server
	if err != nil {
		t.Fatal(err)
	}
	proxy.Unblock()
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if s := connA.SessionID(); s == 0 || s == oldSession || !connA.Connected() {
			return errors.New("A has no new session yet")
		}
		return nil
	})
	err = a.Write(ctx, itA, &zk.SetDataRequest{Path: doc, Data: []byte("stale"), Version: -1})
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("write under an expired session: %v, want ErrLockLost", err)
	}
	// Refused for good: the item is not held any more.
	if err := a.Write(ctx, itA, &zk.SetDataRequest{Path: doc, Data: []byte("stale"), Version: -1}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("second stale write: %v, want ErrLockLost", err)
	}
	if err := b.Write(ctx, itB, &zk.SetDataRequest{Path: doc, Data: []byte("b"), Version: 0}); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}
	if data, _, _ := connB.Get(doc); string(data) != "b" {
		t.Fatalf("doc = %q, want the new holder's", data)
	}
}

// A taken node deleted by hand (kazoo's recipe never does) ends the hold:
// the write says so and changes nothing.
func TestWriteRefusedWhenTakenNodeIsGone(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := q.Put(ctx, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	doc := conn.Path("doc")
	if _, err := conn.Create(doc, []byte("v0"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	it, err := c.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Delete(q.TakenPath()+"/"+it.Name, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, it, &zk.SetDataRequest{Path: doc, Data: []byte("v1"), Version: 0}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("write without a taken node: %v, want ErrLockLost", err)
	}
	if data, _, _ := conn.Get(doc); string(data) != "v0" {
		t.Fatalf("doc = %q, want v0", data)
	}
}
