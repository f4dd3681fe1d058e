// Package access holds who may do what in the control plane: users (local,
// passwords hashed with argon2id), teams, API tokens and login sessions
// (random secrets stored as SHA-256 hashes, shown once), and grants of
// per-object roles to users and teams. It resolves an authenticated user
// into a Principal that answers the HTTP API's permission questions.
//
// Everything lives in ZooKeeper under /config (engine/configstore), written
// with compare-and-set and validated on every read, so that any number of
// stateless controllers give the same answers and a revoked token or grant
// is refused by the next request.
//
//	/config/users/<name>          a user: system role, password hash
//	/config/teams/<name>          a team: its members
//	/config/tokens/<id>           an API token: its user, the hash of its secret, expiry
//	/config/sessions/<id>         a login session: the same, and the hash of its CSRF token
//	/config/grants/user.<name>    the object roles granted to a user
//	/config/grants/team.<name>    the object roles granted to a team
package access

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Errors of this package. Bad input wraps configstore.ErrInvalid (through
// ErrInvalid); a missing object wraps configstore.ErrNotFound.
var (
	// ErrInvalid: bad input about users, teams, tokens or grants.
	ErrInvalid = configstore.Invalid("access")
	// ErrBadCredentials: a password, token or session that does not
	// authenticate anyone (unknown, wrong, expired, revoked, disabled user).
	// The message never says which.
	ErrBadCredentials = errors.New("bad credentials")
)

// Limits.
const (
	// MaxUserName bounds user and team names, so that a grants object's
	// name ("user." + name) stays within configstore.MaxNameBytes.
	MaxUserName = 64
	// MinPassword and MaxPassword bound a password, in bytes.
	MinPassword = 8
	MaxPassword = 1024
	// MaxTeamMembers bounds the members of a team.
	MaxTeamMembers = 10000
	// MaxGrants bounds the roles granted to one user or team.
	MaxGrants = 2000
)

// SystemRole is a user's role over the whole system.
type SystemRole string

// System roles. A user with neither has only the object roles granted to
// them and their teams.
const (
	// SystemAdmin may do everything.
	SystemAdmin SystemRole = "admin"
	// SystemAuditor reads everything and changes nothing.
	SystemAuditor SystemRole = "auditor"
	// NoSystemRole is a plain user.
	NoSystemRole SystemRole = ""
)

// ParseSystemRole parses "admin", "auditor" or "none" (or "").
func ParseSystemRole(s string) (SystemRole, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "admin":
		return SystemAdmin, nil
	case "auditor":
		return SystemAuditor, nil
	case "", "none":
		return NoSystemRole, nil
	}
	return "", fmt.Errorf("%w: system role %q (want admin, auditor or none)", ErrInvalid, s)
}

// Role is a role on one object. Each role includes the ones below it:
// admin ⊃ execute ⊃ read.
type Role string

// Object roles.
const (
	// RoleRead sees the object (and, for a template, its jobs).
	RoleRead Role = "read"
	// RoleExecute also uses it: launches a template, relaunches and cancels
	// its jobs; uses an inventory, a project or a credential in a template,
	// updates a project.
	RoleExecute Role = "execute"
	// RoleAdmin also changes and deletes it and grants roles on it.
	RoleAdmin Role = "admin"
)

// Roles lists the object roles, weakest first.
var Roles = []Role{RoleRead, RoleExecute, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i + 1
		}
	}
	return 0
}

// Includes reports whether r grants at least what other does.
func (r Role) Includes(other Role) bool { return r.rank() >= other.rank() && other.rank() > 0 }

// ParseRole parses an object role.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.rank() == 0 {
		return "", fmt.Errorf("%w: role %q (want read, execute or admin)", ErrInvalid, s)
	}
	return r, nil
}

// ObjectKind is a kind of object roles are granted on.
type ObjectKind string

// Kinds of objects.
const (
	KindTemplate  ObjectKind = "template"
	KindInventory ObjectKind = "inventory"
	KindProject   ObjectKind = "project"
	// KindWorkflow is a workflow template (engine/workflow).
	KindWorkflow ObjectKind = "workflow"
	// KindCredential is a credential (engine/credential): execute is using
	// it in a template.
	KindCredential ObjectKind = "credential"
)

// ObjectKinds lists the kinds of objects roles are granted on.
var ObjectKinds = []ObjectKind{KindTemplate, KindInventory, KindProject, KindWorkflow, KindCredential}

// ParseObjectKind parses a kind of object.
func ParseObjectKind(s string) (ObjectKind, error) {
	k := ObjectKind(strings.ToLower(strings.TrimSpace(s)))
	for _, x := range ObjectKinds {
		if k == x {
			return k, nil
		}
	}
	names := make([]string, len(ObjectKinds))
	for i, x := range ObjectKinds {
		names[i] = string(x)
	}
	return "", fmt.Errorf("%w: object kind %q (want one of %s)", ErrInvalid, s, strings.Join(names, ", "))
}

// SubjectKind says who a grant is for.
type SubjectKind string

// Subjects of grants.
const (
	SubjectUser SubjectKind = "user"
	SubjectTeam SubjectKind = "team"
)

// ValidUserName checks a user or team name: an object name of at most
// MaxUserName bytes.
func ValidUserName(kind, name string) error {
	if err := configstore.ValidName(kind, name); err != nil {
		return err
	}
	if len(name) > MaxUserName {
		return fmt.Errorf("%w: %s name %q is over %d characters", ErrInvalid, kind, name, MaxUserName)
	}
	return nil
}

// Identity is how an authenticated user is named in job documents
// (created-by) and logs: "user/<name>".
func Identity(user string) string { return "user/" + user }
