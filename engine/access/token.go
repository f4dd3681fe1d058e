package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
)

// An API token is "jet_<id>_<secret>": id is 16 hex digits naming the
// stored token (/config/tokens/<id>), secret is 32 random bytes in
// base64url. Only the SHA-256 of the secret is stored; the token itself is
// shown once, when it is created. A login session is the same with the
// prefix "jes_", stored at /config/sessions/<id> with the hash of its CSRF
// token.
const (
	tokenPrefix   = "jet_"
	sessionPrefix = "jes_"
	idBytes       = 8
	secretBytes   = 32
	// MaxDescription bounds a token's description.
	maxTokenDescription = 256
)

var idRe = regexp.MustCompile(`^[0-9a-f]{16}$`)

// DefaultTokenLifetime is how long a token lives when its creator does not
// say.
const DefaultTokenLifetime = 90 * 24 * time.Hour

// Token is a stored API token.
type Token struct {
	ID          string `json:"id"`
	User        string `json:"user"`
	Description string `json:"description,omitempty"`
	// SecretSHA256 is the hex SHA-256 of the token's secret.
	SecretSHA256 string    `json:"secret-sha256"`
	Created      time.Time `json:"created"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
}

// ObjectName implements configstore.Object.
func (t *Token) ObjectName() string { return t.ID }

// Validate implements configstore.Object.
func (t *Token) Validate() error {
	if !idRe.MatchString(t.ID) {
		return fmt.Errorf("%w: token id %q (want 16 hex digits)", ErrInvalid, t.ID)
	}
	if err := ValidUserName("user", t.User); err != nil {
		return err
	}
	if len(t.Description) > maxTokenDescription {
		return fmt.Errorf("%w: token description over %d bytes", ErrInvalid, maxTokenDescription)
	}
	if len(t.SecretSHA256) != 64 || !isHex(t.SecretSHA256) {
		return fmt.Errorf("%w: token %s has no valid secret hash", ErrInvalid, t.ID)
	}
	return nil
}

// TokenView is a token as shown after its creation: never its secret.
type TokenView struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
}

// View returns what may be shown of t.
func (t *Token) View() TokenView {
	return TokenView{ID: t.ID, User: t.User, Description: t.Description, Created: t.Created, Expires: t.Expires}
}

func (t *Token) expired(now time.Time) bool { return !t.Expires.IsZero() && !now.Before(t.Expires) }

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// newSecret returns a new id, a secret and the secret's hash.
func newSecret() (id, secret, hash string, err error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", "", err
	}
	id = hex.EncodeToString(b[:idBytes])
	secret = base64.RawURLEncoding.EncodeToString(b[idBytes:])
	return id, secret, hashSecret(secret), nil
}

func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// splitSecret parses "<prefix><id>_<secret>".
func splitSecret(prefix, s string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) < 18 || rest[16] != '_' {
		return "", "", false
	}
	id, secret = rest[:16], rest[17:]
	if !idRe.MatchString(id) || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	return id, secret, true
}

// LooksLikeToken reports whether s has the form of an API token.
func LooksLikeToken(s string) bool {
	_, _, ok := splitSecret(tokenPrefix, s)
	return ok
}

// TokenID returns the id of an API token (what revokes it), and whether
// s has the form of a token.
func TokenID(s string) (string, bool) {
	id, _, ok := splitSecret(tokenPrefix, s)
	return id, ok
}

// CreateToken creates a token for user, living for lifetime (0: never
// expires), and returns it with the token string, which is not stored and
// cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, user, description string, lifetime time.Duration) (*Token, string, error) {
	if lifetime < 0 {
		return nil, "", fmt.Errorf("%w: negative token lifetime %s", ErrInvalid, lifetime)
	}
	if _, _, err := s.GetUser(ctx, user); errors.Is(err, configstore.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: user %s does not exist", ErrInvalid, user)
	} else if err != nil {
		return nil, "", err
	}
	id, secret, hash, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	now := s.clock()
	t := &Token{ID: id, User: user, Description: description, SecretSHA256: hash, Created: now}
	if lifetime > 0 {
		t.Expires = now.Add(lifetime)
	}
	if err := t.Validate(); err != nil {
		return nil, "", err
	}
	if err := s.tokens.Create(ctx, t); err != nil {
		return nil, "", err
	}
	return t, tokenPrefix + id + "_" + secret, nil
}

// GetToken reads a stored token by id.
func (s *Store) GetToken(ctx context.Context, id string) (*Token, error) {
	if !idRe.MatchString(id) {
		return nil, fmt.Errorf("%w: token id %q (want 16 hex digits, as `token list` shows)", ErrInvalid, id)
	}
	var t Token
	if _, err := s.tokens.Get(ctx, id, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTokens reads the tokens of user (every token when user is empty),
// oldest first.
func (s *Store) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	all, _, err := configstore.List[Token](ctx, s.tokens)
	if err != nil {
		return nil, err
	}
	var out []*Token
	for _, t := range all {
		if user == "" || t.User == user {
			out = append(out, t)
		}
	}
	sortByCreated(out, func(t *Token) (time.Time, string) { return t.Created, t.ID })
	return out, nil
}

// RevokeToken deletes a token.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	if !idRe.MatchString(id) {
		return fmt.Errorf("%w: token id %q (want 16 hex digits, as `token list` shows)", ErrInvalid, id)
	}
	return s.tokens.Delete(ctx, id, -1)
}

// AuthenticateToken returns the token and its user for a token string.
// Every failure (malformed, unknown, wrong secret, expired, user gone or
// disabled) is ErrBadCredentials; an expired token is deleted.
func (s *Store) AuthenticateToken(ctx context.Context, tok string) (*Token, *User, error) {
	id, secret, ok := splitSecret(tokenPrefix, tok)
	if !ok {
		return nil, nil, ErrBadCredentials
	}
	var t Token
	_, err := s.tokens.Get(ctx, id, &t)
	switch {
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrCorrupt):
		return nil, nil, ErrBadCredentials
	case err != nil:
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(t.SecretSHA256)) != 1 {
		return nil, nil, ErrBadCredentials
	}
	if t.expired(s.clock()) {
		_ = s.tokens.Delete(ctx, t.ID, -1)
		return nil, nil, ErrBadCredentials
	}
	u, err := s.activeUser(ctx, t.User)
	if err != nil {
		return nil, nil, err
	}
	return &t, u, nil
}

// activeUser returns a user that may authenticate.
func (s *Store) activeUser(ctx context.Context, name string) (*User, error) {
	u, _, err := s.GetUser(ctx, name)
	switch {
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrCorrupt):
		return nil, ErrBadCredentials
	case err != nil:
		return nil, err
	case u.Disabled:
		return nil, ErrBadCredentials
	}
	return u, nil
}

func sortByCreated[T any](list []T, key func(T) (time.Time, string)) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0; j-- {
			ta, ia := key(list[j-1])
			tb, ib := key(list[j])
			if ta.Before(tb) || ta.Equal(tb) && ia <= ib {
				break
			}
			list[j-1], list[j] = list[j], list[j-1]
		}
	}
}
