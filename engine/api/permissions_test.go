package api

import (
	"net/http"
	"testing"

	"github.com/jobengine/jobengine/engine/access"
)

// users in the order the matrix runs them: each row is sent by every one
// of them, the administrator last (its writes change what comes next).
var matrixUsers = []string{uAnon, uNobody, uCarol, uAuditor, uAdmin}

// w lists the expected statuses for anonymous, nobody, carol, auditor and
// admin.
func w(anon, nobody, carol, auditor, admin int) []int {
	return []int{anon, nobody, carol, auditor, admin}
}

// TestPermissionMatrix sends every endpoint as each kind of caller — no
// credentials, a user with no grant, carol (execute on template web, read
// on inventory hosts, then on workflow wf and credential c-new), an
// auditor, an administrator — and checks each
// status: 401 without credentials, 404 for what the caller may not see,
// 403 for what it sees but may not do.
func TestPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	e.withCredentialKey()
	const (
		ok  = http.StatusOK
		cr  = http.StatusCreated
		nc  = http.StatusNoContent
		un  = http.StatusUnauthorized
		fb  = http.StatusForbidden
		nf  = http.StatusNotFound
		all = ok
	)
	inv := `{"web": {"hosts": ["w1", "w2", "w3"]}, "ungrouped": {"hosts": ["d1"]}}`
	rows := []struct {
		method, path string
		body         any
		want         []int
	}{
		{"GET", "/healthz", nil, w(ok, ok, ok, ok, ok)},
		{"GET", Prefix + "/ping", nil, w(ok, ok, ok, ok, ok)},
		{"GET", Prefix + "/openapi.json", nil, w(ok, ok, ok, ok, ok)},
		{"GET", Prefix + "/me", nil, w(un, ok, ok, ok, ok)},
		// Jobs.
		{"GET", Prefix + "/jobs", nil, w(un, all, all, all, all)},
		{"GET", Prefix + "/jobs/" + uid(f.container), nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/jobs/" + uid(f.slices[0]), nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/jobs/" + uid(f.dbJob), nil, w(un, nf, nf, ok, ok)},
		{"GET", Prefix + "/jobs/" + uid(f.slices[1]) + "/logs", nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/jobs/" + uid(f.dbJob) + "/events", nil, w(un, nf, nf, ok, ok)},
		{"POST", Prefix + "/jobs/" + uid(f.container) + "/relaunch", nil, w(un, nf, cr, fb, cr)},
		{"POST", Prefix + "/jobs/" + uid(f.dbJob) + "/relaunch", nil, w(un, nf, nf, fb, cr)},
		{"POST", Prefix + "/jobs/" + uid(f.dbJob) + "/retry", nil, w(un, nf, nf, fb, http.StatusConflict)},
		{"POST", Prefix + "/jobs/" + uid(f.dbJob) + "/cancel", nil, w(un, nf, nf, fb, ok)},
		{"DELETE", Prefix + "/jobs/" + uid(f.dbJob), nil, w(un, nf, nf, fb, ok)},
		// Templates.
		{"GET", Prefix + "/templates", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/templates/web", nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/templates/db", nil, w(un, nf, nf, ok, ok)},
		{"POST", Prefix + "/templates", map[string]any{"name": "t-new", "action": "echo"}, w(un, fb, fb, fb, cr)},
		{"PATCH", Prefix + "/templates/web", map[string]any{"description": "the web tier"}, w(un, nf, fb, fb, ok)},
		{"PUT", Prefix + "/templates/db", map[string]any{"action": "echo", "priority": 10}, w(un, nf, nf, fb, ok)},
		{"POST", Prefix + "/templates/web/launch", map[string]any{"limit": "w*"}, w(un, nf, cr, fb, cr)},
		{"POST", Prefix + "/templates/db/launch", nil, w(un, nf, nf, fb, cr)},
		{"DELETE", Prefix + "/templates/t-new", nil, w(un, nf, nf, fb, nc)},
		// Workflow templates: carol is given execute on wf.
		{"POST", Prefix + "/workflows", map[string]any{"name": "wf", "nodes": []any{map[string]any{"id": "a", "template": "db"}}}, w(un, fb, fb, fb, cr)},
		{"POST", Prefix + "/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindWorkflow, Object: "wf", Role: access.RoleExecute}, w(un, nf, nf, fb, cr)},
		{"GET", Prefix + "/workflows", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/workflows/wf", nil, w(un, nf, ok, ok, ok)},
		{"PUT", Prefix + "/workflows/wf", map[string]any{"nodes": []any{map[string]any{"id": "b", "template": "db"}}}, w(un, nf, fb, fb, ok)},
		{"PATCH", Prefix + "/workflows/wf", map[string]any{"description": "one node"}, w(un, nf, fb, fb, ok)},
		{"POST", Prefix + "/workflows/wf/launch", nil, w(un, nf, cr, fb, cr)},
		{"POST", Prefix + "/workflows", map[string]any{"name": "wf-new", "nodes": []any{map[string]any{"id": "a", "template": "db"}}}, w(un, fb, fb, fb, cr)},
		{"DELETE", Prefix + "/workflows/wf-new", nil, w(un, nf, nf, fb, nc)},
		// Inventories.
		{"GET", Prefix + "/inventories", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/inventories/hosts", nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/inventories/hosts/hosts", nil, w(un, nf, ok, ok, ok)},
		{"GET", Prefix + "/inventories/hosts/script?subset=slice1of2", nil, w(un, nf, ok, ok, ok)},
		{"PATCH", Prefix + "/inventories/hosts", map[string]any{"description": "all hosts"}, w(un, nf, fb, fb, ok)},
		{"POST", Prefix + "/inventories/hosts/import", inv, w(un, nf, fb, fb, ok)},
		{"PATCH", Prefix + "/inventories/hosts/hosts/w1", map[string]any{"enabled": true}, w(un, nf, fb, fb, ok)},
		{"POST", Prefix + "/inventories", map[string]any{"name": "i-new"}, w(un, fb, fb, fb, cr)},
		{"POST", Prefix + "/inventories/i-other/import", inv, w(un, nf, nf, fb, cr)},
		{"DELETE", Prefix + "/inventories/i-new", nil, w(un, nf, nf, fb, nc)},
		// Projects.
		{"GET", Prefix + "/projects", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/projects/site", nil, w(un, nf, nf, ok, ok)},
		{"POST", Prefix + "/projects/site/update", nil, w(un, nf, nf, fb, cr)},
		{"POST", Prefix + "/projects", map[string]any{"name": "p-new", "kind": "git", "url": "https://example.invalid/r.git"}, w(un, fb, fb, fb, cr)},
		{"PATCH", Prefix + "/projects/site", map[string]any{"description": "the site"}, w(un, nf, nf, fb, ok)},
		{"PUT", Prefix + "/projects/p-new", map[string]any{"kind": "directory", "directory": "/srv/p"}, w(un, nf, nf, fb, ok)},
		{"DELETE", Prefix + "/projects/p-new", nil, w(un, nf, nf, fb, nc)},
		// Instances.
		{"GET", Prefix + "/instances", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/instance-groups", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/instance-groups/default", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/instances/nowhere", nil, w(un, nf, nf, nf, nf)},
		{"GET", Prefix + "/cluster", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/cluster/activity", nil, w(un, ok, ok, ok, ok)},
		// Schedules: carol may schedule web (execute), not a plain job.
		{"POST", Prefix + "/schedules", map[string]any{"name": "s-web", "cron": "0 9 * * 1", "launch": map[string]any{"template": "web"}}, w(un, nf, cr, fb, http.StatusConflict)},
		{"GET", Prefix + "/schedules", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/schedules/s-web", nil, w(un, nf, ok, ok, ok)},
		{"PATCH", Prefix + "/schedules/s-web", map[string]any{"enabled": false}, w(un, nf, ok, fb, ok)},
		{"POST", Prefix + "/schedules", map[string]any{"name": "s-job", "cron": "0 9 * * 1", "launch": map[string]any{"job": map[string]any{"action": "echo"}}}, w(un, fb, fb, fb, cr)},
		{"GET", Prefix + "/schedules/s-job", nil, w(un, nf, nf, ok, ok)},
		{"DELETE", Prefix + "/schedules/s-job", nil, w(un, nf, nf, fb, nc)},
		{"DELETE", Prefix + "/schedules/s-web", nil, w(un, nf, nc, nf, nf)},
		// Notification templates and credentials: administrators and auditors.
		{"GET", Prefix + "/notification-templates", nil, w(un, fb, fb, ok, ok)},
		{"POST", Prefix + "/notification-templates", map[string]any{"name": "n-hook", "kind": "webhook", "webhook": map[string]any{"url": "https://example.invalid/hook"}, "secret": "s3cret-value"}, w(un, fb, fb, fb, cr)},
		{"GET", Prefix + "/notification-templates/n-hook", nil, w(un, fb, fb, ok, ok)},
		{"PATCH", Prefix + "/notification-templates/n-hook", map[string]any{"description": "the hook"}, w(un, nf, nf, fb, ok)},
		{"PUT", Prefix + "/notification-templates/n-hook", map[string]any{"kind": "webhook", "webhook": map[string]any{"url": "https://example.invalid/other"}}, w(un, nf, nf, fb, ok)},
		// Attachments, tests and notices: administrators change, auditors read.
		{"POST", Prefix + "/notification-templates/n-hook/attachments", map[string]any{"kind": "template", "target": "web", "events": []string{"failure", "success"}}, w(un, nf, nf, fb, ok)},
		{"GET", Prefix + "/notification-templates/n-hook/attachments", nil, w(un, fb, fb, ok, ok)},
		{"GET", Prefix + "/notification-attachments", nil, w(un, fb, fb, ok, ok)},
		{"DELETE", Prefix + "/notification-templates/n-hook/attachments/template/web?events=failure", nil, w(un, nf, nf, fb, nc)},
		{"DELETE", Prefix + "/notification-templates/n-hook/attachments/template/web", nil, w(un, nf, nf, fb, nc)},
		{"POST", Prefix + "/notification-templates", map[string]any{"name": "n-cmd", "kind": "command", "command": map[string]any{"argv": []string{"/bin/true"}}}, w(un, fb, fb, fb, cr)},
		{"POST", Prefix + "/notification-templates/n-cmd/test", nil, w(un, nf, nf, fb, ok)},
		{"DELETE", Prefix + "/notification-templates/n-cmd", nil, w(un, nf, nf, fb, nc)},
		{"GET", Prefix + "/notifications?state=failed", nil, w(un, fb, fb, ok, ok)},
		{"GET", Prefix + "/notifications?state=pending", nil, w(un, fb, fb, ok, ok)},
		{"POST", Prefix + "/notifications/retry", nil, w(un, fb, fb, fb, ok)},
		{"DELETE", Prefix + "/notification-templates/n-hook", nil, w(un, nf, nf, fb, nc)},
		// Credentials: carol is given execute on c-new; each sees those it
		// may read.
		{"GET", Prefix + "/credentials", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/credentials/nowhere", nil, w(un, nf, nf, nf, nf)},
		{"POST", Prefix + "/credentials", map[string]any{"name": "c-new", "kind": "vault", "secrets": map[string]any{"vault-password": "pw"}}, w(un, fb, fb, fb, cr)},
		{"POST", Prefix + "/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindCredential, Object: "c-new", Role: access.RoleExecute}, w(un, nf, nf, fb, cr)},
		{"GET", Prefix + "/credentials/c-new", nil, w(un, nf, ok, ok, ok)},
		{"PATCH", Prefix + "/credentials/c-new", map[string]any{"description": "the vault"}, w(un, nf, fb, fb, ok)},
		{"PUT", Prefix + "/credentials/c-new", map[string]any{"kind": "vault", "vault-id": "prod"}, w(un, nf, fb, fb, ok)},
		{"DELETE", Prefix + "/credentials/c-new", nil, w(un, nf, fb, fb, nc)},
		{"GET", Prefix + "/credentials/c-new", nil, w(un, nf, nf, nf, nf)},
		// Users and teams.
		{"GET", Prefix + "/users", nil, w(un, ok, ok, ok, ok)},
		{"GET", Prefix + "/users/admin", nil, w(un, nf, nf, ok, ok)},
		{"GET", Prefix + "/users/carol", nil, w(un, nf, ok, ok, ok)},
		{"POST", Prefix + "/users", map[string]any{"name": "u-new", "password": "u-new-password"}, w(un, fb, fb, fb, cr)},
		{"PATCH", Prefix + "/users/u-new", map[string]any{"role": "auditor"}, w(un, nf, nf, fb, ok)},
		{"PATCH", Prefix + "/users/carol", map[string]any{"role": "admin"}, w(un, nf, fb, fb, ok)},
		// carol is an administrator now, and makes itself a plain user again.
		{"PATCH", Prefix + "/users/carol", map[string]any{"role": "none"}, w(un, nf, ok, fb, ok)},
		{"POST", Prefix + "/users/u-new/password", map[string]any{"password": "another-password"}, w(un, nf, nf, fb, nc)},
		{"DELETE", Prefix + "/users/u-new", nil, w(un, nf, nf, fb, nc)},
		{"POST", Prefix + "/teams", map[string]any{"name": "team-new", "members": []string{"carol"}}, w(un, fb, fb, fb, cr)},
		{"GET", Prefix + "/teams/team-new", nil, w(un, nf, ok, ok, ok)},
		{"PATCH", Prefix + "/teams/team-new", map[string]any{"description": "d"}, w(un, nf, fb, fb, ok)},
		{"POST", Prefix + "/teams/team-new/members", map[string]any{"add": []string{"auditor"}}, w(un, nf, fb, fb, ok)},
		{"DELETE", Prefix + "/teams/team-new", nil, w(un, nf, fb, fb, nc)},
		// Tokens.
		{"GET", Prefix + "/tokens", nil, w(un, ok, ok, ok, ok)},
		{"POST", Prefix + "/tokens", map[string]any{"description": "mine"}, w(un, cr, cr, cr, cr)},
		{"POST", Prefix + "/tokens", map[string]any{"user": "carol"}, w(un, fb, cr, fb, cr)},
		// Grants: carol sees web but does not administer it.
		{"GET", Prefix + "/grants", nil, w(un, ok, ok, ok, ok)},
		{"POST", Prefix + "/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uNobody, Kind: access.KindTemplate, Object: "web", Role: access.RoleRead}, w(un, nf, fb, fb, cr)},
		// nobody now reads web, so sees it.
		{"DELETE", Prefix + "/grants/user:nobody:template:web:read", nil, w(un, fb, fb, fb, nc)},
		// Unknown routes and methods.
		{"GET", Prefix + "/nothing", nil, w(nf, nf, nf, nf, nf)},
		{"DELETE", Prefix + "/jobs", nil, w(405, 405, 405, 405, 405)},
	}
	for _, row := range rows {
		for i, user := range matrixUsers {
			r := e.do(user, row.method, row.path, row.body)
			if r.status != row.want[i] {
				t.Errorf("%s %s as %q: %d, want %d: %s", row.method, row.path, user, r.status, row.want[i], r.body)
				continue
			}
			if r.status >= 400 {
				var ae Error
				r.json(t, &ae)
				if ae.Message == "" {
					t.Errorf("%s %s as %q: %d without a message: %s", row.method, row.path, user, r.status, r.body)
				}
			}
		}
	}
}

// TestSlicedJobVisibility checks that a user without rights on a template
// sees none of its sliced jobs — not in lists, not by id, not their logs —
// while the auditor and a user who may read the template see the
// container and every slice.
func TestSlicedJobVisibility(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	count := func(user, query string) int {
		var p jobPage
		e.must(200, user, "GET", Prefix+"/jobs"+query, nil).json(t, &p)
		return len(p.Items)
	}
	for user, want := range map[string]int{uNobody: 0, uCarol: 3, uAuditor: 4, uAdmin: 4} {
		if got := count(user, ""); got != want {
			t.Errorf("%s lists %d jobs, want %d", user, got, want)
		}
	}
	for user, want := range map[string]int{uNobody: 0, uCarol: 2, uAuditor: 2} {
		if got := count(user, "?slices-of="+uid(f.container)); got != want {
			t.Errorf("%s lists %d slices, want %d", user, got, want)
		}
	}
	if got := count(uNobody, "?template=web"); got != 0 {
		t.Errorf("nobody lists %d jobs of web", got)
	}
	// A job nobody launched itself is visible to it.
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uNobody, Kind: access.KindTemplate, Object: "db", Role: access.RoleExecute})
	var l launched
	e.must(201, uNobody, "POST", Prefix+"/templates/db/launch", nil).json(t, &l)
	if l.Job.CreatedBy != "user/nobody" {
		t.Errorf("created-by is %q, want the authenticated user", l.Job.CreatedBy)
	}
	e.must(204, uAdmin, "DELETE", Prefix+"/grants/user:nobody:template:db:execute", nil)
	e.must(200, uNobody, "GET", Prefix+"/jobs/"+uid(l.Job.ID), nil)
	e.must(404, uNobody, "GET", Prefix+"/jobs/"+uid(f.dbJob), nil)
	if got := count(uNobody, ""); got != 1 {
		t.Errorf("nobody lists %d jobs, want its own one", got)
	}
	// Carol may cancel web's slices; nobody's own job it may cancel too.
	e.must(200, uCarol, "POST", Prefix+"/jobs/"+uid(f.slices[0])+"/cancel", nil)
	e.must(200, uNobody, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/cancel", nil)
	e.must(409, uNobody, "POST", Prefix+"/jobs/"+uid(l.Job.ID)+"/cancel", nil)
}

// TestAuthentication covers basic credentials, bad tokens, sessions with
// their CSRF token, and logout.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	get := func(mod func(*http.Request)) int {
		req, _ := http.NewRequest("GET", e.srv.URL+Prefix+"/me", nil)
		mod(req)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for name, c := range map[string]struct {
		mod  func(*http.Request)
		want int
	}{
		"basic":          {func(r *http.Request) { r.SetBasicAuth("carol", "carol-password") }, 200},
		"basic wrong":    {func(r *http.Request) { r.SetBasicAuth("carol", "carol-passwore") }, 401},
		"basic unknown":  {func(r *http.Request) { r.SetBasicAuth("zed", "carol-password") }, 401},
		"bearer garbage": {func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		"bearer revoked": {func(r *http.Request) { r.Header.Set("Authorization", "Bearer jet_0123456789abcdef_xxxxxxxx") }, 401},
		"other scheme":   {func(r *http.Request) { r.Header.Set("Authorization", "Digest x") }, 401},
		"nothing":        {func(r *http.Request) {}, 401},
	} {
		if got := get(c.mod); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	// Login: a session cookie and a CSRF token.
	e.must(401, uAnon, "POST", Prefix+"/login", map[string]string{"username": "carol", "password": "wrong-password"})
	e.must(400, uAnon, "POST", Prefix+"/login", map[string]string{"username": "carol"})
	r := e.must(200, uAnon, "POST", Prefix+"/login", map[string]string{"username": "carol", "password": "carol-password"})
	var lr loginReply
	r.json(t, &lr)
	var session *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || lr.CSRFToken == "" {
		t.Fatalf("session cookie %+v, reply %+v", session, lr)
	}
	send := func(method, path, csrf string) int {
		req, _ := http.NewRequest(method, e.srv.URL+path, nil)
		req.AddCookie(session)
		if csrf != "" {
			req.Header.Set(CSRFHeader, csrf)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := send("GET", Prefix+"/me", ""); got != 200 {
		t.Errorf("GET with the session: %d", got)
	}
	if got := send("POST", Prefix+"/logout", ""); got != 403 {
		t.Errorf("POST with the session and no CSRF token: %d, want 403", got)
	}
	if got := send("POST", Prefix+"/logout", "forged"); got != 403 {
		t.Errorf("POST with a forged CSRF token: %d, want 403", got)
	}
	if got := send("POST", Prefix+"/logout", lr.CSRFToken); got != 204 {
		t.Errorf("logout: %d, want 204", got)
	}
	if got := send("GET", Prefix+"/me", ""); got != 401 {
		t.Errorf("GET after logout: %d, want 401", got)
	}
	// A revoked token stops at once.
	var tok newToken
	e.must(201, uCarol, "POST", Prefix+"/tokens", map[string]any{"expires": "1d"}).json(t, &tok)
	e.tokens["carol2"] = tok.Token
	e.must(200, "carol2", "GET", Prefix+"/me", nil)
	e.must(204, uCarol, "DELETE", Prefix+"/tokens/"+tok.ID, nil)
	e.must(401, "carol2", "GET", Prefix+"/me", nil)
	// Changing one's own password needs the current one.
	e.must(403, uCarol, "POST", Prefix+"/users/carol/password", map[string]any{"password": "new-password-1", "current-password": "wrong"})
	e.must(204, uCarol, "POST", Prefix+"/users/carol/password", map[string]any{"password": "new-password-1", "current-password": "carol-password"})
	if got := get(func(r *http.Request) { r.SetBasicAuth("carol", "new-password-1") }); got != 200 {
		t.Errorf("the new password: %d", got)
	}
}

// TestCredentialUse: pointing a template at a credential needs the execute
// role on it, even for the template's administrator; a credential already
// there stays when the role is taken back; execute includes read.
func TestCredentialUse(t *testing.T) {
	e := newEnv(t)
	e.setup()
	e.withCredentialKey()
	e.must(201, uAdmin, "POST", Prefix+"/credentials", map[string]any{"name": "deploy", "kind": "machine", "username": "deploy", "secrets": map[string]any{"password": "deploy-password"}})
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindTemplate, Object: "web", Role: access.RoleAdmin})
	r := e.must(403, uCarol, "PATCH", Prefix+"/templates/web", map[string]any{"credentials": []string{"deploy"}})
	var ae Error
	r.json(t, &ae)
	if ae.Field != "credentials" {
		t.Fatalf("the refusal names field %q: %s", ae.Field, r.body)
	}
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	e.must(200, uCarol, "GET", Prefix+"/credentials", nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("carol lists credentials %+v before any grant", page.Items)
	}
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindCredential, Object: "deploy", Role: access.RoleExecute})
	e.must(200, uCarol, "GET", Prefix+"/credentials", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "deploy" {
		t.Fatalf("carol lists credentials %+v with execute on deploy", page.Items)
	}
	e.must(200, uCarol, "PATCH", Prefix+"/templates/web", map[string]any{"credentials": []string{"deploy"}})
	e.must(204, uAdmin, "DELETE", Prefix+"/grants/user:carol:credential:deploy:execute", nil)
	e.must(200, uCarol, "PATCH", Prefix+"/templates/web", map[string]any{"description": "keeps its credential"})
	e.must(404, uCarol, "GET", Prefix+"/credentials/deploy", nil)
	// Deleting a credential takes back the roles on it.
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindCredential, Object: "deploy", Role: access.RoleRead})
	e.must(200, uAdmin, "PATCH", Prefix+"/templates/web", map[string]any{"credentials": []string{}})
	e.must(204, uAdmin, "DELETE", Prefix+"/credentials/deploy", nil)
	var grants struct {
		Items []any `json:"items"`
	}
	e.must(200, uAdmin, "GET", Prefix+"/grants?kind=credential", nil).json(t, &grants)
	if len(grants.Items) != 0 {
		t.Fatalf("grants on a deleted credential: %+v", grants.Items)
	}
}
