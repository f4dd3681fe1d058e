package election

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Term is one continuous period of leadership: from winning until the leader
// context is cancelled. The leader function finds it with TermOf.
type Term struct {
	node     string
	session  int64
	started  time.Time
	leaseLen time.Duration

	mu        sync.Mutex
	confirmed time.Time // send time of the last round trip that confirmed leadership (monotonic)
	ended     error
}

type termKey struct{}

// TermOf returns the term of a leader context (or of a context derived from
// one), or nil when ctx is not a leader context.
func TermOf(ctx context.Context) *Term {
	t, _ := ctx.Value(termKey{}).(*Term)
	return t
}

// Node returns the full path of the contender node that holds leadership.
func (t *Term) Node() string { return t.node }

// Session returns the id of the ZooKeeper session that owns the node.
func (t *Term) Session() int64 { return t.session }

// Started returns when the term began.
func (t *Term) Started() time.Time { return t.started }

// Check returns nil while leadership is certainly held, and an error
// wrapping ErrNotLeader once the term has ended or its lease has run out.
// It reads the clock itself, so a process that was frozen (SIGSTOP, a long
// GC pause, a suspended VM) gets the right answer before the timer that
// cancels the leader context has had a chance to run: call it right before
// each side effect. A pause between Check and the side effect is still
// possible; where the side effect is a ZooKeeper write, put Fence into the
// same multi instead.
func (t *Term) Check() error {
	if t == nil {
		return fmt.Errorf("%w: not a leader context", ErrNotLeader)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended != nil {
		return t.ended
	}
	if !time.Now().Before(t.confirmed.Add(t.leaseLen)) {
		return fmt.Errorf("%w: leadership not confirmed by ZooKeeper since %s (lease %s)", ErrNotLeader,
			t.confirmed.Format(time.RFC3339Nano), t.leaseLen)
	}
	return nil
}

// Fence returns an operation to add to a ZooKeeper multi so that the multi
// commits only while this term's node exists, that is while no other
// contender can lead. It is the one guard that survives any pause of the
// process.
func (t *Term) Fence() *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: t.node, Version: -1}
}

// expiry returns the lease end.
func (t *Term) expiry() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.confirmed.Add(t.leaseLen)
}

// confirm records a round trip, sent at sent, that found this term's node
// still leading; the lease then runs until sent + leaseLen.
func (t *Term) confirm(sent time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended == nil && sent.After(t.confirmed) {
		t.confirmed = sent
	}
}

// end records why the term ended; the first reason wins.
func (t *Term) end(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended == nil {
		t.ended = err
	}
}
