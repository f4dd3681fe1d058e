package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

// dial connects with a fresh root per test, so tests share one server.
func dial(t testing.TB, root string, hosts ...string) *zkconn.Conn {
	t.Helper()
	if len(hosts) == 0 {
		hosts = zkc.Addrs()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: hosts, Root: root, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newRoot(t testing.TB) string {
	return fmt.Sprintf("/t%d-%s", rootSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newQueue(t testing.TB) (*Queue, *zkconn.Conn) {
	conn := dial(t, newRoot(t))
	q := New(conn, "job")
	if err := q.Ensure(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return q, conn
}

func consumer(t testing.TB, q *Queue) *Consumer {
	c := q.NewConsumer(ConsumerOptions{Name: t.Name()})
	t.Cleanup(c.Close)
	return c
}

func TestPutTakeConsumeOrder(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 20*time.Second)
	for _, p := range []struct {
		id  string
		pri int
	}{{"c1", 500}, {"a1", 100}, {"c2", 500}, {"b1", 200}, {"a2", 100}} {
		if _, err := q.Put(ctx, []byte(p.id), p.pri); err != nil {
			t.Fatal(err)
		}
	}
	c := consumer(t, q)
	var got []string
	for range 5 {
		it, err := c.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(it.Data))
		if err := c.Consume(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if want := "a1 a2 b1 c1 c2"; strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Entries != 0 || st.Taken != 0 {
		t.Fatalf("stats after consuming all: %+v %v", st, err)
	}
}

func TestBadInputWritesNothing(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	cases := []struct {
		name string
		item []byte
		pri  int
	}{
		{"priority below 0", []byte("x"), -1},
		{"priority over 999", []byte("x"), 1000},
		{"empty id", nil, 100},
		{"id over 4 KB", bytes.Repeat([]byte("x"), MaxItemBytes+1), 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := q.Put(ctx, tc.item, tc.pri)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	// One bad item in a batch: nothing of the batch is written.
	_, err := q.PutMany(ctx, [][]byte{[]byte("ok"), nil}, 100)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("batch with an empty item: %v", err)
	}
	big := make([][]byte, 400)
	for i := range big {
		big[i] = bytes.Repeat([]byte("y"), 4000)
	}
	if _, err := q.PutMany(ctx, big, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("len = %d, %v; want nothing written", n, err)
	}
}

func TestPutManyIsOneTransaction(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	items := [][]byte{[]byte("1"), []byte("2"), []byte("3")}
	names, err := q.PutMany(ctx, items, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 || !strings.HasPrefix(names[0], "entry-007-") {
		t.Fatalf("names %v", names)
	}
	// Consecutive sequence numbers: nothing interleaved within the multi.
	_, s0, _ := ParseEntry(names[0])
	_, s2, _ := ParseEntry(names[2])
	if s2-s0 != 2 {
		t.Fatalf("sequence numbers %v are not consecutive", names)
	}
}

// kazoo #501: when the first available entry is lost to another consumer,
// take must try the next one from the same listing, not wait for a watch.
func TestTakeTriesNextAfterLosingFirst(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	names, err := q.PutMany(ctx, [][]byte{[]byte("first"), []byte("second")}, 100)
	if err != nil {
		t.Fatal(err)
	}
	c := q.newConsumer(ConsumerOptions{Name: "a"})
	c.relistOverride = time.Hour // only an empty listing may cause a re-list
	var once sync.Once
	c.beforeTake = func(name string) {
		once.Do(func() {
			// Another consumer takes the first entry after our listing.
			if _, err := conn.Create(q.taken+"/"+names[0], []byte("other"), zk.FlagEphemeral, zkconn.ACL); err != nil {
				t.Error(err)
			}
		})
	}
	go c.loop()
	t.Cleanup(c.Close)
	it, err := c.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Data) != "second" {
		t.Fatalf("took %q, want second", it.Data)
	}
	st := c.Stats()
	if st.Listings != 1 || st.Contended != 1 {
		t.Fatalf("stats %+v: want the second entry from the first listing after one contended take", st)
	}
}

// kazoo #366: an entry consumed between listing and taking never leaves an
// orphan taken node.
func TestTakeOfConsumedEntryLeavesNoOrphan(t *testing.T) {
	q, conn := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	name, err := q.Put(ctx, []byte("gone"), 100)
	if err != nil {
		t.Fatal(err)
	}
	c := q.newConsumer(ConsumerOptions{Name: "a"})
	c.beforeTake = func(n string) {
		if n == name {
			if err := conn.Delete(q.entries+"/"+name, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				t.Error(err)
			}
		}
	}
	go c.loop()
	t.Cleanup(c.Close)
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if it, err := c.Take(tctx); err == nil {
		t.Fatalf("took %q from an empty queue", it.Data)
	}
	taken, _, err := conn.Children(q.taken)
	if err != nil || len(taken) != 0 {
		t.Fatalf("taken nodes %v (%v): want none", taken, err)
	}
	if c.Stats().Contended != 1 {
		t.Fatalf("stats %+v: the take of the consumed entry was not attempted", c.Stats())
	}
}

// kazoo #175: takes that time out on an idle queue accumulate neither
// watches nor goroutines, and do not re-list.
func TestIdleTakeTimeoutsAccumulateNothing(t *testing.T) {
	q, _ := newQueue(t)
	c := consumer(t, q)
	ctx := ctxT(t, 30*time.Second)
	warm, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, _ = c.Take(warm)
	cancel()
	base := runtime.NumGoroutine()
	for range 200 {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		if _, err := c.Take(tctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("take on an idle queue: %v", err)
		}
		cancel()
	}
	if n := c.Stats().Listings; n > 2 {
		t.Fatalf("%d listings for 200 idle takes; want the one listing kept by watches", n)
	}
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > base+2 {
			return fmt.Errorf("%d goroutines, %d before the takes", n, base)
		}
		return nil
	})
	out, err := zkc.Servers[0].FourLetter("mntr", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "zk_watch_count\t"); ok {
			var n int
			fmt.Sscan(v, &n)
			// Each test of the package holds at most a few watches open.
			if n > 40 {
				t.Fatalf("server holds %d watches", n)
			}
		}
	}
}

func TestWorkersShareOneListing(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 60*time.Second)
	const n = 600
	var items [][]byte
	for i := range n {
		items = append(items, fmt.Appendf(nil, "job-%d", i))
	}
	if _, err := q.PutMany(ctx, items, 100); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	seen := drainWith(t, ctx, map[*Consumer]int{c: 8})
	if len(seen) != n {
		t.Fatalf("consumed %d distinct items, want %d", len(seen), n)
	}
	for k, v := range seen {
		if v != 1 {
			t.Fatalf("%s taken %d times", k, v)
		}
	}
	if l := c.Stats().Listings; l > n/4 {
		t.Fatalf("%d listings for %d takes by 8 workers: the workers re-list", l, n)
	}
}

func TestTwoConsumersNeverTakeTheSameEntry(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 60*time.Second)
	const n = 400
	var items [][]byte
	for i := range n {
		items = append(items, fmt.Appendf(nil, "job-%d", i))
	}
	if _, err := q.PutMany(ctx, items, 100); err != nil {
		t.Fatal(err)
	}
	workers := map[*Consumer]int{}
	for range 3 {
		workers[consumer(t, New(dial(t, q.conn.Root()), "job"))] = 3
	}
	seen := drainWith(t, ctx, workers)
	if len(seen) != n {
		t.Fatalf("consumed %d distinct items, want %d", len(seen), n)
	}
	for k, v := range seen {
		if v != 1 {
			t.Fatalf("%s consumed %d times", k, v)
		}
	}
}

func TestReleaseMakesEntryAvailableAgain(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	if _, err := q.Put(ctx, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	a, b := consumer(t, q), consumer(t, New(dial(t, q.conn.Root()), "job"))
	it, err := a.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := a.HoldsLock(ctx, it); !ok || err != nil {
		t.Fatalf("holds lock = %v, %v", ok, err)
	}
	if err := a.Release(ctx, it); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.HoldsLock(ctx, it); ok {
		t.Fatal("holds the lock after release")
	}
	it2, err := b.Take(ctx)
	if err != nil || string(it2.Data) != "x" {
		t.Fatalf("take after release: %v %v", it2, err)
	}
	if err := a.Consume(ctx, it); !errors.Is(err, ErrLockLost) {
		t.Fatalf("consume of a released entry: %v, want ErrLockLost", err)
	}
}

func TestExtraOperationFailureKeepsTheHold(t *testing.T) {
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
	var opErr *zkconn.OpError
	err = c.Consume(ctx, it, &zk.SetDataRequest{Path: doc, Data: []byte("v1"), Version: 5})
	if !errors.As(err, &opErr) || opErr.Index != 0 || opErr.Path != doc || !errors.Is(err, zk.ErrBadVersion) {
		t.Fatalf("consume with a stale write: %v", err)
	}
	if ok, _ := c.HoldsLock(ctx, it); !ok {
		t.Fatal("lost the hold after a failed extra operation")
	}
	if err := c.Consume(ctx, it, &zk.SetDataRequest{Path: doc, Data: []byte("v1"), Version: 0}); err != nil {
		t.Fatal(err)
	}
	data, _, _ := conn.Get(doc)
	if string(data) != "v1" {
		t.Fatalf("doc = %q", data)
	}
}

func TestRemoveNeverDeletesAHeldEntry(t *testing.T) {
	q, _ := newQueue(t)
	ctx := ctxT(t, 10*time.Second)
	held, _ := q.Put(ctx, []byte("held"), 1)
	free, _ := q.Put(ctx, []byte("free"), 2)
	c := consumer(t, q)
	it, err := c.Take(ctx)
	if err != nil || it.Name != held {
		t.Fatalf("take: %v %v", it, err)
	}
	if err := q.Remove(ctx, held); !errors.Is(err, ErrLockLost) {
		t.Fatalf("remove of a held entry: %v", err)
	}
	if err := q.Remove(ctx, free); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(ctx, free); err != nil {
		t.Fatalf("remove is not idempotent: %v", err)
	}
	if n, _ := q.Len(ctx); n != 1 {
		t.Fatalf("len = %d, want 1", n)
	}
}

// After its session expired, a consumer can neither consume nor release an
// entry that was taken again elsewhere, and it says so clearly.
func TestLockLostAfterSessionExpiry(t *testing.T) {
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
	a := consumer(t, qa)
	itA, err := a.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oldSession := connA.SessionID()
	proxy.Block()
	b := consumer(t, New(dial(t, root), "job"))
	// B gets the entry once A's session has expired on the server.
	itB, err := b.Take(ctx)
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
	if err := a.Consume(ctx, itA); !errors.Is(err, ErrLockLost) {
		t.Fatalf("stale consume: %v, want ErrLockLost", err)
	}
	if err := a.Release(ctx, itA); !errors.Is(err, ErrLockLost) {
		t.Fatalf("stale release: %v, want ErrLockLost", err)
	}
	if ok, _ := b.HoldsLock(ctx, itB); !ok {
		t.Fatal("the stale consumer broke the new holder's lock")
	}
	if err := b.Consume(ctx, itB); err != nil {
		t.Fatal(err)
	}
	// A works again with its new session.
	if _, err := qa.Put(ctx, []byte("y"), 1); err != nil {
		t.Fatal(err)
	}
	it, err := a.Take(ctx)
	if err != nil || string(it.Data) != "y" {
		t.Fatalf("take after expiry: %v %v", it, err)
	}
	if err := a.Consume(ctx, it); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableZooKeeperFailsWithinContext(t *testing.T) {
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	conn := dial(t, newRoot(t), proxy.Addr())
	q := New(conn, "job")
	if err := q.Ensure(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, q)
	proxy.Block()
	for _, op := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"put", func(ctx context.Context) error { _, err := q.Put(ctx, []byte("x"), 1); return err }},
		{"take", func(ctx context.Context) error { _, err := c.Take(ctx); return err }},
		{"stats", func(ctx context.Context) error { _, err := q.Stats(ctx); return err }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- op.fn(ctx) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("%s succeeded with ZooKeeper unreachable", op.name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s hangs with ZooKeeper unreachable", op.name)
		}
		cancel()
	}
}

func TestHundredThousandEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("100k-entry test skipped in -short mode")
	}
	q, _ := newQueue(t)
	ctx := ctxT(t, 5*time.Minute)
	const n, batch = 100_000, 2000
	for i := 0; i < n; i += batch {
		items := make([][]byte, batch)
		for j := range items {
			items[j] = fmt.Appendf(nil, "job/%08d", i+j)
		}
		if _, err := q.PutMany(ctx, items, 100); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := q.Len(ctx); err != nil || l != n {
		t.Fatalf("len = %d, %v", l, err)
	}
	var consumed atomic.Int64
	var wg sync.WaitGroup
	// The takes end when the last entry is consumed, not after a quiet
	// spell: a take may wait long on a busy machine.
	all, drained := context.WithCancel(ctx)
	defer drained()
	for range 4 {
		c := consumer(t, New(dial(t, q.conn.Root()), "job"))
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					it, err := c.Take(all)
					if err != nil {
						if consumed.Load() < n {
							t.Errorf("take with %d consumed: %v", consumed.Load(), err)
						}
						return
					}
					if err := c.Consume(ctx, it); err != nil {
						t.Error(err)
						return
					}
					if consumed.Add(1) == n {
						drained()
					}
				}
			}()
		}
	}
	wg.Wait()
	if consumed.Load() != n {
		t.Fatalf("consumed %d of %d", consumed.Load(), n)
	}
}

func TestSortShareKeepsPriorityOrder(t *testing.T) {
	names := []string{
		"entry-200-0000000001", "entry-100-0000000004", "entry-100-0000000003",
		"entry-100-0000000002", "entry-200-0000000000", "entry-100-0000000001",
	}
	sortShare(names, 1, 2)
	want := []string{
		"entry-100-0000000001", "entry-100-0000000003", // share of rank 1 (odd)
		"entry-100-0000000002", "entry-100-0000000004",
		"entry-200-0000000001", "entry-200-0000000000",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("got  %v\nwant %v", names, want)
	}
	sortShare(names, -1, 0)
	if !slices.IsSorted(names) {
		t.Fatalf("without a rank the order is not FIFO: %v", names)
	}
}

// drainWith takes and consumes entries with the given number of workers on
// each consumer until the queue stays empty for half a second, and returns
// how many times each item was taken.
func drainWith(t *testing.T, ctx context.Context, workers map[*Consumer]int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for c, n := range workers {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
					it, err := c.Take(tctx)
					cancel()
					if err != nil {
						return
					}
					mu.Lock()
					seen[string(it.Data)]++
					mu.Unlock()
					if err := c.Consume(ctx, it); err != nil {
						t.Errorf("consumer %s: %v", c.name, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	return seen
}
