package command

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
)

// e2eAPI drives two controllers of one cluster through their HTTP API
// only, sending each request to the other controller than the previous
// one: an answer that depended on a controller's own memory (a token, a
// session, a grant, a job) would differ between them.
type e2eAPI struct {
	t      *testing.T
	bases  [2]string
	next   int
	tokens map[string]string // user → bearer token
	client *http.Client
}

// e2eResp is an answer.
type e2eResp struct {
	status int
	body   []byte
	header http.Header
	// from is the controller (0 or 1) that answered.
	from int
}

func (r e2eResp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v\n%s", r.status, err, r.body)
	}
}

// send sends a request to the next controller, authenticated by mod.
func (a *e2eAPI) send(method, path string, body any, mod func(*http.Request)) e2eResp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	from := a.next
	a.next = 1 - a.next
	req, err := http.NewRequest(method, a.bases[from]+"/api/v1"+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	return e2eResp{status: res.StatusCode, body: data, header: res.Header, from: from}
}

// as sends a request with user's bearer token ("" sends none).
func (a *e2eAPI) as(user, method, path string, body any) e2eResp {
	a.t.Helper()
	return a.send(method, path, body, func(r *http.Request) {
		if user != "" {
			r.Header.Set("Authorization", "Bearer "+a.tokens[user])
		}
	})
}

// must sends a request as user and fails the test unless the status is
// want; an error answer must say what was wrong.
func (a *e2eAPI) must(want int, user, method, path string, body any) e2eResp {
	a.t.Helper()
	r := a.as(user, method, path, body)
	if r.status != want {
		a.t.Fatalf("%s %s as %q (controller %d): %d, want %d\n%s", method, path, user, r.from+1, r.status, want, r.body)
	}
	if want >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		r.decode(a.t, &e)
		if e.Error == "" {
			a.t.Fatalf("%s %s as %q: %d without a message: %s", method, path, user, r.status, r.body)
		}
	}
	return r
}

// mustSay is must for an error answer whose message must contain words.
func (a *e2eAPI) mustSay(want int, words, user, method, path string, body any) {
	a.t.Helper()
	r := a.must(want, user, method, path, body)
	if !strings.Contains(string(r.body), words) {
		a.t.Fatalf("%s %s as %q: %d without %q: %s", method, path, user, want, words, r.body)
	}
}

// e2eJob is what the test reads of a job document.
type e2eJob struct {
	ID            string   `json:"id"`
	State         string   `json:"state"`
	Kind          string   `json:"kind"`
	Template      string   `json:"template"`
	CreatedBy     string   `json:"created-by"`
	LaunchType    string   `json:"launch-type"`
	Sliced        bool     `json:"sliced"`
	SliceNumber   int      `json:"slice-number"`
	SliceCount    int      `json:"slice-count"`
	ParentJob     string   `json:"parent-job"`
	NestedJobs    []string `json:"nested-jobs"`
	StatusMessage string   `json:"status-message"`
	ExecutionNode string   `json:"execution-node"`
}

type e2eJobPage struct {
	Items []e2eJob `json:"items"`
}

func (p e2eJobPage) ids() []string {
	out := make([]string, len(p.Items))
	for i, j := range p.Items {
		out[i] = j.ID
	}
	slices.Sort(out)
	return out
}

func e2eUID(id string) string { return strings.TrimPrefix(id, "job/") }

// controllerURL waits for a controller's structured start line and
// returns the address it serves.
func controllerURL(t *testing.T, p *proc, identifier string) string {
	t.Helper()
	var url string
	poll.For(t, time.Minute, 20*time.Millisecond, func() error {
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l struct {
				Address    string `json:"address"`
				Identifier string `json:"identifier"`
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Identifier == identifier && strings.HasPrefix(l.Address, "http://") {
				url = l.Address
				return nil
			}
		}
		return fmt.Errorf("controller %s has not said where it listens", identifier)
	})
	return url
}

// TestAPIEndToEnd is the HTTP API's acceptance test: two controllers and
// an executor (the real binary), users of every role logged in through
// the API, and templates, sliced jobs, workflows and schedules driven
// through the API only, every answer checked. Requests alternate between
// the controllers.
func TestAPIEndToEnd(t *testing.T) {
	root := testRoot(t)
	startDaemon(t, root, "executor", "--name", "x1", "--threads", "4", "--capacity", "20", "--enable-test-actions", "--plugin-dir", t.TempDir())
	dir := t.TempDir()
	c1 := startDaemon(t, root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c1", "--config-dir", dir)
	c2 := startDaemon(t, root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c2", "--config-dir", dir)
	a := &e2eAPI{t: t, tokens: map[string]string{}, client: &http.Client{Timeout: 2 * time.Minute}}
	a.bases = [2]string{controllerURL(t, c1, "c1"), controllerURL(t, c2, "c2")}

	// The first administrator is the one thing made with ZooKeeper access.
	if _, errOut, code := runBinaryIn(t, "root-password\n", "--zk-hosts", testZK.ConnectString(), "--zk-root", root,
		"user", "create", "--admin", "root", "--password-file", "-"); code != 0 {
		t.Fatalf("user create --admin: exit %d: %s", code, errOut)
	}

	// Ping, without credentials: each controller names itself, both name
	// the same active controller and see the executor.
	var pings [2]struct {
		Controller       string `json:"controller"`
		ActiveController string `json:"active-controller"`
		Instances        []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"instances"`
	}
	poll.For(t, time.Minute, 50*time.Millisecond, func() error {
		for range 2 {
			r := a.as("", "GET", "/ping", nil)
			if r.status != 200 {
				return fmt.Errorf("ping: %d %s", r.status, r.body)
			}
			r.decode(t, &pings[r.from])
		}
		for i, p := range pings {
			if p.Controller != fmt.Sprintf("c%d", i+1) || p.ActiveController == "" || p.ActiveController != pings[1-i].ActiveController {
				return fmt.Errorf("pings %+v", pings)
			}
			if len(p.Instances) != 1 || p.Instances[0].Name != "x1" || p.Instances[0].State != "live" {
				return fmt.Errorf("ping of c%d: instances %+v", i+1, p.Instances)
			}
		}
		return nil
	})

	// Logging in: root's password buys a token on one controller, which
	// the other accepts.
	login := func(user, password string) {
		t.Helper()
		r := a.send("POST", "/tokens", map[string]any{"description": "e2e", "expires": "1d"}, func(r *http.Request) { r.SetBasicAuth(user, password) })
		if r.status != 201 {
			t.Fatalf("POST /tokens as %s: %d %s", user, r.status, r.body)
		}
		var tok struct {
			User  string `json:"user"`
			Token string `json:"token"`
		}
		r.decode(t, &tok)
		if tok.User != user || !strings.HasPrefix(tok.Token, "jet_") {
			t.Fatalf("token of %s: %s", user, r.body)
		}
		a.tokens[user] = tok.Token
	}
	a.mustSay(401, "credentials", "", "GET", "/me", nil)
	login("root", "root-password")
	if r := a.send("POST", "/tokens", nil, func(r *http.Request) { r.SetBasicAuth("root", "wrong-password") }); r.status != 401 {
		t.Fatalf("a wrong password: %d %s", r.status, r.body)
	}

	// The administrator makes the users of every role.
	users := map[string]string{"auditor": "auditor", "tadmin": "none", "texec": "none", "tread": "none", "nobody": "none"}
	for name, role := range users {
		var u struct {
			Name string `json:"name"`
			Role string `json:"role"`
		}
		a.must(201, "root", "POST", "/users", map[string]any{"name": name, "role": role, "password": name + "-password"}).decode(t, &u)
		if u.Name != name || (role == "auditor") != (u.Role == "auditor") {
			t.Fatalf("user %s made as %+v", name, u)
		}
	}
	for name := range users {
		login(name, name+"-password")
	}
	a.mustSay(403, "administrator", "auditor", "POST", "/users", map[string]any{"name": "x", "password": "x-password"})

	// The dashboard's way in: a session made on one controller serves on
	// the other, its CSRF token guards changes, logout ends it everywhere.
	r := a.as("", "POST", "/login", map[string]any{"username": "tread", "password": "tread-password"})
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var session struct {
		CSRF string `json:"csrf-token"`
	}
	r.decode(t, &session)
	cookies := (&http.Response{Header: r.header}).Cookies()
	withSession := func(csrf string) func(*http.Request) {
		return func(req *http.Request) {
			for _, c := range cookies {
				req.AddCookie(c)
			}
			if csrf != "" {
				req.Header.Set("X-CSRF-Token", csrf)
			}
		}
	}
	if r := a.send("GET", "/me", nil, withSession("")); r.status != 200 || !strings.Contains(string(r.body), `"authenticated-by":"session"`) {
		t.Fatalf("GET /me with the session: %d %s", r.status, r.body)
	}
	if r := a.send("POST", "/logout", nil, withSession("")); r.status != 403 {
		t.Fatalf("logout without the CSRF token: %d %s", r.status, r.body)
	}
	if r := a.send("POST", "/logout", nil, withSession(session.CSRF)); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	for range 2 {
		if r := a.send("GET", "/me", nil, withSession("")); r.status != 401 {
			t.Fatalf("GET /me after logout: %d %s", r.status, r.body)
		}
	}

	// Objects: an inventory of five hosts, template web (sliced in 2)
	// and template db, each over echo; roles on web for each kind of user.
	inv := `{"web": {"hosts": ["w1", "w2", "w3"]}, "db": {"hosts": ["d1", "d2"]}}`
	var imported struct {
		Hosts int `json:"hosts"`
	}
	a.must(201, "root", "POST", "/inventories/hosts/import", inv).decode(t, &imported)
	a.mustSay(400, "slice-count", "root", "POST", "/templates", map[string]any{"name": "bad", "action": "echo", "slice-count": "two"})
	a.must(201, "root", "POST", "/templates", map[string]any{"name": "web", "action": "echo", "inventory": "hosts", "slice-count": 2,
		"payload": map[string]any{"message": "web-tier"}, "prompts": []string{"limit"}, "allow-simultaneous": true})
	a.must(201, "root", "POST", "/templates", map[string]any{"name": "db", "action": "echo", "payload": map[string]any{"message": "db-tier"}})
	a.must(404, "root", "GET", "/templates/bad", nil)
	for user, role := range map[string]string{"tadmin": "admin", "texec": "execute", "tread": "read"} {
		a.must(201, "root", "POST", "/grants", map[string]any{"subject-kind": "user", "subject": user, "kind": "template", "object": "web", "role": role})
	}
	var me struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
		Grants []struct {
			Object string `json:"object"`
			Role   string `json:"role"`
		} `json:"grants"`
	}
	a.must(200, "texec", "GET", "/me", nil).decode(t, &me)
	if me.User.Name != "texec" || len(me.Grants) != 1 || me.Grants[0].Object != "web" || me.Grants[0].Role != "execute" {
		t.Fatalf("texec's /me: %+v", me)
	}

	// Who sees and changes templates.
	names := func(user string) []string {
		var p struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		a.must(200, user, "GET", "/templates?order=name", nil).decode(t, &p)
		var out []string
		for _, i := range p.Items {
			out = append(out, i.Name)
		}
		return out
	}
	for user, want := range map[string][]string{"root": {"db", "web"}, "auditor": {"db", "web"}, "tadmin": {"web"}, "texec": {"web"}, "tread": {"web"}, "nobody": nil} {
		if got := names(user); !slices.Equal(got, want) {
			t.Fatalf("%s lists templates %v, want %v", user, got, want)
		}
	}
	a.must(404, "nobody", "GET", "/templates/web", nil)
	a.must(404, "tread", "GET", "/templates/db", nil)
	a.must(404, "nobody", "POST", "/templates/web/launch", nil)
	a.mustSay(403, "execute role", "tread", "POST", "/templates/web/launch", nil)
	a.must(403, "auditor", "POST", "/templates/web/launch", nil)
	a.must(403, "texec", "PATCH", "/templates/web", map[string]any{"description": "the web tier"})
	a.must(403, "auditor", "PATCH", "/templates/web", map[string]any{"description": "the web tier"})
	var tpl struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		SliceCount  int    `json:"slice-count"`
	}
	a.must(200, "tadmin", "PATCH", "/templates/web", map[string]any{"description": "the web tier"}).decode(t, &tpl)
	if tpl.Description != "the web tier" || tpl.SliceCount != 2 {
		t.Fatalf("PATCH answered %+v", tpl)
	}
	a.must(200, "tread", "GET", "/templates/web", nil).decode(t, &tpl)
	if tpl.Description != "the web tier" {
		t.Fatalf("the other controller shows %+v after the PATCH", tpl)
	}
	a.must(404, "tadmin", "DELETE", "/templates/db", nil)
	a.must(403, "auditor", "DELETE", "/templates/db", nil)
	a.mustSay(400, "inventory", "texec", "POST", "/templates/web/launch", map[string]any{"inventory": "hosts"})

	// A sliced launch: the container and its two slices, created by texec,
	// run by the executor.
	var l struct {
		Job    e2eJob   `json:"job"`
		Slices []string `json:"slices"`
	}
	a.must(201, "texec", "POST", "/templates/web/launch", map[string]any{"limit": "w*"}).decode(t, &l)
	if !l.Job.Sliced || l.Job.Kind != "workflow" || len(l.Slices) != 2 || l.Job.CreatedBy != "user/texec" || l.Job.Template != "web" {
		t.Fatalf("sliced launch answered %+v", l)
	}
	container, sliceIDs := l.Job.ID, slices.Sorted(slices.Values(l.Slices))
	waitFinal := func(user, id, want string) e2eJob {
		t.Helper()
		var j e2eJob
		poll.For(t, 2*time.Minute, 50*time.Millisecond, func() error {
			r := a.must(200, user, "GET", "/jobs/"+e2eUID(id), nil)
			r.decode(t, &j)
			if j.State != want {
				return fmt.Errorf("%s is %s (%s), want %s", id, j.State, j.StatusMessage, want)
			}
			return nil
		})
		return j
	}
	waitFinal("texec", container, "SUCCESS")
	for _, id := range sliceIDs {
		j := waitFinal("tread", id, "SUCCESS")
		if j.ParentJob != container || j.SliceCount != 2 || j.ExecutionNode != "x1" || !strings.Contains(j.StatusMessage, "web-tier") {
			t.Fatalf("slice %s: %+v", id, j)
		}
	}

	// Its results: seen by whoever reads web and by the auditor, by no one
	// else — not in lists, not by id, not their logs.
	for user, want := range map[string][]string{"root": sliceIDs, "auditor": sliceIDs, "tread": sliceIDs, "texec": sliceIDs, "nobody": nil} {
		var p e2eJobPage
		a.must(200, user, "GET", "/jobs?slices-of="+e2eUID(container), nil).decode(t, &p)
		if got := p.ids(); !slices.Equal(got, want) {
			t.Fatalf("%s lists slices %v, want %v", user, got, want)
		}
	}
	for _, id := range append([]string{container}, sliceIDs...) {
		a.must(404, "nobody", "GET", "/jobs/"+e2eUID(id), nil)
		a.must(404, "nobody", "GET", "/jobs/"+e2eUID(id)+"/logs", nil)
		a.must(200, "auditor", "GET", "/jobs/"+e2eUID(id), nil)
	}
	for _, user := range []string{"auditor", "tread"} {
		r := a.must(200, user, "GET", "/jobs/"+e2eUID(sliceIDs[0])+"/logs", nil)
		if !strings.Contains(string(r.body), "web-tier") {
			t.Fatalf("%s reads the slice's log without its line:\n%s", user, r.body)
		}
	}
	var page e2eJobPage
	a.must(200, "nobody", "GET", "/jobs", nil).decode(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("nobody lists jobs %v", page.ids())
	}
	a.must(200, "tread", "GET", "/jobs?template=web&sliced=true", nil).decode(t, &page)
	if got := page.ids(); !slices.Equal(got, []string{container}) {
		t.Fatalf("tread lists sliced jobs of web %v, want the container", got)
	}
	a.mustSay(400, "state", "tread", "GET", "/jobs?state=DONE", nil)

	// Relaunch, cancel and delete, as the roles allow.
	a.must(403, "tread", "POST", "/jobs/"+e2eUID(container)+"/relaunch", nil)
	a.must(403, "auditor", "POST", "/jobs/"+e2eUID(container)+"/relaunch", nil)
	a.must(201, "texec", "POST", "/jobs/"+e2eUID(container)+"/relaunch", nil).decode(t, &l)
	if !l.Job.Sliced || len(l.Slices) != 2 || l.Job.LaunchType != "relaunch" || l.Job.CreatedBy != "user/texec" {
		t.Fatalf("relaunch answered %+v", l)
	}
	relaunched := l.Job.ID
	waitFinal("tadmin", relaunched, "SUCCESS")
	a.mustSay(409, "final", "texec", "POST", "/jobs/"+e2eUID(relaunched)+"/cancel", nil)
	a.must(403, "auditor", "DELETE", "/jobs/"+e2eUID(relaunched), nil)
	a.must(404, "nobody", "DELETE", "/jobs/"+e2eUID(relaunched), nil)
	var deleted struct {
		Deleted []string `json:"deleted"`
	}
	a.must(200, "root", "DELETE", "/jobs/"+e2eUID(relaunched), nil).decode(t, &deleted)
	if want := slices.Sorted(slices.Values(append([]string{relaunched}, l.Slices...))); !slices.Equal(slices.Sorted(slices.Values(deleted.Deleted)), want) {
		t.Fatalf("DELETE answered %v, want %v", deleted.Deleted, want)
	}
	a.must(404, "root", "GET", "/jobs/"+e2eUID(relaunched), nil)
	a.must(404, "root", "GET", "/jobs/"+e2eUID(l.Slices[0]), nil)

	// A workflow: db, then web when db succeeded. texec may launch it,
	// tread read it, nobody nothing.
	a.mustSay(400, "loop", "root", "POST", "/workflows", map[string]any{"name": "loop", "nodes": []any{
		map[string]any{"id": "a", "template": "db", "success": []string{"b"}},
		map[string]any{"id": "b", "template": "db", "failure": []string{"a"}},
	}})
	a.must(201, "root", "POST", "/workflows", map[string]any{"name": "release", "nodes": []any{
		map[string]any{"id": "build", "template": "db", "success": []string{"ship"}},
		map[string]any{"id": "ship", "template": "web", "values": map[string]any{"limit": "w1"}},
	}})
	a.must(201, "root", "POST", "/grants", map[string]any{"subject-kind": "user", "subject": "texec", "kind": "workflow", "object": "release", "role": "execute"})
	a.must(201, "root", "POST", "/grants", map[string]any{"subject-kind": "user", "subject": "tread", "kind": "workflow", "object": "release", "role": "read"})
	a.must(404, "nobody", "GET", "/workflows/release", nil)
	a.must(200, "tread", "GET", "/workflows/release", nil)
	a.must(403, "tread", "POST", "/workflows/release/launch", nil)
	a.must(403, "texec", "PUT", "/workflows/release", map[string]any{"nodes": []any{map[string]any{"id": "a", "template": "db"}}})
	var wl struct {
		Job   e2eJob   `json:"job"`
		Nodes []string `json:"nodes"`
	}
	a.must(201, "texec", "POST", "/workflows/release/launch", nil).decode(t, &wl)
	if wl.Job.Kind != "workflow" || len(wl.Nodes) != 2 || wl.Job.CreatedBy != "user/texec" {
		t.Fatalf("workflow launch answered %+v", wl)
	}
	waitFinal("tread", wl.Job.ID, "SUCCESS")
	var nodes struct {
		State string `json:"state"`
		Nodes []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Job    string `json:"job"`
			State  string `json:"state"`
		} `json:"nodes"`
	}
	a.must(200, "auditor", "GET", "/jobs/"+e2eUID(wl.Job.ID)+"/nodes", nil).decode(t, &nodes)
	if nodes.State != "SUCCESS" || len(nodes.Nodes) != 2 {
		t.Fatalf("workflow nodes: %+v", nodes)
	}
	for _, n := range nodes.Nodes {
		if n.Status != "succeeded" || n.State != "SUCCESS" {
			t.Fatalf("node %+v", n)
		}
	}
	a.must(404, "nobody", "GET", "/jobs/"+e2eUID(wl.Job.ID)+"/nodes", nil)
	var wfJobs e2eJobPage
	a.must(200, "tread", "GET", "/jobs?workflow=release", nil).decode(t, &wfJobs)
	if got := wfJobs.ids(); !slices.Equal(got, []string{wl.Job.ID}) {
		t.Fatalf("tread lists workflow jobs %v, want %s", got, wl.Job.ID)
	}

	// A schedule every two seconds, made by texec (execute on web): the
	// leader launches web on it; tread sees it and may not change it.
	a.mustSay(400, "cron", "texec", "POST", "/schedules", map[string]any{"name": "often", "cron": "every now and then", "launch": map[string]any{"template": "web"}})
	a.must(404, "texec", "POST", "/schedules", map[string]any{"name": "often", "cron": "*/2 * * * * *", "launch": map[string]any{"template": "db"}})
	var sc struct {
		Name     string      `json:"name"`
		Enabled  bool        `json:"enabled"`
		NextRuns []time.Time `json:"next-runs"`
		LastRun  *struct {
			Job string `json:"job"`
		} `json:"last-run"`
	}
	a.must(201, "texec", "POST", "/schedules", map[string]any{"name": "often", "cron": "*/2 * * * * *",
		"launch": map[string]any{"template": "web", "values": map[string]any{"limit": "w*"}}}).decode(t, &sc)
	if !sc.Enabled || len(sc.NextRuns) != 3 {
		t.Fatalf("schedule made as %+v", sc)
	}
	var scheduled e2eJob
	poll.For(t, 2*time.Minute, 100*time.Millisecond, func() error {
		var p e2eJobPage
		a.must(200, "tread", "GET", "/jobs?template=web&launch-type=scheduled", nil).decode(t, &p)
		for _, j := range p.Items {
			if j.Sliced && j.State == "SUCCESS" {
				scheduled = j
				return nil
			}
		}
		return fmt.Errorf("no scheduled launch of web has succeeded yet (%d launched)", len(p.Items))
	})
	if scheduled.CreatedBy == "" || scheduled.LaunchType != "scheduled" {
		t.Fatalf("scheduled job %+v", scheduled)
	}
	a.must(404, "nobody", "GET", "/schedules/often", nil)
	a.must(403, "tread", "PATCH", "/schedules/often", map[string]any{"enabled": false})
	a.must(403, "auditor", "DELETE", "/schedules/often", nil)
	a.must(200, "texec", "PATCH", "/schedules/often", map[string]any{"enabled": false}).decode(t, &sc)
	if sc.Enabled || len(sc.NextRuns) != 0 {
		t.Fatalf("disabled schedule shown as %+v", sc)
	}
	a.must(200, "tread", "GET", "/schedules/often", nil).decode(t, &sc)
	if sc.Enabled || sc.LastRun == nil || sc.LastRun.Job == "" {
		t.Fatalf("the other controller shows the schedule as %+v", sc)
	}
	a.must(204, "texec", "DELETE", "/schedules/often", nil)
	a.must(404, "auditor", "GET", "/schedules/often", nil)

	// Once every launch has ended, the cluster's overview (from the
	// queues' counts) says so on both controllers: nothing waits or runs.
	poll.For(t, 2*time.Minute, 100*time.Millisecond, func() error {
		var c struct {
			ActiveController string `json:"active-controller"`
			Controllers      []struct {
				Name string `json:"name"`
			} `json:"controllers"`
			Instances []struct {
				Name string `json:"name"`
				Busy int    `json:"busy"`
			} `json:"instances"`
			Queue map[string]int `json:"queue"`
		}
		a.must(200, "nobody", "GET", "/cluster", nil).decode(t, &c)
		if len(c.Controllers) != 2 || c.ActiveController != pings[0].ActiveController || len(c.Instances) != 1 {
			return fmt.Errorf("cluster %+v", c)
		}
		for _, k := range []string{"pending", "queued", "running", "shared-queue-entries"} {
			if n, ok := c.Queue[k]; !ok || n != 0 {
				return fmt.Errorf("queue %v", c.Queue)
			}
		}
		return nil
	})

	// Revoking is seen by the next request, on either controller: a grant
	// taken back, then a token.
	a.must(204, "root", "DELETE", "/grants/user:tread:template:web:read", nil)
	for range 2 {
		a.must(404, "tread", "GET", "/jobs/"+e2eUID(container), nil)
	}
	var tokens struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	a.must(200, "tread", "GET", "/tokens", nil).decode(t, &tokens)
	if len(tokens.Items) != 1 {
		t.Fatalf("tread has tokens %+v", tokens)
	}
	a.must(204, "tread", "DELETE", "/tokens/"+tokens.Items[0].ID, nil)
	for range 2 {
		a.must(401, "tread", "GET", "/me", nil)
	}
}
