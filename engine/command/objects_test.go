package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// bin runs the built jobengine binary against the test's root, with stdin.
func (e *jobEnv) binIn(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	dir := builtBinaries(e.t)
	g := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "--zk-connect-timeout", "10s"}, e.extra...)
	cmd := exec.Command(filepath.Join(dir, "jobengine"), append(g, args...)...)
	cmd.Env = cleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// binOK runs the binary, which must succeed, and returns its output.
func (e *jobEnv) binOK(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.bin(args...)
	if code != 0 {
		e.t.Fatalf("jobengine %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// cleanEnv is the environment without the caller's JOBENGINE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBENGINE_") {
			env = append(env, kv)
		}
	}
	return env
}

// tree returns every znode under the test's root with its data, to show
// that a refused command wrote nothing.
func (e *jobEnv) tree() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		data, _, err := e.conn.Get(p)
		if err != nil {
			return
		}
		out[p] = string(data)
		kids, _, _ := e.conn.Children(p)
		for _, k := range kids {
			walk(p + "/" + k)
		}
	}
	walk(e.conn.Path())
	return out
}

func (e *jobEnv) writeFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// ansibleHosts returns an Ansible JSON inventory of n hosts h01…, in
// groups even and odd, with a variable each.
func ansibleHosts(n int) string {
	var even, odd []string
	hv := map[string]map[string]any{}
	for i := 1; i <= n; i++ {
		h := fmt.Sprintf("h%02d", i)
		if i%2 == 0 {
			even = append(even, h)
		} else {
			odd = append(odd, h)
		}
		hv[h] = map[string]any{"idx": i}
	}
	top := map[string]any{
		"_meta": map[string]any{"hostvars": hv},
		"all":   map[string]any{"children": []string{"even", "odd", "ungrouped"}, "vars": map[string]any{"site": "lab"}},
		"even":  map[string]any{"hosts": even},
		"odd":   map[string]any{"hosts": odd, "vars": map[string]any{"parity": 1}},
	}
	b, _ := json.Marshal(top)
	return string(b)
}

// scriptHosts returns the hosts of an inventory script's output and the
// hosts of each group.
func scriptHosts(t *testing.T, out string) (hosts []string, groups map[string][]string) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("script output is not JSON: %v\n%s", err, out)
	}
	groups = map[string][]string{}
	seen := map[string]bool{}
	for name, raw := range top {
		if name == "_meta" {
			continue
		}
		var g struct {
			Hosts []string `json:"hosts"`
		}
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("group %s: %v", name, err)
		}
		groups[name] = g.Hosts
		for _, h := range g.Hosts {
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, h)
			}
		}
	}
	sort.Strings(hosts)
	return hosts, groups
}

func TestInventoryCommands(t *testing.T) {
	e := newJobEnv(t)
	file := e.writeFile("inv.json", ansibleHosts(7))
	if out := e.binOK("inventory", "create", "lab", "--description", "the lab", "--file", file); !strings.Contains(out, "7 hosts, 7 enabled, 2 groups") {
		t.Fatalf("create printed %q", out)
	}
	if out := e.binOK("inventory", "create", "empty"); !strings.Contains(out, "empty") {
		t.Fatalf("create printed %q", out)
	}
	// Import from stdin into a new inventory creates it.
	if out, errOut, code := e.binIn(ansibleHosts(3), "inventory", "import", "small", "-"); code != 0 || !strings.Contains(out, "small created (3 hosts") {
		t.Fatalf("import from stdin: exit %d, %q %q", code, out, errOut)
	}
	list := decode[[]map[string]any](t, e.binOK("inventory", "list", "--json"))
	if len(list) != 3 || list[0]["name"] != "empty" || list[1]["name"] != "lab" || list[2]["name"] != "small" {
		t.Fatalf("inventory list --json: %v", list)
	}
	table := e.binOK("inventory", "list")
	if !strings.Contains(table, "lab") || !strings.Contains(table, "the lab") || !strings.HasPrefix(table, "NAME") {
		t.Fatalf("inventory list:\n%s", table)
	}
	show := e.binOK("inventory", "show", "lab")
	for _, want := range []string{"hosts:", "7", "groups:", "2", "snapshot:", "description:", "the lab"} {
		if !strings.Contains(show, want) {
			t.Errorf("inventory show lacks %q:\n%s", want, show)
		}
	}

	// Disable two hosts: they leave the script and the slices.
	hosts := e.binOK("inventory", "hosts", "lab", "--disable", "h02", "--disable", "h05")
	if !strings.Contains(hosts, "h02") || strings.Count(hosts, " no ") != 2 {
		t.Fatalf("inventory hosts after --disable:\n%s", hosts)
	}
	all, groups := scriptHosts(t, e.binOK("inventory", "script", "lab"))
	if want := []string{"h01", "h03", "h04", "h06", "h07"}; !reflect.DeepEqual(all, want) {
		t.Fatalf("script hosts %v, want %v", all, want)
	}
	if want := []string{"h04", "h06"}; !reflect.DeepEqual(groups["even"], want) {
		t.Fatalf("group even = %v, want %v", groups["even"], want)
	}
	// Slices: enabled hosts by name, dealt out; groups keep their members.
	var union []string
	for k, want := range map[int][]string{1: {"h01", "h06"}, 2: {"h03", "h07"}, 3: {"h04"}} {
		got, groups := scriptHosts(t, e.binOK("inventory", "script", "lab", "--slice", fmt.Sprintf("%d/3", k)))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("slice %d/3: %v, want %v", k, got, want)
		}
		for g, hs := range groups {
			for _, h := range hs {
				if !contains(want, h) {
					t.Errorf("slice %d/3: group %s lists %s, not in the slice", k, g, h)
				}
			}
		}
		union = append(union, got...)
	}
	sort.Strings(union)
	if !reflect.DeepEqual(union, all) {
		t.Fatalf("slices together: %v, want %v", union, all)
	}
	// The limit is applied before slicing.
	if got, _ := scriptHosts(t, e.binOK("inventory", "script", "lab", "--limit", "odd", "--slice", "2/2")); !reflect.DeepEqual(got, []string{"h03"}) {
		t.Fatalf("limit odd, slice 2/2: %v", got)
	}
	// --hostvars fills _meta.hostvars.
	var withVars struct {
		Meta struct {
			Hostvars map[string]map[string]any `json:"hostvars"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal([]byte(e.binOK("inventory", "script", "lab", "--hostvars")), &withVars); err != nil {
		t.Fatal(err)
	}
	if withVars.Meta.Hostvars["h03"]["idx"] != 3.0 || len(withVars.Meta.Hostvars) != 5 {
		t.Fatalf("hostvars: %v", withVars.Meta.Hostvars)
	}
	e.binOK("inventory", "hosts", "lab", "--enable", "h02")
	if got, _ := scriptHosts(t, e.binOK("inventory", "script", "lab")); len(got) != 6 {
		t.Fatalf("after --enable h02: %v", got)
	}
	// A re-import keeps h05 disabled.
	e.binOK("inventory", "import", "lab", file)
	if got, _ := scriptHosts(t, e.binOK("inventory", "script", "lab")); len(got) != 6 || contains(got, "h05") {
		t.Fatalf("after re-import: %v", got)
	}

	// A smart inventory over lab and small.
	e.binOK("inventory", "create", "odds", "--smart", "--source", "lab", "--source", "small", "--filter-group", "odd", "--filter-var", "idx=3")
	if got, _ := scriptHosts(t, e.binOK("inventory", "script", "odds")); !reflect.DeepEqual(got, []string{"h03"}) {
		t.Fatalf("smart inventory: %v", got)
	}

	if out := e.binOK("inventory", "delete", "empty"); !strings.Contains(out, "deleted") {
		t.Fatalf("delete printed %q", out)
	}
	if _, errOut, code := e.bin("inventory", "show", "empty"); code != 1 || !strings.Contains(errOut, "inventory empty does not exist") {
		t.Fatalf("show of a deleted inventory: exit %d, %q", code, errOut)
	}
	if _, errOut, code := e.bin("inventory", "create", "lab"); code != 1 || !strings.Contains(errOut, "exists already") {
		t.Fatalf("create of an existing inventory: exit %d, %q", code, errOut)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestProjectCommands(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("project", "create", "site", "--git", "https://example.com/org/site.git", "--branch", "release/2.0", "--update-on-launch", "--cache-timeout", "10m")
	e.binOK("project", "create", "local", "--directory", "/srv/playbooks", "--description", "on every executor")
	list := decode[[]map[string]any](t, e.binOK("project", "list", "--json"))
	if len(list) != 2 || list[0]["name"] != "local" || list[1]["branch"] != "release/2.0" || list[1]["cache-timeout"] != 600.0 {
		t.Fatalf("project list --json: %v", list)
	}
	if show := e.binOK("project", "show", "local"); !strings.Contains(show, "/srv/playbooks") || !strings.Contains(show, "on every executor") {
		t.Fatalf("project show:\n%s", show)
	}
	id := strings.TrimSpace(e.binOK("project", "update", "site"))
	j, _, err := e.store.Get(e.ctx(), id)
	if err != nil {
		t.Fatalf("update printed %q: %v", id, err)
	}
	var payload map[string]string
	_ = json.Unmarshal(j.Payload, &payload)
	if j.Action != "project_update" || j.State != jobs.Queued || payload["url"] != "https://example.com/org/site.git" || payload["branch"] != "release/2.0" {
		t.Fatalf("update job: %+v, payload %v", j, payload)
	}
	if p := decode[map[string]any](t, e.binOK("project", "show", "site", "--json")); p["last-update-job"] != id {
		t.Fatalf("project records last-update-job %v, want %s", p["last-update-job"], id)
	}
	// One live update per project.
	if _, errOut, code := e.bin("project", "update", "site"); code != 1 || !strings.Contains(errOut, id) {
		t.Fatalf("second update: exit %d, %q", code, errOut)
	}
	if show := e.binOK("project", "show", "site"); !strings.Contains(show, "last-update:") || !strings.Contains(show, id+" QUEUED") {
		t.Fatalf("project show does not report the update job:\n%s", show)
	}
	e.binOK("project", "delete", "local")
	if _, errOut, code := e.bin("project", "update", "local"); code != 1 || !strings.Contains(errOut, "project local does not exist") {
		t.Fatalf("update of a deleted project: exit %d, %q", code, errOut)
	}
}

// TestBadInputAtEveryCommand runs every command with bad input through
// the binary: exit 2, an error naming the problem, and nothing written.
func TestBadInputAtEveryCommand(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(3)))
	e.binOK("project", "create", "proj", "--directory", "/srv/p")
	e.binOK("template", "create", "tpl", "--action", "echo", "--inventory", "inv", "--prompt", "limit")
	before := e.tree()
	bad := e.writeFile("bad.json", `{"web": {"hosts": ["a b"]}}`)
	notJSON := e.writeFile("notjson.json", `{"web": `)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inventory", "create", "bad name"}, "inventory name"},
		{[]string{"inventory", "create", "x", "--file", bad}, "host name"},
		{[]string{"inventory", "create", "x", "--file", notJSON}, "JSON inventory format"},
		{[]string{"inventory", "create", "x", "--file", "/nonexistent/file.json"}, "reading"},
		{[]string{"inventory", "create", "x", "--source", "inv"}, "add --smart"},
		{[]string{"inventory", "create", "x", "--smart"}, "--source"},
		{[]string{"inventory", "create", "x", "--smart", "--source", "inv", "--filter-var", "novalue"}, "NAME=VALUE"},
		{[]string{"inventory", "create", "x", "--smart", "--source", "inv", "--filter-name", "web["}, "pattern"},
		{[]string{"inventory", "create", "x", "--smart", "--source", "nosuch"}, "does not exist"},
		{[]string{"inventory", "create", "x", "--instance-group", "a b"}, "instance group"},
		{[]string{"inventory", "create"}, "want NAME"},
		{[]string{"inventory", "create", "x", "y"}, "want NAME"},
		{[]string{"inventory", "create", "x", "--nosuch"}, "not defined"},
		{[]string{"inventory", "import", "inv"}, "want NAME FILE"},
		{[]string{"inventory", "import", "inv", bad}, "host name"},
		{[]string{"inventory", "import", ".x", notJSON}, "inventory name"},
		{[]string{"inventory", "show", "a/b"}, "inventory name"},
		{[]string{"inventory", "hosts", "inv", "--disable", "a b"}, "host name"},
		{[]string{"inventory", "hosts", "inv", "--disable", "nosuch"}, "no host nosuch"},
		{[]string{"inventory", "hosts", "inv", "--disable", "h01", "--enable", "h01"}, "both"},
		{[]string{"inventory", "hosts", "inv", "--limit", "~("}, "regular expression"},
		{[]string{"inventory", "script", "inv", "--slice", "0/3"}, "slice number"},
		{[]string{"inventory", "script", "inv", "--slice", "4/3"}, "slice number"},
		{[]string{"inventory", "script", "inv", "--slice", "3"}, "K/N"},
		{[]string{"inventory", "script", "inv", "--slice", "4/4"}, "cannot make 4 slices"},
		{[]string{"inventory", "script", "inv", "--limit", "a,,b"}, "empty term"},
		{[]string{"inventory", "script", "inv", "--all", "--slice", "1/2"}, "--all"},
		{[]string{"inventory", "delete", ""}, "inventory name"},
		{[]string{"inventory", "list", "extra"}, "want no arguments"},
		{[]string{"project", "create", "p2"}, "--git URL or --directory"},
		{[]string{"project", "create", "p2", "--git", "https://u:secret@example.com/r.git"}, "password"},
		{[]string{"project", "create", "p2", "--git", "ftp://example.com/r.git"}, "want https"},
		{[]string{"project", "create", "p2", "--git", "https://example.com/r.git", "--branch", "a..b"}, "ref name"},
		{[]string{"project", "create", "p2", "--directory", "relative/dir"}, "absolute"},
		{[]string{"project", "create", "p2", "--directory", "/srv", "--git", "https://example.com/r.git"}, "one or the other"},
		{[]string{"project", "create", "p2", "--directory", "/srv", "--branch", "main"}, "git projects"},
		{[]string{"project", "create", "p2", "--directory", "/srv", "--cache-timeout", "1m"}, "--update-on-launch"},
		{[]string{"project", "update", "bad name"}, "project name"},
		{[]string{"project", "show"}, "want NAME"},
		{[]string{"template", "create", "t2"}, "--action is required"},
		{[]string{"template", "create", "t2", "--action", "a b"}, "action"},
		{[]string{"template", "create", "t2", "--action", "echo", "--payload", "[1]"}, "JSON object"},
		{[]string{"template", "create", "t2", "--action", "echo", "--extra-vars", "nope"}, "JSON object"},
		{[]string{"template", "create", "t2", "--action", "echo", "--forks", "-1"}, "forks"},
		{[]string{"template", "create", "t2", "--action", "echo", "--verbosity", "6"}, "verbosity"},
		{[]string{"template", "create", "t2", "--action", "echo", "--slices", "1001"}, "slice count"},
		{[]string{"template", "create", "t2", "--action", "echo", "--priority", "1000"}, "priority"},
		{[]string{"template", "create", "t2", "--action", "echo", "--timeout", "-1s"}, "timeout"},
		{[]string{"template", "create", "t2", "--action", "echo", "--limit", "~("}, "regular expression"},
		{[]string{"template", "create", "t2", "--action", "echo", "--playbook", "../etc/passwd"}, "playbook"},
		{[]string{"template", "create", "t2", "--action", "echo", "--prompt", "action"}, "cannot be prompted"},
		{[]string{"template", "create", "t2", "--action", "echo", "--prompt", "limit", "--prompt", "limit"}, "twice"},
		{[]string{"template", "create", "t2", "--action", "echo", "--inventory", "nosuch"}, "inventory nosuch does not exist"},
		{[]string{"template", "create", "t2", "--action", "echo", "--project", "nosuch"}, "project nosuch does not exist"},
		{[]string{"template", "create", "t2", "--action", "echo", "--instance-group", "a", "--instance-group", "a"}, "twice"},
		{[]string{"template", "edit", "tpl"}, "nothing to change"},
		{[]string{"template", "edit", "tpl", "--slices", "-2"}, "slice count"},
		{[]string{"template", "edit", "tpl", "--inventory", "nosuch"}, "does not exist"},
		{[]string{"template", "show", "bad name"}, "template name"},
		{[]string{"template", "launch", "tpl", "--inventory", "inv"}, "does not prompt for the field inventory"},
		{[]string{"template", "launch", "tpl", "--slices", "2", "--forks", "3"}, "slice-count, forks"},
		{[]string{"template", "launch", "tpl", "--project", "proj"}, "project is not promptable"},
		{[]string{"template", "launch", "tpl", "--limit", "~("}, "regular expression"},
		{[]string{"template", "launch", "tpl", "--payload", "{"}, "JSON object"},
		{[]string{"template", "launch"}, "want NAME"},
		{[]string{"project", "delete", "a b"}, "project name"},
		{[]string{"project", "list", "x"}, "want no arguments"},
		{[]string{"project", "show", "a", "--nosuch"}, "not defined"},
		{[]string{"template", "delete", "a b"}, "template name"},
		{[]string{"template", "list", "x"}, "want no arguments"},
		{[]string{"template", "edit", "tpl", "--prompt", "nosuch"}, "cannot be prompted"},
		{[]string{"template", "edit", "tpl", "--payload", "@/nonexistent"}, "reading"},
		{[]string{"template", "launch", "tpl", "--limit", "x", "--timeout", "-1s"}, "timeout"},
		{[]string{"inventory", "hosts"}, "want NAME"},
		{[]string{"inventory", "script"}, "want NAME"},
		{[]string{"job", "relaunch", "not-an-id"}, "not a job id"},
		{[]string{"job", "delete", "not-an-id"}, "not a job id"},
		{[]string{"job", "inventory", "not-an-id"}, "not a job id"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := e.bin(tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut, tc.want)
			}
		})
	}
	after := e.tree()
	if !reflect.DeepEqual(before, after) {
		for p, d := range after {
			if before[p] != d {
				t.Errorf("written: %s", p)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("removed: %s", p)
			}
		}
	}
}

// TestProjectUpdateOnAnExecutor fetches a git project with a real
// executor and sees the revision reported.
func TestProjectUpdateOnAnExecutor(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	e := newJobEnv(t)
	repo := t.TempDir()
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch", "main"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "--allow-empty", "-m", "one"},
	} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	rev, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOBENGINE_PROJECTS_DIR", t.TempDir()) // inherited by the executor
	startDaemon(t, e.root, "executor", "--name", "x", "--threads", "1", "--plugin-dir", t.TempDir())
	e.binOK("project", "create", "site", "--git", "file://"+repo, "--branch", "main")
	id := strings.TrimSpace(e.binOK("project", "update", "site"))
	if out := e.binOK("job", "wait", id, "--timeout", "60s"); !strings.Contains(out, "SUCCESS (return code 0): revision "+strings.TrimSpace(string(rev))) {
		t.Fatalf("project update: %q", out)
	}
	if show := e.binOK("project", "show", "site"); !strings.Contains(show, "revision "+strings.TrimSpace(string(rev))) {
		t.Fatalf("project show:\n%s", show)
	}
}
