// Package election elects one leader among the instances of a distributor,
// with the node layout of kazoo's Election (its Lock recipe), so Python
// kazoo contenders and this package's contenders can share an election.
//
// Each contender creates an ephemeral sequential node
// <root>/election/<name>/<uuid-hex>__lock__NNNNNNNNNN holding its identifier;
// the lowest sequence leads and every other contender watches only the node
// just ahead of its own, so a departure wakes one contender, not all.
//
// Leadership is held as a lease. ZooKeeper expires a session no sooner than
// one session timeout after it last heard from the client, and only then can
// another contender win. A leader therefore trusts its leadership only for
// (session timeout − margin) after the send time of the last round trip that
// found its node still first, re-confirms it well before that, and cancels
// the leader context when the lease runs out, when the session expires or is
// replaced, or when its node goes. The lease is measured from the last
// confirmed contact rather than from the Disconnected event because the
// client notices a silent server only after its read timeout (two thirds of
// the session timeout), far too late to start counting then.
package election

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/jobengine/jobengine/internal/backoff"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of this package.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("election: bad configuration")
	// ErrNoLeader is returned by Leader when nobody contends.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader is the cause of a cancelled leader context when
	// leadership was lost or given up, and is returned by Term.Check.
	ErrNotLeader = errors.New("election: not the leader")
)

// Election is one contender's view of an election. It is cheap; build one
// per Run, or with any identifier to list contenders.
type Election struct {
	conn       *zkconn.Conn
	name       string
	identifier string
	dir        string
	log        *zap.Logger
	timeout    time.Duration
	margin     time.Duration
	err        error
}

// Option changes an Election's defaults.
type Option func(*Election)

// WithSessionTimeout tells the election the session timeout of conn. It must
// not be longer than the timeout the server granted (the timeout asked for
// in zkconn.Config, unless the server's maxSessionTimeout, 20 ticks by
// default, is lower): the leader lease is derived from it. The default is
// zkconn.DefaultSessionTimeout.
func WithSessionTimeout(d time.Duration) Option {
	return func(e *Election) {
		if d > 0 {
			e.timeout = d
		}
	}
}

// WithMargin sets how long before the earliest server-side expiry of its
// session a leader gives up leadership when ZooKeeper stops confirming it.
// It must be less than the session timeout; the default is a third of it.
func WithMargin(d time.Duration) Option {
	return func(e *Election) { e.margin = d }
}

// namePattern keeps election names to one plain path element.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// New returns the election called name (a distributor's name) under conn's
// root, for a contender identified by identifier (stored in its node; shown
// by Contenders and by kazoo's contenders()). A bad name is reported by
// Run, Contenders and Leader.
func New(conn *zkconn.Conn, name, identifier string, log *zap.Logger, opts ...Option) *Election {
	if log == nil {
		log = zap.NewNop()
	}
	e := &Election{
		conn:       conn,
		name:       name,
		identifier: identifier,
		timeout:    zkconn.DefaultSessionTimeout,
	}
	// A connection that can tell its granted session timeout wins over the
	// default.
	if st, ok := any(conn).(interface{ SessionTimeout() time.Duration }); ok && st.SessionTimeout() > 0 {
		e.timeout = st.SessionTimeout()
	}
	for _, o := range opts {
		o(e)
	}
	if e.margin <= 0 || e.margin >= e.timeout {
		e.margin = e.timeout / 3
	}
	if !namePattern.MatchString(name) || name == "." || name == ".." {
		e.err = fmt.Errorf("%w: election name %q: use one word of letters, digits, '.', '_' or '-'", ErrConfig, name)
	} else {
		e.dir = conn.Path("election", name)
	}
	e.log = log.Named("election").With(zap.String("election", name), zap.String("identifier", identifier))
	return e
}

// Path returns the election's node, <root>/election/<name>.
func (e *Election) Path() string { return e.dir }

func (e *Election) valid() error { return e.err }

// leaseLen is how long one confirmation of leadership lasts.
func (e *Election) leaseLen() time.Duration { return e.timeout - e.margin }

// renewEvery is the confirmation period: four confirmations per lease, so a
// single slow or lost round trip never ends a healthy term.
func (e *Election) renewEvery() time.Duration { return e.leaseLen() / 4 }

// Run contends until ctx ends. Each time this contender wins, Run calls lead
// with a leader context that is cancelled (cause wrapping ErrNotLeader) the
// moment leadership is in doubt, waits for lead to return, and contends
// again. lead must return promptly once its context is done; the term
// (TermOf) offers Check and Fence to guard side effects.
//
// Run returns nil once ctx ends, after giving up its node. When lead returns
// on its own while still leader, Run gives up leadership and returns lead's
// error (nil included), like kazoo's Election.run. It returns an error
// wrapping ErrConfig for a bad name.
func (e *Election) Run(ctx context.Context, lead func(leaderCtx context.Context) error) error {
	if err := e.valid(); err != nil {
		return err
	}
	if lead == nil {
		return fmt.Errorf("%w: no leader function", ErrConfig)
	}
	events, unsubscribe := e.conn.Subscribe()
	defer unsubscribe()
	c := &contender{e: e, events: events, prefix: newPrefix()}
	defer c.withdraw()
	e.log.Info("contending", zap.String("path", e.dir),
		zap.Duration("session-timeout", e.timeout), zap.Duration("lease", e.leaseLen()))
	bo := backoff.New(100*time.Millisecond, min(5*time.Second, e.timeout/2))
	for {
		if ctx.Err() != nil {
			return nil
		}
		confirmed, err := c.await(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("cannot contend; retrying", zap.Error(err))
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		out, err := c.lead(ctx, lead, confirmed)
		switch out {
		case termLost:
			continue
		case termStopped:
			return nil
		default:
			return err
		}
	}
}

// contender is the state of one Run.
type contender struct {
	e      *Election
	events <-chan zk.Event
	prefix string // this Run's node name before the sequence number

	dirReady bool   // the election path is known to exist
	tried    bool   // a create was sent: a node with prefix may exist
	node     string // our node's name, "" when we have none
	session  int64  // the session that owns node
}

// call runs fn, a blocking ZooKeeper call, under zkconn.Do and returns its
// result; the result of a call that outlives ctx is dropped, never raced on.
func call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	ch := make(chan T, 1)
	err := zkconn.Do(ctx, func() error {
		v, err := fn()
		ch <- v
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return <-ch, nil
}

// ensureNode makes sure this contender has a node in the current session.
func (c *contender) ensureNode(ctx context.Context) error {
	if c.node != "" {
		return nil
	}
	e := c.e
	if !c.dirReady {
		if err := e.conn.EnsurePath(ctx, e.dir); err != nil {
			return fmt.Errorf("election: creating %s: %w", e.dir, err)
		}
		c.dirReady = true
	}
	if c.tried {
		// A create whose reply was lost may have made a node: adopt it if our
		// session owns it, else remove it (kazoo's _find_node, plus the
		// owner check).
		children, err := call(ctx, func() ([]string, error) {
			ch, _, err := e.conn.Children(e.dir)
			return ch, err
		})
		if err != nil {
			return fmt.Errorf("election: listing %s: %w", e.dir, err)
		}
		for _, name := range children {
			if !strings.HasPrefix(name, c.prefix) {
				continue
			}
			st, err := call(ctx, func() (*zk.Stat, error) {
				_, st, err := e.conn.Exists(path.Join(e.dir, name))
				return st, err
			})
			if err != nil {
				return fmt.Errorf("election: reading %s: %w", name, err)
			}
			if st == nil || st.EphemeralOwner == 0 {
				continue
			}
			if st.EphemeralOwner == e.conn.SessionID() {
				c.node, c.session = name, st.EphemeralOwner
				return nil
			}
			if err := c.remove(ctx, name); err != nil {
				return err
			}
		}
	}
	c.tried = true
	created, err := call(ctx, func() (string, error) {
		return e.conn.Create(path.Join(e.dir, c.prefix), []byte(e.identifier), zk.FlagEphemeral|zk.FlagSequence, zkconn.ACL)
	})
	if errors.Is(err, zk.ErrNoNode) {
		c.dirReady = false
	}
	if err != nil {
		return fmt.Errorf("election: joining %s: %w", e.dir, err)
	}
	name := path.Base(created)
	st, err := call(ctx, func() (*zk.Stat, error) {
		_, st, err := e.conn.Exists(created)
		return st, err
	})
	if err != nil {
		return fmt.Errorf("election: reading %s: %w", created, err)
	}
	if st == nil {
		return fmt.Errorf("election: node %s vanished right after it was created", created)
	}
	c.node, c.session = name, st.EphemeralOwner
	e.log.Debug("joined", zap.String("node", name), zap.String("session", sessionHex(c.session)))
	return nil
}

// remove deletes one of our nodes; a node already gone is fine.
func (c *contender) remove(ctx context.Context, name string) error {
	_, err := call(ctx, func() (struct{}, error) {
		return struct{}{}, c.e.conn.Delete(path.Join(c.e.dir, name), -1)
	})
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("election: removing %s: %w", name, err)
	}
	return nil
}

// order returns the contenders in leadership order as seen after a sync, and
// when the sync was sent. The sync makes the server we talk to catch up with
// the leader of the ensemble first, so a lagging follower cannot show us a
// world in which our session is still alive when it is not.
func (c *contender) order(ctx context.Context) (time.Time, []string, error) {
	e := c.e
	sent := time.Now()
	children, err := call(ctx, func() ([]string, error) {
		if _, err := e.conn.Sync(e.dir); err != nil {
			return nil, err
		}
		ch, _, err := e.conn.Children(e.dir)
		return ch, err
	})
	if err != nil {
		return sent, nil, err
	}
	return sent, sortContenders(children), nil
}

// await returns once this contender's node is the first, with the send time
// of the round trip that showed it.
func (c *contender) await(ctx context.Context) (time.Time, error) {
	e := c.e
	for {
		if err := c.ensureNode(ctx); err != nil {
			return time.Time{}, err
		}
		sent, order, err := c.order(ctx)
		if errors.Is(err, zk.ErrNoNode) { // the election path itself was removed
			c.dirReady, c.node = false, ""
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("election: listing %s: %w", e.dir, err)
		}
		i := indexOf(order, c.node)
		switch {
		case i < 0:
			e.log.Info("contender node gone; joining again", zap.String("node", c.node))
			c.node = ""
			continue
		case i == 0:
			return sent, nil
		}
		pred := path.Join(e.dir, order[i-1])
		watch, err := call(ctx, func() (<-chan zk.Event, error) {
			_, _, ch, err := e.conn.GetW(pred)
			return ch, err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("election: watching %s: %w", pred, err)
		}
		e.log.Debug("waiting", zap.String("node", c.node), zap.String("predecessor", order[i-1]), zap.Int("place", i))
		if err := c.wait(ctx, watch); err != nil {
			return time.Time{}, err
		}
	}
}

// wait blocks until the watch fires, the session is lost or ctx ends.
func (c *contender) wait(ctx context.Context, watch <-chan zk.Event) error {
	for {
		select {
		case <-watch:
			return nil
		case ev := <-c.events:
			if c.sessionLost(ev) {
				c.node = ""
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sessionLost reports whether ev means our node's session is gone.
func (c *contender) sessionLost(ev zk.Event) bool {
	if ev.Type != zk.EventSession {
		return false
	}
	switch ev.State {
	case zk.StateExpired:
		return true
	case zk.StateHasSession:
		return c.session != 0 && c.e.conn.SessionID() != c.session
	}
	return false
}

type outcome int

const (
	termLost     outcome = iota // leadership was lost: contend again
	termStopped                 // ctx ended
	termReturned                // lead returned on its own
)

// confirmation is the result of one lease renewal.
type confirmation struct {
	sent           time.Time
	present, first bool
	err            error
}

// lead runs one term: calls lead and holds the lease until lead returns.
func (c *contender) lead(ctx context.Context, lead func(context.Context) error, confirmed time.Time) (outcome, error) {
	e := c.e
	node, session := c.node, c.session
	log := e.log.With(zap.String("node", node), zap.String("session", sessionHex(session)))
	// Events queued while we were waiting say nothing about this term; what
	// matters is whether the session is still the node's.
	for drained := false; !drained; {
		select {
		case <-c.events:
		default:
			drained = true
		}
	}
	if e.conn.SessionID() != session {
		c.node = ""
		return termLost, nil
	}
	t := &Term{node: path.Join(e.dir, node), session: session, started: time.Now(), leaseLen: e.leaseLen(), confirmed: confirmed}
	if t.Check() != nil {
		return termLost, nil // the confirmation itself took longer than a lease
	}
	own, err := call(ctx, func() (<-chan zk.Event, error) {
		_, _, ch, err := e.conn.GetW(t.node)
		return ch, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		c.node = ""
		return termLost, nil
	}
	if err != nil {
		own = nil // renewals still notice a lost node
	}

	base, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	leaderCtx := context.WithValue(base, termKey{}, t)
	log.Info("leading")
	done := make(chan error, 1)
	go func() { done <- lead(leaderCtx) }()

	lease := time.NewTimer(time.Until(t.expiry()))
	defer lease.Stop()
	tick := time.NewTicker(e.renewEvery())
	defer tick.Stop()
	confirmations := make(chan confirmation, 1)
	confirming := false
	stop := ctx.Done()
	var (
		lost error
		slow <-chan time.Time // warns about a leader function that ignores cancellation
	)
	lose := func(reason string) {
		if lost != nil {
			return
		}
		lost = fmt.Errorf("%w: %s", ErrNotLeader, reason)
		t.end(lost)
		cancel(lost)
		log.Warn("leadership lost", zap.String("reason", reason))
		slow = time.After(e.timeout)
	}
	confirm := func() {
		if confirming || lost != nil || stop == nil {
			return
		}
		confirming = true
		go func() { confirmations <- c.confirm(leaderCtx, node, session) }()
	}
	for {
		select {
		case err := <-done:
			switch {
			case lost != nil:
				return termLost, nil
			case ctx.Err() != nil:
				log.Info("stepped down: stopping")
				return termStopped, nil
			}
			t.end(fmt.Errorf("%w: the leader function returned", ErrNotLeader))
			log.Info("leader function returned; giving up leadership", zap.Error(err))
			return termReturned, err
		case <-stop:
			stop = nil
			t.end(fmt.Errorf("%w: stopping", ErrNotLeader))
			cancel(context.Cause(ctx))
			slow = time.After(e.timeout)
		case <-lease.C:
			if lost == nil && stop != nil {
				if t.Check() != nil {
					lose(fmt.Sprintf("leadership not confirmed by ZooKeeper within the %s lease", e.leaseLen()))
				} else {
					lease.Reset(time.Until(t.expiry()))
				}
			}
		case ev := <-c.events:
			if ev.Type != zk.EventSession || lost != nil || stop == nil {
				continue
			}
			switch ev.State {
			case zk.StateExpired:
				lose("session expired")
			case zk.StateDisconnected:
				log.Warn("disconnected from ZooKeeper while leading; leadership ends with the lease unless confirmed again",
					zap.Time("lease-end", t.expiry()))
			case zk.StateHasSession:
				if e.conn.SessionID() != session {
					lose("session replaced")
				} else {
					confirm()
				}
			}
		case <-tick.C:
			confirm()
		case r := <-confirmations:
			confirming = false
			if lost != nil || stop == nil {
				continue
			}
			switch {
			case r.err == nil && r.first:
				t.confirm(r.sent)
				lease.Reset(time.Until(t.expiry()))
			case r.err == nil && !r.present:
				lose("contender node is gone")
				c.node = ""
			case r.err == nil:
				lose("another contender is ahead")
			case errors.Is(r.err, zk.ErrSessionExpired):
				lose("session expired")
			default:
				log.Debug("leadership not confirmed this time", zap.Error(r.err))
			}
		case ev := <-own:
			own = nil
			switch ev.Type {
			case zk.EventNodeDeleted:
				lose("contender node deleted")
			case zk.EventNotWatching:
				lose(fmt.Sprintf("watch on the contender node ended: %v", ev.Err))
			default:
				confirm()
			}
		case <-slow:
			slow = nil
			log.Warn("leader function has not returned since its context was cancelled", zap.Duration("waited", e.timeout))
		}
	}
}

// confirm checks that node, owned by session, still leads.
func (c *contender) confirm(ctx context.Context, node string, session int64) confirmation {
	ctx, cancel := context.WithTimeout(ctx, c.e.leaseLen())
	defer cancel()
	sent, order, err := c.order(ctx)
	if err != nil {
		return confirmation{err: err}
	}
	if c.e.conn.SessionID() != session {
		return confirmation{err: zk.ErrSessionExpired}
	}
	i := indexOf(order, node)
	return confirmation{sent: sent, present: i >= 0, first: i == 0}
}

// withdraw removes this contender's node when Run ends. It keeps trying for
// a session timeout: by then either the node is deleted or the server has
// expired the session, which deletes it too.
func (c *contender) withdraw() {
	if c.node == "" && !c.tried {
		return
	}
	e := c.e
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout+time.Second)
	defer cancel()
	bo := backoff.New(50*time.Millisecond, time.Second)
	for {
		err := c.removeOwn(ctx)
		if err == nil {
			e.log.Info("withdrew")
			return
		}
		if ctx.Err() != nil {
			e.log.Warn("could not remove the contender node; it goes when the session ends", zap.Error(err))
			return
		}
		bo.Wait(ctx)
	}
}

// removeOwn deletes our node, or any node with our prefix when a create may
// have succeeded unseen.
func (c *contender) removeOwn(ctx context.Context) error {
	if c.node != "" {
		if err := c.remove(ctx, c.node); err != nil {
			return err
		}
		c.node = ""
		return nil
	}
	children, err := call(ctx, func() ([]string, error) {
		ch, _, err := c.e.conn.Children(c.e.dir)
		return ch, err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, name := range children {
		if strings.HasPrefix(name, c.prefix) {
			if err := c.remove(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func sessionHex(id int64) string { return fmt.Sprintf("0x%x", id) }
