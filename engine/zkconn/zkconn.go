// Package zkconn dials ZooKeeper for the engine: one session per Conn, a root
// prefix (chroot) applied to every path, session events fanned out to any
// number of subscribers, and context-aware wrappers around go-zookeeper's
// blocking calls so that no caller hangs while ZooKeeper is unreachable.
package zkconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// Errors of this package.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("zkconn: bad configuration")
	// ErrUnavailable is returned when a call could not reach ZooKeeper before
	// its context ended.
	ErrUnavailable = errors.New("zookeeper unavailable")
)

// Defaults.
const (
	DefaultSessionTimeout = 10 * time.Second
	DefaultHosts          = "127.0.0.1:2181"
	// MaxResponseBytes bounds a single response the client accepts. Listing
	// a queue of 100,000 entries takes about 2.5 MB, over the 1 MB default
	// of other clients, so the engine allows far more.
	MaxResponseBytes = 64 << 20
)

// Config says how to reach ZooKeeper.
type Config struct {
	// Hosts are "host:port" addresses of the ensemble.
	Hosts []string
	// Root is the prefix of every path the engine uses ("/" by default).
	Root string
	// SessionTimeout is the requested session timeout; the server bounds it
	// to 2–20 ticks.
	SessionTimeout time.Duration
	// Logger receives connection events; zap.NewNop() when nil.
	Logger *zap.Logger
	// Auth, when set, authenticates every session (again after each
	// reconnect) and gives the nodes the engine creates its ACL; nil means
	// no authentication and nodes open to anyone (OpenACL).
	Auth *Auth
	// TLS, when set, makes every connection TLS (ZooKeeper's
	// secureClientPort); nil means plain TCP.
	TLS *tls.Config
	// OnDial, when set, is told of every attempt to open a TCP connection
	// to a server, so a caller can tell "nothing listens" from "no answer
	// yet". It is called from the connection's goroutine and must not
	// block.
	OnDial func(DialAttempt)
}

// DialAttempt is one attempt to open a TCP connection to a server.
type DialAttempt struct {
	// Server is the "host:port" tried.
	Server string
	// Err is why the connection could not be opened; nil when it was.
	Err error
}

// Refused reports whether the server refused the connection: nothing
// listens at its address.
func (a DialAttempt) Refused() bool { return errors.Is(a.Err, syscall.ECONNREFUSED) }

// Log messages of the connection's state, for checkers that look for them.
const (
	// LogConnectionLost (WARN) is logged once when a connection that had a
	// session goes down.
	LogConnectionLost = "zookeeper connection lost"
	// LogConnectionBack (INFO) is logged when a session is held again.
	LogConnectionBack = "zookeeper connection restored"
	// LogSessionExpired (WARN) is logged when the server expired the
	// session: ephemeral nodes and watches of the old session are gone.
	LogSessionExpired = "zookeeper session expired"
)

// ParseHosts splits a comma-separated host list, trimming blanks, and adds
// port 2181 where none is given.
func ParseHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.Contains(h, "/") {
			return nil, fmt.Errorf("%w: host %q: use --zk-root for a path prefix, not a chroot suffix", ErrConfig, h)
		}
		if !strings.Contains(h, ":") {
			h += ":2181"
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no ZooKeeper hosts given (set --zk-hosts or JOBENGINE_ZK_HOSTS, e.g. 127.0.0.1:2181)", ErrConfig)
	}
	return out, nil
}

// CleanRoot normalises a root prefix: absolute, no trailing slash ("/" stays).
func CleanRoot(root string) (string, error) {
	if root == "" {
		return "/", nil
	}
	if !strings.HasPrefix(root, "/") {
		return "", fmt.Errorf("%w: root %q must start with /", ErrConfig, root)
	}
	return path.Clean(root), nil
}

// Conn is one ZooKeeper session (go-zookeeper reconnects and, after an
// expiry, opens a new session on the same Conn: watch SessionID or subscribe
// to events to notice).
type Conn struct {
	*zk.Conn
	root   string
	logger *zap.Logger
	acl    []zk.ACL

	mu   sync.Mutex
	subs map[int]chan zk.Event
	next int
	// down is when a connection with a session was lost (zero while
	// connected, and before the first session); guarded by mu.
	down        time.Time
	hadSession  bool // guarded by mu
	closing     bool // Close was called; guarded by mu
	expirations atomic.Int64
	// wire is the connection go-zookeeper uses now (GetMany writes on it);
	// noMultiRead is set once the server refused a multiRead.
	wire        atomic.Pointer[wireConn]
	noMultiRead atomic.Bool
	multiReads  atomic.Int64 // answered, for tests
}

// Dial connects and waits until a session is established or ctx ends.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	if len(cfg.Hosts) == 0 {
		return nil, fmt.Errorf("%w: no ZooKeeper hosts given", ErrConfig)
	}
	root, err := CleanRoot(cfg.Root)
	if err != nil {
		return nil, err
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	c := &Conn{root: root, logger: logger, subs: make(map[int]chan zk.Event), acl: OpenACL}
	if cfg.Auth != nil {
		c.acl = cfg.Auth.ACL()
	}
	established := make(chan struct{})
	var once sync.Once
	dialer := zk.Dialer(net.DialTimeout) // go-zookeeper's own default
	if cfg.TLS != nil {
		dialer = tlsDialer(cfg.TLS)
	}
	onDial := cfg.OnDial
	zc, events, err := zk.Connect(cfg.Hosts, cfg.SessionTimeout,
		zk.WithLogger(zkLogger{logger.Sugar()}),
		zk.WithLogInfo(false),
		zk.WithMaxBufferSize(MaxResponseBytes),
		zk.WithDialer(func(network, address string, timeout time.Duration) (net.Conn, error) {
			conn, err := dialer(network, address, timeout)
			if onDial != nil {
				onDial(DialAttempt{Server: address, Err: err})
			}
			if err != nil {
				return nil, err
			}
			w := newWireConn(conn)
			c.wire.Store(w)
			return w, nil
		}),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type == zk.EventSession && ev.State == zk.StateHasSession {
				once.Do(func() { close(established) })
			}
			c.publish(ev)
		}))
	if err != nil {
		return nil, fmt.Errorf("zkconn: connecting to %s: %w", strings.Join(cfg.Hosts, ","), err)
	}
	go func() { // drain: go-zookeeper drops events when this channel is full
		for range events {
		}
	}()
	c.Conn = zc
	select {
	case <-established:
	case <-ctx.Done():
		zc.Close()
		return nil, fmt.Errorf("%w: no session with %s: %v", ErrUnavailable, strings.Join(cfg.Hosts, ","), ctx.Err())
	}
	if err := c.authenticate(ctx, cfg.Auth); err != nil {
		zc.Close()
		return nil, err
	}
	acls.Store(zc, c.acl)
	identity := "none (nodes open to anyone)"
	if cfg.Auth != nil {
		identity = "digest:" + cfg.Auth.User
	}
	logger.Info("zookeeper session", zap.String("hosts", strings.Join(cfg.Hosts, ",")), zap.Bool("tls", cfg.TLS != nil), zap.String("identity", identity))
	return c, nil
}

// authenticate sends the credentials (go-zookeeper sends them again, first
// thing, after every reconnect, once they were accepted) and checks with
// one read that the server accepts the session: a server that requires
// authentication refuses the first request of a session without it and
// closes the connection. A connection lost meanwhile is retried until ctx
// ends: a session whose credentials did not go through must not be used.
func (c *Conn) authenticate(ctx context.Context, auth *Auth) error {
	var last error
	for {
		err := c.tryAuthenticate(ctx, auth)
		if err == nil || !Transient(err) || errors.Is(err, ErrUnavailable) {
			return err
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: authenticating: %v (%v)", ErrUnavailable, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Conn) tryAuthenticate(ctx context.Context, auth *Auth) error {
	if auth != nil {
		err := Do(ctx, func() error { return c.Conn.AddAuth("digest", []byte(auth.User+":"+auth.Password)) })
		switch {
		case errors.Is(err, zk.ErrAuthFailed):
			return fmt.Errorf("%w: ZooKeeper refused the credentials of %q (check the digest line of the credentials file)", ErrConfig, auth.User)
		case err != nil:
			return err
		}
	}
	err := Do(ctx, func() error { _, _, err := c.Conn.Exists(c.root); return err })
	switch {
	case err == nil:
		return nil
	case auth == nil && strings.Contains(err.Error(), errSessionClosedRequireAuth):
		return fmt.Errorf("%w: give the engine its credentials with --zk-credentials-file or JOBENGINE_ZK_CREDENTIALS_FILE", ErrAuthRequired)
	case auth != nil && strings.Contains(err.Error(), errSessionClosedRequireAuth):
		return fmt.Errorf("%w: the server refused the session although credentials were sent (does it require another scheme than digest?)", ErrAuthRequired)
	case Transient(err):
		return err
	default:
		return fmt.Errorf("%w: first request: %v", ErrUnavailable, err)
	}
}

// Close ends the session (a disconnection that is not logged as lost).
func (c *Conn) Close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	acls.Delete(c.Conn)
	c.Conn.Close()
}

// Root returns the root prefix.
func (c *Conn) Root() string { return c.root }

// Path joins p (absolute or relative) under the root prefix.
func (c *Conn) Path(p ...string) string {
	return path.Join(append([]string{c.root}, p...)...)
}

// Logger returns the connection's logger.
func (c *Conn) Logger() *zap.Logger { return c.logger }

// Subscribe returns a channel of session events (buffered; a subscriber that
// does not keep up loses events, never blocks the connection) and a function
// that ends the subscription.
func (c *Conn) Subscribe() (<-chan zk.Event, func()) {
	ch := make(chan zk.Event, 64)
	c.mu.Lock()
	id := c.next
	c.next++
	c.subs[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}

func (c *Conn) publish(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.State {
	case zk.StateExpired:
		c.expirations.Add(1)
		c.logger.Warn(LogSessionExpired)
	case zk.StateDisconnected:
		// go-zookeeper reports each failed reconnection again: one line
		// per outage.
		if c.hadSession && c.down.IsZero() && !c.closing {
			c.down = time.Now()
			c.logger.Warn(LogConnectionLost, zap.String("server", ev.Server))
		}
	case zk.StateHasSession:
		if !c.down.IsZero() {
			c.logger.Info(LogConnectionBack, zap.String("server", ev.Server), zap.Duration("down", time.Since(c.down).Round(time.Millisecond)))
		} else {
			c.logger.Debug("zookeeper session established", zap.String("server", ev.Server))
		}
		c.down, c.hadSession = time.Time{}, true
	}
	for _, ch := range c.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Connected reports whether the connection currently has a session.
func (c *Conn) Connected() bool { return c.State() == zk.StateHasSession }

// SessionExpirations counts the sessions the server expired under this
// connection (each time, go-zookeeper opened a new one).
func (c *Conn) SessionExpirations() int64 { return c.expirations.Load() }

// Do runs fn, a blocking go-zookeeper call, and returns its error, or an
// error wrapping ErrUnavailable and ctx's error if ctx ends first. The call
// itself then finishes in the background (go-zookeeper fails queued requests
// once it has tried every server), so nothing hangs and nothing leaks for
// long.
func Do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// EnsurePath creates p and its parents as persistent nodes when missing.
func (c *Conn) EnsurePath(ctx context.Context, p string) error {
	return Do(ctx, func() error { return ensure(c.Conn, p) })
}

func ensure(zc *zk.Conn, p string) error {
	if p == "/" || p == "" {
		return nil
	}
	ok, _, err := zc.Exists(p)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if err := ensure(zc, path.Dir(p)); err != nil {
		return err
	}
	_, err = zc.Create(p, nil, 0, aclOf(zc))
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return err
	}
	return nil
}

// Transient reports whether err is a connection-level failure worth
// retrying after a back-off (as opposed to a logical answer such as
// ErrNoNode or ErrBadVersion).
func Transient(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrSessionMoved) ||
		errors.Is(err, zk.ErrClosing) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, zk.ErrUnknown) || errors.Is(err, context.DeadlineExceeded) ||
		// A request written as its connection broke gets the socket's
		// error from go-zookeeper, not ErrConnectionClosed.
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// MultiError returns the index and error of the operation that made a multi
// fail (go-zookeeper reports the operations before it as nil and those after
// it as a runtime inconsistency), or -1 and err when no operation is marked.
func MultiError(res []zk.MultiResponse, err error) (int, error) {
	if err == nil {
		return -1, nil
	}
	for i, r := range res {
		if r.Error != nil {
			return i, r.Error
		}
	}
	return -1, err
}

// MultiErrorOnly returns the error of the operation that made a multi fail.
func MultiErrorOnly(res []zk.MultiResponse, err error) error {
	_, e := MultiError(res, err)
	return e
}

// EnsureSync creates p and its parents when missing, without a context; for
// use inside a function already run by Do.
func EnsureSync(zc *zk.Conn, p string) error { return ensure(zc, p) }

type zkLogger struct{ s *zap.SugaredLogger }

func (l zkLogger) Printf(format string, args ...interface{}) {
	l.s.Debugf("zookeeper: "+format, args...)
}
