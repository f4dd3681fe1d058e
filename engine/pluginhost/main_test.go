package pluginhost_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

// bin holds the binaries built once by TestMain: the example plugin, the
// test plugins of testdata and the loader.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/jobengine/jobengine/actions/examples/hello",
		"./testdata/sdkplugin", "./testdata/rawplugin", "./testdata/loader")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugins:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	if code == 0 {
		// Every Host was closed: no goroutine of go-plugin or gRPC may remain.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// pluginDir returns a new plugin directory holding the named binaries of
// bin, each linked under the name given after "=" when there is one
// ("rawplugin=v2-plugin").
func pluginDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		src, dst := n, n
		if i := bytes.IndexByte([]byte(n), '='); i >= 0 {
			src, dst = n[:i], n[i+1:]
		}
		install(t, filepath.Join(bin, src), filepath.Join(dir, dst))
	}
	return dir
}

// install puts a copy of the binary src at dst.
func install(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.Link(src, dst); err == nil {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeScript writes an executable shell script into dir.
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// load loads a Host, closed at the end of the test, with its logs observed.
func load(t testing.TB, opts pluginhost.Options) (*pluginhost.Host, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	opts.Logger = zap.New(core)
	h, err := pluginhost.Load(context.Background(), opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, logs
}

// runner returns the runner of the named action of h.
func runner(t testing.TB, h *pluginhost.Host, name string) action.Runner {
	t.Helper()
	for _, d := range h.Definitions() {
		if d.Name == name {
			return d.Runner
		}
	}
	t.Fatalf("no action %q; have %v", name, h.Definitions())
	return nil
}

// recorder is an action.Reporter that keeps everything reported.
type recorder struct {
	mu       sync.Mutex
	progress []int
	status   []string
	affected []string
	logs     []string // "level: message"
}

func (r *recorder) Progress(p int)  { r.mu.Lock(); r.progress = append(r.progress, p); r.mu.Unlock() }
func (r *recorder) Status(s string) { r.mu.Lock(); r.status = append(r.status, s); r.mu.Unlock() }
func (r *recorder) Affected(h ...string) {
	r.mu.Lock()
	r.affected = append(r.affected, h...)
	r.mu.Unlock()
}
func (r *recorder) Log(level, msg string) {
	r.mu.Lock()
	r.logs = append(r.logs, level+": "+msg)
	r.mu.Unlock()
}

// pid returns the plugin pid a test action reported as "pid=N", or 0.
func (r *recorder) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.status {
		var pid int
		if _, err := fmt.Sscanf(s, "pid=%d", &pid); err == nil {
			return pid
		}
	}
	return 0
}

// report is a copy of what a recorder holds.
type report struct {
	progress               []int
	status, affected, logs []string
}

func (r *recorder) snapshot() report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return report{
		progress: slices.Clone(r.progress), status: slices.Clone(r.status),
		affected: slices.Clone(r.affected), logs: slices.Clone(r.logs),
	}
}

// alive reports whether pid is a running process; a zombie is not.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return !(i > 0 && i+2 < len(stat) && stat[i+2] == 'Z')
}

func gone(pid int) func() error {
	return func() error {
		if alive(pid) {
			return fmt.Errorf("process %d is still running", pid)
		}
		return nil
	}
}

func job(name, payload string) *action.Job {
	return &action.Job{ID: "job/" + name + "-test", Action: name, Target: "user/alice", Payload: []byte(payload), Attempt: 1, Timeout: time.Minute}
}

// runAsync runs a job in the background.
func runAsync(ctx context.Context, rn action.Runner, j *action.Job, r action.Reporter) <-chan runOutcome {
	ch := make(chan runOutcome, 1)
	go func() {
		res, err := rn.Run(ctx, j, r)
		ch <- runOutcome{res, err}
	}()
	return ch
}

type runOutcome struct {
	res action.Result
	err error
}
