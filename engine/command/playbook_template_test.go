package command

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/exectest"
)

// localHosts is an inventory of n hosts h01… reached with
// ansible_connection=local, in groups even and odd.
func localHosts(n int) string {
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
		for k, v := range ansibletest.LocalVars {
			hv[h][k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{
		"_meta": map[string]any{"hostvars": hv},
		"all":   map[string]any{"children": []string{"even", "odd"}, "vars": map[string]any{"site": "lab"}},
		"even":  map[string]any{"hosts": even},
		"odd":   map[string]any{"hosts": odd},
	})
	return string(b)
}

// TestSlicedPlaybookTemplate: a template running a playbook of a git
// project (file://) over 3 slices of an inventory of local hosts. The
// project update records its revision; each slice's payload names that
// revision and its slice of the pinned snapshot, never a host list or a
// path of the launching host; the executor checks the revision out and
// writes the slice's hosts as the inventory; every slice succeeds with the
// recap of its own hosts, the template's extra variables and forks reach
// the run, and the container succeeds.
func TestSlicedPlaybookTemplate(t *testing.T) {
	ansibletest.Need(t)
	repo := ansibletest.Repo(t, map[string]string{"play/site.yml": `- name: the sliced play
  hosts: all
  gather_facts: false
  tasks:
    - name: greet
      debug:
        msg: "{{ greeting }} from {{ inventory_hostname }} in {{ site }}"
    - name: change something
      command: /bin/true
    - name: use the secret
      debug:
        msg: "token length {{ lookup('env', 'MY_TOKEN') | length }}"
`})
	rev := ansibletest.Head(t, repo)
	e := newJobEnv(t)
	keyFile := filepath.Join(t.TempDir(), "credential.key")
	e.binOK("credential", "keygen", keyFile)
	token := randomSecret("T0ken")
	if out, errOut, code := e.binIn(token+"\n", "credential", "create", "api", "--kind", "secret", "--secret", "MY_TOKEN=-",
		"--credential-key-file", keyFile); code != 0 {
		t.Fatalf("credential create: exit %d %s %s", code, out, errOut)
	}
	startDaemonEnv(t, e.root, []string{"JOBENGINE_PROJECTS_DIR=" + t.TempDir()},
		"executor", "--name", "x", "--threads", "3", "--plugin-dir", t.TempDir(), "--credential-key-file", keyFile)
	startController(t, e.root)

	e.binOK("inventory", "import", "local", e.writeFile("inv.json", localHosts(5)))
	e.binOK("project", "create", "site", "--git", "file://"+repo, "--branch", "main")
	up := strings.TrimSpace(e.binOK("project", "update", "site"))
	if out := e.binOK("job", "wait", up, "--timeout", "60s"); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("project update: %q", out)
	}
	e.binOK("template", "create", "deploy", "--action", "ansible_playbook", "--project", "site", "--playbook", "play/site.yml",
		"--inventory", "local", "--slices", "3", "--forks", "2", "--extra-vars", `{"greeting": "hello"}`, "--credential", "api")

	c := strings.TrimSpace(e.binOK("template", "launch", "deploy"))
	if out, errOut, code := e.bin("job", "wait", c, "--timeout", "120s"); code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("job wait on the container: exit %d %q %q", code, out, errOut)
	}
	if !strings.Contains(e.binOK("project", "show", "site"), rev) {
		t.Errorf("project show does not name the revision %s", rev)
	}
	container := state(e, c)
	if len(container.NestedJobs) != 3 || container.State != jobs.Success {
		t.Fatalf("container %s with %d slices", container.State, len(container.NestedJobs))
	}
	var seen []string
	for k, id := range container.NestedJobs {
		j := state(e, id)
		p, err := ansible.ParsePayload(j.Payload)
		if err != nil {
			t.Fatalf("slice %d payload: %v", k+1, err)
		}
		if p.ProjectDir != "" || p.Project == nil || p.Project.Revision != rev || p.Project.URL != "file://"+repo ||
			len(p.Inventory) != 0 || p.InventorySource == nil || p.InventorySource.SliceNumber != k+1 || p.InventorySource.SliceCount != 3 ||
			p.InventorySource.Snapshot != j.InventorySnapshot || p.Forks != 2 || !strings.Contains(string(p.ExtraVars), "hello") {
			t.Errorf("slice %d payload %s", k+1, j.Payload)
		}
		want := []int{2, 2, 1}[k]
		h := j.HostSummary
		if j.State != jobs.Success || h == nil || h.Hosts != want || h.Changed != want || h.Failed != 0 {
			t.Fatalf("slice %d: %s %q, host summary %+v", k+1, j.State, j.StatusMessage, h)
		}
		for host, counts := range h.PerHost {
			if counts.Changed != 1 || counts.OK != 3 {
				t.Errorf("slice %d host %s: %+v", k+1, host, counts)
			}
			seen = append(seen, host)
		}
		logs := e.binOK("job", "logs", id)
		for host := range h.PerHost {
			if w := "hello from " + host + " in lab"; !strings.Contains(logs, w) {
				t.Errorf("slice %d log lacks %q:\n%s", k+1, w, logs)
			}
		}
		if w := fmt.Sprintf("token length %d", len(token)); !strings.Contains(logs, w) {
			t.Errorf("slice %d log lacks %q: the credential did not reach the run", k+1, w)
		}
		if strings.Contains(logs, token) || strings.Contains(string(e.binOK("job", "show", id, "--json")), token) {
			t.Errorf("slice %d shows the secret", k+1)
		}
		if !slices.Equal(p.Credentials, []string{"api"}) {
			t.Errorf("slice %d credentials %v", k+1, p.Credentials)
		}
		if !strings.Contains(logs, "revision "+rev) {
			t.Errorf("slice %d log does not name the revision it ran", k+1)
		}
	}
	sort.Strings(seen)
	if !slices.Equal(seen, []string{"h01", "h02", "h03", "h04", "h05"}) {
		t.Errorf("hosts run over all slices: %v", seen)
	}
}

// TestPlaybookTemplateRefusals: a template of ansible_playbook whose
// project is gone, or that runs over no inventory, is refused at launch
// with the reason, and nothing is created.
func TestPlaybookTemplateRefusals(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("project", "create", "site", "--directory", "/srv/site")
	e.binOK("inventory", "import", "local", e.writeFile("inv.json", localHosts(2)))
	e.binOK("template", "create", "noinv", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml")
	e.binOK("template", "create", "gone", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml", "--inventory", "local")
	for _, tc := range []struct{ name, want string }{{"noinv", `"inventory"`}, {"gone", "project site does not exist"}} {
		if tc.name == "gone" {
			e.binOK("project", "delete", "site")
		}
		_, errOut, code := e.bin("template", "launch", tc.name)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("launch %s: exit %d %q, want exit 2 and an error naming %s", tc.name, code, errOut, tc.want)
		}
	}
	if _, errOut, code := e.bin("template", "create", "nocred", "--action", "ansible_playbook", "--credential", "nope"); code != 2 || !strings.Contains(errOut, "credential nope does not exist") {
		t.Errorf("template naming a missing credential: exit %d %q", code, errOut)
	}
	if out := e.binOK("job", "list"); strings.Contains(out, "ansible_playbook") {
		t.Errorf("a refused launch created jobs:\n%s", out)
	}
}

// TestTransmitATemplateSlice: a slice of a playbook template goes through
// `transmit | worker | process --job`: transmit checks the project out and
// writes the slice's hosts, and the slice ends with the recap of its own
// hosts. The controller's scheduler queues the slice on a stand-in
// executor first, as it would on the executor that runs it.
func TestTransmitATemplateSlice(t *testing.T) {
	ansibletest.Need(t)
	repo := ansibletest.Repo(t, map[string]string{"site.yml": ansibletest.Playbook})
	e := newJobEnv(t)
	exectest.Join(t, e.conn, "x", 10)
	startController(t, e.root)
	e.binOK("inventory", "import", "local", e.writeFile("inv.json", localHosts(4)))
	e.binOK("project", "create", "site", "--git", "file://"+repo)
	e.binOK("template", "create", "deploy", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml",
		"--inventory", "local", "--slices", "2")
	c := strings.TrimSpace(e.binOK("template", "launch", "deploy"))
	second := state(e, c).NestedJobs[1]
	e.waitScheduled(second)
	g := fmt.Sprintf("--zk-hosts %s --zk-root %s", testZK.ConnectString(), e.root)
	out, code := sh(t, fmt.Sprintf(`JOBENGINE_PROJECTS_DIR=%s "$JE" %s transmit %s | "$JE" worker | "$JE" %s process %s --job %s`,
		t.TempDir(), g, second, g, t.TempDir(), second))
	if code != 0 || !strings.Contains(out, "ok: [h02]") || !strings.Contains(out, "ok: [h04]") || strings.Contains(out, "h01") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	j := state(e, second)
	if h := j.HostSummary; j.State != jobs.Success || h == nil || h.Hosts != 2 || h.PerHost["h02"].Changed != 1 {
		t.Fatalf("slice after process: %s %q %+v", j.State, j.StatusMessage, j.HostSummary)
	}
}

// TestUpdateOnLaunchRunsFirst: with a controller scheduling, a sliced
// playbook launch over a project that updates on launch waits for the
// update it created, then its slices run the fetched files; a second
// launch within the cache timeout creates no update.
func TestUpdateOnLaunchRunsFirst(t *testing.T) {
	ansibletest.Need(t)
	repo := ansibletest.Repo(t, map[string]string{"site.yml": ansibletest.Playbook})
	e := newJobEnv(t)
	startDaemonEnv(t, e.root, []string{"JOBENGINE_PROJECTS_DIR=" + t.TempDir()},
		"executor", "--name", "x", "--threads", "3", "--plugin-dir", t.TempDir())
	startController(t, e.root)
	e.binOK("inventory", "import", "local", e.writeFile("inv.json", localHosts(2)))
	e.binOK("project", "create", "site", "--git", "file://"+repo, "--update-on-launch", "--cache-timeout", "1h")
	e.binOK("template", "create", "deploy", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml",
		"--inventory", "local", "--slices", "2")
	for launch := 1; launch <= 2; launch++ {
		c := strings.TrimSpace(e.binOK("template", "launch", "deploy"))
		if out, errOut, code := e.bin("job", "wait", c, "--timeout", "120s"); code != 0 {
			t.Fatalf("launch %d: exit %d %q %q", launch, code, out, errOut)
		}
		for _, id := range state(e, c).NestedJobs {
			j := state(e, id)
			if j.State != jobs.Success || len(j.DependsOn) != 2-launch {
				t.Fatalf("launch %d slice %s: %s, depends on %v", launch, id, j.State, j.DependsOn)
			}
			if launch == 1 {
				up := state(e, j.DependsOn[0])
				if up.Action != "project_update" || up.State != jobs.Success || j.Started.Before(up.TimeOfStatusChange) {
					t.Fatalf("update %s %s, finished %v; slice started %v", up.Action, up.State, up.TimeOfStatusChange, j.Started)
				}
			}
		}
	}
}

// TestUpdateOnLaunchRunsTheFetchedCommit: a launch that waits for a
// project update runs the commit that update fetched, even when the
// branch has moved on by the time the run starts (the run is held back
// by a job holding the template's key until after a new commit).
func TestUpdateOnLaunchRunsTheFetchedCommit(t *testing.T) {
	ansibletest.Need(t)
	repo := ansibletest.Repo(t, map[string]string{"site.yml": ansibletest.Playbook})
	fetched := ansibletest.Head(t, repo)
	e := newJobEnv(t)
	startDaemonEnv(t, e.root, []string{"JOBENGINE_PROJECTS_DIR=" + t.TempDir()},
		"executor", "--name", "x", "--threads", "3", "--enable-test-actions", "--plugin-dir", t.TempDir())
	startController(t, e.root)
	e.binOK("inventory", "import", "local", e.writeFile("inv.json", localHosts(1)))
	e.binOK("project", "create", "site", "--git", "file://"+repo, "--update-on-launch")
	e.binOK("template", "create", "deploy", "--action", "ansible_playbook", "--project", "site", "--playbook", "site.yml", "--inventory", "local")
	blocker := strings.TrimSpace(e.binOK("job", "add", "sleep", "--payload", `{"duration": "5m"}`, "--concurrency-key", "template:deploy"))
	waitState(e, jobs.Running, blocker)

	run := strings.TrimSpace(e.binOK("template", "launch", "deploy"))
	deps := state(e, run).DependsOn
	if len(deps) != 1 {
		t.Fatalf("the launch depends on %v, want its project update", deps)
	}
	waitState(e, jobs.Success, deps[0])
	if msg := state(e, deps[0]).StatusMessage; msg != "revision "+fetched {
		t.Fatalf("the update says %q, want revision %s", msg, fetched)
	}
	if err := os.WriteFile(filepath.Join(repo, "later.txt"), []byte("later\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "later.txt"}, {"-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "later"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	if ansibletest.Head(t, repo) == fetched {
		t.Fatal("the branch did not move")
	}
	e.binOK("job", "cancel", blocker)
	waitState(e, jobs.Success, run)
	_, uid, _ := jobs.ParseID(run)
	lines, err := e.store.Logs(e.ctx(), uid)
	if err != nil {
		t.Fatal(err)
	}
	var at string
	for _, l := range lines {
		if i := strings.Index(l.Message, "at revision "); i >= 0 {
			at = strings.TrimSpace(l.Message[i+len("at revision "):])
		}
	}
	if at != fetched {
		t.Errorf("the run took revision %q, want %s (the update's)", at, fetched)
	}
}
