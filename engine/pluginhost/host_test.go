package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

func TestLoadDescribesPlugins(t *testing.T) {
	dir := pluginDir(t, "sdkplugin", "hello")
	h, logs := load(t, pluginhost.Options{Dir: dir})

	defs := make(map[string]action.Definition)
	for _, d := range h.Definitions() {
		defs[d.Name] = d
	}
	echo, ok := defs["echo"]
	if !ok {
		t.Fatalf("no echo action in %v", h.Definitions())
	}
	if echo.DefaultTimeout != 90*time.Second || echo.LostPolicy != action.Fail || echo.MaxAttempts != 1 ||
		echo.Source != "plugin:"+filepath.Join(dir, "sdkplugin") || echo.Version != "2.3.4" || echo.Description != "reports everything it can" {
		t.Errorf("echo definition = %+v", echo)
	}
	sleepy := defs["sleepy"]
	if sleepy.DefaultTimeout != action.DefaultTimeout || sleepy.LostPolicy != action.Rerun || sleepy.MaxAttempts != action.DefaultMaxAttempts {
		t.Errorf("sleepy definition is not normalized: %+v", sleepy)
	}
	if hello := defs["hello"]; hello.Version != "1.0.0" || hello.DefaultTimeout != time.Minute {
		t.Errorf("hello definition = %+v", hello)
	}

	reg := action.Builtins()
	if err := h.Register(reg); err != nil {
		t.Fatal(err)
	}
	if d, ok := reg.Lookup("hello"); !ok || d.Source != "plugin:"+filepath.Join(dir, "hello") {
		t.Errorf("registry has hello = %+v, %v", d, ok)
	}

	infos := h.Plugins()
	if len(infos) != 2 || infos[0].Name != "hello" || infos[1].Name != "sdkplugin" {
		t.Fatalf("Plugins() = %+v", infos)
	}
	if got := infos[1]; got.Protocol != 1 || got.Version != "2.3.4" || got.SDK == "" || len(got.SHA256) != 64 ||
		!slices.Equal(got.Actions, []string{"echo", "sleepy", "stubborn", "crash", "panic", "noop", "flood", "spawn", "env"}) {
		t.Errorf("sdkplugin info = %+v", got)
	}
	loaded := logs.FilterMessage("plugin loaded").All()
	if len(loaded) != 2 {
		t.Fatalf("want one 'plugin loaded' line per plugin, got %d", len(loaded))
	}
	if f := loaded[1].ContextMap(); f["plugin"] != "sdkplugin" || f["version"] != "2.3.4" || f["protocol"] != int64(1) {
		t.Errorf("log line fields = %v", f)
	}
	// The processes that answered Describe are kept for the first jobs.
	if n := len(h.Processes()); n != 2 {
		t.Errorf("%d processes after load, want 2", n)
	}
}

func TestLoadSkipsWhatIsNotAPlugin(t *testing.T) {
	dir := pluginDir(t, "sdkplugin", "sdkplugin=sdkplugin-copy", "rawplugin=v2-plugin", "rawplugin=bad-describe", "rawplugin=othercookie")
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a plugin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "silent.pid")
	writeScript(t, dir, "silent", "echo $$ > "+pidFile+"\nexec sleep 600")
	writeScript(t, dir, "chatty", "echo hello there\nexec sleep 600")
	writeScript(t, dir, "startcrash", "echo 'cannot open /etc/startcrash.conf' >&2\nexit 3")
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeScript(t, dir, ".hidden", "exit 1")

	h, logs := load(t, pluginhost.Options{Dir: dir, StartTimeout: 3 * time.Second})

	if got := h.Plugins(); len(got) != 1 || got[0].Name != "sdkplugin" {
		t.Fatalf("loaded %+v, want sdkplugin only", got)
	}
	want := map[string]string{
		"README":         "not executable",
		"bad-describe":   "must be 1-64 characters",
		"chatty":         "Unrecognized remote plugin message: hello there",
		"othercookie":    "This binary is a plugin",
		"sdkplugin-copy": `action "echo" is also provided by`,
		"silent":         "timeout while waiting for plugin to start",
		"startcrash":     "cannot open /etc/startcrash.conf",
		"v2-plugin":      "incompatible API version",
	}
	skipped := h.Skipped()
	if len(skipped) != len(want) {
		t.Errorf("skipped %d files, want %d: %+v", len(skipped), len(want), skipped)
	}
	for _, s := range skipped {
		name := filepath.Base(s.Path)
		if !strings.Contains(s.Reason, want[name]) || want[name] == "" {
			t.Errorf("%s skipped because %q, want it to say %q", name, s.Reason, want[name])
		}
	}
	if n := logs.FilterMessage("plugin skipped").Len(); n != len(want) {
		t.Errorf("%d 'plugin skipped' log lines, want %d", n, len(want))
	}
	// The plugin that never answered was killed after the start timeout.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	poll.For(t, 5*time.Second, 20*time.Millisecond, gone(pid))
	// Only the good plugin's process is left.
	if ps := h.Processes(); len(ps) != 1 || ps[0].Plugin != "sdkplugin" {
		t.Errorf("processes after load: %+v", ps)
	}
}

func TestLoadMissingDirectory(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: filepath.Join(t.TempDir(), "nope")})
	if len(h.Definitions()) != 0 || len(h.Skipped()) != 0 {
		t.Errorf("a missing directory gave %v / %v", h.Definitions(), h.Skipped())
	}
}

func TestChecksumPinning(t *testing.T) {
	dir := pluginDir(t, "hello", "sdkplugin")
	sum := sha256sum(t, filepath.Join(dir, "hello"))
	wrong := strings.Repeat("0", 64)

	t.Run("match", func(t *testing.T) {
		h, _ := load(t, pluginhost.Options{Dir: dir, Checksums: map[string]string{"hello": sum}})
		if got := h.Plugins(); len(got) != 2 || !got[0].Pinned || got[0].SHA256 != sum || got[1].Pinned {
			t.Errorf("plugins = %+v", got)
		}
	})
	t.Run("mismatch is refused before it starts", func(t *testing.T) {
		h, _ := load(t, pluginhost.Options{Dir: dir, Checksums: map[string]string{"hello": wrong}})
		if s := h.Skipped(); len(s) != 1 || !strings.Contains(s[0].Reason, "checksum mismatch") || !strings.Contains(s[0].Reason, sum) {
			t.Errorf("skipped = %+v", s)
		}
		for _, p := range h.Processes() {
			if p.Plugin == "hello" {
				t.Errorf("a process of the refused plugin runs: %+v", p)
			}
		}
	})
	t.Run("pinned only", func(t *testing.T) {
		h, _ := load(t, pluginhost.Options{Dir: dir, Checksums: map[string]string{"hello": sum}, PinnedOnly: true})
		if s := h.Skipped(); len(s) != 1 || filepath.Base(s[0].Path) != "sdkplugin" || !strings.Contains(s[0].Reason, "only pinned plugins") {
			t.Errorf("skipped = %+v", s)
		}
	})
	t.Run("checked again before each start", func(t *testing.T) {
		dir := pluginDir(t, "hello")
		h, _ := load(t, pluginhost.Options{Dir: dir, Checksums: map[string]string{"hello": sum}, MaxIdle: -1})
		rn := runner(t, h, "hello")
		if _, err := rn.Run(context.Background(), job("hello", `{"steps":1,"delay":"1ms"}`), &recorder{}); err != nil {
			t.Fatalf("first job: %v", err)
		}
		// Replace the binary (as an upgrade would) without updating the pin.
		tmp := filepath.Join(dir, ".hello.new")
		install(t, filepath.Join(bin, "sdkplugin"), tmp)
		if err := os.Rename(tmp, filepath.Join(dir, "hello")); err != nil {
			t.Fatal(err)
		}
		_, err := rn.Run(context.Background(), job("hello", `{}`), &recorder{})
		if !errors.Is(err, pluginhost.ErrChecksum) || !strings.Contains(err.Error(), `plugin "hello"`) {
			t.Errorf("job after the binary changed: %v, want a checksum mismatch", err)
		}
		if ps := h.Processes(); len(ps) != 0 {
			t.Errorf("processes: %+v", ps)
		}
	})
}

func TestRunForwardsReports(t *testing.T) {
	h, logs := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin")})
	rn := runner(t, h, "echo")

	rec := &recorder{}
	j := job("echo", `{"rc": 3, "message": "all done"}`)
	j.Tags = []string{"a", "b"}
	res, err := rn.Run(context.Background(), j, rec)
	if err != nil {
		t.Fatal(err)
	}
	if res.ReturnCode != 3 || res.Message != "all done" {
		t.Errorf("result = %+v", res)
	}
	got := rec.snapshot()
	if !slices.Equal(got.progress, []int{10, 100}) {
		t.Errorf("progress = %v, want [10 100] (150 clamped by the SDK)", got.progress)
	}
	if !slices.Equal(got.affected, []string{"user/alice"}) {
		t.Errorf("affected = %v", got.affected)
	}
	wantLogs := []string{"debug: debug line", "info: info line attempt=1 tags=2", "warn: warn line", "error: error line"}
	if len(got.logs) < 4 || !slices.Equal(got.logs[len(got.logs)-4:], wantLogs) {
		t.Errorf("logs = %q, want them to end with %q", got.logs, wantLogs)
	}
	if rec.pid() == 0 {
		t.Errorf("status = %v", got.status)
	}
	// Job log lines reach the host's log with plugin, job and action.
	lines := logs.FilterMessage("warn line").All()
	if len(lines) != 1 {
		t.Fatalf("the job's warn line is not in the host log")
	}
	if f := lines[0].ContextMap(); f["plugin"] != "sdkplugin" || f["job"] != j.ID || f["action"] != "echo" {
		t.Errorf("log fields = %v", f)
	}

	// An error of the action is the job's error, as the plugin wrote it.
	_, err = rn.Run(context.Background(), job("echo", `{"error": "the target is read-only"}`), &recorder{})
	if err == nil || err.Error() != "the target is read-only" {
		t.Errorf("error = %v", err)
	}
	// An error with a return code keeps the code (the executor records
	// 1 for an error alone): a failed result with the error's text.
	res, err = rn.Run(context.Background(), job("echo", `{"error": "the target is read-only", "rc": 4}`), &recorder{})
	if err != nil || res.ReturnCode != 4 || res.Message != "the target is read-only" {
		t.Errorf("error with return code 4: result %+v, error %v", res, err)
	}
	// A payload that does not fit is the action's error too.
	_, err = rn.Run(context.Background(), job("echo", `{"rc": "three"}`), &recorder{})
	if err == nil || !strings.Contains(err.Error(), "payload of job") {
		t.Errorf("error = %v", err)
	}
}

// fieldRecorder is a recorder that keeps log lines' fields apart, as the
// executor's reporter does.
type fieldRecorder struct {
	recorder
	fields map[string][]action.Field // by message
}

func (r *fieldRecorder) LogFields(level, msg string, fields []action.Field) {
	r.Log(level, msg)
	r.mu.Lock()
	r.fields[msg] = fields
	r.mu.Unlock()
}

// The key/value pairs of job.Log reach a reporter that keeps fields as
// fields, not folded into the message, and the host's log as fields.
func TestLogLinesKeepTheirFields(t *testing.T) {
	h, logs := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin")})
	rec := &fieldRecorder{fields: map[string][]action.Field{}}
	j := job("echo", `{}`)
	j.Tags = []string{"a", "b"}
	if _, err := runner(t, h, "echo").Run(context.Background(), j, rec); err != nil {
		t.Fatal(err)
	}
	want := []action.Field{{Key: "attempt", Value: "1"}, {Key: "tags", Value: "2"}}
	if got := rec.snapshot().logs; !slices.Contains(got, "info: info line") {
		t.Errorf("logs = %q, want the message alone", got)
	}
	if got := rec.fields["info line"]; !slices.Equal(got, want) {
		t.Errorf("fields = %v, want %v", got, want)
	}
	lines := logs.FilterMessage("info line").All()
	if len(lines) != 1 {
		t.Fatalf("the job's info line is not in the host log once: %d", len(lines))
	}
	f := lines[0].ContextMap()
	if fields, ok := f["fields"].(map[string]any); !ok || fields["attempt"] != "1" || fields["tags"] != "2" || f["job"] != j.ID {
		t.Errorf("host log fields = %v, want the line's fields under \"fields\"", f)
	}
}

func TestProcessesAreReused(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin")})
	rn := runner(t, h, "sleepy")
	var pids []int
	for range 3 {
		rec := &recorder{}
		if _, err := rn.Run(context.Background(), job("sleepy", `{"sleep":"1ms"}`), rec); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, rec.pid())
	}
	if pids[0] == 0 || pids[0] != pids[1] || pids[1] != pids[2] {
		t.Errorf("pids of three jobs: %v, want one reused process", pids)
	}

	t.Run("a process per job", func(t *testing.T) {
		h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), MaxIdle: -1})
		if ps := h.Processes(); len(ps) != 0 {
			t.Errorf("processes after load: %+v", ps)
		}
		rec := &recorder{}
		if _, err := runner(t, h, "sleepy").Run(context.Background(), job("sleepy", `{"sleep":"1ms"}`), rec); err != nil {
			t.Fatal(err)
		}
		if alive(rec.pid()) || len(h.Processes()) != 0 {
			t.Errorf("the process of a finished job is still running")
		}
	})

	t.Run("panic is recovered", func(t *testing.T) {
		_, err := runner(t, h, "panic").Run(context.Background(), job("panic", ""), &recorder{})
		if err == nil || !strings.Contains(err.Error(), "action panic panicked: bad luck") {
			t.Errorf("error = %v", err)
		}
		rec := &recorder{}
		if _, err := rn.Run(context.Background(), job("sleepy", `{"sleep":"1ms"}`), rec); err != nil || rec.pid() != pids[0] {
			t.Errorf("after a recovered panic the process is not reused: pid %d, want %d (%v)", rec.pid(), pids[0], err)
		}
	})
}

func TestJobsPerProcess(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), JobsPerProcess: 2})
	rn := runner(t, h, "sleepy")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := []*recorder{{}, {}, {}}
	var outs []<-chan runOutcome
	for _, rec := range recs {
		outs = append(outs, runAsync(ctx, rn, job("sleepy", `{"sleep":"1h"}`), rec))
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, r := range recs {
			if r.pid() == 0 {
				return errors.New("not all jobs started")
			}
		}
		return nil
	})
	pids := map[int]int{}
	for _, r := range recs {
		pids[r.pid()]++
	}
	if len(pids) != 2 {
		t.Errorf("3 jobs with 2 jobs per process ran in %d processes, want 2: %v", len(pids), pids)
	}
	cancel()
	for _, o := range outs {
		if out := <-o; !errors.Is(out.err, context.Canceled) && !strings.Contains(out.err.Error(), "context canceled") {
			t.Errorf("cancelled job: %v", out.err)
		}
	}
}

func TestCancelEndsTheRun(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin", "hello")})
	for _, tc := range []struct{ action, payload string }{
		{"sleepy", `{"sleep":"1h"}`},
		{"hello", `{"steps":1000,"delay":"1s"}`},
	} {
		t.Run(tc.action, func(t *testing.T) {
			rec := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			out := runAsync(ctx, runner(t, h, tc.action), job(tc.action, tc.payload), rec)
			poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
				if len(rec.snapshot().logs)+len(rec.snapshot().status) == 0 {
					return errors.New("the job has not reported yet")
				}
				return nil
			})
			// The process says which job it runs (the state dump lists it).
			running := 0
			for _, p := range h.Processes() {
				if len(p.JobIDs) == 1 && p.JobIDs[0] == "job/"+tc.action+"-test" && p.Jobs == 1 {
					running++
				}
			}
			if running != 1 {
				t.Errorf("processes running the job: %+v", h.Processes())
			}
			cancel()
			o := <-out
			for _, p := range h.Processes() {
				if len(p.JobIDs) != 0 {
					t.Errorf("a process still lists jobs after the run: %+v", p)
				}
			}
			if o.err == nil || !strings.Contains(o.err.Error(), "context canceled") || errors.Is(o.err, action.ErrPluginKilled) {
				t.Errorf("cancelled run: %v, want the plugin's own 'context canceled' error", o.err)
			}
			// A plugin that honours cancellation is kept.
			if ps := h.Processes(); len(ps) != 2 {
				t.Errorf("processes: %+v", ps)
			}
		})
	}
}

func TestTimeoutKillsAPluginThatIgnoresIt(t *testing.T) {
	h, logs := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), KillGrace: 300 * time.Millisecond})
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := runner(t, h, "stubborn").Run(ctx, job("stubborn", ""), rec)
	if !errors.Is(err, action.ErrPluginKilled) || !strings.Contains(err.Error(), `plugin "sdkplugin"`) {
		t.Fatalf("error = %v, want action.ErrPluginKilled naming the plugin", err)
	}
	pid := rec.pid()
	if pid == 0 {
		t.Fatal("the job did not report its pid")
	}
	if alive(pid) {
		t.Errorf("process %d is still running after Run returned", pid)
	}
	if logs.FilterMessage("plugin did not end the run within the grace period, killing its process").Len() != 1 {
		t.Errorf("the kill was not logged")
	}
	// The plugin still serves jobs, from a new process.
	rec2 := &recorder{}
	if _, err := runner(t, h, "sleepy").Run(context.Background(), job("sleepy", `{"sleep":"1ms"}`), rec2); err != nil || rec2.pid() == pid {
		t.Errorf("next job: %v (pid %d)", err, rec2.pid())
	}
}

func TestCrashFailsTheJobWithStderr(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin")})
	rec := &recorder{}
	_, err := runner(t, h, "crash").Run(context.Background(), job("crash", ""), rec)
	if !errors.Is(err, pluginhost.ErrCrashed) {
		t.Fatalf("error = %v, want ErrCrashed", err)
	}
	for _, want := range []string{`plugin "sdkplugin"`, "exit status 2", "panic: disk on fire", "main.crash"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if alive(rec.pid()) {
		t.Errorf("crashed process %d still runs", rec.pid())
	}
	if _, err := runner(t, h, "noop").Run(context.Background(), job("noop", ""), &recorder{}); err != nil {
		t.Errorf("job after the crash: %v", err)
	}
}

func TestBadPluginDataFailsOnlyThatJob(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "rawplugin", "sdkplugin")})
	for _, tc := range []struct{ action, want string }{
		{"bad-progress", "progress 150, outside 0-100"},
		{"big-status", "status message of 5000 bytes, over the limit of 4096"},
		{"big-message", "oversized message"},
		{"garbage", "malformed data"},
		{"empty-event", "empty or unknown event"},
		{"no-result", "ended the run without a result"},
		{"bad-level", `level "shout"`},
		{"empty-key", "log field key of 0 bytes"},
		{"big-fields", "log line of 20003 bytes (message and fields)"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			_, err := runner(t, h, tc.action).Run(context.Background(), job(tc.action, ""), &recorder{})
			if !errors.Is(err, pluginhost.ErrProtocol) || !strings.Contains(err.Error(), `plugin "rawplugin"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want a protocol violation of rawplugin saying %q", err, tc.want)
			}
		})
	}
	t.Run("unknown RPC", func(t *testing.T) {
		// describe-only serves Describe but not Run.
		h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "rawplugin=describe-only")})
		_, err := runner(t, h, "fine").Run(context.Background(), job("fine", ""), &recorder{})
		if !errors.Is(err, pluginhost.ErrProtocol) || !strings.Contains(err.Error(), "does not implement") || !strings.Contains(err.Error(), `plugin "describe-only"`) {
			t.Errorf("error = %v", err)
		}
	})
	// Nothing else was affected.
	if res, err := runner(t, h, "fine").Run(context.Background(), job("fine", ""), &recorder{}); err != nil || res.Message != "fine" {
		t.Errorf("well-behaved action of the same plugin: %+v, %v", res, err)
	}
	if _, err := runner(t, h, "noop").Run(context.Background(), job("noop", ""), &recorder{}); err != nil {
		t.Errorf("another plugin: %v", err)
	}
}

func TestCloseLeavesNoProcess(t *testing.T) {
	h, err := pluginhost.Load(context.Background(), pluginhost.Options{Dir: pluginDir(t, "sdkplugin", "hello")})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	out := runAsync(context.Background(), runner(t, h, "stubborn"), job("stubborn", ""), rec)
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		if rec.pid() == 0 {
			return errors.New("not started")
		}
		return nil
	})
	var pids []int
	for _, p := range h.Processes() {
		pids = append(pids, p.PID)
	}
	if len(pids) != 2 || !slices.Contains(pids, rec.pid()) {
		t.Fatalf("processes before Close: %v", pids)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived Close", pid)
		}
	}
	if o := <-out; !errors.Is(o.err, pluginhost.ErrClosed) {
		t.Errorf("job running during Close: %v, want ErrClosed", o.err)
	}
	if _, err := runner(t, h, "noop").Run(context.Background(), job("noop", ""), &recorder{}); !errors.Is(err, pluginhost.ErrClosed) {
		t.Errorf("job after Close: %v", err)
	}
}

func TestKilledHostLeavesNoPlugin(t *testing.T) {
	cmd := exec.Command(filepath.Join(bin, "loader"), pluginDir(t, "sdkplugin"), "stubborn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	reap := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	defer reap()
	var pids []int
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("loader said %q", sc.Text())
		}
		pids = append(pids, pid)
	}
	if len(pids) != 1 || !alive(pids[0]) {
		t.Fatalf("plugin pids %v", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	reap()
	poll.For(t, 10*time.Second, 20*time.Millisecond, gone(pids[0]))
}

func sha256sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// A context that ends while the run is being set up still reaches the
// plugin: the cancel request is repeated until the plugin knows the run.
func TestCancelRightAtTheStart(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), KillGrace: 5 * time.Second})
	rn := runner(t, h, "sleepy")
	reached := 0
	for i := range 40 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%8)*100*time.Microsecond)
		_, err := rn.Run(ctx, job("sleepy", `{"sleep":"1h"}`), &recorder{})
		cancel()
		if err == nil || errors.Is(err, action.ErrPluginKilled) {
			t.Fatalf("run cancelled at once: %v, want the plugin's own error", err)
		}
		if strings.Contains(err.Error(), "sleepy stopped") {
			reached++
		}
	}
	t.Logf("%d of 40 runs reached the plugin", reached)
}
