package api

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/jobengine/jobengine/engine/access"
)

// Password guessing is slowed per user name and per client address: each
// failed password check (POST /login, HTTP basic credentials) takes a
// token from both buckets, and a check is refused with 429 and
// Retry-After while either bucket is empty. A good password takes no
// token, so a user who knows it is never held up by their own past typos
// for longer than the bucket takes to refill. The client address is the
// connection's: behind a proxy it is the proxy's, which then limits
// everyone behind it together.

// LoginLimit configures the limit on failed logins.
type LoginLimit struct {
	// PerUser and PerAddress are the failures allowed in a burst, per
	// user name and per client address.
	PerUser, PerAddress int
	// Refill is how often one more failure is allowed.
	Refill time.Duration
}

// DefaultLoginLimit is the limit when Config.LoginLimit is zero: 10
// failures in a row for a user, 30 from an address, then one more every 6 s.
var DefaultLoginLimit = LoginLimit{PerUser: 10, PerAddress: 30, Refill: 6 * time.Second}

// maxLimiters bounds the buckets kept; full ones are dropped first.
const maxLimiters = 10_000

// loginLimiter holds the buckets of failed logins.
type loginLimiter struct {
	cfg   LoginLimit
	mu    sync.Mutex
	users map[string]*rate.Limiter
	addrs map[string]*rate.Limiter
}

func newLoginLimiter(cfg LoginLimit) *loginLimiter {
	if cfg.PerUser <= 0 || cfg.PerAddress <= 0 || cfg.Refill <= 0 {
		cfg = DefaultLoginLimit
	}
	return &loginLimiter{cfg: cfg, users: map[string]*rate.Limiter{}, addrs: map[string]*rate.Limiter{}}
}

func (l *loginLimiter) bucket(m map[string]*rate.Limiter, key string, burst int, now time.Time) *rate.Limiter {
	b := m[key]
	if b == nil {
		if len(m) >= maxLimiters {
			for k, v := range m {
				if v.TokensAt(now) >= float64(v.Burst()) {
					delete(m, k)
				}
			}
		}
		b = rate.NewLimiter(rate.Every(l.cfg.Refill), burst)
		m[key] = b
	}
	return b
}

// wait returns how long the caller must wait before a password check of
// user from addr; 0 allows it now.
func (l *loginLimiter) wait(user, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, b := range []*rate.Limiter{
		l.bucket(l.users, user, l.cfg.PerUser, now), l.bucket(l.addrs, addr, l.cfg.PerAddress, now),
	} {
		if tok := b.TokensAt(now); tok < 1 {
			d = max(d, time.Duration((1-tok)*float64(l.cfg.Refill)))
		}
	}
	return d
}

// failed takes a token from both buckets.
func (l *loginLimiter) failed(user, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(l.users, user, l.cfg.PerUser, now).AllowN(now, 1)
	l.bucket(l.addrs, addr, l.cfg.PerAddress, now).AllowN(now, 1)
}

// clientAddr is the address of the connection, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// checkPassword authenticates user with password under the limit on
// failed logins.
func (s *Server) checkPassword(rq *request, user, password string) (*access.User, error) {
	addr := clientAddr(rq.r)
	if d := s.logins.wait(user, addr, time.Now()); d > 0 {
		secs := int(math.Ceil(d.Seconds()))
		rq.w.Header().Set("Retry-After", strconv.Itoa(secs))
		return nil, errorf(http.StatusTooManyRequests, "too many failed logins for user %s or from %s: try again in %d s", user, addr, secs)
	}
	u, err := s.access.Authenticate(rq.ctx, user, password)
	if errors.Is(err, access.ErrBadCredentials) {
		s.logins.failed(user, addr, time.Now())
	}
	return u, err
}
