package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Grant is one role on one object given to one user or team. Its ID,
// "<subject kind>:<subject>:<object kind>:<object>:<role>", names it in the
// API and the command line (names never hold ':').
type Grant struct {
	SubjectKind SubjectKind `json:"subject-kind"`
	Subject     string      `json:"subject"`
	Kind        ObjectKind  `json:"kind"`
	Object      string      `json:"object"`
	Role        Role        `json:"role"`
}

// ID returns the grant's identifier.
func (g Grant) ID() string {
	return strings.Join([]string{string(g.SubjectKind), g.Subject, string(g.Kind), g.Object, string(g.Role)}, ":")
}

// ParseGrantID parses a grant's identifier.
func ParseGrantID(id string) (Grant, error) {
	p := strings.Split(id, ":")
	if len(p) != 5 {
		return Grant{}, fmt.Errorf("%w: grant %q (want user|team:NAME:KIND:OBJECT:ROLE)", ErrInvalid, id)
	}
	g := Grant{SubjectKind: SubjectKind(p[0]), Subject: p[1], Kind: ObjectKind(p[2]), Object: p[3], Role: Role(p[4])}
	return g, g.Validate()
}

// Validate checks a grant.
func (g Grant) Validate() error {
	switch g.SubjectKind {
	case SubjectUser, SubjectTeam:
	default:
		return fmt.Errorf("%w: a grant is for a user or a team, not %q", ErrInvalid, g.SubjectKind)
	}
	if err := ValidUserName(string(g.SubjectKind), g.Subject); err != nil {
		return err
	}
	if _, err := ParseObjectKind(string(g.Kind)); err != nil {
		return err
	}
	if err := configstore.ValidName(string(g.Kind), g.Object); err != nil {
		return err
	}
	if _, err := ParseRole(string(g.Role)); err != nil || string(g.Role) != strings.ToLower(string(g.Role)) {
		return fmt.Errorf("%w: role %q (want read, execute or admin)", ErrInvalid, g.Role)
	}
	return nil
}

// ObjectRole is a role on an object, as stored in a grants object.
type ObjectRole struct {
	Kind   ObjectKind `json:"kind"`
	Object string     `json:"object"`
	Role   Role       `json:"role"`
}

// Grants is the stored set of the roles of one user or team, at
// /config/grants/user.<name> or team.<name>: the one object read to know
// what a subject may do, and written with compare-and-set.
type Grants struct {
	Name        string       `json:"name"`
	SubjectKind SubjectKind  `json:"subject-kind"`
	Subject     string       `json:"subject"`
	Roles       []ObjectRole `json:"roles"`
	Updated     time.Time    `json:"updated"`
}

func grantsName(kind SubjectKind, subject string) string { return string(kind) + "." + subject }

// ObjectName implements configstore.Object.
func (gs *Grants) ObjectName() string { return gs.Name }

// Validate implements configstore.Object.
func (gs *Grants) Validate() error {
	if gs.Name != grantsName(gs.SubjectKind, gs.Subject) {
		return fmt.Errorf("%w: grants object %q is not named after its subject %s %s", ErrInvalid, gs.Name, gs.SubjectKind, gs.Subject)
	}
	if len(gs.Roles) > MaxGrants {
		return fmt.Errorf("%w: %s %s has %d roles, at most %d", ErrInvalid, gs.SubjectKind, gs.Subject, len(gs.Roles), MaxGrants)
	}
	seen := map[ObjectRole]bool{}
	for _, r := range gs.Roles {
		g := Grant{SubjectKind: gs.SubjectKind, Subject: gs.Subject, Kind: r.Kind, Object: r.Object, Role: r.Role}
		if err := g.Validate(); err != nil {
			return err
		}
		if seen[r] {
			return fmt.Errorf("%w: %s is granted twice", ErrInvalid, g.ID())
		}
		seen[r] = true
	}
	return nil
}

func (gs *Grants) list() []Grant {
	out := make([]Grant, len(gs.Roles))
	for i, r := range gs.Roles {
		out[i] = Grant{SubjectKind: gs.SubjectKind, Subject: gs.Subject, Kind: r.Kind, Object: r.Object, Role: r.Role}
	}
	return out
}

// getGrants reads the grants of a subject; none is an empty set.
func (s *Store) getGrants(ctx context.Context, kind SubjectKind, subject string) (*Grants, int32, error) {
	gs := &Grants{Name: grantsName(kind, subject), SubjectKind: kind, Subject: subject}
	ver, err := s.grantsets.Get(ctx, gs.Name, gs)
	if errors.Is(err, configstore.ErrNotFound) {
		return &Grants{Name: grantsName(kind, subject), SubjectKind: kind, Subject: subject}, -1, nil
	}
	return gs, ver, err
}

// modifyGrants applies fn to a subject's grants and writes them with
// compare-and-set (creating or deleting the object as needed).
func (s *Store) modifyGrants(ctx context.Context, kind SubjectKind, subject string, fn func(*Grants) (bool, error)) error {
	for attempt := 0; ; attempt++ {
		gs, ver, err := s.getGrants(ctx, kind, subject)
		if err != nil {
			return err
		}
		changed, err := fn(gs)
		if err != nil || !changed {
			return err
		}
		gs.Updated = s.clock()
		switch {
		case ver < 0:
			err = s.grantsets.Create(ctx, gs)
			if errors.Is(err, configstore.ErrExists) {
				err = configstore.ErrConflict
			}
		case len(gs.Roles) == 0:
			err = s.grantsets.Delete(ctx, gs.Name, ver)
		default:
			err = s.grantsets.Update(ctx, gs, ver)
		}
		if (errors.Is(err, configstore.ErrConflict) || errors.Is(err, configstore.ErrNotFound)) && attempt < 10 {
			continue
		}
		return err
	}
}

// AddGrant grants a role. The subject must exist; the object is not
// checked (a role may be granted on an object before it is created).
// Granting a role that is already granted changes nothing.
func (s *Store) AddGrant(ctx context.Context, g Grant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if err := s.checkSubject(ctx, g.SubjectKind, g.Subject); err != nil {
		return err
	}
	return s.modifyGrants(ctx, g.SubjectKind, g.Subject, func(gs *Grants) (bool, error) {
		r := ObjectRole{Kind: g.Kind, Object: g.Object, Role: g.Role}
		if slices.Contains(gs.Roles, r) {
			return false, nil
		}
		gs.Roles = append(gs.Roles, r)
		return true, gs.Validate()
	})
}

// RemoveGrant takes a role back; configstore.ErrNotFound when it was not
// granted.
func (s *Store) RemoveGrant(ctx context.Context, g Grant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return s.modifyGrants(ctx, g.SubjectKind, g.Subject, func(gs *Grants) (bool, error) {
		r := ObjectRole{Kind: g.Kind, Object: g.Object, Role: g.Role}
		i := slices.Index(gs.Roles, r)
		if i < 0 {
			return false, fmt.Errorf("grant %s %w", g.ID(), configstore.ErrNotFound)
		}
		gs.Roles = slices.Delete(gs.Roles, i, i+1)
		return true, nil
	})
}

// GrantFilter selects grants in ListGrants; empty fields match all.
type GrantFilter struct {
	SubjectKind SubjectKind
	Subject     string
	Kind        ObjectKind
	Object      string
}

// ListGrants reads every grant that matches f, sorted by id.
func (s *Store) ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error) {
	var sets []*Grants
	if f.SubjectKind != "" && f.Subject != "" {
		gs, _, err := s.getGrants(ctx, f.SubjectKind, f.Subject)
		if err != nil {
			return nil, err
		}
		sets = []*Grants{gs}
	} else {
		var err error
		sets, _, err = configstore.List[Grants](ctx, s.grantsets)
		if err != nil {
			return nil, err
		}
	}
	var out []Grant
	for _, gs := range sets {
		for _, g := range gs.list() {
			if (f.SubjectKind == "" || g.SubjectKind == f.SubjectKind) && (f.Subject == "" || g.Subject == f.Subject) &&
				(f.Kind == "" || g.Kind == f.Kind) && (f.Object == "" || g.Object == f.Object) {
				out = append(out, g)
			}
		}
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.ID(), b.ID()) })
	return out, nil
}

// ForgetObject takes back every role on an object (it was deleted), so
// that a new object of the same name starts with no grants.
func (s *Store) ForgetObject(ctx context.Context, kind ObjectKind, name string) error {
	gs, err := s.ListGrants(ctx, GrantFilter{Kind: kind, Object: name})
	if err != nil {
		return err
	}
	for _, g := range gs {
		if err := s.RemoveGrant(ctx, g); err != nil && !errors.Is(err, configstore.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (s *Store) checkSubject(ctx context.Context, kind SubjectKind, name string) error {
	var err error
	if kind == SubjectTeam {
		_, _, err = s.GetTeam(ctx, name)
	} else {
		_, _, err = s.GetUser(ctx, name)
	}
	if errors.Is(err, configstore.ErrNotFound) {
		return fmt.Errorf("%w: %s %s does not exist", ErrInvalid, kind, name)
	}
	return err
}
