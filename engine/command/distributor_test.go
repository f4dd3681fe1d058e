package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	// The built-in distributors, as the binary has them.
	_ "github.com/jobengine/jobengine/distributors"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// distSessionTimeout is the session timeout the distributor processes of
// these tests run with (startDistributor).
const distSessionTimeout = 2 * time.Second

// distEnv is a test's root with a session for setting up and checking.
type distEnv struct {
	t     *testing.T
	root  string
	dir   string // --config-dir
	conn  *zkconn.Conn
	store *jobs.Store
}

func newDistEnv(t *testing.T, files map[string]string) *distEnv {
	t.Helper()
	e := &distEnv{t: t, root: testRoot(t), dir: t.TempDir()}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: e.root, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	e.conn, e.store = conn, jobs.NewStore(conn, jobs.StoreConfig{})
	return e
}

// start runs `jobengine … distributor ARGS` as a process (the binary, built
// once), with NOTIFY_SOCKET set to notify when not empty.
func (e *distEnv) start(notify string, args ...string) *proc {
	t := e.t
	t.Helper()
	dir := builtBinaries(t)
	full := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root,
		"--zk-session-timeout", distSessionTimeout.String(), "--log-format", "json", "distributor"}, args...)
	cmd := exec.Command(filepath.Join(dir, "jobengine"), full...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of pid %d (distributor %v):\n%s", cmd.Process.Pid, args, p.out.String())
		}
	})
	return p
}

// jobs returns the live jobs sorted by tick.
func (e *distEnv) jobs() []*jobs.Job {
	e.t.Helper()
	var out []*jobs.Job
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.store.Walk(ctx, func(j *jobs.Job, _ int32) { out = append(out, j) }); err != nil {
		e.t.Fatal(err)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Tick < out[b].Tick })
	return out
}

// creatorPID returns the pid in a created-by "name@host/pid".
func creatorPID(j *jobs.Job) int {
	i := strings.LastIndexByte(j.CreatedBy, '/')
	pid, _ := strconv.Atoi(j.CreatedBy[i+1:])
	return pid
}

// describe lists jobs as "tick pid" for failure messages.
func describe(js []*jobs.Job) string {
	var b strings.Builder
	for _, j := range js {
		fmt.Fprintf(&b, "\n  %s %s created %s", j.Tick, j.CreatedBy, j.Created.Format("15:04:05.000"))
	}
	return b.String()
}

// checkTicks checks the jobs of a 1s-interval distributor in tick order:
// never two for one tick; each creator's ticks consecutive (a leader never
// skips a tick); and between two creators at most maxGap ticks missing, the
// ticks that fell while nobody led (catch-up "last" runs only the latest of
// them). It returns the creators' pids in order of leadership.
func checkTicks(t *testing.T, js []*jobs.Job, maxGap int) []int {
	t.Helper()
	var leaders []int
	var prev time.Time
	seen := map[string]bool{}
	for i, j := range js {
		if seen[j.Tick] {
			t.Errorf("two jobs for tick %s:%s", j.Tick, describe(js))
		}
		seen[j.Tick] = true
		at, err := time.Parse(time.RFC3339, j.Tick)
		if err != nil {
			t.Fatalf("job %s has tick %q", j.ID, j.Tick)
		}
		pid := creatorPID(j)
		if i == 0 || pid != leaders[len(leaders)-1] {
			if i > 0 {
				if missing := int(at.Sub(prev)/time.Second) - 1; missing > maxGap {
					t.Errorf("%d ticks lost at the handover to %d, at most %d allowed:%s", missing, pid, maxGap, describe(js))
				}
			}
			leaders = append(leaders, pid)
		} else if at.Sub(prev) != time.Second {
			t.Errorf("leader %d skipped ticks between %s and %s:%s", pid, prev.Format(time.RFC3339), j.Tick, describe(js))
		}
		prev = at
	}
	return leaders
}

// tickFile declares a distributor creating an echo job every second.
const tickFile = "action: echo\ninterval: 1s\ndedup: always\n"

// TestDistributorLeaderKilled: two processes; the leader is killed with
// SIGKILL; the other creates the next tick within the session timeout + 1s,
// no tick gets two jobs and no tick is lost beyond the catch-up policy.
func TestDistributorLeaderKilled(t *testing.T) {
	e := newDistEnv(t, map[string]string{"tick.yaml": tickFile})
	a := e.start("", "tick", "--config-dir", e.dir) // flags after the name, as on a command line
	b := e.start("", "--config-dir", e.dir, "tick") // and before it, as the systemd unit has them
	byPID := map[int]*proc{a.cmd.Process.Pid: a, b.cmd.Process.Pid: b}
	var js []*jobs.Job
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if js = e.jobs(); len(js) < 3 {
			return fmt.Errorf("%d jobs", len(js))
		}
		return nil
	})
	leader := byPID[creatorPID(js[0])]
	if leader == nil {
		t.Fatalf("jobs created by an unknown process:%s", describe(js))
	}
	other := a
	if leader == a {
		other = b
	}
	// Both contend; the leader is first.
	cs, err := election.New(e.conn, "tick", "", nil).Contenders(context.Background())
	if err != nil || len(cs) != 2 || !strings.HasSuffix(cs[0].Identifier, fmt.Sprintf("/%d", leader.cmd.Process.Pid)) {
		t.Fatalf("contenders %+v, %v", cs, err)
	}

	leader.signal(syscall.SIGKILL)
	killed := time.Now()
	leader.wait(5 * time.Second)
	otherPID := other.cmd.Process.Pid
	poll.For(t, distSessionTimeout+time.Second, 10*time.Millisecond, func() error {
		for _, j := range e.jobs() {
			if creatorPID(j) == otherPID {
				return nil
			}
		}
		return errors.New("no job from the new leader")
	})
	t.Logf("new leader's first job %s after the kill", time.Since(killed).Round(time.Millisecond))
	// Three more ticks under the new leader.
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		n := 0
		for _, j := range e.jobs() {
			if creatorPID(j) == otherPID {
				n++
			}
		}
		if n < 4 {
			return fmt.Errorf("%d jobs by the new leader", n)
		}
		return nil
	})
	js = e.jobs()
	for _, j := range js {
		if creatorPID(j) == leader.cmd.Process.Pid && j.Created.After(killed) {
			t.Errorf("a job of the killed leader is dated after the kill: %s", j.Tick)
		}
	}
	// The session of the killed leader lasts up to 2s after its last
	// contact, then the new leader runs the latest tick: at most three
	// ticks (the ones that fell in between) are dropped.
	if leaders := checkTicks(t, js, 3); len(leaders) != 2 {
		t.Errorf("leaders in tick order %v, want the killed one then the other:%s", leaders, describe(js))
	}
}

// TestDistributorLeaderPaused: the leader is frozen (SIGSTOP) for longer
// than the session timeout, then thawed. The other process takes over; the
// frozen one, once thawed, creates nothing: never two leaders at once.
func TestDistributorLeaderPaused(t *testing.T) {
	e := newDistEnv(t, map[string]string{"tick.yaml": tickFile})
	a := e.start("", "tick", "--config-dir", e.dir)
	b := e.start("", "tick", "--config-dir", e.dir)
	byPID := map[int]*proc{a.cmd.Process.Pid: a, b.cmd.Process.Pid: b}
	var js []*jobs.Job
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if js = e.jobs(); len(js) < 2 {
			return fmt.Errorf("%d jobs", len(js))
		}
		return nil
	})
	frozen := byPID[creatorPID(js[0])]
	other := a
	if frozen == a {
		other = b
	}
	frozen.signal(syscall.SIGSTOP)
	paused := time.Now()
	otherPID := other.cmd.Process.Pid
	countBy := func(pid int, after time.Time) int {
		n := 0
		for _, j := range e.jobs() {
			if creatorPID(j) == pid && j.Created.After(after) {
				n++
			}
		}
		return n
	}
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := countBy(otherPID, paused); n < 2 {
			return fmt.Errorf("%d jobs by the new leader", n)
		}
		return nil
	})
	if d := time.Since(paused); d < distSessionTimeout {
		t.Fatalf("a new leader created jobs %s after the old one froze, before its session (%s) could expire", d, distSessionTimeout)
	}
	frozen.signal(syscall.SIGCONT)
	thawed := time.Now()
	// The thawed process finds its term over and contends again.
	frozenID := fmt.Sprintf("/%d", frozen.cmd.Process.Pid)
	poll.For(t, 10*time.Second, 50*time.Millisecond, func() error {
		cs, err := election.New(e.conn, "tick", "", nil).Contenders(context.Background())
		if err != nil {
			return err
		}
		if len(cs) != 2 || strings.HasSuffix(cs[0].Identifier, frozenID) || !strings.HasSuffix(cs[1].Identifier, frozenID) {
			return fmt.Errorf("contenders %+v", cs)
		}
		return nil
	})
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := countBy(otherPID, thawed); n < 2 {
			return fmt.Errorf("%d jobs by the leader since the thaw", n)
		}
		return nil
	})
	js = e.jobs()
	for _, j := range js {
		if creatorPID(j) == frozen.cmd.Process.Pid && j.Created.After(paused) {
			t.Errorf("the frozen leader created the job of tick %s after it froze:%s", j.Tick, describe(js))
		}
	}
	if leaders := checkTicks(t, js, 3); len(leaders) != 2 || leaders[1] != otherPID {
		t.Errorf("leaders in tick order %v, want one clean handover to %d:%s", leaders, otherPID, describe(js))
	}
	select {
	case <-frozen.done:
		t.Errorf("the thawed process exited:\n%s", frozen.out.String())
	default:
	}
}

// notifySocket listens like systemd for sd_notify messages.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

func waitMessage(t *testing.T, msgs <-chan string, want string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.Contains(m, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s from the daemon", want)
		}
	}
}

// TestDistributorAllListAndStop runs --all in one process: the enabled
// distributors each get an election; `distributor list` shows them with
// their leader; SIGTERM gives leadership up at once and exits 0, with the
// sd_notify messages systemd expects.
func TestDistributorAllListAndStop(t *testing.T) {
	e := newDistEnv(t, map[string]string{
		"tick.yaml":              tickFile,
		"off.yaml":               "action: echo\ninterval: 1s\nenabled: false\n",
		"dummy_test_action.yaml": "enabled: true\ninterval: 1s\n",
		"broken.yaml":            "action: echo\ninterval: 1s\nretries: 3\n",
	})
	sock, msgs := notifySocket(t)
	p := e.start(sock, "--all", "--config-dir", e.dir)
	waitMessage(t, msgs, "READY=1")
	pid := p.cmd.Process.Pid
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		actions := map[string]bool{}
		for _, j := range e.jobs() {
			actions[j.Action] = true
			if creatorPID(j) != pid {
				return fmt.Errorf("job %s created by %s", j.ID, j.CreatedBy)
			}
		}
		if !actions["echo"] || !actions["dummy_test_action"] {
			return fmt.Errorf("jobs of actions %v, want echo and dummy_test_action", actions)
		}
		return nil
	})
	p.waitLog(5*time.Second, "invalid distributor file", "broken.yaml", `"line":3`)

	out, errOut, code := run(t, "--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "distributor", "list", "--json", "--config-dir", e.dir)
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	var rows []distributorRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	byName := map[string]distributorRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	me := fmt.Sprintf("/%d", pid)
	if _, ok := byName["jobs_cleanup"]; ok {
		t.Errorf("jobs_cleanup is listed as a distributor: %+v", byName["jobs_cleanup"])
	}
	for _, name := range []string{"tick", "dummy_test_action"} {
		r := byName[name]
		if !strings.HasSuffix(r.Leader, me) || len(r.Contenders) != 1 || !r.Enabled || r.NextTick == "" {
			t.Errorf("%s: %+v; want enabled, led by pid %d alone, with a next tick", name, r, pid)
		}
	}
	if r := byName["tick"]; r.Schedule != "every 1s" || r.LastTick == "" || !strings.HasSuffix(r.LastTickBy, me) || r.Source != filepath.Join(e.dir, "tick.yaml") {
		t.Errorf("tick: %+v", r)
	}
	if r := byName["off"]; r.Enabled || r.Leader != "" || len(r.Contenders) != 0 {
		t.Errorf("off (not enabled) is running: %+v", r)
	}
	if r := byName["broken"]; len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "broken.yaml:3: unknown field") {
		t.Errorf("broken: %+v", r)
	}
	// The process hosts the maintenance services too, and leads them alone.
	cs, err := election.New(e.conn, maintenance.ElectionName, "", nil).Contenders(context.Background())
	if err != nil || len(cs) != 1 || !strings.HasSuffix(cs[0].Identifier, me) {
		t.Errorf("maintenance contenders %+v (%v); want pid %d alone", cs, err, pid)
	}
	text, _, _ := run(t, "--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "distributor", "--config-dir", e.dir, "list")
	if !strings.Contains(text, "NEXT TICK") || !strings.Contains(text, "every 1s") {
		t.Errorf("list:\n%s", text)
	}

	p.signal(syscall.SIGTERM)
	waitMessage(t, msgs, "STOPPING=1")
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	// Leadership was given up, not left to a session expiry.
	for _, name := range []string{"tick", "dummy_test_action", maintenance.ElectionName} {
		cs, err := election.New(e.conn, name, "", nil).Contenders(context.Background())
		if err != nil || len(cs) != 0 {
			t.Errorf("%s: contenders %+v, %v after the process stopped", name, cs, err)
		}
	}
}

// TestDistributorJobsCleanupRetention runs jobs_cleanup from the command
// line with its YAML override (every second) and --retention.
func TestDistributorJobsCleanupRetention(t *testing.T) {
	e := newDistEnv(t, map[string]string{"jobs_cleanup.yaml": "interval: 1s\noptions:\n  retention: 30d\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mk := func(age time.Duration) string {
		j, err := e.store.Create(ctx, jobs.NewJob{Action: "echo", CreatedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Transition(jobs.Canceled, time.Now().Add(-age)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Update(ctx, j, 0); err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	old, young := mk(3*time.Hour), mk(time.Minute)
	p := e.start("", "jobs_cleanup", "--config-dir", e.dir, "--retention", "2h")
	// Starting the process may build the binary: the reads that follow
	// get a context of their own.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	poll.For(t, 15*time.Second, 50*time.Millisecond, func() error {
		if _, _, err := e.store.Get(ctx, old); !errors.Is(err, jobs.ErrNotFound) {
			return fmt.Errorf("old job still there (%v)", err)
		}
		return nil
	})
	if _, _, err := e.store.Get(ctx, young); err != nil {
		t.Errorf("the job within the retention: %v", err)
	}
	p.signal(syscall.SIGINT)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}

// TestDistributorValidate checks the files of a directory.
func TestDistributorValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", tickFile)
	out, errOut, code := run(t, "distributor", "validate", "--config-dir", dir)
	if code != 0 || !strings.Contains(out, "good") || errOut != "" {
		t.Fatalf("valid directory: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	write("bad.yaml", "action: echo\ninterval: 1s\nschedule: daily\npriority: urgent\n")
	write("worse.yml", "action: echo\ncron: 99 * * * *\n")
	out, errOut, code = run(t, "distributor", "--config-dir", dir, "validate")
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	for _, want := range []string{
		filepath.Join(dir, "bad.yaml") + `:3: unknown field "schedule"`,
		filepath.Join(dir, "worse.yml") + ":2: ",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "good") {
		t.Errorf("stdout lacks the valid file:\n%s", out)
	}
	// The cleanup's file, from when it was a distributor, is checked as
	// its settings.
	cleanup := t.TempDir()
	if err := os.WriteFile(filepath.Join(cleanup, "jobs_cleanup.yaml"), []byte("interval: 1h\noptions:\n  retention: 14d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, "distributor", "validate", "--config-dir", cleanup); code != 0 || !strings.Contains(out, "jobs_cleanup") || errOut != "" {
		t.Errorf("jobs_cleanup.yaml: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(cleanup, "jobs_cleanup.yaml"), []byte("action: echo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, "distributor", "validate", "--config-dir", cleanup); code != ExitUsage || !strings.Contains(errOut, "jobs_cleanup.yaml:1: action does not apply") {
		t.Errorf("jobs_cleanup.yaml with an action: exit %d, %s", code, errOut)
	}
	if _, errOut, code := run(t, "distributor", "validate", "--config-dir", filepath.Join(dir, "missing")); code != ExitUsage || !strings.Contains(errOut, "no such directory") {
		t.Errorf("missing directory: exit %d, %s", code, errOut)
	}
}

// TestDistributorBadInput: mistakes exit 2 before anything runs.
func TestDistributorBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("action: echo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An unreachable ZooKeeper: the input is refused before dialling.
	g := []string{"--zk-hosts", "127.0.0.1:1", "--zk-connect-timeout", "1s", "distributor"}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "give the NAME"},
		{[]string{"a", "b"}, "want NAME"},
		{[]string{"--all", "x"}, "takes no NAME"},
		{[]string{"x", "--all"}, "not both"},
		{[]string{"nope", "--config-dir", dir}, "not built in"},
		{[]string{"bad", "--config-dir", dir}, "bad.yaml"},
		{[]string{"jobs_cleanup", "--retention", "soon", "--config-dir", dir}, "--retention"},
		{[]string{"dummy_test_action", "--retention", "1d", "--maintenance=false", "--config-dir", dir}, "--maintenance=false"},
		{[]string{"jobs_cleanup", "--maintenance=false", "--config-dir", dir}, "maintenance services only"},
		{[]string{"maintenance", "--config-dir", dir}, "not built in"},
		{[]string{"--bogus"}, "unknown flag --bogus"},
	} {
		_, errOut, code := run(t, append(g, tc.args...)...)
		if code != ExitUsage || !strings.Contains(errOut, tc.msg) {
			t.Errorf("distributor %v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, ExitUsage, tc.msg)
		}
	}
}

// TestDistributorExampleFileIsValid: the example the packages install
// declares a valid distributor once its settings are uncommented.
func TestDistributorExampleFileIsValid(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "packaging", "distributors.d", "dummy.yaml.example"))
	if err != nil {
		t.Fatal(err)
	}
	// After the introduction, "# # …" lines explain and "# …" lines are
	// the settings.
	_, body, ok := strings.Cut(string(src), "# # Name of the distributor")
	if !ok {
		t.Fatal("the example no longer starts its settings with the name")
	}
	var settings []string
	for _, l := range strings.Split(body, "\n") {
		if s, ok := strings.CutPrefix(l, "# "); ok && !strings.HasPrefix(s, "# ") {
			settings = append(settings, s)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dummy.yaml"), []byte(strings.Join(settings, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "distributor", "validate", "--config-dir", dir)
	if code != 0 || !strings.Contains(out, "dummy") {
		t.Fatalf("the example, uncommented:\n%s\nvalidate: exit %d\n%s%s", strings.Join(settings, "\n"), code, out, errOut)
	}
}
