// Package ansibletest is test support for running real playbooks: a project
// in a local git repository, checked out as a project update would, and
// inventories of hosts reached with ansible_connection=local.
package ansibletest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Need skips the test when ansible-playbook (Debian's ansible-core) or git
// is missing, or in -short mode (a playbook takes seconds to start).
func Need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs ansible-playbook: not in -short mode")
	}
	for _, bin := range []string{"/usr/bin/ansible-playbook", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
		}
	}
}

// Project commits files (path → content) to a new git repository and
// returns the directory of a clone made over file:// — the files of a
// checked-out revision, as a project update leaves them.
func Project(t testing.TB, files map[string]string) string {
	t.Helper()
	repo := Repo(t, files)
	checkout := filepath.Join(filepath.Dir(repo), "checkout")
	git(t, filepath.Dir(repo), "clone", "-q", "file://"+repo, checkout)
	return checkout
}

// Repo commits files (path → content) to a new git repository on branch
// main and returns its directory, for a project of URL file://DIR.
func Repo(t testing.TB, files map[string]string) string {
	t.Helper()
	Need(t)
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	for path, content := range files {
		full := filepath.Join(repo, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", ".")
	git(t, repo, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "playbooks")
	return repo
}

// Head returns the commit a repository's HEAD is at.
func Head(t testing.TB, repo string) string {
	t.Helper()
	cmd := exec.Command("git", "-C", repo, "rev-parse", "HEAD")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func git(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// LocalVars are the variables of a host run on this machine.
var LocalVars = map[string]any{"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}

// Inventory returns Ansible's JSON inventory of hosts reached locally, all
// in group "all" (ansible-inventory --list format). A host named
// "unreachable…" is reached over SSH on a closed port instead.
func Inventory(hosts ...string) json.RawMessage {
	hostvars := map[string]any{}
	for _, h := range hosts {
		if strings.HasPrefix(h, "unreachable") {
			hostvars[h] = map[string]any{"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
				"ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
			continue
		}
		hostvars[h] = LocalVars
	}
	inv := map[string]any{
		"_meta":     map[string]any{"hostvars": hostvars},
		"all":       map[string]any{"children": []string{"ungrouped"}},
		"ungrouped": map[string]any{"hosts": hosts},
	}
	data, _ := json.Marshal(inv)
	return data
}

// Playbook is a playbook whose every host result is known: on each host a
// debug (ok) and a command (changed); the host "bad" fails the third task,
// which the others skip; a task skipped everywhere.
const Playbook = `- name: the test play
  hosts: all
  gather_facts: false
  tasks:
    - name: say hello
      debug:
        msg: "hello {{ inventory_hostname }}"
    - name: change something
      command: /bin/true
    - name: fail on bad
      fail:
        msg: "bad is bad"
      when: inventory_hostname == 'bad'
    - name: skipped everywhere
      debug:
        msg: never
      when: false
`
