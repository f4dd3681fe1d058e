package command

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
)

// sourceRepo is a git repository of inventory sources: a YAML file for
// ansible-inventory, an executable script, and a script printing what is
// not an inventory.
func sourceRepo(t *testing.T) string {
	t.Helper()
	repo := ansibletest.Repo(t, map[string]string{
		"inv/hosts.yml": "all:\n  children:\n    web:\n      hosts:\n        web1:\n          port: 8080\n        web2:\n    db:\n      hosts:\n        db1:\n",
		"inv/script.sh": "#!/bin/sh\n[ \"$1\" = --list ] || exit 3\n" +
			`echo '{"app": {"hosts": ["app1", "app2", "app3"], "vars": {"tier": "front"}}, "_meta": {"hostvars": {"app1": {"x": 1}}}}'` + "\n",
		"inv/bad.sh": "#!/bin/sh\necho '{\"app\": 42}'\n",
	})
	for _, f := range []string{"inv/script.sh", "inv/bad.sh"} {
		if err := os.Chmod(filepath.Join(repo, f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-am", "executable")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v %s", err, out)
	}
	return repo
}

// TestInventorySourceUpdate: an inventory update job, scheduled by a
// controller under the key inventory-source:NAME, checks out a git
// project (file://) and imports what ansible-inventory reads from a YAML
// file, then what an executable script prints, each as a new snapshot; a
// source that prints a bad inventory fails its job and leaves the
// inventory as it was. Bad input is refused with exit 2 before anything
// is written.
func TestInventorySourceUpdate(t *testing.T) {
	ansibletest.Need(t)
	if _, err := exec.LookPath("ansible-inventory"); err != nil {
		t.Skip("ansible-inventory is not installed")
	}
	repo := sourceRepo(t)
	e := newJobEnv(t)
	e.binOK("inventory", "create", "fleet")
	e.binOK("project", "create", "src", "--git", "file://"+repo)

	for name, args := range map[string][]string{
		"path outside":         {"inventory", "source", "set", "fleet", "--project", "src", "--path", "../hosts.yml"},
		"absolute path":        {"inventory", "source", "set", "fleet", "--project", "src", "--path", "/etc/hosts"},
		"cache without update": {"inventory", "source", "set", "fleet", "--project", "src", "--path", "inv/hosts.yml", "--cache-timeout", "1m"},
		"no project flag":      {"inventory", "source", "set", "fleet", "--path", "inv/hosts.yml"},
		"no source yet":        {"inventory", "source", "update", "fleet"},
		"bad name":             {"inventory", "source", "show", "no/such"},
	} {
		if out, errOut, code := e.bin(args...); code != 2 {
			t.Errorf("%s: exit %d, want 2 (%q %q)", name, code, out, errOut)
		}
	}
	if _, _, code := e.bin("inventory", "source", "set", "fleet", "--project", "nope", "--path", "inv/hosts.yml"); code == 0 {
		t.Errorf("a source over a missing project was accepted")
	}
	if out := e.binOK("inventory", "show", "fleet", "--json"); strings.Contains(out, `"source"`) {
		t.Fatalf("refused sources were written: %s", out)
	}

	startDaemonEnv(t, e.root, []string{"JOBENGINE_PROJECTS_DIR=" + t.TempDir()},
		"executor", "--name", "x", "--threads", "2", "--plugin-dir", t.TempDir())
	startDaemon(t, e.root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c1", "--config-dir", t.TempDir())

	update := func(path string) *jobs.Job {
		t.Helper()
		e.binOK("inventory", "source", "set", "fleet", "--project", "src", "--path", path)
		id := strings.TrimSpace(e.binOK("inventory", "source", "update", "fleet"))
		e.bin("job", "wait", id, "--timeout", "60s")
		j := state(e, id)
		if j.Action != "inventory_update" || len(j.ConcurrencyKeys) != 1 || j.ConcurrencyKeys[0] != "inventory-source:fleet" {
			t.Fatalf("update job %s: action %s, keys %v", id, j.Action, j.ConcurrencyKeys)
		}
		if !strings.Contains(e.binOK("inventory", "source", "show", "fleet"), id) {
			t.Errorf("source show does not name the last update %s", id)
		}
		return j
	}
	hosts := func() string {
		return e.binOK("inventory", "hosts", "fleet")
	}

	if j := update("inv/hosts.yml"); j.State != jobs.Success {
		t.Fatalf("update from YAML: %s %q", j.State, j.StatusMessage)
	}
	out := hosts()
	for _, h := range []string{"web1", "web2", "db1"} {
		if !strings.Contains(out, h) {
			t.Errorf("after the YAML update, hosts lack %s:\n%s", h, out)
		}
	}
	first := e.binOK("inventory", "show", "fleet")
	if !strings.Contains(first, "source:") || !strings.Contains(first, "inv/hosts.yml of project src") {
		t.Errorf("inventory show does not name the source:\n%s", first)
	}

	if j := update("inv/script.sh"); j.State != jobs.Success {
		t.Fatalf("update from the script: %s %q", j.State, j.StatusMessage)
	}
	out = hosts()
	if !strings.Contains(out, "app3") || strings.Contains(out, "web1") {
		t.Errorf("after the script update, hosts are:\n%s", out)
	}
	second := e.binOK("inventory", "show", "fleet")
	if snapshotLine(first) == snapshotLine(second) || snapshotLine(second) == "" {
		t.Errorf("the script update made no new snapshot: %q then %q", snapshotLine(first), snapshotLine(second))
	}

	if j := update("inv/bad.sh"); j.State != jobs.Failed {
		t.Fatalf("update from a bad script: %s %q", j.State, j.StatusMessage)
	}
	if snapshotLine(e.binOK("inventory", "show", "fleet")) != snapshotLine(second) {
		t.Errorf("a failed update changed the inventory")
	}
	e.binOK("inventory", "source", "remove", "fleet")
	if _, _, code := e.bin("inventory", "source", "show", "fleet"); code == 0 {
		t.Errorf("the source is still shown after remove")
	}
}

// snapshotLine returns the snapshot line of `inventory show`.
func snapshotLine(show string) string {
	for _, l := range strings.Split(show, "\n") {
		if strings.HasPrefix(l, "snapshot:") {
			return l
		}
	}
	return ""
}

// TestInventoryUpdateOnLaunch: a playbook template over an empty
// inventory whose source updates on launch: the launch creates the
// inventory update as its dependency, its job runs after it over the
// hosts the update imported (not the empty snapshot of launch time); a
// second launch within the cache timeout creates no update.
func TestInventoryUpdateOnLaunch(t *testing.T) {
	ansibletest.Need(t)
	inv := ansibletest.Inventory("h1", "h2")
	repo := ansibletest.Repo(t, map[string]string{
		"site.yml":      ansibletest.Playbook,
		"inv/script.sh": "#!/bin/sh\ncat <<'END'\n" + string(inv) + "\nEND\n",
	})
	if err := os.Chmod(filepath.Join(repo, "inv/script.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "-C", repo, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-am", "executable")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v %s", err, out)
	}
	e := newJobEnv(t)
	startDaemonEnv(t, e.root, []string{"JOBENGINE_PROJECTS_DIR=" + t.TempDir()},
		"executor", "--name", "x", "--threads", "2", "--plugin-dir", t.TempDir())
	startDaemon(t, e.root, "controller", "--listen", "127.0.0.1:0", "--identifier", "c1", "--config-dir", t.TempDir())
	e.binOK("inventory", "create", "fleet")
	e.binOK("project", "create", "site", "--git", "file://"+repo)
	e.binOK("inventory", "source", "set", "fleet", "--project", "site", "--path", "inv/script.sh", "--update-on-launch", "--cache-timeout", "1h")
	e.binOK("template", "create", "deploy", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml", "--inventory", "fleet")
	for launch := 1; launch <= 2; launch++ {
		id := strings.TrimSpace(e.binOK("template", "launch", "deploy"))
		if out, errOut, code := e.bin("job", "wait", id, "--timeout", "120s"); code != 0 {
			t.Fatalf("launch %d: exit %d %q %q", launch, code, out, errOut)
		}
		j := state(e, id)
		if j.State != jobs.Success || len(j.DependsOn) != 2-launch {
			t.Fatalf("launch %d: %s %q, depends on %v", launch, j.State, j.StatusMessage, j.DependsOn)
		}
		if h := j.HostSummary; h == nil || h.Hosts != 2 {
			t.Fatalf("launch %d ran over %+v, want the 2 imported hosts", launch, h)
		}
		if launch == 1 {
			up := state(e, j.DependsOn[0])
			if up.Action != "inventory_update" || up.State != jobs.Success || up.LaunchType != jobs.LaunchDependency || j.Started.Before(up.TimeOfStatusChange) {
				t.Fatalf("update %s %s %s, finished %v; job started %v", up.Action, up.State, up.LaunchType, up.TimeOfStatusChange, j.Started)
			}
		}
	}
}

// TestProjectOfASourceIsNotDeleted: a project that an inventory source
// takes its file from is not deleted (exit 1, naming the inventories and
// what to do); once the sources are removed it is.
func TestProjectOfASourceIsNotDeleted(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("project", "create", "src", "--directory", t.TempDir())
	for _, inv := range []string{"fleet", "edge"} {
		e.binOK("inventory", "create", inv)
		e.binOK("inventory", "source", "set", inv, "--project", "src", "--path", "hosts.yml")
	}
	_, errOut, code := e.bin("project", "delete", "src")
	want := "project src is the source of inventory edge, fleet (remove the source first: jobengine inventory source remove edge)"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("project delete: exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}
	e.binOK("project", "show", "src")
	for _, inv := range []string{"fleet", "edge"} {
		e.binOK("inventory", "source", "remove", inv)
	}
	e.binOK("project", "delete", "src")
	if _, _, code := e.bin("project", "show", "src"); code == 0 {
		t.Fatal("project src still exists")
	}
}
