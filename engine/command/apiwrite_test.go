package command

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIWritesThroughAPI: template edit and delete, workflow delete and
// relaunch, and the schedule commands that change a schedule print
// through the API what their ZooKeeper forms print (each pair on twin
// objects, z* with ZooKeeper and a* through the API); the API's roles
// refuse a user without the role, and bad input is refused before any
// request (exit 2).
func TestCLIWritesThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	dir := t.TempDir()
	invFile := writeFile(t, dir, "inv.json", `{"web": {"hosts": ["w1", "w2"]}}`, 0o600)
	inv2File := writeFile(t, dir, "inv2.json", `{"web": {"hosts": ["w1", "w2", "w3"], "vars": {"port": 80}}, "db": {"hosts": ["d1"]},
		"_meta": {"hostvars": {"w1": {"role": "front"}, "d1": {"role": "db", "size": 2}}}}`, 0o600)
	wf2File := writeFile(t, dir, "wf2.yaml", "description: two nodes\nnodes:\n  - id: a\n    template: tpl\n    success: [b]\n  - id: b\n    template: tpl\n", 0o600)
	cycleFile := writeFile(t, dir, "cycle.yaml", "nodes:\n  - id: a\n    template: tpl\n    success: [a]\n", 0o600)
	badFile := writeFile(t, dir, "bad.json", `{"web": [`, 0o600)
	wfFile := writeFile(t, dir, "wf.yaml", "nodes:\n  - id: a\n    template: tpl\n", 0o600)
	for _, args := range [][]string{
		{"template", "create", "tz", "--action", "echo"},
		{"template", "create", "ta", "--action", "echo"},
		{"workflow", "create", "wz", "--file", wfFile},
		{"workflow", "create", "wa", "--file", wfFile},
		{"workflow", "create", "wf", "--file", wfFile},
		{"workflow", "create", "yz", "--file", wfFile, "--description", "d"},
		{"workflow", "create", "ya", "--file", wfFile, "--description", "d"},
		{"inventory", "create", "iz", "--file", invFile},
		{"inventory", "create", "ia", "--file", invFile},
		{"project", "create", "site", "--directory", "/srv/site"},
		// alice may read these, not change them: a 403, not a 404.
		{"grant", "add", "--user", "alice", "--role", "read", "inventory/ja"},
		{"grant", "add", "--user", "alice", "--role", "read", "project/site"},
		{"grant", "add", "--user", "alice", "--role", "read", "workflow/wf"},
	} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	// same runs args with ZooKeeper on the z twin and through the API on
	// the a twin, and compares what they print.
	same := func(args ...string) string {
		t.Helper()
		zargs, aargs := make([]string, len(args)), make([]string, len(args))
		for i, a := range args {
			zargs[i] = strings.ReplaceAll(a, "TWIN", "z")
			aargs[i] = strings.ReplaceAll(a, "TWIN", "a")
		}
		want, errOut, code := e.zk(zargs...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", zargs, code, errOut)
		}
		got := e.ok(e.admin, aargs...)
		if want = strings.ReplaceAll(want, "z", "a"); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper (z read as a)\n%s", aargs, got, want)
		}
		return got
	}

	// Templates.
	same("template", "edit", "tTWIN", "--description", "changed", "--limit", "web", "--priority", "7")
	if out, _, _ := e.zk("template", "show", "ta"); !strings.Contains(out, "changed") || !strings.Contains(out, "priority:") || !strings.Contains(out, "7") {
		t.Fatalf("the template edited through the API:\n%s", out)
	}
	if _, errOut, code := e.as(e.alice, "template", "edit", "tpl", "--description", "x"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's template edit: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "template", "edit", "ta"); code != 2 || !strings.Contains(errOut, "nothing to change") {
		t.Fatalf("template edit without a field: exit %d, want 2:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "template", "edit", "ta", "--priority", "5000"); code != 2 {
		t.Fatalf("template edit --priority 5000: exit %d, want 2:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "template", "edit", "nope", "--description", "x"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("template edit of a missing template: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "template", "delete", "tpl"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's template delete: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	same("template", "delete", "tTWIN")
	if _, _, code := e.zk("template", "show", "ta"); code == 0 {
		t.Fatal("the template deleted through the API is still there")
	}

	// Schedules.
	same("schedule", "create", "sTWIN", "--cron", "0 2 * * *", "--time-zone", "Europe/Paris", "--template", "tpl", "--description", "nightly")
	same("schedule", "edit", "sTWIN", "--cron", "0 3 * * *")
	if out, _, _ := e.zk("schedule", "show", "sa"); !strings.Contains(out, "0 3 * * *") || !strings.Contains(out, "nightly") {
		t.Fatalf("the schedule edited through the API:\n%s", out)
	}
	same("schedule", "disable", "sTWIN")
	same("schedule", "enable", "sTWIN")
	if _, errOut, code := e.as(e.alice, "schedule", "create", "plain", "--cron", "0 2 * * *", "--action", "echo"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's schedule of a plain job: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.carol, "schedule", "disable", "sa"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("carol's schedule disable (read on tpl): exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.bob, "schedule", "disable", "sa"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's schedule disable: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "schedule", "create", "x", "--template", "tpl"); code != 2 || !strings.Contains(errOut, "--cron") {
		t.Fatalf("schedule create without a rule: exit %d, want 2:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "schedule", "edit", "sa", "--disabled"); code != 2 || !strings.Contains(errOut, "schedule disable") {
		t.Fatalf("schedule edit --disabled: exit %d, want 2:\n%s", code, errOut)
	}
	same("schedule", "delete", "sTWIN")
	if _, _, code := e.zk("schedule", "show", "sa"); code == 0 {
		t.Fatal("the schedule deleted through the API is still there")
	}

	// Workflows.
	if _, errOut, code := e.as(e.alice, "workflow", "delete", "wa"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's workflow delete: exit %d, want 1:\n%s", code, errOut)
	}
	same("workflow", "delete", "wTWIN")
	if _, _, code := e.zk("workflow", "show", "wa"); code == 0 {
		t.Fatal("the workflow deleted through the API is still there")
	}
	wf := strings.TrimSpace(e.ok(e.admin, "workflow", "launch", "wf"))
	again := strings.TrimSpace(e.ok(e.admin, "workflow", "relaunch", wf))
	if again == wf || strings.ContainsAny(again, " \n") {
		t.Fatalf("workflow relaunch of %s printed %q", wf, again)
	}
	if out := e.ok(e.admin, "job", "show", "--json", again); !strings.Contains(out, `"kind": "workflow"`) && !strings.Contains(out, `"kind":"workflow"`) {
		t.Fatalf("the relaunched workflow job %s shows\n%s", again, out)
	}
	if _, errOut, code := e.as(e.alice, "workflow", "relaunch", wf); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's workflow relaunch: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "workflow", "relaunch", "not-an-id"); code != 2 {
		t.Fatalf("workflow relaunch of a bad id: exit %d, want 2:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "workflow", "relaunch", wf, "--from", "bad name!"); code != 2 {
		t.Fatalf("workflow relaunch --from with a bad name: exit %d, want 2:\n%s", code, errOut)
	}

	// Projects and inventories.
	same("project", "create", "pTWIN", "--directory", "/srv/site", "--description", "the site")
	if out, _, _ := e.zk("project", "show", "pa"); !strings.Contains(out, "/srv/site") || !strings.Contains(out, "the site") {
		t.Fatalf("the project created through the API:\n%s", out)
	}
	if _, errOut, code := e.as(e.alice, "project", "create", "p2", "--directory", "/srv/p2"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's project create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "project", "create", "p2"); code != 2 || !strings.Contains(errOut, "--directory") {
		t.Fatalf("project create without a source: exit %d, want 2:\n%s", code, errOut)
	}
	up := strings.TrimSpace(e.ok(e.admin, "project", "update", "site"))
	if out := e.ok(e.admin, "job", "show", "--json", up); !strings.Contains(out, "project_update") {
		t.Fatalf("project update printed %q, whose job shows\n%s", up, out)
	}
	if _, errOut, code := e.as(e.alice, "project", "update", "site"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's project update: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "project", "delete", "site"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's project delete: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.bob, "project", "update", "site"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's project update: exit %d, want 1:\n%s", code, errOut)
	}
	same("project", "delete", "pTWIN")
	if _, errOut, code := e.as(e.alice, "inventory", "delete", "ia"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's inventory delete: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "inventory", "delete", "bad name!"); code != 2 {
		t.Fatalf("inventory delete of a bad name: exit %d, want 2:\n%s", code, errOut)
	}
	same("inventory", "delete", "iTWIN")
	if _, _, code := e.zk("inventory", "show", "ia"); code == 0 {
		t.Fatal("the inventory deleted through the API is still there")
	}

	same("inventory", "create", "jTWIN", "--file", invFile, "--description", "from a file", "--instance-group", "g1")
	same("inventory", "create", "kTWIN")
	same("inventory", "create", "mTWIN", "--smart", "--source", "jTWIN", "--filter-name", "w*")
	same("inventory", "import", "jTWIN", inv2File)
	same("inventory", "import", "nTWIN", invFile)
	for _, args := range [][]string{{"inventory", "show", "ja"}, {"inventory", "show", "ma"}, {"inventory", "show", "na"}} {
		if out, errOut, code := e.zk(args...); code != 0 || !strings.Contains(out, "hosts:") {
			t.Fatalf("%v after the API made it: exit %d:\n%s%s", args, code, out, errOut)
		}
	}
	if _, errOut, code := e.zk("inventory", "hosts", "ja", "--disable", "w2"); code != 0 {
		t.Fatalf("inventory hosts --disable: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"inventory", "script", "ja"}, {"inventory", "script", "ja", "--hostvars"}, {"inventory", "script", "ja", "--all", "--hostvars"},
		{"inventory", "script", "ja", "--slice", "1/2"}, {"inventory", "script", "ja", "--slice", "2/2", "--hostvars"},
		{"inventory", "script", "ja", "--limit", "db"}, {"inventory", "script", "ma"},
	} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		if got := e.ok(e.admin, args...); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
	}
	if _, errOut, code := e.as(e.alice, "inventory", "create", "x"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's inventory create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "inventory", "import", "ja", invFile); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's inventory import: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.bob, "inventory", "script", "ja"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("bob's inventory script: exit %d, want 1:\n%s", code, errOut)
	}
	for _, args := range [][]string{
		{"inventory", "import", "bad", badFile}, {"inventory", "create", "bad", "--file", badFile},
		{"inventory", "create", "bad", "--smart"}, {"inventory", "script", "ja", "--all", "--limit", "db"},
		{"inventory", "script", "ja", "--slice", "x"},
	} {
		if _, errOut, code := e.as(e.admin, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, errOut)
		}
	}
	if _, _, code := e.zk("inventory", "show", "bad"); code == 0 {
		t.Fatal("an inventory made of bad input")
	}

	same("inventory", "hosts", "jTWIN", "--enable", "w2", "--disable", "w3")
	for _, args := range [][]string{
		{"inventory", "hosts", "ja"}, {"inventory", "hosts", "ja", "--json"}, {"inventory", "hosts", "ja", "--limit", "web"},
		{"inventory", "hosts", "ja", "--limit", "web:!w1", "--json"}, {"inventory", "hosts", "ma"},
	} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		if got := e.ok(e.admin, args...); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
	}
	before, _, _ := e.zk("inventory", "hosts", "ja")
	if _, errOut, code := e.as(e.admin, "inventory", "hosts", "ja", "--enable", "w3", "--disable", "nope"); code != 1 || !strings.Contains(errOut, "has no host nope") {
		t.Fatalf("inventory hosts --disable of an unknown host: exit %d, want 1:\n%s", code, errOut)
	}
	if after, _, _ := e.zk("inventory", "hosts", "ja"); after != before {
		t.Fatalf("a refused inventory hosts changed hosts:\n%s\nwas\n%s", after, before)
	}
	if _, errOut, code := e.as(e.admin, "inventory", "hosts", "ja", "--enable", "w3", "--disable", "w3"); code != 2 {
		t.Fatalf("inventory hosts enabling and disabling a host: exit %d, want 2:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "inventory", "hosts", "ja", "--disable", "w1"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's inventory hosts --disable: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "inventory", "delete", "ja"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's inventory delete: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}

	// Workflow templates made and changed through the API.
	same("workflow", "create", "xTWIN", "--file", wfFile, "--description", "one node")
	same("workflow", "edit", "xTWIN", "--file", wf2File)
	same("workflow", "edit", "yTWIN", "--description", "")
	same("workflow", "edit", "xTWIN", "--description", "renamed")
	want, _, _ := e.zk("workflow", "show", "--yaml", "xz")
	if got, _, _ := e.zk("workflow", "show", "--yaml", "xa"); got != strings.ReplaceAll(want, "xz", "xa") || !strings.Contains(got, "renamed") {
		t.Errorf("the workflow changed through the API:\n%s\nwith ZooKeeper:\n%s", got, want)
	}
	if _, errOut, code := e.as(e.alice, "workflow", "create", "x2", "--file", wfFile); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's workflow create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "workflow", "edit", "wf", "--description", "x"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's workflow edit: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "workflow", "delete", "wf"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's workflow delete: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	for _, args := range [][]string{{"workflow", "create", "x3"}, {"workflow", "edit", "xa"}, {"workflow", "create", "x3", "--file", badFile}} {
		if _, errOut, code := e.as(e.admin, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, errOut)
		}
	}
	if _, errOut, code := e.as(e.admin, "workflow", "edit", "xa", "--file", cycleFile); code == 0 || !strings.Contains(errOut, "cycle") {
		t.Fatalf("workflow edit with a cycle: exit %d, want an error naming the cycle:\n%s", code, errOut)
	}

	// Credentials made (their secrets read from files), listed, shown and
	// deleted through the API; no secret shown.
	keyFile := filepath.Join(dir, "credential.key")
	if out, errOut, code := runBinary(t, nil, "credential", "keygen", keyFile); code != 0 {
		t.Fatalf("keygen: %s %s", out, errOut)
	}
	tokenFile := writeFile(t, dir, "token", "s3cr3t-value\n", 0o600)
	same("credential", "create", "cTWIN", "--kind", "secret", "--secret", "MY_TOKEN="+tokenFile, "--description", "api token", "--credential-key-file", keyFile)
	if _, errOut, code := e.as(e.alice, "credential", "create", "c2", "--kind", "secret", "--secret", "MY_TOKEN="+tokenFile); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's credential create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	for _, args := range [][]string{{"credential", "create", "c2"}, {"credential", "create", "c2", "--kind", "secret", "--secret", "MY_TOKEN"}} {
		if _, errOut, code := e.as(e.admin, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2:\n%s", args, code, errOut)
		}
	}
	for _, args := range [][]string{{"credential", "list"}, {"credential", "list", "--json"}, {"credential", "show", "ca"}, {"credential", "show", "--json", "ca"}} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		got := e.ok(e.admin, args...)
		if got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
		if strings.Contains(got, "s3cr3t") {
			t.Fatalf("%v printed the secret:\n%s", args, got)
		}
	}
	if out := e.ok(e.bob, "credential", "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("bob's credential list shows more than its header:\n%s", out)
	}
	if _, errOut, code := e.as(e.bob, "credential", "show", "ca"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's credential show: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.bob, "credential", "delete", "ca"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's credential delete: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "credential", "show", "bad name!"); code != 2 {
		t.Fatalf("credential show of a bad name: exit %d, want 2:\n%s", code, errOut)
	}
	same("credential", "delete", "cTWIN")

	// Notification templates deleted through the API.
	for _, name := range []string{"nz", "na"} {
		if _, errOut, code := e.zk("notification", "create", name, "--command", "/bin/true"); code != 0 {
			t.Fatalf("notification create %s: exit %d: %s", name, code, errOut)
		}
	}
	if _, errOut, code := e.as(e.alice, "notification", "delete", "na"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's notification delete: exit %d, want 1:\n%s", code, errOut)
	}
	same("notification", "delete", "nTWIN")
	if _, _, code := e.zk("notification", "show", "na"); code == 0 {
		t.Fatal("the notification template deleted through the API is still there")
	}

	// Users and teams: an administrator sees them all, as with ZooKeeper;
	// bob only himself and his teams.
	for _, args := range [][]string{{"team", "create", "ops", "--member", "alice"}, {"team", "create", "dev", "--member", "bob", "--description", "developers"}} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if out := e.ok(e.bob, "team", "list"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "dev") {
		t.Errorf("bob's team list shows other teams than his:\n%s", out)
	}
	for _, args := range [][]string{
		{"user", "list"}, {"user", "list", "--json"}, {"team", "list"}, {"team", "list", "--json"},
		{"grant", "list"}, {"grant", "list", "--json"}, {"grant", "list", "--user", "alice"}, {"grant", "list", "--object", "template/tpl"},
		{"token", "list"}, {"token", "list", "--json"}, {"token", "list", "--user", "bob"},
	} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		if got := e.ok(e.admin, args...); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
	}
	if out := e.ok(e.bob, "user", "list"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "bob") {
		t.Errorf("bob's user list shows more than himself:\n%s", out)
	}
	if out := e.ok(e.bob, "grant", "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("bob's grant list shows grants he may not see:\n%s", out)
	}
	if _, errOut, code := e.as(e.admin, "grant", "list", "--object", "nokind"); code != 2 || !strings.Contains(errOut, "--object") {
		t.Fatalf("grant list --object without a kind: exit %d, want 2:\n%s", code, errOut)
	}
	if out := e.ok(e.bob, "token", "list"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "bob") {
		t.Errorf("bob's token list shows tokens not his:\n%s", out)
	}
	// Users, teams and tokens deleted through the API.
	for _, args := range [][]string{
		{"user", "create", "uz", "--no-password"}, {"user", "create", "ua", "--no-password"},
	} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if _, errOut, code := e.as(e.alice, "team", "delete", "ops"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's team delete: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "user", "delete", "bob"); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("alice's user delete: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "user", "delete", "bad name!"); code != 2 {
		t.Fatalf("user delete of a bad name: exit %d, want 2:\n%s", code, errOut)
	}
	same("team", "create", "tTWIN", "--member", "alice", "--member", "bob", "--description", "both")
	if _, errOut, code := e.as(e.alice, "team", "create", "t2"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's team create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "team", "create", "bad name!"); code != 2 {
		t.Fatalf("team create of a bad name: exit %d, want 2:\n%s", code, errOut)
	}
	teams, _, _ := e.zk("team", "list")
	if !strings.Contains(teams, "\nta ") || strings.Count(teams, "alice,bob") != 2 {
		t.Fatalf("the team created through the API:\n%s", teams)
	}
	same("user", "delete", "uTWIN")
	same("team", "delete", "tTWIN")
	if out, _, _ := e.zk("user", "list"); strings.Contains(out, "ua ") || strings.Contains(out, "uz ") {
		t.Fatalf("users deleted are still listed:\n%s", out)
	}
	var ids []string
	for _, line := range strings.Split(e.ok(e.admin, "token", "list", "--user", "carol"), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			ids = append(ids, f[0])
		}
	}
	if len(ids) != 1 {
		t.Fatalf("carol's tokens: %v", ids)
	}
	if _, errOut, code := e.as(e.bob, "token", "revoke", ids[0]); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's token revoke of carol's token: exit %d, want 1:\n%s", code, errOut)
	}
	if out := e.ok(e.admin, "token", "revoke", ids[0]); out != "token "+ids[0]+" revoked\n" {
		t.Fatalf("token revoke printed %q", out)
	}
	if _, errOut, code := e.as(e.carol, "job", "list"); code != 1 || !strings.Contains(errOut, "not authenticated") {
		t.Fatalf("the revoked token: exit %d, want 1:\n%s", code, errOut)
	}
	// Grants added and removed through the API.
	same("grant", "add", "--user", "bob", "--role", "read", "inventory/jTWIN")
	if out := e.ok(e.bob, "inventory", "list"); !strings.Contains(out, "ja") {
		t.Fatalf("bob's template list after the grant through the API:\n%s", out)
	}
	if _, errOut, code := e.as(e.alice, "grant", "add", "--user", "bob", "--role", "admin", "template/tpl"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's grant add: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "grant", "add", "--user", "bob", "--role", "owner", "template/tpl"); code != 2 {
		t.Fatalf("grant add --role owner: exit %d, want 2:\n%s", code, errOut)
	}
	same("grant", "remove", "--user", "bob", "--role", "read", "inventory/jTWIN")
	if out := e.ok(e.bob, "inventory", "list"); strings.Contains(out, "ja") {
		t.Fatalf("bob's template list after the grant was removed through the API:\n%s", out)
	}
}
