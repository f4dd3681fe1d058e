package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// doIf sends a request as user with If-Match: ifMatch (none when empty).
func (e *env) doIf(user, method, path, ifMatch string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: data, header: res.Header}
}

// TestIfMatch: the GET of every object that PUT or PATCH change answers
// its version as ETag; a write with If-Match of that version is applied
// and answers the next version; a write with a stale If-Match is refused
// with 412 naming the object, and writes nothing; a write without
// If-Match applies as before. Two clients that read the same version and
// change different fields: the second is refused, reads again, reapplies
// its change, and both changes are kept.
func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	e.setup()
	e.withCredentialKey()
	e.must(201, uAdmin, "POST", Prefix+"/schedules", map[string]any{"name": "nightly", "cron": "0 2 * * *", "launch": map[string]any{"template": "db"}})
	e.must(201, uAdmin, "POST", Prefix+"/workflows", map[string]any{"name": "flow", "nodes": []any{map[string]any{"id": "a", "template": "db"}}})
	e.must(201, uAdmin, "POST", Prefix+"/credentials", map[string]any{"name": "key1", "kind": "secret", "secrets": map[string]any{"values": map[string]string{"TOKEN": "s3cret"}}})
	e.must(201, uAdmin, "POST", Prefix+"/users", map[string]any{"name": "dave"})
	e.must(201, uAdmin, "POST", Prefix+"/teams", map[string]any{"name": "ops"})
	e.must(201, uAdmin, "PUT", Prefix+"/inventories/hosts/source", map[string]any{"project": "site", "path": "inv.py"})
	e.must(201, uAdmin, "POST", Prefix+"/notification-templates", map[string]any{"name": "hook", "kind": "webhook", "webhook": map[string]any{"url": "https://example.invalid/hook"}, "secret": "first"})

	for _, c := range []struct {
		kind, path, method string
		// first and second change different fields; field and want
		// find them in the GET's answer.
		first, second map[string]any
		want          []string
	}{
		{"template", "/templates/db", "PATCH", map[string]any{"description": "one"}, map[string]any{"limit": "w1"}, []string{`"description":"one"`, `"limit":"w1"`}},
		{"schedule", "/schedules/nightly", "PATCH", map[string]any{"description": "one"}, map[string]any{"cron": "0 3 * * *"}, []string{`"description":"one"`, `"cron":"0 3 * * *"`}},
		{"workflow", "/workflows/flow", "PATCH", map[string]any{"description": "one"}, map[string]any{"nodes": []any{map[string]any{"id": "b", "template": "db"}}}, []string{`"description":"one"`, `"id":"b"`}},
		{"credential", "/credentials/key1", "PATCH", map[string]any{"description": "one"}, map[string]any{"secrets": map[string]any{"values": map[string]string{"OTHER": "x"}}}, []string{`"description":"one"`, `"value:OTHER"`}},
		{"inventory", "/inventories/hosts", "PATCH", map[string]any{"description": "one"}, map[string]any{"instance-groups": []string{"g1"}}, []string{`"description":"one"`, `"instance-groups":["g1"]`}},
		{"project", "/projects/site", "PATCH", map[string]any{"description": "one"}, map[string]any{"update-on-launch": true}, []string{`"description":"one"`, `"update-on-launch":true`}},
		{"user", "/users/dave", "PATCH", map[string]any{"description": "one"}, map[string]any{"role": "auditor"}, []string{`"description":"one"`, `"role":"auditor"`}},
		{"team", "/teams/ops", "PATCH", map[string]any{"description": "one"}, map[string]any{"members": []string{"carol"}}, []string{`"description":"one"`, `"members":["carol"]`}},
		{"notification template", "/notification-templates/hook", "PATCH", map[string]any{"description": "one"}, map[string]any{"webhook": map[string]any{"url": "https://example.invalid/other"}}, []string{`"description":"one"`, `example.invalid/other`}},
		{"inventory", "/inventories/hosts/source", "PATCH", map[string]any{"path": "other.py"}, map[string]any{"update-on-launch": true}, []string{`"path":"other.py"`, `"update-on-launch":true`}},
	} {
		t.Run(strings.TrimPrefix(c.path, "/"), func(t *testing.T) {
			path := Prefix + c.path
			get := func() (string, string) {
				r := e.must(200, uAdmin, "GET", path, nil)
				tag := r.header.Get("ETag")
				if !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 3 {
					t.Fatalf("GET %s: ETag %q, want a quoted version", path, tag)
				}
				return tag, string(compact(t, r.body))
			}
			// Two clients read the same version.
			tag, _ := get()
			r := e.doIf(uAdmin, c.method, path, tag, c.first)
			if r.status != http.StatusOK {
				t.Fatalf("%s %s with If-Match %s: %d\n%s", c.method, path, tag, r.status, r.body)
			}
			next, afterFirst := get()
			if next == tag || r.header.Get("ETag") != next {
				t.Fatalf("after a write: ETag %q, answered %q, was %q", next, r.header.Get("ETag"), tag)
			}
			// The second client's write, at the version it read: 412,
			// nothing written.
			r = e.doIf(uAdmin, c.method, path, tag, c.second)
			var ae Error
			if r.status != http.StatusPreconditionFailed {
				t.Fatalf("%s %s with a stale If-Match: %d, want 412\n%s", c.method, path, r.status, r.body)
			}
			r.json(t, &ae)
			name := c.path[strings.LastIndex(strings.TrimSuffix(c.path, "/source"), "/")+1:]
			name = strings.TrimSuffix(name, "/source")
			if !strings.Contains(ae.Message, c.kind+" "+name) || !strings.Contains(ae.Message, "read it again") {
				t.Fatalf("the 412 says %q: want it to name %s %s and to say to read it again", ae.Message, c.kind, name)
			}
			if again, now := get(); again != next || now != afterFirst {
				t.Fatalf("a refused write changed the object: ETag %s (was %s)\n%s\nwas\n%s", again, next, now, afterFirst)
			}
			// It reads again and reapplies its change: both are kept.
			r = e.doIf(uAdmin, c.method, path, next, c.second)
			if r.status != http.StatusOK {
				t.Fatalf("%s %s with If-Match %s: %d\n%s", c.method, path, next, r.status, r.body)
			}
			_, final := get()
			for _, w := range c.want {
				if !strings.Contains(final, w) {
					t.Errorf("%s after both changes does not hold %s:\n%s", path, w, final)
				}
			}
			// Without If-Match, or with *, a write applies as before; a
			// weak or unknown tag never matches.
			e.must(200, uAdmin, c.method, path, c.first)
			if r := e.doIf(uAdmin, c.method, path, "*", c.first); r.status != http.StatusOK {
				t.Fatalf("If-Match *: %d\n%s", r.status, r.body)
			}
			cur, _ := get()
			for _, bad := range []string{"W/" + cur, `"999999"`, `"x", ` + `"1000000"`} {
				if r := e.doIf(uAdmin, c.method, path, bad, c.first); r.status != http.StatusPreconditionFailed {
					t.Fatalf("If-Match %s: %d, want 412\n%s", bad, r.status, r.body)
				}
			}
			if r := e.doIf(uAdmin, c.method, path, `"x", `+cur, c.first); r.status != http.StatusOK {
				t.Fatalf("If-Match naming the version among others: %d\n%s", r.status, r.body)
			}
		})
	}
	// A PUT honours If-Match as a PATCH does.
	tag := e.must(200, uAdmin, "GET", Prefix+"/templates/web", nil).header.Get("ETag")
	e.must(200, uAdmin, "PATCH", Prefix+"/templates/web", map[string]any{"description": "moved"})
	if r := e.doIf(uAdmin, "PUT", Prefix+"/templates/web", tag, map[string]any{"action": "echo"}); r.status != http.StatusPreconditionFailed {
		t.Fatalf("PUT with a stale If-Match: %d\n%s", r.status, r.body)
	}
	// Members added and removed in one change of the team as it is: no
	// version needed, other members kept; removing a non-member changes
	// nothing.
	e.must(201, uAdmin, "POST", Prefix+"/teams", map[string]any{"name": "dev", "members": []string{"carol"}})
	var team struct {
		Members []string `json:"members"`
	}
	r := e.must(200, uAdmin, "POST", Prefix+"/teams/dev/members", map[string]any{"add": []string{"dave", "auditor"}, "remove": []string{"carol"}})
	r.json(t, &team)
	if strings.Join(team.Members, ",") != "auditor,dave" || r.header.Get("ETag") == "" {
		t.Fatalf("members after the change: %v (ETag %q)", team.Members, r.header.Get("ETag"))
	}
	before := e.must(200, uAdmin, "GET", Prefix+"/teams/dev", nil)
	for _, c := range []struct {
		user string
		body any
		want int
	}{
		{uAdmin, map[string]any{"add": []string{"nobody"}, "remove": []string{"carol"}}, 400},
		{uAdmin, map[string]any{"add": []string{"ghost"}}, 400},
		{uAdmin, map[string]any{"add": []string{"bad name!"}}, 400},
		{uAdmin, map[string]any{}, 400},
		{uAuditor, map[string]any{"add": []string{"carol"}}, 403},
		{uCarol, map[string]any{"add": []string{"carol"}}, 404},
	} {
		e.must(c.want, c.user, "POST", Prefix+"/teams/dev/members", c.body)
	}
	e.must(404, uAdmin, "POST", Prefix+"/teams/nope/members", map[string]any{"add": []string{"carol"}})
	if after := e.must(200, uAdmin, "GET", Prefix+"/teams/dev", nil); string(after.body) != string(before.body) {
		t.Fatalf("refused member changes changed the team:\n%s\nwas\n%s", after.body, before.body)
	}

	// Permissions come first: a caller who may not change the object is
	// told so, whatever its If-Match.
	if r := e.doIf(uCarol, "PATCH", Prefix+"/templates/web", `"0"`, map[string]any{"description": "x"}); r.status != http.StatusForbidden {
		t.Fatalf("carol's PATCH with If-Match: %d, want 403\n%s", r.status, r.body)
	}
}

// compact is body without insignificant space.
func compact(t *testing.T, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, body); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	return b.Bytes()
}
