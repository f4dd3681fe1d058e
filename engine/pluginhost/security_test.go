package pluginhost_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/pluginhost"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

func TestUnsafePluginsAreRefused(t *testing.T) {
	dir := pluginDir(t, "hello")
	// Copies, so that the binaries other tests share keep their mode and owner.
	copyBinary(t, "rawplugin", filepath.Join(dir, "groupw"), 0o775)
	copyBinary(t, "rawplugin", filepath.Join(dir, "worldw"), 0o757)
	want := map[string]string{"groupw": "writable by its group", "worldw": "writable by every user"}
	if os.Geteuid() == 0 {
		foreign := filepath.Join(dir, "foreign")
		copyBinary(t, "rawplugin", foreign, 0o755)
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		want["foreign"] = "owned by uid 65534"
	}

	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o700); err != nil {
		t.Fatal(err)
	}
	want["fifo"] = "not a regular file"

	h, logs := load(t, pluginhost.Options{Dir: dir})
	if got := h.Plugins(); len(got) != 1 || got[0].Name != "hello" {
		t.Errorf("loaded %+v, want hello only", got)
	}
	skipped := h.Skipped()
	if len(skipped) != len(want) {
		t.Errorf("skipped %+v, want %d", skipped, len(want))
	}
	for _, s := range skipped {
		if w := want[filepath.Base(s.Path)]; w == "" || !strings.Contains(s.Reason, w) {
			t.Errorf("%s skipped because %q, want %q", s.Path, s.Reason, w)
		}
	}
	if n := logs.FilterMessage("plugin skipped").Len(); n != len(want) {
		t.Errorf("%d 'plugin skipped' lines, want %d", n, len(want))
	}

	t.Run("writable directory", func(t *testing.T) {
		dir := pluginDir(t, "hello")
		chmod(t, dir, 0o777)
		h, logs := load(t, pluginhost.Options{Dir: dir})
		if len(h.Plugins()) != 0 || len(h.Processes()) != 0 {
			t.Errorf("plugins %+v loaded from a world-writable directory", h.Plugins())
		}
		if s := h.Skipped(); len(s) != 1 || s[0].Path != dir || !strings.Contains(s[0].Reason, "writable by its group and every user") {
			t.Errorf("skipped %+v", s)
		}
		if logs.FilterMessage("plugin directory refused, no plugin loaded from it").Len() != 1 {
			t.Errorf("the refusal was not logged")
		}
	})
}

// TestPinnedBinaryIsTheOneExecuted swaps the binary of a pinned plugin
// back and forth while processes start: every start either runs the pinned
// binary or is refused; it never runs the other one.
func TestPinnedBinaryIsTheOneExecuted(t *testing.T) {
	dir := pluginDir(t, "hello", "hello=.good", "sdkplugin=.evil")
	sum := sha256sum(t, filepath.Join(dir, "hello"))
	h, _ := load(t, pluginhost.Options{Dir: dir, Checksums: map[string]string{"hello": sum}, MaxIdle: -1})
	rn := runner(t, h, "hello")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		target := filepath.Join(dir, "hello")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			src := map[bool]string{true: ".good", false: ".evil"}[i%2 == 0]
			tmp := filepath.Join(dir, ".swap")
			_ = os.Remove(tmp)
			if err := os.Link(filepath.Join(dir, src), tmp); err == nil {
				_ = os.Rename(tmp, target)
			}
		}
	}()
	ran, refused := 0, 0
	for i := 0; i < 40; i++ {
		_, err := rn.Run(context.Background(), job("hello", `{"steps":1,"delay":"1ms"}`), &recorder{})
		switch {
		case err == nil:
			ran++
		case errors.Is(err, pluginhost.ErrChecksum):
			refused++
		default:
			close(stop)
			wg.Wait()
			t.Fatalf("run %d: %v: a binary other than the pinned one was started", i, err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d runs of the pinned binary, %d starts refused", ran, refused)
}

func TestPluginEnvironmentIsAllowListed(t *testing.T) {
	t.Setenv("JOBENGINE_ES_PASSWORD", "hunter2")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shh")
	t.Setenv("HTTPS_PROXY", "http://proxy:3128")
	t.Setenv("TZ", "Europe/Paris")
	dir := pluginDir(t, "sdkplugin")
	envOf := func(t *testing.T, opts pluginhost.Options) map[string]string {
		t.Helper()
		opts.Dir = dir
		h, _ := load(t, opts)
		rec := &recorder{}
		if _, err := runner(t, h, "env").Run(context.Background(), job("env", ""), rec); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, l := range rec.snapshot().logs {
			if kv, ok := strings.CutPrefix(l, "info: ENV "); ok {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
		return env
	}

	env := envOf(t, pluginhost.Options{})
	for _, k := range []string{"JOBENGINE_ES_PASSWORD", "AWS_SECRET_ACCESS_KEY", "HTTPS_PROXY"} {
		if v, ok := env[k]; ok {
			t.Errorf("the plugin got %s=%s", k, v)
		}
	}
	if env["TZ"] != "Europe/Paris" || env["PATH"] != os.Getenv("PATH") || env[actionv1.HostPIDEnv] == "" {
		t.Errorf("the plugin lacks TZ, PATH or the host pid: %v", env)
	}
	for k := range env {
		if !allowedInTest(k) {
			t.Errorf("the plugin got %s, which is not allowed", k)
		}
	}

	env = envOf(t, pluginhost.Options{Env: []string{"HTTPS_PROXY"}})
	if env["HTTPS_PROXY"] != "http://proxy:3128" || env["JOBENGINE_ES_PASSWORD"] != "" {
		t.Errorf("with Env HTTPS_PROXY: %v", env)
	}

	if _, err := pluginhost.Load(context.Background(), pluginhost.Options{Dir: dir, Env: []string{"JOBENGINE_ES_PASSWORD"}}); err == nil || !strings.Contains(err.Error(), "JOBENGINE_") {
		t.Errorf("Env naming a JOBENGINE_ variable: %v, want an error", err)
	}
}

// allowedInTest reports whether a plugin may see the variable: the
// allow-list, the locale, and what go-plugin and the host add.
func allowedInTest(k string) bool {
	for _, a := range pluginhost.AllowedEnv {
		if k == a {
			return true
		}
	}
	return strings.HasPrefix(k, "LC_") || strings.HasPrefix(k, "PLUGIN_") || k == actionv1.HostPIDEnv ||
		k == actionv1.CookieKey // the handshake
}

func TestStderrFloodIsRateLimited(t *testing.T) {
	const lines = 20000
	h, logs := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), LogRate: 50, LogBurst: 100})
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.Collector())
	dropped := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}
	if _, err := runner(t, h, "flood").Run(context.Background(), job("flood", fmt.Sprintf(`{"lines":%d}`, lines)), &recorder{}); err != nil {
		t.Fatal(err)
	}
	logged := func() int {
		n := 0
		for _, e := range logs.All() {
			if strings.HasPrefix(e.Message, "flood line ") {
				n++
			}
		}
		return n
	}
	// Every line is either logged or counted as dropped, once go-plugin
	// has handed all of stderr over.
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if got := logged() + int(dropped()); got != lines {
			return fmt.Errorf("%d lines logged + %v dropped, want %d in all", logged(), dropped(), lines)
		}
		return nil
	})
	if n := logged(); n > lines/10 {
		t.Errorf("%d of %d flood lines reached the log", n, lines)
	}
	// The drop is reported in the log, with its count.
	_ = h.Close()
	reported := 0
	for _, e := range logs.FilterMessage("plugin output over the rate limit was dropped from this log").All() {
		reported += int(e.ContextMap()["dropped-lines"].(int64))
	}
	if reported != int(dropped()) {
		t.Errorf("log lines report %d dropped lines, the counter %v", reported, dropped())
	}
}

func TestKillTakesThePluginsChildren(t *testing.T) {
	h, _ := load(t, pluginhost.Options{Dir: pluginDir(t, "sdkplugin"), KillGrace: 200 * time.Millisecond})
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, runner(t, h, "spawn"), job("spawn", ""), rec)
	var child int
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, s := range rec.snapshot().status {
			if _, err := fmt.Sscanf(s, "child=%d", &child); err == nil {
				return nil
			}
		}
		return errors.New("no child reported yet")
	})
	if !alive(child) {
		t.Fatalf("child %d is not running", child)
	}
	cancel()
	if out := <-done; !errors.Is(out.err, action.ErrPluginKilled) {
		t.Fatalf("run ended with %v, want the plugin killed", out.err)
	}
	poll.For(t, 5*time.Second, 10*time.Millisecond, gone(child))
	poll.For(t, 5*time.Second, 10*time.Millisecond, gone(rec.pid()))
}

// copyBinary copies the test binary name of bin to dst with mode.
func copyBinary(t *testing.T, name, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, dst, mode) // past the umask
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
