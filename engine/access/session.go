package access

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
)

// DefaultSessionLifetime is how long a login session lasts.
const DefaultSessionLifetime = 12 * time.Hour

// Session is a stored login session of the web dashboard: a cookie holds
// "jes_<id>_<secret>"; requests that change something must also send the
// session's CSRF token in a header, which a page of another site cannot
// read or forge.
type Session struct {
	ID           string    `json:"id"`
	User         string    `json:"user"`
	SecretSHA256 string    `json:"secret-sha256"`
	CSRFSHA256   string    `json:"csrf-sha256"`
	Created      time.Time `json:"created"`
	Expires      time.Time `json:"expires"`
}

// ObjectName implements configstore.Object.
func (ss *Session) ObjectName() string { return ss.ID }

// Validate implements configstore.Object.
func (ss *Session) Validate() error {
	if !idRe.MatchString(ss.ID) {
		return fmt.Errorf("%w: session id %q", ErrInvalid, ss.ID)
	}
	if err := ValidUserName("user", ss.User); err != nil {
		return err
	}
	for _, h := range []string{ss.SecretSHA256, ss.CSRFSHA256} {
		if len(h) != 64 || !isHex(h) {
			return fmt.Errorf("%w: session %s has a bad hash", ErrInvalid, ss.ID)
		}
	}
	if ss.Expires.IsZero() {
		return fmt.Errorf("%w: session %s has no expiry", ErrInvalid, ss.ID)
	}
	return nil
}

// CheckCSRF reports whether token is the session's CSRF token.
func (ss *Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(hashSecret(token)), []byte(ss.CSRFSHA256)) == 1
}

// CreateSession opens a session for user (who must exist and be enabled)
// and returns it with the cookie value and the CSRF token, neither of
// which is stored.
func (s *Store) CreateSession(ctx context.Context, user string, lifetime time.Duration) (ss *Session, cookie, csrf string, err error) {
	if lifetime <= 0 {
		lifetime = DefaultSessionLifetime
	}
	if _, err := s.activeUser(ctx, user); err != nil {
		return nil, "", "", err
	}
	id, secret, hash, err := newSecret()
	if err != nil {
		return nil, "", "", err
	}
	_, csrf, csrfHash, err := newSecret()
	if err != nil {
		return nil, "", "", err
	}
	now := s.clock()
	ss = &Session{ID: id, User: user, SecretSHA256: hash, CSRFSHA256: csrfHash, Created: now, Expires: now.Add(lifetime)}
	if err := s.sessions.Create(ctx, ss); err != nil {
		return nil, "", "", err
	}
	return ss, sessionPrefix + id + "_" + secret, csrf, nil
}

// AuthenticateSession returns the session and its user for a cookie value;
// every failure is ErrBadCredentials, and an expired session is deleted.
func (s *Store) AuthenticateSession(ctx context.Context, cookie string) (*Session, *User, error) {
	id, secret, ok := splitSecret(sessionPrefix, cookie)
	if !ok {
		return nil, nil, ErrBadCredentials
	}
	var ss Session
	_, err := s.sessions.Get(ctx, id, &ss)
	switch {
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrCorrupt):
		return nil, nil, ErrBadCredentials
	case err != nil:
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(ss.SecretSHA256)) != 1 {
		return nil, nil, ErrBadCredentials
	}
	if !s.clock().Before(ss.Expires) {
		_ = s.sessions.Delete(ctx, ss.ID, -1)
		return nil, nil, ErrBadCredentials
	}
	u, err := s.activeUser(ctx, ss.User)
	if err != nil {
		return nil, nil, err
	}
	return &ss, u, nil
}

// EndSession deletes a session (logout); an unknown one is not an error.
func (s *Store) EndSession(ctx context.Context, id string) error {
	err := s.sessions.Delete(ctx, id, -1)
	if errors.Is(err, configstore.ErrNotFound) {
		return nil
	}
	return err
}

// PurgeExpired deletes the expired sessions and tokens; it returns how many
// it deleted.
func (s *Store) PurgeExpired(ctx context.Context) (int, error) {
	now := s.clock()
	n := 0
	err := s.purgeSessions(ctx, func(ss *Session) bool {
		if !now.Before(ss.Expires) {
			n++
			return true
		}
		return false
	})
	if err != nil {
		return n, err
	}
	toks, err := s.ListTokens(ctx, "")
	if err != nil {
		return n, err
	}
	for _, t := range toks {
		if t.expired(now) {
			if err := s.tokens.Delete(ctx, t.ID, -1); err != nil && !errors.Is(err, configstore.ErrNotFound) {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// purgeSessions deletes the sessions drop selects.
func (s *Store) purgeSessions(ctx context.Context, drop func(*Session) bool) error {
	all, _, err := configstore.List[Session](ctx, s.sessions)
	if err != nil {
		return err
	}
	for _, ss := range all {
		if drop(ss) {
			if err := s.sessions.Delete(ctx, ss.ID, -1); err != nil && !errors.Is(err, configstore.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}
