package queue

// Interoperability with Python kazoo's LockingQueue, the recipe this queue's
// layout comes from: real kazoo processes (testdata/kazoo_queue.py) and this
// package's consumers share queues on the package's ZooKeeper.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
)

// kazooPython is Debian's interpreter, which sees python3-kazoo (a python3
// earlier on PATH may not).
const kazooPython = "/usr/bin/python3"

const kazooScript = "testdata/kazoo_queue.py"

var (
	kazooOnce    sync.Once
	kazooMissing string
)

// needKazoo skips the test when kazoo cannot be imported.
func needKazoo(t *testing.T) {
	t.Helper()
	kazooOnce.Do(func() {
		out, err := exec.Command(kazooPython, "-c", "import kazoo.recipe.queue").CombinedOutput()
		if err != nil {
			kazooMissing = fmt.Sprintf("%s cannot import kazoo (%v: %s); install python3-kazoo (make deps does)",
				kazooPython, err, bytes.TrimSpace(out))
		}
	})
	if kazooMissing != "" {
		t.Skip(kazooMissing)
	}
}

// lockedBuffer collects a process's stderr while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// kazooProc is one running kazoo_queue.py.
type kazooProc struct {
	t      *testing.T
	name   string
	ctx    context.Context
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, closed at EOF
	stderr lockedBuffer
	exited chan struct{}
	err    error // the exit status, set before exited is closed
}

// startKazoo runs kazoo_queue.py in mode on the queue at path and waits for
// it to connect. ctx bounds the process's whole life: it is killed when ctx
// ends, so a stuck kazoo can never hang the test.
func startKazoo(t *testing.T, ctx context.Context, name, mode, path string) *kazooProc {
	t.Helper()
	needKazoo(t)
	k := &kazooProc{t: t, name: name, ctx: ctx, lines: make(chan string, 4096), exited: make(chan struct{})}
	k.cmd = exec.CommandContext(ctx, kazooPython, kazooScript, mode, zkc.ConnectString(), path)
	k.cmd.Stderr = &k.stderr
	k.cmd.WaitDelay = 5 * time.Second
	var err error
	if k.stdin, err = k.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := k.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("starting kazoo %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			k.lines <- sc.Text()
		}
		close(k.lines)
		k.err = k.cmd.Wait() // after reading stdout to its end, as Wait requires
		close(k.exited)
	}()
	t.Cleanup(func() {
		k.stdin.Close() // both modes end at the end of their input
		select {
		case <-k.exited:
		case <-time.After(15 * time.Second):
			_ = k.cmd.Process.Kill()
			<-k.exited
		}
	})
	if l := k.line(30 * time.Second); l != "ready" {
		t.Fatalf("kazoo %s said %q, want ready", name, l)
	}
	return k
}

// line returns the process's next line of output, failing the test when
// none comes within wait or the process ends.
func (k *kazooProc) line(wait time.Duration) string {
	k.t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case l, ok := <-k.lines:
		if !ok {
			<-k.exited
			k.t.Fatalf("kazoo %s ended (%v); stderr:\n%s", k.name, k.err, k.stderr.String())
		}
		return l
	case <-timer.C:
		k.t.Fatalf("kazoo %s said nothing for %v; stderr:\n%s", k.name, wait, k.stderr.String())
	case <-k.ctx.Done():
		k.t.Fatalf("kazoo %s: %v; stderr:\n%s", k.name, k.ctx.Err(), k.stderr.String())
	}
	return ""
}

// send writes one line to the process's stdin.
func (k *kazooProc) send(line string) {
	k.t.Helper()
	if _, err := io.WriteString(k.stdin, line+"\n"); err != nil {
		k.t.Fatalf("writing to kazoo %s: %v; stderr:\n%s", k.name, err, k.stderr.String())
	}
}

// do sends a serve command and returns its answer.
func (k *kazooProc) do(format string, args ...any) string {
	k.t.Helper()
	k.send(fmt.Sprintf(format, args...))
	l := k.line(30 * time.Second)
	if strings.HasPrefix(l, "error ") {
		k.t.Fatalf("kazoo %s: %s", k.name, l)
	}
	return l
}

// expect sends a serve command and fails unless the answer is want.
func (k *kazooProc) expect(want, format string, args ...any) {
	k.t.Helper()
	cmd := fmt.Sprintf(format, args...)
	if got := k.do("%s", cmd); got != want {
		k.t.Fatalf("kazoo %s: %s = %q, want %q", k.name, cmd, got, want)
	}
}

// len returns kazoo's len(queue).
func (k *kazooProc) len() int {
	k.t.Helper()
	l := k.do("len")
	n, err := strconv.Atoi(l)
	if err != nil {
		k.t.Fatalf("kazoo %s: len = %q", k.name, l)
	}
	return n
}

// rest returns the remaining output once the process has ended, and fails
// the test unless it ended well.
func (k *kazooProc) rest() []string {
	k.t.Helper()
	var out []string
	for l := range k.lines {
		out = append(out, l)
	}
	<-k.exited
	if k.err != nil {
		k.t.Fatalf("kazoo %s: %v; stderr:\n%s", k.name, k.err, k.stderr.String())
	}
	return out
}

// wantStats fails unless the queue's stats have these counts.
func wantStats(t *testing.T, ctx context.Context, q *Queue, entries, taken int) Stats {
	t.Helper()
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != entries || st.Taken != taken || st.Available != entries-taken || st.Orphans != 0 {
		t.Fatalf("stats %+v, want %d entries, %d taken, no orphans", st, entries, taken)
	}
	return st
}

func takeData(t *testing.T, ctx context.Context, c *Consumer) *Item {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	it, err := c.Take(tctx)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// kazoo puts (put and put_all, on a queue kazoo created) → this queue takes
// and consumes them in priority order, and counts them as kazoo does.
func TestKazooPutsWeTakeAndConsume(t *testing.T) {
	needKazoo(t)
	ctx := ctxT(t, 90*time.Second)
	// No Ensure: kazoo creates the queue, without the owners directory.
	q := New(dial(t, newRoot(t)), "job")
	k := startKazoo(t, ctx, "putter", "serve", q.Path())
	// A kazoo item may be over this package's own size limit.
	big := "big-" + strings.Repeat("x", MaxItemBytes)
	k.expect("ok", "putall 500 k-500a k-500b")
	k.expect("ok", "put 5 k-5")
	k.expect("ok", "put 100 k-100")
	k.expect("ok", "put 999 %s", big)
	if n := k.len(); n != 5 {
		t.Fatalf("kazoo len = %d, want 5", n)
	}
	st := wantStats(t, ctx, q, 5, 0)
	if want := map[int]int{5: 1, 100: 1, 500: 2, 999: 1}; !maps.Equal(st.ByPriority, want) {
		t.Fatalf("by priority %v, want %v", st.ByPriority, want)
	}
	if n, err := q.Len(ctx); err != nil || n != 5 {
		t.Fatalf("len = %d, %v; want 5", n, err)
	}

	c := consumer(t, q)
	it := takeData(t, ctx, c)
	if string(it.Data) != "k-5" || it.Priority != 5 || !strings.HasPrefix(it.Name, "entry-005-") {
		t.Fatalf("first take %s %q (priority %d), want k-5 at priority 5", it.Name, it.Data, it.Priority)
	}
	// Taken entries still count for both.
	wantStats(t, ctx, q, 5, 1)
	if n := k.len(); n != 5 {
		t.Fatalf("kazoo len with one entry taken = %d, want 5", n)
	}
	if err := c.Consume(ctx, it); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		it := takeData(t, ctx, c)
		got = append(got, string(it.Data))
		if err := c.Consume(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"k-100", "k-500a", "k-500b", big}; !slices.Equal(got, want) {
		t.Fatalf("took %.40q, want %.40q", got, want)
	}
	wantStats(t, ctx, q, 0, 0)
	if n := k.len(); n != 0 {
		t.Fatalf("kazoo len after consuming all = %d, want 0", n)
	}
}

var kazooTakerID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// This queue puts → kazoo's get() takes them in priority order and its
// consume() removes them.
func TestKazooTakesAndConsumesOurPuts(t *testing.T) {
	needKazoo(t)
	q, _ := newQueue(t)
	ctx := ctxT(t, 90*time.Second)
	if _, err := q.PutMany(ctx, [][]byte{[]byte("g-300a"), []byte("g-300b")}, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(ctx, []byte("g-7"), 7); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(ctx, []byte("g-default"), DefaultPriority); err != nil {
		t.Fatal(err)
	}
	k := startKazoo(t, ctx, "taker", "serve", q.Path())
	if n := k.len(); n != 4 {
		t.Fatalf("kazoo len = %d, want 4", n)
	}
	k.expect("item g-7", "get 10")
	// kazoo's taken node is what this package reads as a taken entry.
	wantStats(t, ctx, q, 4, 1)
	entries, err := q.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := k.do("id")
	if !kazooTakerID.MatchString(id) {
		t.Fatalf("kazoo's taker id %q is not 32 hex digits", id)
	}
	if e := entries[0]; e.Item != "g-7" || e.Priority != 7 || !e.Taken || e.Taker != id {
		t.Fatalf("entry taken by kazoo reads %+v, want g-7 taken by %s", e, id)
	}
	k.expect("True", "holds")
	k.expect("True", "consume")
	wantStats(t, ctx, q, 3, 0)
	for _, want := range []string{"g-default", "g-300a", "g-300b"} {
		k.expect("item "+want, "get 10")
		k.expect("True", "consume")
	}
	k.expect("none", "get 0.2")
	if n := k.len(); n != 0 {
		t.Fatalf("kazoo len after consuming all = %d, want 0", n)
	}
	wantStats(t, ctx, q, 0, 0)
}

// kazoo's release() hands an entry to this queue's consumer, and this
// queue's Release hands it back to kazoo; neither takes what the other holds.
func TestKazooReleaseHandsOverBothWays(t *testing.T) {
	needKazoo(t)
	q, _ := newQueue(t)
	ctx := ctxT(t, 90*time.Second)
	if _, err := q.Put(ctx, []byte("r"), 1); err != nil {
		t.Fatal(err)
	}
	k := startKazoo(t, ctx, "holder", "serve", q.Path())
	c := consumer(t, q)

	k.expect("item r", "get 10")
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	it, err := c.Take(tctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("took %v (%v) while kazoo holds the only entry", it, err)
	}
	k.expect("True", "release")
	k.expect("False", "holds")
	wantStats(t, ctx, q, 1, 0)

	it = takeData(t, ctx, c)
	if string(it.Data) != "r" {
		t.Fatalf("took %q after kazoo's release, want r", it.Data)
	}
	k.expect("none", "get 0.3")
	if err := c.Release(ctx, it); err != nil {
		t.Fatal(err)
	}
	k.expect("item r", "get 10")
	if err := c.Consume(ctx, it); !errors.Is(err, ErrLockLost) {
		t.Fatalf("consume of an entry released to kazoo: %v, want ErrLockLost", err)
	}
	if ok, err := c.HoldsLock(ctx, it); ok || err != nil {
		t.Fatalf("holds lock = %v, %v after release; want false", ok, err)
	}
	k.expect("True", "holds")
	k.expect("True", "consume")
	wantStats(t, ctx, q, 0, 0)
}

// A kazoo consumer killed while it holds an entry lets go of it when its
// session ends, and this queue's consumer takes it then.
func TestKazooKilledHolderFreesItsEntry(t *testing.T) {
	needKazoo(t)
	q, _ := newQueue(t)
	ctx := ctxT(t, 90*time.Second)
	if _, err := q.Put(ctx, []byte("orphaned"), 1); err != nil {
		t.Fatal(err)
	}
	k := startKazoo(t, ctx, "victim", "serve", q.Path())
	c := consumer(t, q)
	k.expect("item orphaned", "get 10")
	wantStats(t, ctx, q, 1, 1)
	if err := k.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second) // kazoo's session is 3 s
	it, err := c.Take(tctx)
	cancel()
	if err != nil {
		t.Fatalf("entry of a killed kazoo consumer not taken: %v", err)
	}
	if string(it.Data) != "orphaned" {
		t.Fatalf("took %q", it.Data)
	}
	if err := c.Consume(ctx, it); err != nil {
		t.Fatal(err)
	}
	wantStats(t, ctx, q, 0, 0)
}

// Two kazoo consumer processes and two of this package's consumers (two
// workers each) drain one queue of items put by both sides: every item is
// taken and consumed exactly once overall, and nothing is left.
func TestKazooMixedConsumersTakeEachEntryOnce(t *testing.T) {
	needKazoo(t)
	q, _ := newQueue(t)
	ctx := ctxT(t, 3*time.Minute)
	const perSide = 150
	var want []string
	var ours [][]byte
	for i := range perSide {
		ours = append(ours, fmt.Appendf(nil, "g-%03d", i))
		want = append(want, fmt.Sprintf("g-%03d", i), fmt.Sprintf("k-%03d", i))
	}
	// Priorities 50, 100 (both sides) and 200 interleave the sides' items.
	half := perSide / 2
	if _, err := q.PutMany(ctx, ours[:half], 50); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PutMany(ctx, ours[half:], 100); err != nil {
		t.Fatal(err)
	}
	putter := startKazoo(t, ctx, "putter", "serve", q.Path())
	for _, part := range []struct{ lo, pri int }{{0, 200}, {half, 100}} {
		var b strings.Builder
		for i := part.lo; i < part.lo+half; i++ {
			fmt.Fprintf(&b, " k-%03d", i)
		}
		putter.expect("ok", "putall %d%s", part.pri, b.String())
	}
	if n := putter.len(); n != 2*perSide {
		t.Fatalf("kazoo len = %d, want %d", n, 2*perSide)
	}
	wantStats(t, ctx, q, 2*perSide, 0)

	// The kazoo consumers connect first and wait for a line on stdin, so
	// that both start together.
	var kazoos []*kazooProc
	for i := range 2 {
		kazoos = append(kazoos, startKazoo(t, ctx, fmt.Sprintf("consumer-%d", i), "consume", q.Path()))
	}
	var (
		mu      sync.Mutex
		takenBy = map[string][]string{} // item → who took it
		perWho  = map[string]int{}
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	// On an early failure the workers stop before their consumers close.
	wctx, stop := context.WithCancel(ctx)
	defer func() { stop(); wg.Wait() }()
	record := func(who, item string) {
		mu.Lock()
		takenBy[item] = append(takenBy[item], who)
		perWho[who]++
		mu.Unlock()
	}
	for ci := range 2 {
		who := fmt.Sprintf("go-%d", ci)
		c := consumer(t, New(dial(t, q.conn.Root()), "job"))
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select {
				case <-start:
				case <-wctx.Done():
					return
				}
				for wctx.Err() == nil {
					tctx, cancel := context.WithTimeout(wctx, 300*time.Millisecond)
					var its []*Item
					var err error
					if ci == 1 {
						// go-1 takes and consumes in batches.
						its, _, err = TakeMany(tctx, 4, c)
					} else {
						var it *Item
						if it, err = c.Take(tctx); err == nil {
							its = []*Item{it}
						}
					}
					cancel()
					if wctx.Err() != nil {
						return
					}
					if errors.Is(err, context.DeadlineExceeded) {
						// Done once every entry is consumed, not merely taken.
						if n, err := q.Len(ctx); err == nil && n == 0 {
							return
						}
						continue
					}
					if err != nil {
						t.Errorf("%s: take: %v", who, err)
						return
					}
					var parts []Part
					for _, it := range its {
						record(who, string(it.Data))
						parts = append(parts, Part{Item: it, End: Consume})
					}
					if err := c.ApplyMany(ctx, parts); err != nil {
						t.Errorf("%s: consume %d entries: %v", who, len(parts), err)
					}
				}
			}()
		}
	}
	kazooLine := func(k *kazooProc, l string) {
		if item, lost := strings.CutPrefix(l, "LOST "); lost {
			t.Errorf("kazoo %s: consume() of %s returned False", k.name, item)
			l = item
		}
		record(k.name, l)
	}
	for _, k := range kazoos {
		k.send("go")
	}
	// This package's consumers are many times faster than kazoo's: they
	// start once each kazoo consumer has consumed an entry, so that every
	// consumer surely takes part, and all four then drain the queue together.
	for _, k := range kazoos {
		kazooLine(k, k.line(30*time.Second))
	}
	close(start)
	for _, k := range kazoos {
		for _, l := range k.rest() {
			kazooLine(k, l)
		}
	}
	wg.Wait()

	for _, item := range want {
		if who := takenBy[item]; len(who) != 1 {
			t.Errorf("%s taken %d times, by %v", item, len(who), who)
		}
	}
	if len(takenBy) != len(want) {
		t.Errorf("%d distinct items taken, want %d", len(takenBy), len(want))
	}
	t.Logf("items taken per consumer: %v", perWho)
	for _, who := range []string{"go-0", "go-1", "consumer-0", "consumer-1"} {
		if perWho[who] == 0 {
			t.Errorf("%s took nothing", who)
		}
	}
	// The kazoo processes have ended, and their sessions with them.
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, err := q.Stats(ctx)
		if err != nil {
			return err
		}
		if st.Entries != 0 || st.Taken != 0 || st.Orphans != 0 {
			return fmt.Errorf("stats %+v, want an empty queue", st)
		}
		return nil
	})
	if n := putter.len(); n != 0 {
		t.Fatalf("kazoo len after draining = %d, want 0", n)
	}
}
