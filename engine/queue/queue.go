// Package queue is a ZooKeeper locking queue with the exact znode layout of
// kazoo's LockingQueue, so Python kazoo clients and this engine can share a
// queue:
//
//	<path>/entries/entry-PPP-NNNNNNNNNN  persistent sequential, data = the item (a job id)
//	<path>/taken/entry-PPP-NNNNNNNNNN    ephemeral, data = the taker's id
//
// PPP is the priority, 000–999, lower first; FIFO within a priority.
//
// It adds one node kazoo does not know and ignores: <path>/owners/<taker-id>,
// an ephemeral node per consumer session. Every take, consume, release and
// write of this package checks it in the same multi transaction, which
// fences a consumer whose session expired: its owner node vanished with the
// session, so it can no longer consume or release an entry that may already
// be taken elsewhere (the taken node's own version cannot serve as the
// fence, since every taker's node starts at version 0).
//
// A holder changes other nodes only through its hold: Consume and Release
// end the hold, Write keeps it, and each applies the caller's operations in
// the same multi as the fence. A failure of one of the caller's operations
// is a *zkconn.OpError indexed in the caller's list; a lost hold is
// ErrLockLost. Nothing else builds a fenced multi.
package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of this package.
var (
	// ErrInvalid is wrapped by errors about bad input; nothing was written.
	ErrInvalid = errors.New("queue: invalid input")
	// ErrLockLost means the entry is no longer held by this consumer (its
	// session expired, or the taken node was removed); it may already be
	// taken elsewhere. Nothing was changed.
	ErrLockLost = errors.New("queue: lock lost")
	// ErrClosed is returned by a closed consumer.
	ErrClosed = errors.New("queue: consumer closed")
	// ErrTooLarge is returned for a batch over ZooKeeper's request limit.
	ErrTooLarge = errors.New("queue: batch too large")
)

// Limits of the queue.
const (
	MinPriority = 0
	MaxPriority = 999
	// DefaultPriority is kazoo's default priority.
	DefaultPriority = 100
	// MaxItemBytes bounds one item (a job id, normally).
	MaxItemBytes = 4096
	// MaxBatchBytes bounds a PutMany request: the engine's budget of a
	// ZooKeeper request (zkconn.RequestBudget), below the server's limit.
	MaxBatchBytes = zkconn.RequestBudget
)

const entryPrefix = "entry-"

// Queue names a locking queue at a path (under the connection's root).
type Queue struct {
	conn    *zkconn.Conn
	path    string
	entries string
	taken   string
	owners  string
}

// New returns the queue at path, relative to the connection's root ("job"
// gives /job/entries and /job/taken under the root).
func New(conn *zkconn.Conn, path string) *Queue {
	p := conn.Path(path)
	return &Queue{
		conn:    conn,
		path:    p,
		entries: p + "/entries",
		taken:   p + "/taken",
		owners:  p + "/owners",
	}
}

// Path returns the queue's absolute path.
func (q *Queue) Path() string { return q.path }

// EntriesPath returns the absolute path of the entries directory.
func (q *Queue) EntriesPath() string { return q.entries }

// TakenPath returns the absolute path of the taken directory.
func (q *Queue) TakenPath() string { return q.taken }

// Conn returns the queue's connection.
func (q *Queue) Conn() *zkconn.Conn { return q.conn }

// Ensure creates the queue's directories when missing.
func (q *Queue) Ensure(ctx context.Context) error {
	for _, p := range []string{q.entries, q.taken, q.owners} {
		if err := q.conn.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("queue: creating %s: %w", p, err)
		}
	}
	return nil
}

// Validate checks an item and a priority.
func Validate(item []byte, priority int) error {
	if priority < MinPriority || priority > MaxPriority {
		return fmt.Errorf("%w: priority %d is outside %d–%d", ErrInvalid, priority, MinPriority, MaxPriority)
	}
	if len(item) == 0 {
		return fmt.Errorf("%w: empty item", ErrInvalid)
	}
	if len(item) > MaxItemBytes {
		return fmt.Errorf("%w: item of %d bytes is over the %d-byte limit", ErrInvalid, len(item), MaxItemBytes)
	}
	return nil
}

// PutOp returns the create operation that enqueues item, for callers that
// enqueue inside their own multi transaction (the job store creates the job
// document and its entry atomically). The queue's directories must exist.
func (q *Queue) PutOp(item []byte, priority int) (*zk.CreateRequest, error) {
	if err := Validate(item, priority); err != nil {
		return nil, err
	}
	return &zk.CreateRequest{
		Path:  fmt.Sprintf("%s/%s%03d-", q.entries, entryPrefix, priority),
		Data:  item,
		Flags: zk.FlagSequence,
		Acl:   zkconn.ACL,
	}, nil
}

// Put enqueues one item and returns its entry name.
func (q *Queue) Put(ctx context.Context, item []byte, priority int) (string, error) {
	names, err := q.PutMany(ctx, [][]byte{item}, priority)
	if err != nil {
		return "", err
	}
	return names[0], nil
}

// PutMany enqueues items in one multi transaction: all or none. The batch
// must fit ZooKeeper's request limit (MaxBatchBytes); split larger ones.
func (q *Queue) PutMany(ctx context.Context, items [][]byte, priority int) ([]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	ops := make([]interface{}, 0, len(items))
	for i, it := range items {
		op, err := q.PutOp(it, priority)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		ops = append(ops, op)
	}
	if size := zkconn.RequestSize(ops...); size > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d items take about %d bytes, over ZooKeeper's request limit of %d; put them in smaller batches", ErrTooLarge, len(items), size, MaxBatchBytes)
	}
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = q.conn.Multi(ops...)
		if errors.Is(zkconn.MultiErrorOnly(res, err), zk.ErrNoNode) {
			// First use of this queue: create its directories and retry once.
			if err := ensureDirs(q); err != nil {
				return err
			}
			res, err = q.conn.Multi(ops...)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("queue: put: %w", zkconn.MultiErrorOnly(res, err))
	}
	names := make([]string, len(res))
	for i, r := range res {
		names[i] = r.String[strings.LastIndexByte(r.String, '/')+1:]
	}
	return names, nil
}

// EnsureSync creates the queue's directories without a context, for use
// inside a function already run by zkconn.Do.
func (q *Queue) EnsureSync() error { return ensureDirs(q) }

func ensureDirs(q *Queue) error {
	for _, p := range []string{q.entries, q.taken, q.owners} {
		if err := zkconn.EnsureSync(q.conn.Conn, p); err != nil {
			return err
		}
	}
	return nil
}

// ParseEntry splits an entry name into its priority and sequence number.
func ParseEntry(name string) (priority int, seq int64, ok bool) {
	rest, found := strings.CutPrefix(name, entryPrefix)
	if !found || len(rest) < 5 || rest[3] != '-' {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(rest[:3])
	s, err2 := strconv.ParseInt(rest[4:], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return p, s, true
}

// Stats counts a queue's entries.
type Stats struct {
	// Entries is the number of queued entries, taken or not.
	Entries int `json:"entries"`
	// Taken is the number of entries currently held by a consumer.
	Taken int `json:"taken"`
	// Available is the number of entries a consumer could take now.
	Available int `json:"available"`
	// Orphans counts taken nodes whose entry is gone (kazoo's recipe can
	// leave them; they vanish with their session).
	Orphans int `json:"orphans"`
	// ByPriority counts entries per priority.
	ByPriority map[int]int `json:"by-priority"`
}

// Len returns the number of entries (one cheap stat call).
func (q *Queue) Len(ctx context.Context) (int, error) {
	var n int
	err := zkconn.Do(ctx, func() error {
		ok, st, err := q.conn.Exists(q.entries)
		if err != nil || !ok {
			return err
		}
		n = int(st.NumChildren)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("queue: len: %w", err)
	}
	return n, nil
}

// Stats lists the queue and counts its entries.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	var entries, taken []string
	err := zkconn.Do(ctx, func() error {
		var err error
		if entries, err = children(q.conn, q.entries); err != nil {
			return err
		}
		taken, err = children(q.conn, q.taken)
		return err
	})
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	st := Stats{Entries: len(entries), ByPriority: map[int]int{}}
	isEntry := make(map[string]bool, len(entries))
	for _, e := range entries {
		isEntry[e] = true
		if p, _, ok := ParseEntry(e); ok {
			st.ByPriority[p]++
		}
	}
	for _, t := range taken {
		if isEntry[t] {
			st.Taken++
		} else {
			st.Orphans++
		}
	}
	st.Available = st.Entries - st.Taken
	return st, nil
}

// Entry is one queued entry as listed by Entries.
type Entry struct {
	Name     string `json:"name"`
	Item     string `json:"item"`
	Priority int    `json:"priority"`
	Taken    bool   `json:"taken"`
	// Taker is the data of the taken node (the taker's id), if taken.
	Taker string `json:"taker,omitempty"`
}

// Entries reads every entry with its item, in queue order (for inspection
// and repair tools, not for the hot path).
func (q *Queue) Entries(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := zkconn.Do(ctx, func() error {
		names, err := children(q.conn, q.entries)
		if err != nil {
			return err
		}
		taken, err := children(q.conn, q.taken)
		if err != nil {
			return err
		}
		isTaken := make(map[string]bool, len(taken))
		for _, t := range taken {
			isTaken[t] = true
		}
		sortEntries(names)
		out = make([]Entry, 0, len(names))
		for _, n := range names {
			data, _, err := q.conn.Get(q.entries + "/" + n)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			e := Entry{Name: n, Item: string(data), Taken: isTaken[n]}
			e.Priority, _, _ = ParseEntry(n)
			if e.Taken {
				if t, _, err := q.conn.Get(q.taken + "/" + n); err == nil {
					e.Taker = string(t)
				}
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: listing entries: %w", err)
	}
	return out, nil
}

// Remove deletes an entry that nobody holds. It fails with ErrLockLost when
// the entry is taken (its holder will consume or release it), and succeeds
// when the entry is already gone. It briefly creates the taken node itself,
// in the same multi, so it can never delete an entry another consumer holds.
func (q *Queue) Remove(ctx context.Context, name string, extra ...interface{}) error {
	ops := append([]interface{}{
		&zk.CreateRequest{Path: q.taken + "/" + name, Data: []byte("remove"), Flags: zk.FlagEphemeral, Acl: zkconn.ACL},
		&zk.DeleteRequest{Path: q.taken + "/" + name, Version: -1},
		&zk.DeleteRequest{Path: q.entries + "/" + name, Version: -1},
	}, extra...)
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = q.conn.Multi(ops...)
		return err
	})
	if err == nil {
		return nil
	}
	i, opErr := zkconn.MultiError(res, err)
	switch {
	case i == 0 && errors.Is(opErr, zk.ErrNodeExists):
		return fmt.Errorf("%w: entry %s is taken by a consumer", ErrLockLost, name)
	case i == 2 && errors.Is(opErr, zk.ErrNoNode) && len(extra) == 0:
		return nil
	case i == 2 && errors.Is(opErr, zk.ErrNoNode):
		// The entry is gone already; still apply the caller's operations.
		_, err = q.conn.Multi(extra...)
		if err != nil {
			return fmt.Errorf("queue: remove %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("queue: remove %s: %w", name, opErr)
}

// Item is an entry held by a consumer.
type Item struct {
	// Name is the entry's name, "entry-PPP-NNNNNNNNNN".
	Name string
	// Data is the item (a job id).
	Data []byte
	// Priority is the entry's priority.
	Priority int

	owner   string // the owner node that fences this hold
	takerID []byte
	q       *Queue
	// unsure is set when a multi that deletes the taken node (a release,
	// a consume) failed with an unknown outcome: it may have gone through,
	// and another consumer may have taken the entry since. The fence (the
	// owner node) still passes then, and a taken node is deleted whoever
	// made it, so the next multi of this hold first checks, once that
	// multi has finished, that the taken node is still this one's.
	unsure atomic.Pointer[inFlight]
}

// inFlight is a multi whose caller stopped waiting for it.
type inFlight struct {
	// finished closes when the call has returned: answered, or failed
	// with its connection. ZooKeeper has applied it or never will by then.
	finished <-chan struct{}
}

// multi runs ops as one multi, returning when ctx ends if that comes
// first. The returned inFlight says when the call has finished even then:
// a read sent before that could overtake it and miss what it writes.
func (q *Queue) multi(ctx context.Context, ops []interface{}) ([]zk.MultiResponse, *inFlight, error) {
	finished := make(chan struct{})
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		defer close(finished)
		r, err := q.conn.Multi(ops...)
		res = r
		return err
	})
	fl := &inFlight{finished: finished}
	select {
	case <-finished:
		return res, fl, err
	default:
		// Do returned early: res belongs to the call still running.
		return nil, fl, err
	}
}

// fenceOp returns the check that fails unless this hold is still valid:
// the owner node of the session that took the entry. Every multi of a
// holder starts with it (Consume, Release, Write).
func (it *Item) fenceOp() *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: it.owner, Version: 0}
}

func children(c *zkconn.Conn, p string) ([]string, error) {
	ch, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return ch, err
}

// sortEntries sorts entry names in queue order: by priority, then sequence.
// Their fixed-width format makes this the lexicographic order, as in kazoo.
func sortEntries(names []string) { slices.Sort(names) }

// TakerID returns the data a taken node of this item holds.
func (it *Item) TakerID() []byte { return it.takerID }
