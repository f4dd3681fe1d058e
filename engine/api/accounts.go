package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/distributor"
)

// Users and teams: system administrators manage them; auditors read them;
// a user sees itself and the teams it is in, changes its own description
// and password (giving its current one).

func (s *Server) userRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/users", handle: s.listUsers},
		{method: "POST", pattern: Prefix + "/users", handle: s.createUser},
		{method: "GET", pattern: Prefix + "/users/{name}", handle: s.showUser},
		{method: "PATCH", pattern: Prefix + "/users/{name}", handle: s.patchUser},
		{method: "DELETE", pattern: Prefix + "/users/{name}", handle: s.deleteUser},
		{method: "POST", pattern: Prefix + "/users/{name}/password", handle: s.setPassword},
	}
}

func userMeta(u access.UserView) named {
	return named{Name: u.Name, Description: u.Description, Created: u.Created, Updated: u.Updated}
}

func (s *Server) listUsers(rq *request) error {
	lp, f, err := rq.namedListParams("role")
	if err != nil {
		return err
	}
	role, err := access.ParseSystemRole(rq.param("role"))
	if err != nil {
		return badField("role", "%v", err)
	}
	all, _, err := s.access.ListUsers(rq.ctx)
	if err != nil {
		return err
	}
	var out []access.UserView
	for _, u := range all {
		if (rq.p.ReadsAll() || u.Name == rq.p.User) && (rq.param("role") == "" || u.Role == role) {
			out = append(out, u.View())
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, userMeta, f, lp))
}

// userInput is the body of POST /users and PATCH /users/{name}.
type userInput struct {
	Name        string             `json:"name"`
	Description *string            `json:"description"`
	Role        *access.SystemRole `json:"role"`
	Disabled    *bool              `json:"disabled"`
	// Password is the new user's password (POST only); absent: tokens
	// only.
	Password string `json:"password"`
}

func (s *Server) createUser(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a user needs a system administrator")
	}
	var in userInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := access.ValidUserName("user", in.Name); err != nil {
		return badField("name", "%v", err)
	}
	n := access.NewUser{Name: in.Name, Password: in.Password}
	if in.Description != nil {
		n.Description = *in.Description
	}
	if in.Role != nil {
		r, err := access.ParseSystemRole(string(*in.Role))
		if err != nil {
			return badField("role", "%v", err)
		}
		n.Role = r
	}
	if in.Disabled != nil {
		return badField("disabled", "a new user is enabled; disable it with PATCH")
	}
	if in.Password != "" {
		if err := access.ValidPassword(in.Password); err != nil {
			return badField("password", "%v", err)
		}
	}
	u, err := s.access.CreateUser(rq.ctx, n)
	if err != nil {
		return err // bad input 400, a name taken 409 (toError)
	}
	rq.w.Header().Set("Location", Prefix+"/users/"+u.Name)
	return rq.reply(http.StatusCreated, u.View())
}

// visibleUser reads a user the caller may see: itself, or anyone for a
// system administrator or auditor.
func (rq *request) visibleUser() (*access.User, error) {
	u, _, err := rq.visibleUserVersion()
	return u, err
}

// visibleUserVersion is visibleUser with the user's version.
func (rq *request) visibleUserVersion() (*access.User, int32, error) {
	name, err := rq.name("user")
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.ReadsAll() && name != rq.p.User {
		return nil, 0, notFound("user %s %v", name, configstore.ErrNotFound)
	}
	return rq.s.access.GetUser(rq.ctx, name)
}

func (s *Server) showUser(rq *request) error {
	return showVersioned(rq, rq.visibleUserVersion, (*access.User).View)
}

func (s *Server) patchUser(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	u, ver, err := rq.visibleUserVersion()
	if err != nil {
		return err
	}
	var in userInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	switch {
	case in.Name != "" && in.Name != u.Name:
		return badField("name", "the name of a user cannot change")
	case in.Password != "":
		return badField("password", "set a password with POST %s/users/%s/password", Prefix, u.Name)
	case !rq.p.IsAdmin() && (in.Role != nil || in.Disabled != nil):
		return forbidden("changing a user's role or disabling it needs a system administrator")
	case !rq.p.IsAdmin() && u.Name != rq.p.User:
		return forbidden("changing user %s needs a system administrator", u.Name)
	}
	if err := rq.ifMatch("user", u.Name, ver); err != nil {
		return err
	}
	if len(rq.r.Header.Values("If-Match")) == 0 {
		ver = -1
	}
	var role access.SystemRole
	if in.Role != nil {
		if role, err = access.ParseSystemRole(string(*in.Role)); err != nil {
			return badField("role", "%v", err)
		}
	}
	if in.Description != nil {
		if err := configstore.ValidDescription(*in.Description); err != nil {
			return badField("description", "%v", err)
		}
	}
	next, written, err := s.access.UpdateUserVersion(rq.ctx, u.Name, ver, func(u *access.User) error {
		if in.Description != nil {
			u.Description = *in.Description
		}
		if in.Role != nil {
			u.Role = role
		}
		if in.Disabled != nil {
			u.Disabled = *in.Disabled
		}
		return nil
	})
	if err != nil {
		return rq.conflicted(err, "user", u.Name)
	}
	rq.setETag(written)
	return rq.reply(http.StatusOK, next.View())
}

func (s *Server) deleteUser(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	u, err := rq.visibleUser()
	if err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("deleting a user needs a system administrator")
	}
	if u.Name == rq.p.User {
		return errorf(http.StatusConflict, "a system administrator cannot delete itself (another one can)")
	}
	if err := s.access.DeleteUser(rq.ctx, u.Name); err != nil {
		return err
	}
	return rq.noContent()
}

// passwordInput is the body of POST /users/{name}/password.
type passwordInput struct {
	Password string `json:"password"`
	// Current is the caller's current password, required when it sets its
	// own (a stolen session or token cannot take the account over).
	Current string `json:"current-password"`
}

func (s *Server) setPassword(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	u, err := rq.visibleUser()
	if err != nil {
		return err
	}
	if !rq.p.IsAdmin() && u.Name != rq.p.User {
		return forbidden("setting the password of %s needs a system administrator", u.Name)
	}
	var in passwordInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if err := access.ValidPassword(in.Password); err != nil {
		return badField("password", "%v", err)
	}
	if u.Name == rq.p.User && u.PasswordHash != "" {
		if _, err := s.access.Authenticate(rq.ctx, u.Name, in.Current); err != nil {
			if errors.Is(err, access.ErrBadCredentials) {
				return &Error{Status: http.StatusForbidden, Field: "current-password", Message: "current-password is wrong"}
			}
			return err
		}
	}
	if err := s.access.SetPassword(rq.ctx, u.Name, in.Password); err != nil {
		return err
	}
	return rq.noContent()
}

func (s *Server) teamRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/teams", handle: s.listTeams},
		{method: "POST", pattern: Prefix + "/teams", handle: s.createTeam},
		{method: "GET", pattern: Prefix + "/teams/{name}", handle: s.showTeam},
		{method: "PATCH", pattern: Prefix + "/teams/{name}", handle: s.patchTeam},
		{method: "DELETE", pattern: Prefix + "/teams/{name}", handle: s.deleteTeam},
		{method: "POST", pattern: Prefix + "/teams/{name}/members", handle: s.changeMembers},
	}
}

func teamMeta(t *access.Team) named {
	return named{Name: t.Name, Description: t.Description, Created: t.Created, Updated: t.Updated}
}

func (s *Server) listTeams(rq *request) error {
	lp, f, err := rq.namedListParams("member")
	if err != nil {
		return err
	}
	all, _, err := s.access.ListTeams(rq.ctx)
	if err != nil {
		return err
	}
	var out []*access.Team
	for _, t := range all {
		if (rq.p.ReadsAll() || t.HasMember(rq.p.User)) && (rq.param("member") == "" || t.HasMember(rq.param("member"))) {
			out = append(out, t)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, teamMeta, f, lp))
}

// teamInput is the body of POST /teams and PATCH /teams/{name}.
type teamInput struct {
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	Members     *[]string `json:"members"`
}

func (s *Server) createTeam(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a team needs a system administrator")
	}
	var in teamInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	t := &access.Team{Name: in.Name}
	if in.Description != nil {
		t.Description = *in.Description
	}
	if in.Members != nil {
		t.Members = *in.Members
	}
	if err := s.access.CreateTeam(rq.ctx, t); err != nil {
		return err // bad input 400, a name taken 409 (toError)
	}
	rq.w.Header().Set("Location", Prefix+"/teams/"+t.Name)
	return rq.reply(http.StatusCreated, t)
}

func (rq *request) visibleTeam() (*access.Team, error) {
	t, _, err := rq.visibleTeamVersion()
	return t, err
}

// visibleTeamVersion is visibleTeam with the team's version.
func (rq *request) visibleTeamVersion() (*access.Team, int32, error) {
	name, err := rq.name("team")
	if err != nil {
		return nil, 0, err
	}
	t, ver, err := rq.s.access.GetTeam(rq.ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if !rq.p.ReadsAll() && !t.HasMember(rq.p.User) {
		return nil, 0, notFound("team %s %v", name, configstore.ErrNotFound)
	}
	return t, ver, nil
}

func (s *Server) showTeam(rq *request) error {
	return showVersioned(rq, rq.visibleTeamVersion, same)
}

func (s *Server) patchTeam(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, ver, err := rq.visibleTeamVersion()
	if err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("changing team %s needs a system administrator", t.Name)
	}
	if err := rq.ifMatch("team", t.Name, ver); err != nil {
		return err
	}
	if len(rq.r.Header.Values("If-Match")) == 0 {
		ver = -1
	}
	var in teamInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != "" && in.Name != t.Name {
		return badField("name", "the name of a team cannot change")
	}
	next, written, err := s.access.UpdateTeamVersion(rq.ctx, t.Name, ver, func(t *access.Team) error {
		if in.Description != nil {
			t.Description = *in.Description
		}
		if in.Members != nil {
			t.Members = *in.Members
		}
		return nil
	})
	if err != nil {
		return rq.conflicted(err, "team", t.Name)
	}
	rq.setETag(written)
	return rq.reply(http.StatusOK, next)
}

// membersInput is the body of POST /teams/{name}/members: users to add
// and users to remove, in one change.
type membersInput struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

// changeMembers adds and removes members of a team in one
// compare-and-set on the team as it is, so that concurrent changes of
// other members are kept. Removing a user who is not a member is refused
// and changes nothing.
func (s *Server) changeMembers(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, err := rq.visibleTeam()
	if err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("changing the members of team %s needs a system administrator", t.Name)
	}
	var in membersInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if len(in.Add)+len(in.Remove) == 0 {
		return badField("add", "nothing to change: give users to add or remove")
	}
	for field, names := range map[string][]string{"add": in.Add, "remove": in.Remove} {
		for _, n := range names {
			if err := access.ValidUserName("user", n); err != nil {
				return badField(field, "%v", err)
			}
		}
	}
	next, written, err := s.access.UpdateTeamVersion(rq.ctx, t.Name, -1, func(t *access.Team) error {
		t.Members = append(t.Members, in.Add...)
		for _, u := range in.Remove {
			if !t.HasMember(u) {
				return badField("remove", "%s is not a member of team %s", u, t.Name)
			}
			t.Members = slices.DeleteFunc(t.Members, func(m string) bool { return m == u })
		}
		return nil
	})
	if err != nil {
		return err
	}
	rq.setETag(written)
	return rq.reply(http.StatusOK, next)
}

func (s *Server) deleteTeam(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, err := rq.visibleTeam()
	if err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("deleting team %s needs a system administrator", t.Name)
	}
	if err := s.access.DeleteTeam(rq.ctx, t.Name); err != nil {
		return err
	}
	return rq.noContent()
}

// Tokens: every user creates, lists and revokes its own; a system
// administrator also those of others; an auditor lists them all.

func (s *Server) tokenRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/tokens", handle: s.listTokens},
		{method: "POST", pattern: Prefix + "/tokens", handle: s.createToken},
		{method: "GET", pattern: Prefix + "/tokens/{id}", handle: s.showToken},
		{method: "DELETE", pattern: Prefix + "/tokens/{id}", handle: s.revokeToken},
	}
}

func (s *Server) listTokens(rq *request) error {
	if err := rq.query(append(slices.Clone(listParamNames), "user")...); err != nil {
		return err
	}
	lp, err := rq.parseList("created", "-created")
	if err != nil {
		return err
	}
	if err := rq.parseCursor(&lp); err != nil {
		return err
	}
	user := rq.param("user")
	if !rq.p.ReadsAll() {
		if user != "" && user != rq.p.User {
			return rq.reply(http.StatusOK, listPage[access.TokenView]{Items: []access.TokenView{}})
		}
		user = rq.p.User
	}
	toks, err := s.access.ListTokens(rq.ctx, user)
	if err != nil {
		return err
	}
	views := make([]access.TokenView, 0, len(toks))
	for _, t := range toks {
		views = append(views, t.View())
	}
	return rq.reply(http.StatusOK, pageOf(views, func(t access.TokenView) named { return named{Name: t.ID, Created: t.Created} }, nameFilter{}, lp))
}

// tokenInput is the body of POST /tokens.
type tokenInput struct {
	// User defaults to the caller; another user needs a system
	// administrator.
	User        string `json:"user"`
	Description string `json:"description"`
	// Expires is a lifetime such as 90d or 12h, or "never" (default 90d).
	Expires string `json:"expires"`
}

// newToken is the answer of POST /tokens: the token, shown this once.
type newToken struct {
	access.TokenView
	Token string `json:"token"`
}

func (s *Server) createToken(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	var in tokenInput
	if _, err := rq.decodeOptional(&in); err != nil {
		return err
	}
	if in.User == "" {
		in.User = rq.p.User
	}
	if in.User != rq.p.User && !rq.p.IsAdmin() {
		return forbidden("creating a token for %s needs a system administrator", in.User)
	}
	life := access.DefaultTokenLifetime
	switch in.Expires {
	case "":
	case "never":
		life = 0
	default:
		d, err := distributor.ParseDuration(in.Expires)
		if err != nil || d <= 0 {
			return badField("expires", "expires=%q: want a lifetime such as 90d or 12h, or never", in.Expires)
		}
		life = d
	}
	if len(in.Description) > 256 {
		return badField("description", "the description is over 256 bytes")
	}
	t, secret, err := s.access.CreateToken(rq.ctx, in.User, in.Description, life)
	if err != nil {
		return validated(err)
	}
	return rq.reply(http.StatusCreated, newToken{TokenView: t.View(), Token: secret})
}

func (rq *request) visibleToken() (*access.Token, error) {
	id := rq.r.PathValue("id")
	t, err := rq.s.access.GetToken(rq.ctx, id)
	if err != nil || !rq.p.ReadsAll() && t.User != rq.p.User {
		if err == nil || isNotFound(err) || errors.Is(err, configstore.ErrInvalid) {
			return nil, notFound("token %s %v", id, configstore.ErrNotFound)
		}
		return nil, err
	}
	return t, nil
}

func (s *Server) showToken(rq *request) error {
	return showOne(rq, rq.visibleToken, (*access.Token).View)
}

func (s *Server) revokeToken(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, err := rq.visibleToken()
	if err != nil {
		return err
	}
	if t.User != rq.p.User && !rq.p.IsAdmin() {
		return forbidden("revoking a token of %s needs a system administrator", t.User)
	}
	if err := s.access.RevokeToken(rq.ctx, t.ID); err != nil {
		return err
	}
	return rq.noContent()
}

// Grants: a system administrator grants anything; whoever holds the admin
// role on an object grants roles on it. A user sees the grants to itself
// and its teams and those on the objects it administers; an auditor sees
// them all.

func (s *Server) grantRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/grants", handle: s.listGrants},
		{method: "POST", pattern: Prefix + "/grants", handle: s.addGrant},
		{method: "DELETE", pattern: Prefix + "/grants/{id}", handle: s.removeGrant},
	}
}

// grantView is a grant with its id.
type grantView struct {
	ID string `json:"id"`
	access.Grant
}

func (rq *request) seesGrant(g access.Grant) bool {
	p := rq.p
	return p.ReadsAll() || g.SubjectKind == access.SubjectUser && g.Subject == p.User ||
		g.SubjectKind == access.SubjectTeam && p.InTeam(g.Subject) || p.Can(g.Kind, g.Object, access.RoleAdmin)
}

func (s *Server) listGrants(rq *request) error {
	if err := rq.query(append(slices.Clone(listParamNames), "user", "team", "kind", "object")...); err != nil {
		return err
	}
	lp, err := rq.parseList("id", "-id")
	if err != nil {
		return err
	}
	if err := rq.parseCursor(&lp); err != nil {
		return err
	}
	var f access.GrantFilter
	switch u, t := rq.param("user"), rq.param("team"); {
	case u != "" && t != "":
		return badField("team", "user and team: give one")
	case u != "":
		f.SubjectKind, f.Subject = access.SubjectUser, u
	case t != "":
		f.SubjectKind, f.Subject = access.SubjectTeam, t
	}
	if v := rq.param("kind"); v != "" {
		k, err := access.ParseObjectKind(v)
		if err != nil {
			return badField("kind", "%v", err)
		}
		f.Kind = k
	}
	f.Object = rq.param("object")
	all, err := s.access.ListGrants(rq.ctx, f)
	if err != nil {
		return err
	}
	var out []grantView
	for _, g := range all {
		if rq.seesGrant(g) {
			out = append(out, grantView{ID: g.ID(), Grant: g})
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(g grantView) named { return named{Name: g.ID} }, nameFilter{}, lp))
}

func (rq *request) grantAllowed(g access.Grant) error {
	if rq.p.IsAdmin() || rq.p.Can(g.Kind, g.Object, access.RoleAdmin) {
		return nil
	}
	if rq.p.Can(g.Kind, g.Object, access.RoleRead) {
		return forbidden("granting roles on %s %s needs the admin role on it", g.Kind, g.Object)
	}
	return notFound("%s %s %v", g.Kind, g.Object, configstore.ErrNotFound)
}

func (s *Server) addGrant(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	var g access.Grant
	if err := rq.decode(&g); err != nil {
		return err
	}
	if err := g.Validate(); err != nil {
		return validated(err)
	}
	if err := rq.grantAllowed(g); err != nil {
		return err
	}
	if err := s.access.AddGrant(rq.ctx, g); err != nil {
		return validated(err)
	}
	return rq.reply(http.StatusCreated, grantView{ID: g.ID(), Grant: g})
}

func (s *Server) removeGrant(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	g, err := access.ParseGrantID(rq.r.PathValue("id"))
	if err != nil {
		return notFound("grant %s %v", rq.r.PathValue("id"), configstore.ErrNotFound)
	}
	if err := rq.grantAllowed(g); err != nil {
		return err
	}
	if err := s.access.RemoveGrant(rq.ctx, g); err != nil {
		return err
	}
	return rq.noContent()
}
