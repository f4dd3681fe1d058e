package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	// The built-in actions, registered as in the binary, for the commands
	// run in-process.
	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// builtBinaries builds jobengine and the example plugin once per test run
// and returns the directory holding them (the plugin under actions/, the
// test plugins under testplugins/).
func builtBinaries(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "jobengine-bin-")
		if binErr != nil {
			return
		}
		for _, b := range [][2]string{
			{filepath.Join(binDir, "jobengine"), "github.com/jobengine/jobengine/cmd/jobengine"},
			{filepath.Join(binDir, "actions", "hello"), "github.com/jobengine/jobengine/actions/examples/hello"},
			{filepath.Join(binDir, "testplugins", "affect"), "github.com/jobengine/jobengine/engine/command/testdata/affect"},
		} {
			out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
			if err != nil {
				binErr = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// proc is a jobengine process started by a test.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func startDaemon(t *testing.T, root string, args ...string) *proc {
	t.Helper()
	return startDaemonEnv(t, root, nil, args...)
}

// startDaemonEnv starts a daemon with variables added to its environment.
func startDaemonEnv(t *testing.T, root string, env []string, args ...string) *proc {
	t.Helper()
	full := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", root, "--zk-session-timeout", "2s", "--log-format", "json"}, args...)
	return startProcess(t, env, full...)
}

// startProcess starts the built binary with args, and env added to this
// process's environment.
func startProcess(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	dir := builtBinaries(t)
	cmd := exec.Command(filepath.Join(dir, "jobengine"), args...)
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="), env...)
	d := &proc{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, d.out.String())
		}
	})
	return d
}

func (d *proc) signal(sig syscall.Signal) {
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *proc) wait(within time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(within):
		d.t.Fatalf("process still running after %s; output:\n%s", within, d.out.String())
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// waitLog waits for a log line containing every fragment.
func (d *proc) waitLog(within time.Duration, fragments ...string) {
	d.t.Helper()
	poll.For(d.t, within, 20*time.Millisecond, func() error { return d.hasLog(fragments...) })
}

// hasLog returns nil when a log line contains every fragment.
func (d *proc) hasLog(fragments ...string) error {
	for _, l := range strings.Split(d.out.String(), "\n") {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(l, f)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no log line with %q", fragments)
}

func testStore(t *testing.T, root string) *jobs.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: root, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	s := jobs.NewStore(conn, jobs.StoreConfig{})
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func createJob(t *testing.T, s *jobs.Store, action, payload string) *jobs.Job {
	t.Helper()
	nj := jobs.NewJob{Action: action, Priority: 100}
	if payload != "" {
		nj.Payload = json.RawMessage(payload)
	}
	j, err := s.Create(context.Background(), nj)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitJob(t *testing.T, s *jobs.Store, id string, within time.Duration, ok func(*jobs.Job) error) *jobs.Job {
	t.Helper()
	var got *jobs.Job
	poll.For(t, within, 20*time.Millisecond, func() error {
		j, _, err := s.Get(context.Background(), id)
		if err != nil {
			return err
		}
		got = j
		return ok(j)
	})
	return got
}

func inState(st jobs.State) func(*jobs.Job) error {
	return func(j *jobs.Job) error {
		if j.State != st {
			return fmt.Errorf("%s is %s (%q), want %s", j.ID, j.State, j.StatusMessage, st)
		}
		return nil
	}
}

func TestExecutorKilledMidJobIsRerunElsewhere(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	a := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "a", "--threads", "1", "--plugin-dir", t.TempDir())
	j := createJob(t, s, "sleep", `{"duration":"1h"}`)
	waitJob(t, s, j.ID, 15*time.Second, func(j *jobs.Job) error {
		if j.State != jobs.Running || j.Executor != "a" {
			return fmt.Errorf("%s on %q", j.State, j.Executor)
		}
		return nil
	})
	b := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "b", "--threads", "1", "--plugin-dir", t.TempDir())
	b.waitLog(15*time.Second, "executor started")
	a.signal(syscall.SIGKILL)
	// Rerun elsewhere within the session timeout (2 s) + 2 s, with a
	// second of slack for polling on a busy machine.
	got := waitJob(t, s, j.ID, 5*time.Second, func(j *jobs.Job) error {
		if j.Executor != "b" || j.State != jobs.Running {
			return fmt.Errorf("%s on %q", j.State, j.Executor)
		}
		return nil
	})
	if got.Attempt != 2 {
		t.Fatalf("attempt %d, want 2", got.Attempt)
	}
	b.waitLog(5*time.Second, "job lost by a dead executor", j.ID)
}

func TestExecutorSIGTERMDrainsAndSecondSignalStops(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	x := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "x", "--threads", "2", "--plugin-dir", t.TempDir(), "--shutdown-grace", "30s")
	short := createJob(t, s, "sleep", `{"duration":"1s"}`)
	waitJob(t, s, short.ID, 15*time.Second, inState(jobs.Running))
	x.signal(syscall.SIGTERM)
	if code := x.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	waitJob(t, s, short.ID, time.Second, inState(jobs.Success))

	// A long job: the second signal stops at once and the job is requeued.
	y := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "y", "--threads", "1", "--plugin-dir", t.TempDir(), "--shutdown-grace", "1h")
	long := createJob(t, s, "sleep", `{"duration":"1h"}`)
	waitJob(t, s, long.ID, 15*time.Second, inState(jobs.Running))
	y.signal(syscall.SIGTERM)
	y.waitLog(5*time.Second, "draining")
	y.signal(syscall.SIGINT)
	if code := y.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after a second signal", code)
	}
	got := waitJob(t, s, long.ID, time.Second, inState(jobs.Queued))
	if !strings.Contains(got.StatusMessage, "requeued") {
		t.Fatalf("requeued job says %q", got.StatusMessage)
	}
	if st, _ := s.Queue().Stats(context.Background()); st.Available != 1 || st.Taken != 0 {
		t.Fatalf("queue after a hard stop: %+v", st)
	}
}

// TestExecutorSIGUSR1DumpsAndKeepsRunning: SIGUSR1 logs a dump made of
// short lines, readable in the journal in the console format: a summary,
// each running job, each plugin process with its pid and job, and each
// group of goroutines; the executor goes on.
func TestExecutorSIGUSR1DumpsAndKeepsRunning(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	plugins := filepath.Join(builtBinaries(t), "actions")
	x := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "x", "--threads", "2", "--plugin-dir", plugins, "--log-format", "console")
	j := createJob(t, s, "sleep", `{"duration":"1h"}`)
	h := createJob(t, s, "hello", `{"steps":1000,"delay":"1s"}`)
	waitJob(t, s, j.ID, 15*time.Second, inState(jobs.Running))
	waitJob(t, s, h.ID, 15*time.Second, inState(jobs.Running))
	// The document says RUNNING a moment before the worker counts the job
	// as running: dump until the dump shows both.
	poll.For(t, 10*time.Second, 200*time.Millisecond, func() error {
		x.signal(syscall.SIGUSR1)
		return errors.Join(x.hasLog(daemon.LogDumpJob, j.ID), x.hasLog(daemon.LogDumpJob, h.ID), x.hasLog(daemon.LogDumpPlugin, h.ID))
	})
	x.waitLog(5*time.Second, daemon.LogDumpGoroutines, "executor.(*Executor).worker")
	var plugin struct {
		Plugin string   `json:"plugin"`
		PID    int      `json:"pid"`
		JobIDs []string `json:"job-ids"`
	}
	for _, l := range strings.Split(x.out.String(), "\n") {
		if strings.Contains(l, daemon.LogDump) && len(l) > 4096 {
			t.Errorf("a dump line of %d bytes: %.200s…", len(l), l)
		}
		if i := strings.Index(l, "{"); strings.Contains(l, daemon.LogDumpPlugin) && strings.Contains(l, h.ID) && i >= 0 {
			if err := json.Unmarshal([]byte(l[i:]), &plugin); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
		}
	}
	if plugin.Plugin != "hello" || plugin.PID <= 0 || fmt.Sprint(plugin.JobIDs) != "["+h.ID+"]" || syscall.Kill(plugin.PID, 0) != nil {
		t.Fatalf("plugin process in the dump: %+v (a live pid?)", plugin)
	}
	// Still running: it answers a cancel.
	if _, err := s.Cancel(context.Background(), j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	waitJob(t, s, j.ID, 5*time.Second, inState(jobs.Canceled))
	select {
	case <-x.done:
		t.Fatal("the executor exited after SIGUSR1")
	default:
	}
}

func TestExecutorRunsExamplePlugin(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	plugins := filepath.Join(builtBinaries(t), "actions")
	x := startDaemon(t, root, "executor", "--name", "x", "--threads", "2", "--plugin-dir", plugins)
	x.waitLog(20*time.Second, "executor started", "hello")
	j, err := s.Create(context.Background(), jobs.NewJob{Action: "hello", Target: "user/alice", Payload: json.RawMessage(`{"name":"Alice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Success))
	if !strings.Contains(strings.ToLower(got.StatusMessage), "alice") || got.Progress != 100 {
		t.Fatalf("hello job: %+v", got)
	}
	// actions list shows it with its source.
	out, _, code := run(t, "actions", "list", "--plugin-dir", plugins, "--json")
	if code != 0 || !strings.Contains(out, `"plugin:`) || !strings.Contains(out, `"hello"`) {
		t.Fatalf("actions list (%d): %s", code, out)
	}
}

// TestActionsListTestActions: the built-in test actions are offered only
// with --enable-test-actions (or its variable), never by default.
func TestActionsListTestActions(t *testing.T) {
	testActions := []string{"dummy_test_action", "echo", "fail", "sleep"}
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want bool
	}{
		{"default", nil, "", false},
		{"flag", []string{"--enable-test-actions"}, "", true},
		{"variable", nil, "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("JOBENGINE_ENABLE_TEST_ACTIONS", tc.env)
			}
			out, errOut, code := run(t, append([]string{"actions", "list", "--json", "--plugin-dir", t.TempDir()}, tc.args...)...)
			if code != 0 {
				t.Fatalf("actions list: exit %d\n%s", code, errOut)
			}
			var got struct {
				Actions []struct {
					Name string `json:"name"`
				} `json:"actions"`
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("actions list --json: %v\n%s", err, out)
			}
			names := map[string]bool{}
			for _, a := range got.Actions {
				names[a.Name] = true
			}
			for _, name := range testActions {
				if names[name] != tc.want {
					t.Errorf("%s listed: %v, want %v (all: %v)", name, names[name], tc.want, names)
				}
			}
		})
	}
}

func TestExecutorBadInput(t *testing.T) {
	dir := builtBinaries(t)
	for name, args := range map[string][]string{
		"unknown flag":           {"executor", "--bogus"},
		"zero threads":           {"executor", "--threads", "0"},
		"bad action timeout":     {"executor", "--action-timeout", "sleep"},
		"unknown action timeout": {"executor", "--action-timeout", "nope=1s", "--plugin-dir", "/nonexistent"},
		"unwritable log file":    {"--log-file", "/proc/nope/x.log", "executor"},
		"argument":               {"executor", "extra"},
		"secret to plugins":      {"executor", "--plugin-env", "JOBENGINE_ES_PASSWORD", "--plugin-dir", "/nonexistent"},
		"loose ZooKeeper key":    {"--zk-tls-key", "/etc/passwd", "--zk-tls-cert", "/etc/passwd", "executor"},
		"missing credentials":    {"--zk-credentials-file", "/nonexistent/zk.cred", "executor"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(dir, "jobengine"), append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", testRoot(t)}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2; stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains("\n"+stderr.String(), "\njobengine: ") {
				t.Fatalf("stderr has no clear error line:\n%s", stderr.String())
			}
		})
	}
}

func TestClusterStatus(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	startDaemon(t, root, "executor", "--enable-test-actions", "--name", "x", "--threads", "1", "--plugin-dir", t.TempDir())
	j := createJob(t, s, "sleep", `{"duration":"1h"}`)
	waitJob(t, s, j.ID, 15*time.Second, inState(jobs.Running))
	poll.For(t, 10*time.Second, 50*time.Millisecond, func() error {
		out, _, code := run(t, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "cluster", "status", "--json")
		if code != 0 {
			return fmt.Errorf("exit %d", code)
		}
		var members []struct {
			Name    string `json:"name"`
			Busy    int    `json:"busy"`
			Running []struct {
				Job string `json:"job"`
			} `json:"running"`
		}
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			return err
		}
		if len(members) != 1 || members[0].Name != "x" || members[0].Busy != 1 || members[0].Running[0].Job != j.ID {
			return fmt.Errorf("status %s", out)
		}
		return nil
	})
	out, _, code := run(t, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "cluster", "status")
	if code != 0 || !strings.Contains(out, "EXECUTOR") || !strings.Contains(out, j.ID) {
		t.Fatalf("status table (%d):\n%s", code, out)
	}
}
