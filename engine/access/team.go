package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Team is a stored team: the roles granted to it are every member's.
type Team struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Members     []string  `json:"members,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// ObjectName implements configstore.Object.
func (t *Team) ObjectName() string { return t.Name }

// Validate implements configstore.Object.
func (t *Team) Validate() error {
	if err := ValidUserName("team", t.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(t.Description); err != nil {
		return err
	}
	if len(t.Members) > MaxTeamMembers {
		return fmt.Errorf("%w: team %s has %d members, at most %d", ErrInvalid, t.Name, len(t.Members), MaxTeamMembers)
	}
	seen := map[string]bool{}
	for _, m := range t.Members {
		if err := ValidUserName("user", m); err != nil {
			return err
		}
		if seen[m] {
			return fmt.Errorf("%w: team %s lists %s twice", ErrInvalid, t.Name, m)
		}
		seen[m] = true
	}
	return nil
}

// HasMember reports whether user is a member of the team.
func (t *Team) HasMember(user string) bool { return slices.Contains(t.Members, user) }

// GetTeam reads a team and its version.
func (s *Store) GetTeam(ctx context.Context, name string) (*Team, int32, error) {
	var t Team
	ver, err := s.teams.Get(ctx, name, &t)
	if err != nil {
		return nil, 0, err
	}
	return &t, ver, nil
}

// ListTeams reads every team; bad ones are returned as errors.
func (s *Store) ListTeams(ctx context.Context) ([]*Team, []error, error) {
	return configstore.List[Team](ctx, s.teams)
}

// CreateTeam creates a team. Its members must be users.
func (s *Store) CreateTeam(ctx context.Context, t *Team) error {
	now := s.clock()
	t.Created, t.Updated = now, now
	t.Members = sortedUnique(t.Members)
	if err := t.Validate(); err != nil {
		return err
	}
	if err := s.checkUsers(ctx, t.Members); err != nil {
		return err
	}
	return s.teams.Create(ctx, t)
}

// UpdateTeam applies fn to a team and writes it back with compare-and-set,
// retrying when it changed meanwhile. Members added must be users.
func (s *Store) UpdateTeam(ctx context.Context, name string, fn func(*Team) error) (*Team, error) {
	t, _, err := s.UpdateTeamVersion(ctx, name, -1, fn)
	return t, err
}

// UpdateTeamVersion is UpdateTeam of version ver of the team: with ver -1
// it retries as UpdateTeam does; otherwise configstore.ErrConflict when
// the team is at another version. It returns the version written.
func (s *Store) UpdateTeamVersion(ctx context.Context, name string, ver int32, fn func(*Team) error) (*Team, int32, error) {
	for attempt := 0; ; attempt++ {
		t, read, err := s.GetTeam(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		if ver >= 0 && read != ver {
			return nil, 0, fmt.Errorf("team %s %w", name, configstore.ErrConflict)
		}
		before := map[string]bool{}
		for _, m := range t.Members {
			before[m] = true
		}
		if err := fn(t); err != nil {
			return nil, 0, err
		}
		t.Name, t.Updated, t.Members = name, s.clock(), sortedUnique(t.Members)
		if err := t.Validate(); err != nil {
			return nil, 0, err
		}
		var added []string
		for _, m := range t.Members {
			if !before[m] {
				added = append(added, m)
			}
		}
		if err := s.checkUsers(ctx, added); err != nil {
			return nil, 0, err
		}
		err = s.teams.Update(ctx, t, read)
		if errors.Is(err, configstore.ErrConflict) && ver < 0 && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return t, read + 1, nil
	}
}

// DeleteTeam removes a team and the roles granted to it.
func (s *Store) DeleteTeam(ctx context.Context, name string) error {
	if err := s.teams.Delete(ctx, name, -1); err != nil {
		return err
	}
	err := s.grantsets.Delete(ctx, grantsName(SubjectTeam, name), -1)
	if err != nil && !errors.Is(err, configstore.ErrNotFound) {
		return fmt.Errorf("team %s deleted, but not its grants: %w", name, err)
	}
	return nil
}

// checkUsers refuses names that are not users.
func (s *Store) checkUsers(ctx context.Context, names []string) error {
	for _, n := range names {
		if _, _, err := s.GetUser(ctx, n); errors.Is(err, configstore.ErrNotFound) {
			return fmt.Errorf("%w: user %s does not exist", ErrInvalid, n)
		} else if err != nil {
			return err
		}
	}
	return nil
}

func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
