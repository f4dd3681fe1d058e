package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// User is a stored user. Its password hash never leaves the package's
// callers that need it: the HTTP API shows users as UserView.
type User struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Role        SystemRole `json:"role,omitempty"`
	// Disabled users authenticate no more, by any means.
	Disabled bool `json:"disabled,omitempty"`
	// PasswordHash is argon2id in PHC format; empty: no password login
	// (tokens only).
	PasswordHash string    `json:"password-hash,omitempty"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

// ObjectName implements configstore.Object.
func (u *User) ObjectName() string { return u.Name }

// Validate implements configstore.Object.
func (u *User) Validate() error {
	if err := ValidUserName("user", u.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(u.Description); err != nil {
		return err
	}
	switch u.Role {
	case NoSystemRole, SystemAdmin, SystemAuditor:
	default:
		return fmt.Errorf("%w: user %s has system role %q (want admin, auditor or none)", ErrInvalid, u.Name, u.Role)
	}
	if u.PasswordHash != "" {
		if err := ValidHash(u.PasswordHash); err != nil {
			return err
		}
	}
	return nil
}

// UserView is a user as the API and the command line show it.
type UserView struct {
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Role        SystemRole `json:"role,omitempty"`
	Disabled    bool       `json:"disabled,omitempty"`
	HasPassword bool       `json:"has-password"`
	Created     time.Time  `json:"created"`
	Updated     time.Time  `json:"updated"`
}

// View returns what may be shown of u.
func (u *User) View() UserView {
	return UserView{Name: u.Name, Description: u.Description, Role: u.Role, Disabled: u.Disabled,
		HasPassword: u.PasswordHash != "", Created: u.Created, Updated: u.Updated}
}

// Store reads and writes users, teams, tokens, sessions and grants.
type Store struct {
	conn                                      *zkconn.Conn
	users, teams, tokens, sessions, grantsets *configstore.Store
	log                                       *zap.Logger
	now                                       func() time.Time
	verified                                  *verifyCache
}

// NewStore returns the access store on conn.
func NewStore(conn *zkconn.Conn, log *zap.Logger) *Store {
	if log == nil {
		log = zap.NewNop()
	}
	return &Store{
		conn:      conn,
		users:     configstore.New(conn, "users", log),
		teams:     configstore.New(conn, "teams", log),
		tokens:    configstore.New(conn, "tokens", log),
		sessions:  configstore.New(conn, "sessions", log),
		grantsets: configstore.New(conn, "grants", log),
		log:       log,
		now:       time.Now,
		verified:  newVerifyCache(5*time.Minute, 4096),
	}
}

// SetClock replaces the store's clock (tests of expiry).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

func (s *Store) clock() time.Time { return s.now().UTC() }

// GetUser reads a user and its version.
func (s *Store) GetUser(ctx context.Context, name string) (*User, int32, error) {
	var u User
	ver, err := s.users.Get(ctx, name, &u)
	if err != nil {
		return nil, 0, err
	}
	return &u, ver, nil
}

// ListUsers reads every user; bad ones are returned as errors.
func (s *Store) ListUsers(ctx context.Context) ([]*User, []error, error) {
	return configstore.List[User](ctx, s.users)
}

// NewUser describes a user to create.
type NewUser struct {
	Name        string
	Description string
	Role        SystemRole
	// Password, when set, is hashed; empty: the user logs in with tokens
	// only.
	Password string
}

// CreateUser creates a user; configstore.ErrExists when the name is taken.
// Nothing is written when the input is bad.
func (s *Store) CreateUser(ctx context.Context, n NewUser) (*User, error) {
	now := s.clock()
	u := &User{Name: n.Name, Description: n.Description, Role: n.Role, Created: now, Updated: now}
	if n.Password != "" {
		h, err := HashPassword(n.Password)
		if err != nil {
			return nil, err
		}
		u.PasswordHash = h
	}
	if err := u.Validate(); err != nil {
		return nil, err
	}
	if err := s.users.Create(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies fn to a user and writes it back with compare-and-set,
// retrying when it changed meanwhile. fn returning an error writes nothing.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*User) error) (*User, error) {
	u, _, err := s.UpdateUserVersion(ctx, name, -1, fn)
	return u, err
}

// UpdateUserVersion is UpdateUser of version ver of the user: with ver
// -1 it retries as UpdateUser does; otherwise configstore.ErrConflict
// when the user is at another version. It returns the version written.
func (s *Store) UpdateUserVersion(ctx context.Context, name string, ver int32, fn func(*User) error) (*User, int32, error) {
	for attempt := 0; ; attempt++ {
		u, read, err := s.GetUser(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		if ver >= 0 && read != ver {
			return nil, 0, fmt.Errorf("user %s %w", name, configstore.ErrConflict)
		}
		if err := fn(u); err != nil {
			return nil, 0, err
		}
		u.Name = name
		u.Updated = s.clock()
		if err := u.Validate(); err != nil {
			return nil, 0, err
		}
		err = s.users.Update(ctx, u, read)
		if errors.Is(err, configstore.ErrConflict) && ver < 0 && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return u, read + 1, nil
	}
}

// SetPassword sets a user's password (nothing is written when it is too
// short or too long).
func (s *Store) SetPassword(ctx context.Context, name, pw string) error {
	h, err := HashPassword(pw)
	if err != nil {
		return err
	}
	_, err = s.UpdateUser(ctx, name, func(u *User) error { u.PasswordHash = h; return nil })
	return err
}

// DeleteUser removes a user with its tokens, sessions, grants and team
// memberships. The user goes first: whatever is left after a failure
// authenticates nobody and is removed by the next delete.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := ValidUserName("user", name); err != nil {
		return err
	}
	err := s.users.Delete(ctx, name, -1)
	if err != nil && !errors.Is(err, configstore.ErrNotFound) {
		return err
	}
	notFound := err
	cleaned, cerr := s.forgetUser(ctx, name)
	if cerr != nil {
		return fmt.Errorf("user %s deleted, but not everything of it: %w", name, cerr)
	}
	if notFound != nil && !cleaned {
		return notFound
	}
	return nil
}

// forgetUser removes what refers to a user; it reports whether anything
// was found.
func (s *Store) forgetUser(ctx context.Context, name string) (bool, error) {
	found := false
	toks, err := s.ListTokens(ctx, name)
	if err != nil {
		return found, err
	}
	for _, t := range toks {
		found = true
		if err := s.tokens.Delete(ctx, t.ID, -1); err != nil && !errors.Is(err, configstore.ErrNotFound) {
			return found, err
		}
	}
	if err := s.purgeSessions(ctx, func(ss *Session) bool { return ss.User == name }); err != nil {
		return found, err
	}
	err = s.grantsets.Delete(ctx, grantsName(SubjectUser, name), -1)
	switch {
	case err == nil:
		found = true
	case !errors.Is(err, configstore.ErrNotFound):
		return found, err
	}
	teams, _, err := s.ListTeams(ctx)
	if err != nil {
		return found, err
	}
	for _, t := range teams {
		if !t.HasMember(name) {
			continue
		}
		found = true
		_, err := s.UpdateTeam(ctx, t.Name, func(t *Team) error { t.Members = without(t.Members, name); return nil })
		if err != nil && !errors.Is(err, configstore.ErrNotFound) {
			return found, err
		}
	}
	return found, nil
}

// Authenticate checks a user's password and returns the user. Every
// failure — unknown user, wrong password, no password, disabled — is
// ErrBadCredentials and takes about as long.
func (s *Store) Authenticate(ctx context.Context, name, pw string) (*User, error) {
	u, _, err := s.GetUser(ctx, name)
	switch {
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrInvalid), errors.Is(err, configstore.ErrCorrupt):
		CheckPassword(dummyHash, pw)
		return nil, ErrBadCredentials
	case err != nil:
		return nil, err
	}
	if u.PasswordHash == "" {
		CheckPassword(dummyHash, pw)
		return nil, ErrBadCredentials
	}
	if !s.verified.check(u.Name, u.PasswordHash, pw, s.clock()) || u.Disabled {
		return nil, ErrBadCredentials
	}
	return u, nil
}

func without(list []string, x string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}
