package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jobengine/jobengine/internal/backoff"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// Name is written into the consumer's owner node, to tell who holds
	// what (default hostname-pid).
	Name string
	// Logger receives the consumer's log lines.
	Logger *zap.Logger
}

// ConsumerStats are counters of a consumer, for tests and metrics.
type ConsumerStats struct {
	Listings   int64 // listings of the queue
	Taken      int64 // successful takes
	Contended  int64 // takes lost to another consumer or to a consume
	OwnerNodes int64 // owner nodes created (one per session)
}

// Consumer takes entries for any number of workers in one process. It keeps
// one listing of the queue, refreshed by child watches, and hands each
// candidate to one worker at a time, so the workers neither re-list the
// queue on every change nor fight over the same entry.
type Consumer struct {
	q    *Queue
	name string
	log  *zap.Logger

	ownerMu sync.Mutex // serialises owner node creation

	mu       sync.Mutex
	session  int64  // the session the owner node belongs to
	owner    string // owner node path, "" until created
	takerID  []byte
	avail    []string        // candidates in queue order, not handed out
	inflight map[string]bool // handed to a worker, take in progress
	// reclaiming holds the entries a take of unknown outcome may have
	// taken, until reclaim has looked: they are not taken again before,
	// since a taken node made by a later take would carry the same taker
	// id and be given back under its holder.
	reclaiming map[string]bool
	held       map[string]*Item // taken by this consumer, by entry name
	changed    chan struct{}    // closed and replaced whenever avail changes
	dirty      bool             // a watch fired since the last listing
	listed     bool             // a listing succeeded at least once
	waiters    int              // workers waiting for a candidate
	lastErr    error            // the last listing error, for Take's error
	closed     bool
	stats      ConsumerStats

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// Test hooks: called before each take attempt; a fixed re-list interval.
	beforeTake     func(name string)
	relistOverride time.Duration
}

// NewConsumer starts a consumer of q. Close it to stop its listing loop and
// remove its owner node.
func (q *Queue) NewConsumer(opts ConsumerOptions) *Consumer {
	c := q.newConsumer(opts)
	go c.loop()
	return c
}

// NewHolder returns a consumer that keeps no listing and takes only the
// entries it names (TakeEntry): for a writer that acts on entries it
// already knows of. Close it when done; its holds end with Consume,
// Release or its session.
func (q *Queue) NewHolder(opts ConsumerOptions) *Consumer {
	c := q.newConsumer(opts)
	close(c.done) // no listing loop to wait for
	return c
}

func (q *Queue) newConsumer(opts ConsumerOptions) *Consumer {
	if opts.Name == "" {
		h, _ := os.Hostname()
		opts.Name = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Consumer{
		q:          q,
		name:       opts.Name,
		log:        opts.Logger,
		inflight:   make(map[string]bool),
		reclaiming: make(map[string]bool),
		held:       make(map[string]*Item),
		changed:    make(chan struct{}),
		dirty:      true,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	return c
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() ConsumerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Held returns how many entries the consumer holds: taken, and neither
// consumed nor released yet.
func (c *Consumer) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Close stops the consumer. Entries it still holds stay taken until its
// session ends; release them first.
func (c *Consumer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	owner := c.owner
	close(c.changed)
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	if owner != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = zkconn.Do(ctx, func() error { return c.q.conn.Delete(owner, -1) })
	}
}

// Take blocks until it holds an entry, or ctx ends. It tries candidates in
// queue order and moves on at once when one is lost to another consumer.
// While ZooKeeper is unreachable it keeps trying until ctx ends and then
// returns an error wrapping ctx's error and the last failure.
func (c *Consumer) Take(ctx context.Context) (*Item, error) {
	it, _, err := TakeAny(ctx, c)
	return it, err
}

// TakeAny takes an entry of whichever of cs has one, as Take does for one
// consumer: the consumers are tried in order, so the first has precedence
// whenever it has a candidate (an executor's direct queue before the
// shared queue). It returns the item and the consumer that holds it.
func TakeAny(ctx context.Context, cs ...*Consumer) (*Item, *Consumer, error) {
	if len(cs) == 0 {
		return nil, nil, fmt.Errorf("%w: no consumer to take from", ErrInvalid)
	}
	delay := 10 * time.Millisecond
	for {
		c, name, err := nextAny(ctx, cs)
		if err != nil {
			return nil, nil, err
		}
		if c.beforeTake != nil {
			c.beforeTake(name)
		}
		it, err := c.tryTake(ctx, name)
		c.resolve(name, it)
		if it != nil {
			return it, c, nil
		}
		if err == nil {
			delay = 10 * time.Millisecond
			continue
		}
		if !zkconn.Transient(err) {
			return nil, nil, err
		}
		c.setErr(err)
		c.markDirty()
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("queue: take: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff.Jitter(delay)):
		}
		delay = min(2*delay, time.Second)
	}
}

// nextAny hands out the next candidate of the first of cs that has one,
// waiting for their listings when none has.
func nextAny(ctx context.Context, cs []*Consumer) (*Consumer, string, error) {
	c, names, err := nextAnyN(ctx, cs, 1)
	if err != nil {
		return nil, "", err
	}
	return c, names[0], nil
}

// nextAnyN hands out up to max candidates, in queue order, of the first of
// cs that has one, waiting for their listings when none has.
func nextAnyN(ctx context.Context, cs []*Consumer, max int) (*Consumer, []string, error) {
	chans := make([]reflect.SelectCase, 0, len(cs)+1)
	for {
		chans = chans[:0]
		var waitingOn []*Consumer
		unwait := func() {
			for _, w := range waitingOn {
				w.mu.Lock()
				w.waiters--
				w.mu.Unlock()
			}
		}
		for _, c := range cs {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				unwait()
				return nil, nil, ErrClosed
			}
			if len(c.avail) > 0 {
				n := min(max, len(c.avail))
				names := slices.Clone(c.avail[:n])
				c.avail = c.avail[n:]
				for _, name := range names {
					c.inflight[name] = true
				}
				c.mu.Unlock()
				unwait()
				return c, names, nil
			}
			// The channel is taken under the same lock as the check, so
			// a listing that comes after the check closes it.
			chans = append(chans, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.changed)})
			c.waiters++
			waitingOn = append(waitingOn, c)
			c.mu.Unlock()
			c.poke()
		}
		chans = append(chans, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
		chosen, _, _ := reflect.Select(chans)
		unwait()
		if chosen == len(chans)-1 {
			var last error
			for _, c := range cs {
				c.mu.Lock()
				if c.lastErr != nil {
					last = c.lastErr
				}
				c.mu.Unlock()
			}
			if last != nil {
				return nil, nil, fmt.Errorf("queue: take: %w (last error: %v)", ctx.Err(), last)
			}
			return nil, nil, fmt.Errorf("queue: take: %w", ctx.Err())
		}
	}
}

// HasCandidates reports whether the consumer's listing has entries to
// take now, without waiting for one.
func (c *Consumer) HasCandidates() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.avail) > 0
}

// TakeEntry takes one named entry, for a holder that knows which entry it
// wants (the reaper, acting on a lost executor's queue). It returns nil
// and no error when the entry is gone or held by someone else: a held
// entry is never touched.
func (c *Consumer) TakeEntry(ctx context.Context, name string) (*Item, error) {
	if _, _, ok := ParseEntry(name); !ok {
		return nil, fmt.Errorf("%w: %q is not an entry name", ErrInvalid, name)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	it, err := c.tryTake(ctx, name)
	if it != nil {
		c.mu.Lock()
		c.held[name] = it
		c.stats.Taken++
		c.mu.Unlock()
	}
	return it, err
}

func (c *Consumer) resolve(name string, it *Item) {
	c.mu.Lock()
	delete(c.inflight, name)
	if it != nil {
		c.held[name] = it
		c.stats.Taken++
	}
	c.mu.Unlock()
}

func (c *Consumer) forget(it *Item) {
	c.mu.Lock()
	if c.held[it.Name] == it {
		delete(c.held, it.Name)
	}
	c.mu.Unlock()
}

// holding reports whether it is an entry this consumer holds (this very
// take: an item consumed or released before is not held any more, even if
// the same entry was taken again).
func (c *Consumer) holding(it *Item) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[it.Name] == it
}

func (c *Consumer) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func (c *Consumer) markDirty() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
	c.poke()
}

func (c *Consumer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ensureOwner returns the owner node of the current session, creating it
// (with a new taker id) when the session changed.
func (c *Consumer) ensureOwner(ctx context.Context) (string, []byte, error) {
	sid := c.q.conn.SessionID()
	c.mu.Lock()
	owner, taker, have := c.owner, c.takerID, c.session
	c.mu.Unlock()
	if owner != "" && have == sid && sid != 0 {
		return owner, taker, nil
	}
	c.ownerMu.Lock()
	defer c.ownerMu.Unlock()
	c.mu.Lock()
	owner, taker, have = c.owner, c.takerID, c.session
	c.mu.Unlock()
	if owner != "" && have == sid && sid != 0 {
		return owner, taker, nil
	}
	// kazoo's taker ids are uuid4 hex; ours are too, new for every session.
	id := uuid.New()
	taker = fmt.Appendf(nil, "%x", id[:])
	path := c.q.owners + "/" + string(taker)
	err := zkconn.Do(ctx, func() error {
		_, err := c.q.conn.Create(path, []byte(c.name), zk.FlagEphemeral, zkconn.ACL)
		if errors.Is(err, zk.ErrNoNode) {
			if err := ensureDirs(c.q); err != nil {
				return err
			}
			_, err = c.q.conn.Create(path, []byte(c.name), zk.FlagEphemeral, zkconn.ACL)
		}
		return err
	})
	if err != nil {
		return "", nil, err
	}
	c.mu.Lock()
	c.owner, c.takerID, c.session = path, taker, sid
	c.stats.OwnerNodes++
	c.mu.Unlock()
	return path, taker, nil
}

// tryTake takes one entry: it returns the item, or nil and nil when the
// entry was lost to someone else (try the next), or a connection error.
func (c *Consumer) tryTake(ctx context.Context, name string) (*Item, error) {
	owner, taker, err := c.ensureOwner(ctx)
	if err != nil {
		return nil, err
	}
	entry, taken := c.q.entries+"/"+name, c.q.taken+"/"+name
	// The entry check in the same multi means an entry consumed between the
	// listing and this take can never leave an orphan taken node.
	ops := []interface{}{
		&zk.CheckVersionRequest{Path: owner, Version: 0},
		&zk.CheckVersionRequest{Path: entry, Version: -1},
		&zk.CreateRequest{Path: taken, Data: taker, Flags: zk.FlagEphemeral, Acl: zkconn.ACL},
	}
	res, fl, err := c.q.multi(ctx, ops)
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i == 0 && errors.Is(opErr, zk.ErrNoNode):
			// Our session changed under us: forget the owner node, retry later.
			c.dropOwner(owner)
			return nil, nil
		case (i == 1 && errors.Is(opErr, zk.ErrNoNode)) || (i == 2 && errors.Is(opErr, zk.ErrNodeExists)):
			c.mu.Lock()
			c.stats.Contended++
			c.mu.Unlock()
			return nil, nil
		}
		if zkconn.Transient(opErr) {
			c.reclaim(owner, taker, []string{name}, fl)
		}
		return nil, opErr
	}
	var data []byte
	err = zkconn.Do(ctx, func() error {
		var err error
		data, _, err = c.q.conn.Get(entry)
		return err
	})
	if err != nil {
		// Only a lock-ignoring delete (kazoo's consume is not one) can remove
		// the entry now; either way give the taken node back.
		it := &Item{Name: name, owner: owner, takerID: taker, q: c.q}
		c.giveBack(ctx, it)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		return nil, err
	}
	p, _, _ := ParseEntry(name)
	return &Item{Name: name, Data: data, Priority: p, owner: owner, takerID: taker, q: c.q}, nil
}

func (c *Consumer) dropOwner(owner string) {
	c.mu.Lock()
	if c.owner == owner {
		c.owner, c.takerID, c.session = "", nil, 0
	}
	c.mu.Unlock()
}

// Consume removes a held entry and its taken node in one multi, together
// with the caller's extra operations (the executor's final job write), and
// only if this consumer still holds the entry — checked inside the same
// multi. It returns ErrLockLost when the hold is gone, a *zkconn.OpError
// when an extra operation failed (still held), or a connection error
// (unknown outcome: the caller re-reads what it wrote).
func (c *Consumer) Consume(ctx context.Context, it *Item, extra ...interface{}) error {
	if !c.holding(it) {
		return fmt.Errorf("%w: entry %s is not held by this consumer (already consumed or released)", ErrLockLost, it.Name)
	}
	entry, taken := c.q.entries+"/"+it.Name, c.q.taken+"/"+it.Name
	ops := append([]interface{}{
		it.fenceOp(),
		&zk.DeleteRequest{Path: taken, Version: -1},
		&zk.DeleteRequest{Path: entry, Version: -1},
	}, extra...)
	err := c.apply(ctx, it, ops, 3)
	var nodeErr *entryGoneError
	if errors.As(err, &nodeErr) {
		// The entry was removed while held (a cancel or a repair): only the
		// taken node is left to delete.
		err = c.apply(ctx, it, append([]interface{}{it.fenceOp(), &zk.DeleteRequest{Path: taken, Version: -1}}, extra...), 2)
	}
	if err != nil {
		return err
	}
	c.forget(it)
	return nil
}

// Release gives a held entry back to the queue (with the caller's extra
// operations, in one multi), only if this consumer still holds it. Its
// errors are those of Consume.
func (c *Consumer) Release(ctx context.Context, it *Item, extra ...interface{}) error {
	if !c.holding(it) {
		return fmt.Errorf("%w: entry %s is not held by this consumer (already consumed or released)", ErrLockLost, it.Name)
	}
	ops := append([]interface{}{
		it.fenceOp(),
		&zk.DeleteRequest{Path: c.q.taken + "/" + it.Name, Version: -1},
	}, extra...)
	if err := c.apply(ctx, it, ops, 2); err != nil {
		return err
	}
	c.forget(it)
	c.markDirty()
	return nil
}

// Write applies the caller's operations in one multi, only while this
// consumer holds the entry, and keeps holding it: the fenced write of a
// holder that is not done with its entry (a job's RUNNING state, its
// progress). The multi checks the consumer's owner node, which vanishes
// with its session, and the entry's taken node; so a consumer whose session
// expired — the entry may be another consumer's by now — writes nothing,
// and says so with ErrLockLost, after which the entry is no longer held.
// Its other errors are those of Consume.
func (c *Consumer) Write(ctx context.Context, it *Item, ops ...interface{}) error {
	if !c.holding(it) {
		return fmt.Errorf("%w: entry %s is not held by this consumer (already consumed or released)", ErrLockLost, it.Name)
	}
	if len(ops) == 0 {
		return fmt.Errorf("%w: a fenced write of no operation", ErrInvalid)
	}
	return c.apply(ctx, it, append([]interface{}{
		it.fenceOp(),
		&zk.CheckVersionRequest{Path: c.q.taken + "/" + it.Name, Version: -1},
	}, ops...), 2)
}

// giveBack releases a taken node this consumer has not handed out, retrying
// connection failures until it is released or known lost: the session may
// survive the outage, and then nobody else could ever take the entry. It
// gives up when the consumer closes or ctx (the take's) ends: the taken
// node then goes with the session.
func (c *Consumer) giveBack(ctx context.Context, it *Item) {
	delay := 100 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.release(rctx, it)
		cancel()
		if err == nil || errors.Is(err, ErrLockLost) {
			return
		}
		if !zkconn.Transient(err) {
			c.log.Warn("could not give back a taken entry; it stays taken until this session ends",
				zap.String("entry", it.Name), zap.Error(err))
			return
		}
		select {
		case <-c.stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(backoff.Jitter(delay)):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// release gives back a taken node this consumer has not handed out yet.
func (c *Consumer) release(ctx context.Context, it *Item) error {
	return c.apply(ctx, it, []interface{}{it.fenceOp(), &zk.DeleteRequest{Path: c.q.taken + "/" + it.Name, Version: -1}}, 2)
}

type entryGoneError struct{}

func (*entryGoneError) Error() string { return "queue: entry gone" }

// apply runs a fenced multi: ops[0] is the fence, ops[1] deletes (or
// checks) the taken node, ops[2] (when own == 3) deletes the entry,
// ops[own:] are the caller's.
func (c *Consumer) apply(ctx context.Context, it *Item, ops []interface{}, own int) error {
	if err := c.settle(ctx, it); err != nil {
		return err
	}
	res, fl, err := c.q.multi(ctx, ops)
	if err == nil {
		return nil
	}
	failed := zkconn.FailedOp(ops, res, err)
	if failed == nil {
		if _, deletes := ops[1].(*zk.DeleteRequest); deletes && zkconn.Transient(err) {
			it.unsure.Store(fl)
		}
		return fmt.Errorf("queue: %s: %w", it.Name, err)
	}
	i, opErr := failed.Index, failed.Err
	switch {
	case i == 0 || (i == 1 && errors.Is(opErr, zk.ErrNoNode)):
		c.forget(it)
		if i == 0 {
			c.dropOwner(it.owner)
			return fmt.Errorf("%w: entry %s: this consumer's session ended, the entry may be taken elsewhere", ErrLockLost, it.Name)
		}
		return fmt.Errorf("%w: entry %s: its taken node is gone", ErrLockLost, it.Name)
	case own == 3 && i == 2 && errors.Is(opErr, zk.ErrNoNode):
		return &entryGoneError{}
	case i >= own:
		return failed.Shift(own)
	}
	return fmt.Errorf("queue: %s: %w", it.Name, opErr)
}

// settle finds out, before a hold's next multi, whether an earlier release
// or consume of unknown outcome went through (Item.unsure): the taken node
// is then gone or another consumer's, and the hold has ended.
func (c *Consumer) settle(ctx context.Context, it *Item) error {
	fl := it.unsure.Load()
	if fl == nil {
		return nil
	}
	select {
	case <-fl.finished:
	case <-ctx.Done():
		return fmt.Errorf("queue: %s: %w: %v", it.Name, zkconn.ErrUnavailable, ctx.Err())
	}
	held, err := c.HoldsLock(ctx, it)
	if err != nil {
		return fmt.Errorf("queue: %s: %w", it.Name, err)
	}
	if !held {
		c.forget(it)
		c.markDirty()
		return fmt.Errorf("%w: entry %s: an earlier release or consume went through, or the session ended", ErrLockLost, it.Name)
	}
	it.unsure.Store(nil)
	return nil
}

// HoldsLock reports whether this consumer still holds the entry, reading
// the latest state from the leader (sync) first.
func (c *Consumer) HoldsLock(ctx context.Context, it *Item) (bool, error) {
	var holds bool
	err := zkconn.Do(ctx, func() error {
		taken := c.q.taken + "/" + it.Name
		if _, err := c.q.conn.Sync(taken); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		ok, _, err := c.q.conn.Exists(it.owner)
		if err != nil || !ok {
			return err
		}
		data, st, err := c.q.conn.Get(taken)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		holds = bytes.Equal(data, it.takerID) && st.EphemeralOwner == c.q.conn.SessionID()
		return nil
	})
	return holds, err
}

// relistInterval is how long a stale listing may be used while candidates
// remain: many times what a listing costs, so listing stays a small share of
// the work even at 100,000 entries. It bounds how late a new entry of a
// higher priority is seen while a backlog is being worked through; an empty
// listing is refreshed as soon as a watch fires.
func (c *Consumer) relistInterval(last time.Duration) time.Duration {
	if c.relistOverride > 0 {
		return c.relistOverride
	}
	return min(max(20*last, 100*time.Millisecond), 2*time.Second)
}

// read lists the entries and taken directories, arming a watch on a
// directory only when its previous watch has fired.
func (c *Consumer) read(entriesW, takenW *<-chan zk.Event) (entries, taken []string, err error) {
	conn := c.q.conn
	if *entriesW == nil {
		var ch <-chan zk.Event
		if entries, _, ch, err = conn.ChildrenW(c.q.entries); err != nil {
			return nil, nil, err
		}
		*entriesW = ch
	} else if entries, _, err = conn.Children(c.q.entries); err != nil {
		return nil, nil, err
	}
	if *takenW == nil {
		var ch <-chan zk.Event
		if taken, _, ch, err = conn.ChildrenW(c.q.taken); err != nil {
			return nil, nil, err
		}
		*takenW = ch
	} else if taken, _, err = conn.Children(c.q.taken); err != nil {
		return nil, nil, err
	}
	return entries, taken, nil
}

// resyncInterval bounds how long workers waiting on an empty listing can
// miss a new entry when a watch was lost.
const resyncInterval = 5 * time.Second

// loop keeps the listing: it lists when a watch fired and either workers
// wait with nothing to take or the listing is older than relistInterval.
// It is the only place that sets watches, one per directory at a time, so
// watches never accumulate however many takes time out.
func (c *Consumer) loop() {
	defer close(c.done)
	events, unsubscribe := c.q.conn.Subscribe()
	defer unsubscribe()
	var entriesW, takenW <-chan zk.Event
	var lastList time.Time
	var lastDur time.Duration
	delay := 50 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		dirty, avail, waiters := c.dirty, len(c.avail), c.waiters
		c.mu.Unlock()
		due := dirty && (avail == 0 && waiters > 0 || time.Since(lastList) >= c.relistInterval(lastDur))
		if dirty && avail == 0 && !c.isListed() {
			due = true
		}
		if due {
			start := time.Now()
			err := c.list(&entriesW, &takenW)
			if err != nil {
				c.setErr(err)
				c.log.Debug("listing the queue failed", zap.Error(err))
				select {
				case <-c.stop:
					return
				case <-time.After(backoff.Jitter(delay)):
				}
				delay = min(2*delay, 2*time.Second)
				continue
			}
			delay = 50 * time.Millisecond
			lastList, lastDur = time.Now(), time.Since(start)
			continue
		}
		wait := time.Hour
		if dirty {
			wait = max(c.relistInterval(lastDur)-time.Since(lastList), time.Millisecond)
		} else if avail == 0 && waiters > 0 {
			// The last resort against a watch lost without a word (see
			// below): workers waiting on an empty listing see new entries
			// within resyncInterval whatever happened to the watches.
			wait = max(resyncInterval-time.Since(lastList), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-c.stop:
			return
		case ev := <-events:
			// After a reconnect go-zookeeper re-registers the watches it
			// knows in a request of its own; when that request fails it only
			// logs it, and the watch is gone on the server. Arm new ones.
			if ev.Type == zk.EventSession && ev.State == zk.StateHasSession {
				entriesW, takenW = nil, nil
				c.markDirtyLocked()
			}
		case <-entriesW:
			entriesW = nil
			c.markDirtyLocked()
		case <-takenW:
			takenW = nil
			c.markDirtyLocked()
		case <-c.wake:
		case <-timer.C:
			if !dirty && avail == 0 && waiters > 0 && time.Since(lastList) >= resyncInterval {
				c.markDirtyLocked()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (c *Consumer) isListed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listed
}

func (c *Consumer) markDirtyLocked() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

// list reads entries and taken nodes, arming a watch on a directory only
// when its previous watch has fired.
func (c *Consumer) list(entriesW, takenW *<-chan zk.Event) error {
	entries, taken, err := c.read(entriesW, takenW)
	if errors.Is(err, zk.ErrNoNode) {
		// A queue nobody has used yet (or a directory removed by hand).
		if err := ensureDirs(c.q); err != nil {
			return err
		}
		entries, taken, err = c.read(entriesW, takenW)
	}
	if err != nil {
		return err
	}
	conn := c.q.conn
	// The live consumers of this package each have an owner node; knowing
	// how many there are and our rank among them lets each consumer try its
	// own share of every priority first, so consumers in different processes
	// do not all chase the head of the queue.
	owners, _, err := conn.Children(c.q.owners)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	slices.Sort(owners)
	isTaken := make(map[string]struct{}, len(taken))
	for _, t := range taken {
		isTaken[t] = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rank := -1
	if c.owner != "" {
		rank = slices.Index(owners, c.owner[strings.LastIndexByte(c.owner, '/')+1:])
	}
	avail := entries[:0]
	for _, e := range entries {
		if _, ok := isTaken[e]; ok || c.inflight[e] || c.reclaiming[e] || c.held[e] != nil {
			continue
		}
		avail = append(avail, e)
	}
	sortShare(avail, rank, len(owners))
	c.avail = avail
	c.dirty = false
	c.listed = true
	c.lastErr = nil
	c.stats.Listings++
	if !c.closed {
		close(c.changed)
		c.changed = make(chan struct{})
	}
	return nil
}

// sortShare sorts candidates by priority; within a priority, the entries of
// this consumer's share (sequence number modulo the number of consumers
// equals its rank) come first, each part in FIFO order.
func sortShare(names []string, rank, n int) {
	slices.Sort(names) // fixed-width names: priority, then FIFO
	if rank < 0 || n < 2 {
		return
	}
	pri := func(name string) string {
		if len(name) > len(entryPrefix)+3 {
			return name[:len(entryPrefix)+3]
		}
		return name
	}
	others := make([]string, 0, len(names))
	for i := 0; i < len(names); {
		j, p := i, pri(names[i])
		for j < len(names) && pri(names[j]) == p {
			j++
		}
		// Stable partition of names[i:j]: this consumer's share first.
		k := i
		others = others[:0]
		for _, name := range names[i:j] {
			if _, seq, ok := ParseEntry(name); ok && int(seq%int64(n)) == rank {
				names[k] = name
				k++
			} else {
				others = append(others, name)
			}
		}
		copy(names[k:j], others)
		i = j
	}
}
