package command

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// twins runs args with ZooKeeper on the z twin and through the API (as
// token) on the a twin: TWIN in args names the twin. It compares what
// they print (z read as a in the ZooKeeper form's output) and their exit
// codes, and returns the API form's stdout, stderr and code.
func (e *apiEnv) twins(token string, args ...string) (string, string, int) {
	e.t.Helper()
	zargs, aargs := make([]string, len(args)), make([]string, len(args))
	for i, a := range args {
		zargs[i] = strings.ReplaceAll(a, "TWIN", "z")
		aargs[i] = strings.ReplaceAll(a, "TWIN", "a")
	}
	want, zerr, zcode := e.zk(zargs...)
	got, aerr, acode := e.as(token, aargs...)
	if acode != zcode {
		e.t.Errorf("%v: exit %d through the API, %d with ZooKeeper\nAPI: %s\nZooKeeper: %s", aargs, acode, zcode, aerr, zerr)
	}
	if want = strings.ReplaceAll(want, "z", "a"); got != want {
		e.t.Errorf("%v through the API printed\n%s\nwith ZooKeeper (z read as a)\n%s", aargs, got, want)
	}
	if acode != 0 && aerr == "" {
		e.t.Errorf("%v through the API: exit %d without a message", aargs, acode)
	}
	return got, aerr, acode
}

// twinsExit is twins for a command that must fail with code.
func (e *apiEnv) twinsExit(code int, args ...string) {
	e.t.Helper()
	if _, errOut, got := e.twins(e.admin, args...); got != code {
		e.t.Errorf("%v: exit %d, want %d:\n%s", args, got, code, errOut)
	}
}

// TestCLIAccountsThroughAPI: user create, edit and passwd, team add and
// remove, and the inventory source commands print through the API what
// their ZooKeeper forms print, and exit as they exit, on twin objects
// (z* with ZooKeeper, a* through the API); passwords are read from files,
// never flags, and hashed as with ZooKeeper; the API's roles decide who
// may do what.
func TestCLIAccountsThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	dir := t.TempDir()
	pw1 := writeFile(t, dir, "pw1", "first-password\n", 0o600)
	pw2 := writeFile(t, dir, "pw2", "second-password\n", 0o600)
	short := writeFile(t, dir, "short", "x\n", 0o600)
	alicePw := writeFile(t, dir, "alice", "alice-password\n", 0o600)
	wrongPw := writeFile(t, dir, "wrong", "not-alice-password\n", 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: e.root, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := access.NewStore(conn, nil)
	// login checks a password as the API does, and that both forms hash
	// it the same way.
	login := func(pw string, names ...string) {
		t.Helper()
		var scheme []string
		for _, n := range names {
			u, err := st.Authenticate(ctx, n, pw)
			if err != nil {
				t.Fatalf("%s with %q: %v", n, pw, err)
			}
			// $argon2id$v=19$m=…,t=…,p=…$salt$hash: all but salt and hash.
			f := strings.Split(u.PasswordHash, "$")
			if len(f) < 4 {
				t.Fatalf("%s: password hash %q", n, u.PasswordHash)
			}
			scheme = append(scheme, strings.Join(f[:4], "$"))
		}
		if len(scheme) == 2 && (scheme[0] != scheme[1] || scheme[0] == "") {
			t.Fatalf("hashed differently: %q and %q", scheme[0], scheme[1])
		}
	}

	// Users.
	e.twins(e.admin, "user", "create", "uTWIN", "--password-file", pw1, "--description", "the u twin")
	login("first-password", "uz", "ua")
	e.twins(e.admin, "user", "create", "vTWIN", "--no-password", "--auditor")
	e.twins(e.admin, "user", "edit", "uTWIN", "--role", "admin", "--description", "changed")
	e.twins(e.admin, "user", "edit", "uTWIN", "--disabled")
	e.twins(e.admin, "user", "edit", "uTWIN", "--disabled=false", "--role", "none")
	for _, n := range []string{"uz", "ua", "vz", "va"} {
		u, _, err := st.GetUser(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		want := access.UserView{Name: n, Description: "changed"}
		if n[0] == 'v' {
			want = access.UserView{Name: n, Role: access.SystemAuditor}
		}
		if v := u.View(); v.Name != want.Name || v.Role != want.Role || v.Description != want.Description || v.Disabled {
			t.Errorf("user %s: %+v, want %+v", n, v, want)
		}
	}
	e.twins(e.admin, "user", "passwd", "uTWIN", "--password-file", pw2)
	login("second-password", "uz", "ua")
	e.twinsExit(1, "user", "create", "uTWIN", "--no-password")             // exists
	e.twinsExit(2, "user", "create", "bad name!", "--no-password")         // bad name
	e.twinsExit(2, "user", "create", "wTWIN", "--password-file", short)    // too short
	e.twinsExit(2, "user", "create", "wTWIN", "--admin", "--auditor")      // one role
	e.twinsExit(1, "user", "edit", "nobodyTWIN", "--description", "x")     // missing
	e.twinsExit(2, "user", "edit", "uTWIN")                                // nothing to change
	e.twinsExit(2, "user", "edit", "uTWIN", "--role", "owner")             // bad role
	e.twinsExit(1, "user", "passwd", "nobodyTWIN", "--password-file", pw1) // missing
	e.twinsExit(2, "user", "passwd", "uTWIN", "--password-file", short)    // too short
	for _, n := range []string{"wz", "wa"} {
		if _, _, err := st.GetUser(ctx, n); err == nil {
			t.Fatalf("a refused user create made user %s", n)
		}
	}

	// A user sets its own password with its current one; not another's,
	// nor its own role.
	if out, errOut, code := e.as(e.alice, "user", "passwd", "alice", "--password-file", pw1, "--current-password-file", alicePw); code != 0 || out != "password of alice set\n" {
		t.Fatalf("alice's own passwd: exit %d, %q\n%s", code, out, errOut)
	}
	login("first-password", "alice")
	if _, errOut, code := e.as(e.alice, "user", "passwd", "alice", "--password-file", pw2, "--current-password-file", wrongPw); code != 1 || !strings.Contains(errOut, "current-password") {
		t.Fatalf("alice's passwd with a wrong current password: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "user", "passwd", "alice", "--password-file", pw2); code != 2 || !strings.Contains(errOut, "--current-password-file") {
		t.Fatalf("alice's passwd without her current password: exit %d, want 2:\n%s", code, errOut)
	}
	login("first-password", "alice")
	if _, errOut, code := e.as(e.alice, "user", "passwd", "bob", "--password-file", pw2); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's passwd of bob: exit %d, want 1:\n%s", code, errOut)
	}
	login("bob-password", "bob")
	if _, errOut, code := e.as(e.alice, "user", "edit", "alice", "--role", "admin"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice making herself admin: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if out := e.ok(e.alice, "user", "edit", "alice", "--description", "me"); out != "user alice changed\n" {
		t.Fatalf("alice's own description: %q", out)
	}
	if _, errOut, code := e.as(e.alice, "user", "create", "x", "--no-password"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's user create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "user", "create", "x", "--password-file", pw1, "--current-password-file", pw1); code != 2 {
		t.Fatalf("user create with a flag it has not: exit %d, want 2:\n%s", code, errOut)
	}

	// Team members.
	for _, args := range [][]string{{"team", "create", "tz", "--member", "alice"}, {"team", "create", "ta", "--member", "alice"}} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	e.twins(e.admin, "team", "add", "tTWIN", "bob", "carol")
	e.twins(e.admin, "team", "remove", "tTWIN", "carol")
	e.twinsExit(2, "team", "remove", "tTWIN", "carol")      // not a member
	e.twinsExit(2, "team", "add", "tTWIN", "ghost")         // no such user
	e.twinsExit(1, "team", "add", "nopeTWIN", "bob")        // no such team
	e.twinsExit(2, "team", "add", "tTWIN")                  // no user
	e.twinsExit(2, "team", "add", "tTWIN", "bad name!")     // bad name
	e.twinsExit(2, "team", "remove", "tTWIN", "bob", "bob") // twice: nothing written
	for _, n := range []string{"tz", "ta"} {
		tm, _, err := st.GetTeam(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(tm.Members, ",") != "alice,bob" {
			t.Errorf("team %s: members %v, want alice,bob", n, tm.Members)
		}
	}
	if _, errOut, code := e.as(e.alice, "team", "add", "ta", "carol"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's team add: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}

	// Inventory sources.
	invFile := writeFile(t, dir, "inv.json", `{"web": {"hosts": ["w1"]}}`, 0o600)
	for _, args := range [][]string{
		{"project", "create", "site", "--directory", "/srv/site"},
		{"inventory", "create", "iz", "--file", invFile}, {"inventory", "create", "ia", "--file", invFile},
		{"inventory", "create", "mz", "--smart", "--source", "iz"}, {"inventory", "create", "ma", "--smart", "--source", "ia"},
	} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	e.twinsExit(1, "inventory", "source", "show", "iTWIN")     // no source
	e.twinsExit(2, "inventory", "source", "update", "iTWIN")   // no source
	e.twins(e.admin, "inventory", "source", "remove", "iTWIN") // none to remove
	e.twins(e.admin, "inventory", "source", "set", "iTWIN", "--project", "site", "--path", "inv.py", "--update-on-launch", "--cache-timeout", "90s")
	e.twins(e.admin, "inventory", "source", "show", "iTWIN")
	e.twins(e.admin, "inventory", "source", "show", "--json", "iTWIN")
	e.twins(e.admin, "inventory", "source", "set", "iTWIN", "--project", "site", "--path", "other.py")
	e.twinsExit(1, "inventory", "source", "set", "iTWIN", "--project", "nope", "--path", "x.py") // no project
	e.twinsExit(1, "inventory", "source", "set", "nopeTWIN", "--project", "site", "--path", "x.py")
	e.twinsExit(2, "inventory", "source", "set", "mTWIN", "--project", "site", "--path", "x.py") // smart
	e.twinsExit(2, "inventory", "source", "set", "iTWIN", "--project", "site")                   // no path
	e.twinsExit(2, "inventory", "source", "set", "iTWIN", "--project", "site", "--path", "x", "--cache-timeout", "1m")
	e.twinsExit(2, "inventory", "source", "remove", "mTWIN")
	e.twinsExit(1, "inventory", "source", "show", "nopeTWIN")
	e.twinsExit(1, "inventory", "source", "update", "nopeTWIN")
	e.twinsExit(2, "inventory", "source", "show", "bad name!")
	// An update job each; the sources then show it, alike.
	ids := map[string]string{}
	for _, n := range []string{"iz", "ia"} {
		out, errOut, code := e.zk("inventory", "source", "update", n)
		if n == "ia" {
			out, errOut, code = e.as(e.admin, "inventory", "source", "update", n)
		}
		if code != 0 || !strings.HasPrefix(out, "job/") || strings.Count(out, "\n") != 1 {
			t.Fatalf("inventory source update %s: exit %d, %q\n%s", n, code, out, errOut)
		}
		ids[n] = strings.TrimSpace(out)
	}
	want, _, _ := e.zk("inventory", "source", "show", "iz")
	got := e.ok(e.admin, "inventory", "source", "show", "ia")
	want = strings.ReplaceAll(strings.ReplaceAll(want, ids["iz"], "JOB"), "iz", "ia")
	if got = strings.ReplaceAll(got, ids["ia"], "JOB"); got != want || !strings.Contains(got, "last-update:") {
		t.Errorf("source show after an update through the API:\n%s\nwith ZooKeeper:\n%s", got, want)
	}
	if _, errOut, code := e.as(e.alice, "inventory", "source", "set", "ia", "--project", "site", "--path", "x.py"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's source set: exit %d, want 1:\n%s", code, errOut)
	}
	e.twins(e.admin, "inventory", "source", "remove", "iTWIN")
	e.twinsExit(1, "inventory", "source", "show", "iTWIN")
}

// TestCLIConcurrentEditsThroughAPI: edits of different fields of one
// template (and one schedule) run at once through the API all land: each
// writes with If-Match and, when another got there first, reads again
// and reapplies its flags.
func TestCLIConcurrentEditsThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	if _, errOut, code := e.zk("schedule", "create", "nightly", "--cron", "0 2 * * *", "--template", "tpl"); code != 0 {
		t.Fatalf("schedule create: exit %d: %s", code, errOut)
	}
	edits := [][]string{
		{"template", "edit", "tpl", "--description", "many hands"},
		{"template", "edit", "tpl", "--priority", "7"},
		{"template", "edit", "tpl", "--timeout", "90s"},
		{"template", "edit", "tpl", "--job-tags", "deploy"},
		{"schedule", "edit", "nightly", "--description", "at night"},
		{"schedule", "edit", "nightly", "--cron", "0 3 * * *"},
		{"schedule", "edit", "nightly", "--catch-up", "none"},
	}
	var wg sync.WaitGroup
	errs := make([]string, len(edits))
	for i, args := range edits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, errOut, code := e.as(e.admin, args...); code != 0 {
				errs[i] = errOut
			}
		}()
	}
	wg.Wait()
	for i, msg := range errs {
		if msg != "" {
			t.Errorf("%v failed:\n%s", edits[i], msg)
		}
	}
	var tpl struct {
		Description string `json:"description"`
		Priority    int    `json:"priority"`
		Timeout     any    `json:"timeout"`
		JobTags     string `json:"job-tags"`
	}
	out, errOut, code := e.zk("template", "show", "--json", "tpl")
	if code != 0 {
		t.Fatalf("template show: exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &tpl); err != nil {
		t.Fatalf("template show --json: %v\n%s", err, out)
	}
	if tpl.Description != "many hands" || tpl.Priority != 7 || tpl.Timeout == nil || tpl.JobTags != "deploy" {
		t.Errorf("after concurrent edits the template is %+v:\n%s", tpl, out)
	}
	out, _, _ = e.zk("schedule", "show", "nightly")
	for _, w := range []string{"at night", "0 3 * * *", "none"} {
		if !strings.Contains(out, w) {
			t.Errorf("after concurrent edits the schedule does not show %q:\n%s", w, out)
		}
	}
}

// TestCLIExitCodesThroughAPI: a problem only the server sees exits
// through the API as it exits with ZooKeeper: bad input the controller
// refuses (a template a workflow names that does not exist, a cycle, an
// inventory that does not exist) 2; an object that does not exist, a name
// taken or an object in use 1; nothing written either way.
func TestCLIExitCodesThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	dir := t.TempDir()
	wfFile := writeFile(t, dir, "wf.yaml", "nodes:\n  - id: a\n    template: tpl\n", 0o600)
	missing := writeFile(t, dir, "missing.yaml", "nodes:\n  - id: a\n    template: nope\n", 0o600)
	cycle := writeFile(t, dir, "cycle.yaml", "nodes:\n  - id: a\n    template: tpl\n    success: [a]\n", 0o600)
	invFile := writeFile(t, dir, "inv.json", `{"web": {"hosts": ["w1"]}}`, 0o600)
	for _, args := range [][]string{
		{"template", "create", "tz", "--action", "echo"}, {"template", "create", "ta", "--action", "echo"},
		{"workflow", "create", "wz", "--file", wfFile}, {"workflow", "create", "wa", "--file", wfFile},
		{"inventory", "create", "iz", "--file", invFile}, {"inventory", "create", "ia", "--file", invFile},
		{"project", "create", "pz", "--directory", "/srv/p"}, {"project", "create", "pa", "--directory", "/srv/p"},
		{"schedule", "create", "sz", "--cron", "0 2 * * *", "--template", "tpl"}, {"schedule", "create", "sa", "--cron", "0 2 * * *", "--template", "tpl"},
	} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	before, _, _ := e.zk("template", "show", "--json", "ta")
	for _, c := range []struct {
		code int
		args []string
	}{
		{2, []string{"template", "edit", "tTWIN", "--inventory", "nope"}},
		{2, []string{"template", "create", "xTWIN", "--action", "echo", "--inventory", "nope"}},
		{1, []string{"template", "create", "tTWIN", "--action", "echo"}},
		{1, []string{"template", "edit", "nopeTWIN", "--description", "x"}},
		{1, []string{"template", "delete", "nopeTWIN"}},
		{1, []string{"template", "show", "nopeTWIN"}},
		{1, []string{"template", "launch", "nopeTWIN"}},
		{2, []string{"template", "launch", "tTWIN", "--limit", "web"}},
		{2, []string{"workflow", "create", "xTWIN", "--file", missing}},
		{2, []string{"workflow", "edit", "wTWIN", "--file", cycle}},
		{2, []string{"workflow", "edit", "wTWIN", "--file", missing}},
		{1, []string{"workflow", "create", "wTWIN", "--file", wfFile}},
		{1, []string{"workflow", "edit", "nopeTWIN", "--description", "x"}},
		{1, []string{"workflow", "launch", "nopeTWIN"}},
		{1, []string{"schedule", "create", "sTWIN", "--cron", "0 2 * * *", "--template", "tpl"}},
		{1, []string{"schedule", "edit", "nopeTWIN", "--cron", "0 3 * * *"}},
		{1, []string{"schedule", "delete", "nopeTWIN"}},
		{1, []string{"project", "create", "pTWIN", "--directory", "/srv/p"}},
		{1, []string{"project", "delete", "nopeTWIN"}},
		{1, []string{"inventory", "delete", "nopeTWIN"}},
		{1, []string{"job", "show", "job/00000000-0000-4000-8000-000000000000"}},
	} {
		if _, errOut, code := e.twins(e.admin, c.args...); code != c.code {
			t.Errorf("%v: exit %d, want %d:\n%s", c.args, code, c.code, errOut)
		}
	}
	if after, _, _ := e.zk("template", "show", "--json", "ta"); after != before {
		t.Errorf("refused commands changed template ta:\n%s\nwas\n%s", after, before)
	}
}
