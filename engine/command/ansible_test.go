package command

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// playbookPayload is an ansible_playbook payload for a test project.
func playbookPayload(t *testing.T, project, playbook string, inv json.RawMessage, extra map[string]any) string {
	t.Helper()
	p := map[string]any{"project-dir": project, "playbook": playbook, "inventory": inv}
	for k, v := range extra {
		p[k] = v
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExecutorRunsAPlaybook: an executor runs a real playbook; every host
// result is a line of the job's log and an event in Elasticsearch with its
// counter, host and task; the recap is on the document and the failed host
// is named in the status message.
func TestExecutorRunsAPlaybook(t *testing.T) {
	ansibletest.Need(t)
	es := estest.Start(t, estest.Options{})
	const prefix = "t-ansible-"
	root := testRoot(t)
	s := testStore(t, root)
	project := ansibletest.Project(t, map[string]string{"site.yml": ansibletest.Playbook})
	startDaemon(t, root, "--es-hosts", es.URL(), "--es-index-prefix", prefix, "executor", "--threads", "1", "--plugin-dir", t.TempDir())

	j := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "site.yml", ansibletest.Inventory("bad", "good"), nil))
	done := waitJob(t, s, j.ID, 90*time.Second, func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s is %s", j.ID, j.State)
		}
		return nil
	})
	if done.State != jobs.Failed || done.ReturnCode == nil || *done.ReturnCode != 2 || !strings.Contains(done.StatusMessage, "failed hosts: bad") {
		t.Fatalf("job ended %s rc %v %q", done.State, done.ReturnCode, done.StatusMessage)
	}
	h := done.HostSummary
	if h == nil || h.Hosts != 2 || h.Failed != 1 || h.Changed != 1 || h.PerHost["good"].Changed != 1 || h.PerHost["bad"].Failed != 1 {
		t.Fatalf("host summary %+v", h)
	}

	out, errOut, code := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "job", "logs", j.ID)
	if code != 0 {
		t.Fatalf("job logs: exit %d %s", code, errOut)
	}
	for _, w := range []string{"TASK [say hello]", "ok: [good]", "changed: [bad]", "fatal: [bad]: FAILED!", "PLAY RECAP"} {
		if !strings.Contains(out, w) {
			t.Errorf("job log lacks %q:\n%s", w, out)
		}
	}

	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var evs []index.Event
	poll.For(t, 30*time.Second, 200*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ix.Refresh(ctx)
		all, err := ix.JobEvents(ctx, j.ID, time.Time{}, 1000)
		if err != nil {
			return err
		}
		evs = evs[:0]
		for _, ev := range all {
			if ev.Type == index.EventAction {
				evs = append(evs, ev)
			}
		}
		for _, ev := range evs {
			if ev.Name == ansible.EventStats {
				return nil
			}
		}
		return fmt.Errorf("%d action events indexed, no recap yet", len(evs))
	})
	results := map[string]index.Event{}
	counters := map[int]bool{}
	for _, ev := range evs {
		if counters[ev.Counter] || ev.Counter <= 0 {
			t.Errorf("counter %d repeated or missing", ev.Counter)
		}
		counters[ev.Counter] = true
		if ev.Host != "" && ev.Name != ansible.EventRunnerStart {
			results[ev.Host+"/"+ev.Task] = ev
		}
	}
	for key, want := range map[string]string{"good/say hello": ansible.EventOK, "bad/fail on bad": ansible.EventFailed, "good/fail on bad": ansible.EventSkipped} {
		ev, ok := results[key]
		if !ok || ev.Name != want || ev.Play != "the test play" || ev.Duration <= 0 {
			t.Errorf("%s: indexed %+v, want %s with play and duration", key, ev, want)
		}
	}
	if ev := results["bad/change something"]; !ev.Changed || ev.TaskAction != "command" {
		t.Errorf("changed result indexed as %+v", ev)
	}
}

// TestPlaybookCancelAndTimeout: `job cancel` of a running playbook and a
// playbook past its job's timeout both stop ansible-playbook and the
// commands it started; the jobs end CANCELED and FAILED "timed out".
func TestPlaybookCancelAndTimeout(t *testing.T) {
	ansibletest.Need(t)
	root := testRoot(t)
	s := testStore(t, root)
	const canceled, timedOut = "3600.7171", "3600.7272"
	project := ansibletest.Project(t, map[string]string{
		"c.yml": "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: sleep " + canceled + "\n",
		"t.yml": "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: sleep " + timedOut + "\n",
	})
	startDaemon(t, root, "executor", "--threads", "2", "--plugin-dir", t.TempDir())
	c := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "c.yml", ansibletest.Inventory("h1"), nil))
	tj, err := s.Create(context.Background(), jobs.NewJob{Action: "ansible_playbook", Priority: 100, Timeout: 6 * time.Second,
		Payload: json.RawMessage(playbookPayload(t, project, "t.yml", ansibletest.Inventory("h1"), nil))})
	if err != nil {
		t.Fatal(err)
	}
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		if !processRunning("sleep " + canceled) {
			return fmt.Errorf("the playbook's command is not running yet")
		}
		return nil
	})
	if _, errOut, code := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "job", "cancel", c.ID); code != 0 {
		t.Fatal(errOut)
	}
	final := func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s", j.State)
		}
		return nil
	}
	if got := waitJob(t, s, c.ID, 30*time.Second, final); got.State != jobs.Canceled {
		t.Errorf("canceled playbook ended %s %q", got.State, got.StatusMessage)
	}
	if got := waitJob(t, s, tj.ID, 60*time.Second, final); got.State != jobs.Failed || !strings.Contains(got.StatusMessage, "timed out after 6s") {
		t.Errorf("playbook past its timeout ended %s %q", got.State, got.StatusMessage)
	}
	for _, m := range []string{canceled, timedOut} {
		if processRunning("sleep " + m) {
			t.Errorf("sleep %s still runs", m)
		}
	}
}
