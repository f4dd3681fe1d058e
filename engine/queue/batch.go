package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// Batches: when the backlog is deep, a consumer takes several entries in
// one multi (TakeMany) and its holders write, consume and release several
// entries in one multi (ApplyMany). ZooKeeper applies a multi of many
// operations almost as fast as a multi of one, so the cost per entry
// falls with the batch. The nodes are those of single takes — one
// ephemeral <path>/taken/<entry> per entry, holding the taker's id — so
// kazoo clients sharing the queue see nothing new.

// TakeMany takes up to max entries of whichever of cs has candidates, in
// one multi, and returns them in queue order with the consumer that holds
// them. It does not wait for more than one: an entry alone on an idle
// queue is taken at once; a deep backlog yields full batches. Like TakeAny
// it tries the consumers in order, moves on from entries lost to another
// consumer, and keeps trying through connection failures until ctx ends.
func TakeMany(ctx context.Context, max int, cs ...*Consumer) ([]*Item, *Consumer, error) {
	if len(cs) == 0 {
		return nil, nil, fmt.Errorf("%w: no consumer to take from", ErrInvalid)
	}
	if max < 1 {
		return nil, nil, fmt.Errorf("%w: a batch of %d entries", ErrInvalid, max)
	}
	delay := 10 * time.Millisecond
	for {
		c, names, err := nextAnyN(ctx, cs, max)
		if err != nil {
			return nil, nil, err
		}
		if c.beforeTake != nil {
			for _, n := range names {
				c.beforeTake(n)
			}
		}
		items, err := c.tryTakeMany(ctx, names)
		if len(items) > 0 {
			return items, c, nil
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

// tryTakeMany takes the named entries in one multi, leaving out those
// lost to someone else (each failure names the operation, so the entry is
// dropped and the rest tried again), then reads their items. It resolves
// every name it was handed.
func (c *Consumer) tryTakeMany(ctx context.Context, names []string) (items []*Item, err error) {
	if len(names) == 1 {
		it, err := c.tryTake(ctx, names[0])
		c.resolve(names[0], it)
		if it != nil {
			return []*Item{it}, nil
		}
		return nil, err
	}
	got := map[string]*Item{}
	defer func() {
		for _, n := range names {
			c.resolve(n, got[n])
		}
	}()
	owner, taker, err := c.ensureOwner(ctx)
	if err != nil {
		return nil, err
	}
	pending := slices.Clone(names)
	for len(pending) > 0 {
		// The entry checks mean an entry consumed since the listing never
		// leaves an orphan taken node (as in tryTake).
		ops := make([]interface{}, 0, 1+2*len(pending))
		ops = append(ops, &zk.CheckVersionRequest{Path: owner, Version: 0})
		for _, n := range pending {
			ops = append(ops,
				&zk.CheckVersionRequest{Path: c.q.entries + "/" + n, Version: -1},
				&zk.CreateRequest{Path: c.q.taken + "/" + n, Data: taker, Flags: zk.FlagEphemeral, Acl: zkconn.ACL})
		}
		var res []zk.MultiResponse
		var fl *inFlight
		res, fl, err = c.q.multi(ctx, ops)
		if err == nil {
			break
		}
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i == 0 && errors.Is(opErr, zk.ErrNoNode):
			c.dropOwner(owner)
			return nil, nil
		case i > 0 && ((i%2 == 1 && errors.Is(opErr, zk.ErrNoNode)) || (i%2 == 0 && errors.Is(opErr, zk.ErrNodeExists))):
			c.mu.Lock()
			c.stats.Contended++
			c.mu.Unlock()
			pending = slices.Delete(pending, (i-1)/2, (i-1)/2+1)
			continue
		}
		if zkconn.Transient(opErr) {
			c.reclaim(owner, taker, pending, fl)
		}
		return nil, opErr
	}
	// The items, read together (in one request where the server allows).
	paths := make([]string, len(pending))
	for k, n := range pending {
		paths[k] = c.q.entries + "/" + n
	}
	reads, err := c.q.conn.GetMany(ctx, paths)
	data := make([][]byte, len(pending))
	errs := make([]error, len(pending))
	for k := range pending {
		if err != nil {
			errs[k] = err
		} else {
			data[k], errs[k] = reads[k].Data, reads[k].Err
		}
	}
	var firstErr error
	for k, n := range pending {
		if errs[k] != nil {
			// Only a lock-ignoring delete removes a held entry; either way
			// give the taken node back (see tryTake).
			c.giveBack(ctx, &Item{Name: n, owner: owner, takerID: taker, q: c.q})
			if !errors.Is(errs[k], zk.ErrNoNode) && firstErr == nil {
				firstErr = errs[k]
			}
			continue
		}
		p, _, _ := ParseEntry(n)
		it := &Item{Name: n, Data: data[k], Priority: p, owner: owner, takerID: taker, q: c.q}
		got[n] = it
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, firstErr
	}
	return items, nil
}

// End says what a part of a batch (ApplyMany) does with its entry.
type End int

const (
	// Keep writes under the hold and keeps it (as Write).
	Keep End = iota
	// Consume removes the entry and ends the hold (as Consume).
	Consume
	// Release gives the entry back to the queue (as Release).
	Release
)

// Part is one held entry's share of a batch: what becomes of its entry,
// and the caller's operations that go with it.
type Part struct {
	Item *Item
	End  End
	Ops  []interface{}
}

// PartError says which part of a batch made it fail; nothing of the batch
// was written.
type PartError struct {
	// Index is the part's position in the batch.
	Index int
	// Err is the failure, as seen from the batch.
	Err error
}

func (e *PartError) Error() string {
	return fmt.Sprintf("queue: part %d of the batch: %v", e.Index, e.Err)
}

// Unwrap returns the part's failure.
func (e *PartError) Unwrap() error { return e.Err }

// ApplyMany applies the parts, each under its hold, in one multi with the
// consumer's fence: all or none. A part's operations are checked, as in
// Write, Consume and Release, with its taken node. It returns nil when
// everything was written, ErrLockLost when this consumer's session ended
// (nothing was written, and none of the parts' entries of that session is
// held any more), a *PartError when one part failed (nothing was
// written: apply the parts alone to learn each one's outcome), or a
// connection error (unknown outcome). The caller keeps the batch within
// ZooKeeper's request limit.
func (c *Consumer) ApplyMany(ctx context.Context, parts []Part) error {
	if len(parts) == 0 {
		return nil
	}
	var ops []interface{}
	var owners []string
	for i, p := range parts {
		if !c.holding(p.Item) {
			return &PartError{Index: i, Err: fmt.Errorf("%w: entry %s is not held by this consumer (already consumed or released)", ErrLockLost, p.Item.Name)}
		}
		if !slices.Contains(owners, p.Item.owner) {
			// Items of an earlier session each carry its fence.
			owners = append(owners, p.Item.owner)
			ops = append(ops, p.Item.fenceOp())
		}
	}
	for i, p := range parts {
		if err := c.settle(ctx, p.Item); err != nil {
			return &PartError{Index: i, Err: err}
		}
	}
	fences := len(ops)
	starts := make([]int, len(parts))
	for i, p := range parts {
		starts[i] = len(ops)
		taken := c.q.taken + "/" + p.Item.Name
		switch p.End {
		case Keep:
			ops = append(ops, &zk.CheckVersionRequest{Path: taken, Version: -1})
		case Consume:
			ops = append(ops, &zk.DeleteRequest{Path: taken, Version: -1}, &zk.DeleteRequest{Path: c.q.entries + "/" + p.Item.Name, Version: -1})
		case Release:
			ops = append(ops, &zk.DeleteRequest{Path: taken, Version: -1})
		default:
			return &PartError{Index: i, Err: fmt.Errorf("%w: unknown end %d", ErrInvalid, p.End)}
		}
		ops = append(ops, p.Ops...)
	}
	res, fl, err := c.q.multi(ctx, ops)
	if err == nil {
		released := false
		for _, p := range parts {
			if p.End != Keep {
				c.forget(p.Item)
				released = released || p.End == Release
			}
		}
		if released {
			c.markDirty()
		}
		return nil
	}
	failed := zkconn.FailedOp(ops, res, err)
	if failed == nil {
		if zkconn.Transient(err) {
			for _, p := range parts {
				if p.End != Keep {
					p.Item.unsure.Store(fl)
				}
			}
		}
		return fmt.Errorf("queue: a batch of %d entries: %w", len(parts), err)
	}
	if failed.Index < fences {
		lost := owners[failed.Index]
		c.dropOwner(lost)
		for _, p := range parts {
			if p.Item.owner == lost {
				c.forget(p.Item)
			}
		}
		return fmt.Errorf("%w: this consumer's session ended, the entries may be taken elsewhere", ErrLockLost)
	}
	k := len(starts) - 1
	for k > 0 && starts[k] > failed.Index {
		k--
	}
	return &PartError{Index: k, Err: failed.Shift(starts[k])}
}

// reclaim gives back, in the background, the taken nodes a take whose
// outcome is unknown (a timeout, a broken connection) may have created:
// the session may well survive, and then nobody could ever take those
// entries. A taken node is given back only if it holds this take's taker
// id and belongs to the current session; it goes with the session
// otherwise.
//
// It looks once the take's call has finished (fl): a read sent earlier
// could overtake it. Until it has looked, the entries are not taken again
// by this consumer: a taken node made by a later take of this consumer
// would carry the same taker id and session, and be given back under the
// worker holding it.
func (c *Consumer) reclaim(owner string, taker []byte, names []string, fl *inFlight) {
	names = slices.Clone(names)
	c.mu.Lock()
	for _, n := range names {
		c.reclaiming[n] = true
	}
	c.mu.Unlock()
	done := func(n string) {
		c.mu.Lock()
		delete(c.reclaiming, n)
		c.dirty = true // listed again: the entry may be free now
		c.mu.Unlock()
		c.poke()
	}
	go func() {
		defer func() {
			for _, n := range names {
				done(n)
			}
		}()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		// A read sent before the take has finished could overtake it,
		// find no taken node, and leave the one it then makes behind.
		select {
		case <-fl.finished:
		case <-ctx.Done():
			return
		}
		for _, n := range names {
			delay := 100 * time.Millisecond
			for ctx.Err() == nil {
				var data []byte
				var st *zk.Stat
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				err := zkconn.Do(rctx, func() error {
					var err error
					data, st, err = c.q.conn.Get(c.q.taken + "/" + n)
					return err
				})
				rcancel()
				if errors.Is(err, zk.ErrNoNode) {
					break
				}
				if err == nil {
					if string(data) == string(taker) && st.EphemeralOwner == c.q.conn.SessionID() {
						c.giveBack(ctx, &Item{Name: n, owner: owner, takerID: taker, q: c.q})
					}
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(backoff.Jitter(delay)):
				}
				delay = min(2*delay, 2*time.Second)
			}
			done(n)
		}
	}()
}
