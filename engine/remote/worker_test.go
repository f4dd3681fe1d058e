package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// ansibleRunner is Debian's python3-ansible-runner (`python3 -m
// ansible_runner` does not run its command line in this version).
const ansibleRunner = "/usr/bin/ansible-runner"

func needRunner(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ansibleRunner); err != nil {
		t.Skip("ansible-runner (python3-ansible-runner) is not installed")
	}
}

const hostsINI = `[all]
h1 ansible_connection=local ansible_python_interpreter=/usr/bin/python3
bad ansible_connection=local ansible_python_interpreter=/usr/bin/python3
`

// runnerDir is a private data directory in ansible-runner's layout: the
// test playbook in project/, an INI inventory in inventory/hosts.
func runnerDir(t *testing.T) string {
	t.Helper()
	ansibletest.Need(t)
	needRunner(t)
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "project", "site.yml"), ansibletest.Playbook, 0o644)
	mustWrite(t, filepath.Join(dir, "inventory", "hosts"), hostsINI, 0o644)
	return dir
}

// transmitted returns the transmit stream of a directory.
func transmitted(t *testing.T, k Kwargs, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Transmit(&b, k, dir); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func work(t *testing.T, w *Worker, in []byte) ([]byte, Status) {
	t.Helper()
	var out bytes.Buffer
	if w.Registry == nil {
		w.Registry = action.BuiltinsWithTests()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := w.Run(ctx, bytes.NewReader(in), &out)
	if err != nil && st.Status != StatusError {
		t.Fatalf("worker: %v", err)
	}
	return out.Bytes(), st
}

// TestAnsibleRunnerProcessReadsJobengineWorker: `ansible-runner process`
// (Debian's python3-ansible-runner) reads the stream of a jobengine worker:
// it writes every event, the final status and rc of the run.
func TestAnsibleRunnerProcessReadsJobengineWorker(t *testing.T) {
	dir := runnerDir(t)
	stream, st := work(t, &Worker{}, transmitted(t, Kwargs{Ident: "r1", Playbook: "site.yml", Inventory: "inventory/hosts"}, dir))
	if st.Status != StatusFailed || st.RC == nil || *st.RC != 2 {
		t.Fatalf("final status %+v", st)
	}
	out := t.TempDir()
	cmd := exec.Command(ansibleRunner, "process", out, "--ident", "r1")
	cmd.Stdin = bytes.NewReader(stream)
	printed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-runner process: %v\n%s", err, printed)
	}
	if !strings.Contains(string(printed), "PLAY RECAP") || !strings.Contains(string(printed), "fatal: [bad]") {
		t.Errorf("ansible-runner printed:\n%s", printed)
	}
	art := filepath.Join(out, "artifacts", "r1")
	for name, want := range map[string]string{"status": "failed", "rc": "2"} {
		if b, _ := os.ReadFile(filepath.Join(art, name)); string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(art, "job_events", "*.json"))
	var names []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names = append(names, ev["event"].(string))
	}
	joined := strings.Join(names, " ")
	for _, want := range []string{"playbook_on_play_start", "runner_on_ok", "runner_on_failed", "runner_on_skipped", "playbook_on_stats"} {
		if !strings.Contains(joined, want) {
			t.Errorf("ansible-runner wrote no %s event (%d events)", want, len(names))
		}
	}
}

// TestJobengineProcessReadsAnsibleRunnerWorker: `jobengine process` reads
// the stream of `ansible-runner worker`, fed by `ansible-runner transmit`;
// the return code comes from the artifacts (ansible-runner's final status
// has none) and the recap from the stats event.
func TestJobengineProcessReadsAnsibleRunnerWorker(t *testing.T) {
	dir := runnerDir(t)
	transmit := exec.Command(ansibleRunner, "transmit", dir, "-p", "site.yml", "--ident", "r2")
	tstream, err := transmit.Output()
	if err != nil {
		t.Fatalf("ansible-runner transmit: %v", err)
	}
	worker := exec.Command(ansibleRunner, "worker")
	worker.Stdin = bytes.NewReader(tstream)
	stream, _ := worker.Output() // exits with the playbook's rc
	p := &Processor{ArtifactDir: filepath.Join(t.TempDir(), "artifacts", "r2")}
	var events []ansible.Event
	p.OnEvent = func(ev ansible.Event) { events = append(events, ev) }
	out, err := p.Run(context.Background(), bytes.NewReader(stream))
	if err != nil {
		t.Fatalf("process: %v\nstream:\n%.2000s", err, stream)
	}
	if out.Status != StatusFailed || out.RC == nil || *out.RC != 2 || out.Ident != "r2" {
		t.Fatalf("outcome %+v", out)
	}
	if out.Hosts == nil || strings.Join(out.Hosts.FailedHosts, ",") != "bad" || out.Hosts.Hosts != 2 {
		t.Errorf("host summary %+v", out.Hosts)
	}
	var failed bool
	for _, ev := range events {
		if ev.Event == ansible.EventFailed && ev.Data.Host == "bad" && ev.Data.Task == "fail on bad" {
			failed = true
			if strings.Contains(ev.ActionEvent().Message, "\x1b[") {
				t.Errorf("terminal codes left in %q", ev.ActionEvent().Message)
			}
		}
	}
	if !failed || out.Events != len(events) {
		t.Errorf("%d events, no failure of bad seen", len(events))
	}
	if _, err := os.Stat(filepath.Join(p.ArtifactDir, "stdout")); err != nil {
		t.Errorf("artifacts not unpacked: %v", err)
	}
}

// TestAnsibleRunnerTransmitToJobengineWorker: a jobengine worker runs what
// ansible-runner transmits (kwargs with nulls, the default inventory/).
func TestAnsibleRunnerTransmitToJobengineWorker(t *testing.T) {
	dir := runnerDir(t)
	tstream, err := exec.Command(ansibleRunner, "transmit", dir, "-p", "site.yml", "--ident", "r3").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, st := work(t, &Worker{}, tstream)
	if st.Status != StatusFailed || st.RC == nil || *st.RC != 2 || st.RunnerIdent != "r3" {
		t.Fatalf("final status %+v", st)
	}
}

// TestWorkerBadInput: a bad transmit stream gives an error status naming
// what was wrong, then the end marker.
func TestWorkerBadInput(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"garbage", "hello\n", "not a JSON object"},
		{"cut", "{\"kwargs\": {\"playbook\": \"a.yml\"}}\n", "ended before its end marker"},
		{"no kwargs", "{\"eof\": true}\n", "no kwargs line"},
		{"escaping playbook", "{\"kwargs\": {\"playbook\": \"../x.yml\"}}\n{\"eof\": true}\n", "inside the private data directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, st := work(t, &Worker{}, []byte(tc.in))
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if st.Status != StatusError || !strings.Contains(st.JobExplanation, tc.want) || len(lines) != 2 || lines[1] != `{"eof": true}` {
				t.Fatalf("status %+v, stream:\n%s", st, out)
			}
		})
	}
}

// TestWorkerDirectories: a temporary directory goes after the run; a given
// one stays with its artifacts but without the credentials file; --delete
// wipes it before and after.
func TestWorkerDirectories(t *testing.T) {
	src := t.TempDir()
	job, _ := json.Marshal(JobInfo{ID: "job/x", Action: "echo", Payload: json.RawMessage(`{"hello": 1}`)})
	mustWrite(t, filepath.Join(src, jobFile), string(job), 0o600)
	mustWrite(t, filepath.Join(src, credentialsFile), "[]", 0o600)
	in := transmitted(t, Kwargs{Ident: "d1"}, src)

	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "jobengine-worker-*"))
	stream, st := work(t, &Worker{}, in)
	if st.Status != StatusSuccessful || !bytes.Contains(stream, []byte(`"stdout":"{\"hello\":1}"`)) {
		t.Fatalf("status %+v, stream:\n%s", st, stream)
	}
	tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "jobengine-worker-*"))
	if len(tmpAfter) > len(tmpBefore) {
		t.Errorf("temporary directories left: %v", tmpAfter)
	}

	kept := filepath.Join(t.TempDir(), "pdd")
	mustWrite(t, filepath.Join(kept, "stale"), "from before", 0o600)
	work(t, &Worker{PrivateDataDir: kept}, in)
	for _, want := range []string{"stale", "artifacts/d1/rc", jobFile} {
		if _, err := os.Stat(filepath.Join(kept, want)); err != nil {
			t.Errorf("kept directory lacks %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(kept, credentialsFile)); err == nil {
		t.Error("the credentials file was kept")
	}
	work(t, &Worker{PrivateDataDir: kept, Delete: true}, in)
	if _, err := os.Stat(kept); err == nil {
		t.Error("--delete left the directory")
	}
}

// TestWorkerKeepalives: a quiet run sends keepalives.
func TestWorkerKeepalives(t *testing.T) {
	src := t.TempDir()
	job, _ := json.Marshal(JobInfo{ID: "job/x", Action: "sleep", Payload: json.RawMessage(`{"duration": "1.5s"}`)})
	mustWrite(t, filepath.Join(src, jobFile), string(job), 0o600)
	stream, st := work(t, &Worker{Keepalive: 100 * time.Millisecond}, transmitted(t, Kwargs{}, src))
	if st.Status != StatusSuccessful || !bytes.Contains(stream, []byte(`{"event": "keepalive"}`)) {
		t.Fatalf("status %+v; stream:\n%s", st, stream)
	}
	out, err := (&Processor{ArtifactDir: t.TempDir()}).Run(context.Background(), bytes.NewReader(stream))
	if err != nil || out.Status != StatusSuccessful || out.ReturnCode() != 0 {
		t.Fatalf("process: %+v %v", out, err)
	}
}

// TestWorkerCanceled: ending a worker's context (its SIGTERM, or a closed
// connection) stops the playbook and everything it started; the stream
// still ends with the canceled status, the artifacts and the end marker.
func TestWorkerCanceled(t *testing.T) {
	dir := runnerDir(t)
	const marker = "3600.5151"
	mustWrite(t, filepath.Join(dir, "project", "slow.yml"), "- hosts: h1\n  gather_facts: false\n  tasks:\n    - command: sleep "+marker+"\n", 0o644)
	in := transmitted(t, Kwargs{Ident: "c1", Playbook: "slow.yml", Inventory: "inventory/hosts"}, dir)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  Status
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := (&Worker{KillGrace: 3 * time.Second}).Run(ctx, bytes.NewReader(in), pw)
		pw.Close()
		done <- result{st, err}
	}()
	p := &Processor{ArtifactDir: t.TempDir()}
	started := make(chan struct{})
	var once sync.Once
	p.OnEvent = func(ev ansible.Event) {
		if ev.Event == ansible.EventRunnerStart {
			once.Do(func() { close(started) })
		}
	}
	outc := make(chan Outcome, 1)
	go func() {
		out, _ := p.Run(context.Background(), pr)
		outc <- out
	}()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the task never started")
	}
	poll.For(t, 20*time.Second, 50*time.Millisecond, func() error {
		if !running(marker) {
			return errors.New("sleep not started")
		}
		return nil
	})
	cancel()
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop")
	}
	out := <-outc
	if res.st.Status != StatusCanceled || res.st.RC == nil || *res.st.RC != ansible.RCCanceled || out.Status != StatusCanceled {
		t.Fatalf("worker status %+v, processed %+v", res.st, out)
	}
	if running(marker) {
		t.Fatal("the playbook's command survived the cancel")
	}
}

func running(marker string) bool {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, marker) && strings.HasPrefix(cmd, "sleep") {
			return true
		}
	}
	return false
}
