package access

import (
	"context"
	"slices"
)

// Principal is an authenticated user with everything they may do: their
// system role, their teams and the object roles granted to them and to
// their teams. It is built for one request and answers its permission
// questions without asking ZooKeeper again.
type Principal struct {
	// User is the user's name.
	User string
	// Role is the user's system role.
	Role SystemRole
	// Teams are the teams the user is a member of, sorted.
	Teams []string
	// Method says how the request authenticated: "token", "basic",
	// "session".
	Method string
	// Session is the login session of a request authenticated by cookie.
	Session *Session
	// roles holds the strongest role on each object.
	roles map[objectKey]Role
}

type objectKey struct {
	kind ObjectKind
	name string
}

// Principal resolves a user into a Principal: its teams and the roles
// granted to it and to them.
func (s *Store) Principal(ctx context.Context, u *User, method string) (*Principal, error) {
	p := &Principal{User: u.Name, Role: u.Role, Method: method, roles: map[objectKey]Role{}}
	if u.Role == SystemAdmin {
		return p, nil // every question has the same answer
	}
	teams, _, err := s.ListTeams(ctx)
	if err != nil {
		return nil, err
	}
	subjects := []Grant{{SubjectKind: SubjectUser, Subject: u.Name}}
	for _, t := range teams {
		if t.HasMember(u.Name) {
			p.Teams = append(p.Teams, t.Name)
			subjects = append(subjects, Grant{SubjectKind: SubjectTeam, Subject: t.Name})
		}
	}
	for _, sub := range subjects {
		gs, _, err := s.getGrants(ctx, sub.SubjectKind, sub.Subject)
		if err != nil {
			return nil, err
		}
		for _, r := range gs.Roles {
			k := objectKey{r.Kind, r.Object}
			if !p.roles[k].Includes(r.Role) {
				p.roles[k] = r.Role
			}
		}
	}
	return p, nil
}

// Identity is the name of the principal in job documents: "user/<name>".
func (p *Principal) Identity() string { return Identity(p.User) }

// IsAdmin reports whether the principal is a system administrator.
func (p *Principal) IsAdmin() bool { return p.Role == SystemAdmin }

// ReadsAll reports whether the principal sees everything (a system
// administrator or auditor).
func (p *Principal) ReadsAll() bool { return p.Role == SystemAdmin || p.Role == SystemAuditor }

// Can reports whether the principal has at least role on an object. A
// system administrator has every role; an auditor has read on everything.
func (p *Principal) Can(kind ObjectKind, name string, role Role) bool {
	switch {
	case p.IsAdmin():
		return true
	case role == RoleRead && p.ReadsAll():
		return true
	}
	return p.roles[objectKey{kind, name}].Includes(role)
}

// Objects returns the names of the objects of a kind on which the
// principal holds at least role through grants, sorted. (A system
// administrator or auditor reaches more: check ReadsAll first.)
func (p *Principal) Objects(kind ObjectKind, role Role) []string {
	var out []string
	for k, r := range p.roles {
		if k.kind == kind && r.Includes(role) {
			out = append(out, k.name)
		}
	}
	slices.Sort(out)
	return out
}

// InTeam reports whether the principal is a member of team.
func (p *Principal) InTeam(team string) bool { return slices.Contains(p.Teams, team) }
