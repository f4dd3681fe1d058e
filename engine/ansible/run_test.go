package ansible_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

type recorder struct {
	mu     sync.Mutex
	events []ansible.Event
}

func (r *recorder) add(ev ansible.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) all() []ansible.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ansible.Event(nil), r.events...)
}

func payload(project, playbook string, inv json.RawMessage) ansible.Payload {
	return ansible.Payload{ProjectDir: project, Playbook: playbook, Inventory: inv}
}

// TestRunEventsAndRecap runs a real playbook over two local hosts and one
// that cannot be reached: every play, task and host result is an event in
// order with its counter, host, task and timing; the recap gives the host
// summary; the return code and the artifacts are ansible-runner's.
func TestRunEventsAndRecap(t *testing.T) {
	project := ansibletest.Project(t, map[string]string{"site.yml": ansibletest.Playbook})
	rec := &recorder{}
	var started ansible.StartInfo
	run := &ansible.Run{
		Dir: t.TempDir(), Ident: "ident-1",
		Payload: payload(project, "site.yml", ansibletest.Inventory("bad", "good", "unreachable1")),
		OnEvent: rec.add, OnStart: func(i ansible.StartInfo) { started = i },
	}
	out, err := run.Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.RC == 0 || out.Status != ansible.StatusFailed {
		t.Fatalf("rc %d status %s, want a failure", out.RC, out.Status)
	}
	evs := rec.all()
	if out.Events != len(evs) || len(evs) == 0 {
		t.Fatalf("outcome counts %d events, %d seen", out.Events, len(evs))
	}
	results := map[string]string{} // host/task → event
	var names []string
	for i, ev := range evs {
		if ev.Counter != i+1 {
			t.Fatalf("event %d has counter %d", i, ev.Counter)
		}
		if ev.UUID == "" || ev.RunnerIdent != "ident-1" || ev.Created == "" {
			t.Fatalf("event %d lacks uuid, ident or time: %+v", i, ev)
		}
		names = append(names, ev.Event)
		if strings.HasPrefix(ev.Event, "runner_on_") && ev.Event != ansible.EventRunnerStart {
			if ev.Data.Host == "" || ev.Data.Task == "" || ev.Data.Play != "the test play" {
				t.Errorf("host result without host, task or play: %+v", ev.Data)
			}
			if ev.Data.Duration <= 0 || ev.Data.Start == "" || ev.Data.End == "" {
				t.Errorf("host result %s %s/%s without timing: %+v", ev.Event, ev.Data.Host, ev.Data.Task, ev.Data)
			}
			results[ev.Data.Host+"/"+ev.Data.Task] = ev.Event
		}
	}
	for key, want := range map[string]string{
		"good/say hello":                ansible.EventOK,
		"bad/say hello":                 ansible.EventOK,
		"good/change something":         ansible.EventOK,
		"bad/fail on bad":               ansible.EventFailed,
		"good/fail on bad":              ansible.EventSkipped,
		"good/skipped everywhere":       ansible.EventSkipped,
		"unreachable1/change something": ansible.EventUnreachable,
	} {
		if results[key] != want {
			t.Errorf("%s: %q, want %q", key, results[key], want)
		}
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{ansible.EventPlaybookStart, ansible.EventPlayStart, ansible.EventTaskStart, ansible.EventStats} {
		if !strings.Contains(joined, want) {
			t.Errorf("no %s event in %s", want, joined)
		}
	}
	if last := evs[len(evs)-1]; last.Event != ansible.EventStats || !strings.Contains(last.Stdout, "PLAY RECAP") {
		t.Errorf("the last event is %s %q, want the recap", last.Event, last.Stdout)
	}
	var changed bool
	for _, ev := range evs {
		if ev.Event == ansible.EventOK && ev.Data.Task == "change something" {
			changed = ev.ActionEvent().Changed
			if !strings.HasPrefix(ev.Stdout, "changed: [") {
				t.Errorf("changed result says %q", ev.Stdout)
			}
		}
	}
	if !changed {
		t.Error("the command's result is not marked changed")
	}

	want := map[string]action.HostCounts{
		"good":         {OK: 2, Changed: 1, Skipped: 2},
		"bad":          {OK: 2, Changed: 1, Failed: 1},
		"unreachable1": {OK: 1, Unreachable: 1}, // debug runs on the controller
	}
	for h, c := range want {
		if out.Recap[h] != c {
			t.Errorf("recap of %s: %+v, want %+v", h, out.Recap[h], c)
		}
	}
	if h := out.Hosts; h == nil || h.Hosts != 3 || h.Changed != 1 || h.Failed != 1 || h.Unreachable != 1 ||
		strings.Join(h.FailedHosts, ",") != "bad" || strings.Join(h.UnreachableHosts, ",") != "unreachable1" {
		t.Errorf("host summary %+v", out.Hosts)
	}
	msg := out.Message()
	for _, w := range []string{"failed hosts: bad", "unreachable hosts: unreachable1", "rc 4"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not say %q", msg, w)
		}
	}

	// Artifacts in ansible-runner's layout.
	art := filepath.Join(run.Dir, "artifacts", "ident-1")
	files, _ := filepath.Glob(filepath.Join(art, "job_events", "*.json"))
	if len(files) != len(evs) {
		t.Errorf("%d job_events files, %d events", len(files), len(evs))
	}
	for name, want := range map[string]string{"rc": "4", "status": "failed"} {
		if b, _ := os.ReadFile(filepath.Join(art, name)); string(b) != want {
			t.Errorf("artifact %s = %q, want %q", name, b, want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(art, "stdout")); !strings.Contains(string(b), "PLAY RECAP") || !strings.Contains(string(b), "fatal: [bad]") {
		t.Errorf("stdout artifact:\n%s", b)
	}
	if started.PID == 0 || started.Command[0] != "ansible-playbook" || started.Cwd != project {
		t.Errorf("start info %+v", started)
	}
}

// TestCancelStopsTheProcessGroup: a task running a long command; cancel
// ends ansible-playbook and the command it started, and the run says so.
func TestCancelStopsTheProcessGroup(t *testing.T) {
	marker := "3600.4242"
	project := ansibletest.Project(t, map[string]string{"slow.yml": `- hosts: all
  gather_facts: false
  tasks:
    - name: wait a long time
      command: sleep ` + marker + `
`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, 1)
	run := &ansible.Run{
		Dir: t.TempDir(), Payload: payload(project, "slow.yml", ansibletest.Inventory("h1")), KillGrace: 3 * time.Second,
		OnEvent: func(ev ansible.Event) {
			if ev.Event == ansible.EventRunnerStart {
				select {
				case started <- struct{}{}:
				default:
				}
			}
		},
	}
	type result struct {
		out ansible.Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := run.Execute(ctx)
		done <- result{out, err}
	}()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the task never started")
	}
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if len(processesWith(marker)) == 0 {
			return errors.New("sleep not running yet")
		}
		return nil
	})
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Execute did not return after cancel")
	}
	if res.err != nil || res.out.Status != ansible.StatusCanceled || res.out.RC != ansible.RCCanceled {
		t.Fatalf("outcome %+v, err %v; want canceled", res.out, res.err)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("processes left after cancel: %v", left)
	}
}

// processesWith lists the command lines of processes whose command line
// contains s.
func processesWith(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, s) && !strings.Contains(cmd, "ansible-playbook") {
			out = append(out, cmd)
		}
	}
	return out
}

// TestBrokenPlaybookSaysWhy: a playbook that does not parse fails with
// Ansible's error in the outcome, and no recap.
func TestBrokenPlaybookSaysWhy(t *testing.T) {
	project := ansibletest.Project(t, map[string]string{"broken.yml": "- hosts: all\n  tasks:\n    - nosuchmodule_xyz: {}\n"})
	out, err := (&ansible.Run{Dir: t.TempDir(), Payload: payload(project, "broken.yml", ansibletest.Inventory("h1"))}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if out.RC == 0 || out.Hosts != nil || !strings.Contains(out.Message(), "ERROR!") {
		t.Fatalf("outcome %+v, message %q", out, out.Message())
	}
}

func TestMissingAnsibleNamesThePackage(t *testing.T) {
	project := ansibletest.Project(t, map[string]string{"site.yml": ansibletest.Playbook})
	_, err := (&ansible.Run{Dir: t.TempDir(), Binary: "/nonexistent/ansible-playbook", Payload: payload(project, "site.yml", ansibletest.Inventory("h1"))}).Execute(context.Background())
	if !errors.Is(err, ansible.ErrNotInstalled) || !strings.Contains(err.Error(), "ansible-core") {
		t.Fatalf("err %v, want ErrNotInstalled naming ansible-core", err)
	}
}

func TestPlaybookMayNotLeaveTheProject(t *testing.T) {
	project := ansibletest.Project(t, map[string]string{"site.yml": ansibletest.Playbook})
	outside := filepath.Join(t.TempDir(), "outside.yml")
	if err := os.WriteFile(outside, []byte(ansibletest.Playbook), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(project, "link.yml")); err != nil {
		t.Fatal(err)
	}
	for _, pb := range []string{"link.yml", "../outside.yml", "nosuch.yml"} {
		_, err := (&ansible.Run{Dir: t.TempDir(), Payload: payload(project, pb, ansibletest.Inventory("h1"))}).Execute(context.Background())
		if !errors.Is(err, ansible.ErrPayload) {
			t.Errorf("playbook %q: err %v, want ErrPayload", pb, err)
		}
	}
}

// TestSetStatsAreTheArtifacts: what a playbook records with set_stats for
// the run becomes the outcome's artifacts (redacted like every event);
// per-host data and a run that records nothing give none.
func TestSetStatsAreTheArtifacts(t *testing.T) {
	project := ansibletest.Project(t, map[string]string{
		"stats.yml": `- hosts: all
  gather_facts: false
  tasks:
    - set_stats:
        data: {release: "1.4.2", hosts_done: "{{ ansible_play_hosts | length }}", token: "s3cr3t-value"}
      run_once: true
    - set_stats:
        data: {only_here: true}
        per_host: true
`,
		"plain.yml": "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: {msg: hi}\n",
	})
	run := &ansible.Run{Dir: t.TempDir(), Payload: payload(project, "stats.yml", ansibletest.Inventory("h1", "h2")),
		Redactor: ansible.NewRedactor("s3cr3t-value")}
	out, err := run.Execute(context.Background())
	if err != nil || out.RC != 0 {
		t.Fatalf("rc %d, %v", out.RC, err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Artifacts, &got); err != nil {
		t.Fatalf("artifacts %q: %v", out.Artifacts, err)
	}
	if got["release"] != "1.4.2" || got["hosts_done"] != "2" || got["only_here"] != nil {
		t.Fatalf("artifacts %s, want release and hosts_done, not the per-host data", out.Artifacts)
	}
	if strings.Contains(string(out.Artifacts), "s3cr3t-value") {
		t.Fatalf("artifacts %s hold a secret", out.Artifacts)
	}
	out, err = (&ansible.Run{Dir: t.TempDir(), Payload: payload(project, "plain.yml", ansibletest.Inventory("h1"))}).Execute(context.Background())
	if err != nil || out.RC != 0 || out.Artifacts != nil {
		t.Fatalf("a run without set_stats: rc %d, artifacts %s, %v", out.RC, out.Artifacts, err)
	}
}

// TestArtifactsOfARunnerStatsEvent reads the artifacts of a
// playbook_on_stats event as ansible-runner writes it (a worker's stream
// carries the same line), and none from one without set_stats data.
func TestArtifactsOfARunnerStatsEvent(t *testing.T) {
	for line, want := range map[string]string{
		`{"event": "playbook_on_stats", "event_data": {"ok": {"h1": 1}, "artifact_data": {"release": "1.4.2"}}}`: `{"release": "1.4.2"}`,
		`{"event": "playbook_on_stats", "event_data": {"ok": {"h1": 1}, "artifact_data": {}}}`:                   ``,
		`{"event": "playbook_on_stats", "event_data": {"ok": {"h1": 1}}}`:                                        ``,
	} {
		ev, err := ansible.DecodeEvent([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(ev.Artifacts()); got != want {
			t.Errorf("artifacts of %s: %q, want %q", line, got, want)
		}
	}
}
