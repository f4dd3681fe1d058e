// Package packaging_test checks the systemd units, the /etc/default files,
// the package build script and the packages it builds, with the real tools
// (systemd-analyze, dpkg, rpm) and the real binary. Nothing here needs a
// running systemd.
package packaging_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildVersion is what the test binary reports and the packages are built
// as: a git describe output with every part version.sh maps.
const buildVersion = "v1.2.3-4-gabc1234"

// executorShutdownGrace is the executor's default --shutdown-grace; the
// unit's TimeoutStopSec must leave it that long.
const executorShutdownGrace = 2 * time.Minute

var (
	repoRoot string // the repository, one level up from this package
	tmpRoot  string // removed after the tests

	buildOnce sync.Once
	built     struct {
		bin, plugin string
		err         error
	}
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = filepath.Dir(wd)
	tmpRoot, err = os.MkdirTemp("", "jobengine-packaging-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// binaries builds jobengine (reporting buildVersion) and the example plugin
// once for all tests, as `make build plugins` does: static (no cgo),
// position-independent and stripped, which build.sh checks.
func binaries(t *testing.T) (bin, plugin string) {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(tmpRoot, "bin")
		built.bin = filepath.Join(dir, "jobengine")
		built.plugin = filepath.Join(dir, "actions", "hello")
		ldflags := "-s -w -X github.com/jobengine/jobengine/engine/version.Version=" + buildVersion
		if out, err := goBuild("-ldflags", ldflags, "-o", built.bin, "./cmd/jobengine").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building jobengine: %v\n%s", err, out)
			return
		}
		if out, err := goBuild("-ldflags", "-s -w", "-o", built.plugin, "./actions/examples/hello").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building the example plugin (the packages ship it): %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin, built.plugin
}

// goBuild is the Makefile's GOBUILD: go build as the packages need it.
func goBuild(args ...string) *exec.Cmd {
	cmd := exec.Command("go", append([]string{"build", "-trimpath", "-buildmode=pie"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	return cmd
}

// run runs a command and returns its stdout, stderr and exit code; it
// fails the test only if the command could not be started or timed out.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	if env != nil {
		cmd.Env = env
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %s\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), timeout, o.String(), e.String())
	}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// mustRun runs a command that must succeed and returns its stdout.
func mustRun(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, timeout, nil, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit status %d\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("not root: %s needs root (CI runs the tests as root)", why)
	}
}

// unit is a parsed unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a key=value line in a section (continuation lines are not used here): %q", path, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns the one value of a key, failing if it is missing or repeated.
func (u unit) get(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Fatalf("[%s] %s: want exactly one value, have %q", section, key, vs)
	}
	return vs[0]
}

// parseSpan parses a systemd time span as the units use them: "150s",
// "2min", "5", "1min 30s".
func parseSpan(t *testing.T, s string) time.Duration {
	t.Helper()
	var total time.Duration
	for _, part := range strings.Fields(s) {
		i := 0
		for i < len(part) && part[i] >= '0' && part[i] <= '9' {
			i++
		}
		if i == 0 {
			t.Fatalf("time span %q: %q has no number", s, part)
		}
		var n int64
		fmt.Sscan(part[:i], &n)
		units := map[string]time.Duration{"": time.Second, "s": time.Second, "sec": time.Second, "ms": time.Millisecond,
			"m": time.Minute, "min": time.Minute, "h": time.Hour, "hr": time.Hour}
		u, ok := units[part[i:]]
		if !ok {
			t.Fatalf("time span %q: unit %q not understood by this test", s, part[i:])
		}
		total += time.Duration(n) * u
	}
	return total
}

// defaultsFile parses an /etc/default file the way systemd's
// EnvironmentFile= does for the simple lines these files have.
func defaultsFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, " \t$") || strings.HasPrefix(k, "export") {
			t.Fatalf("%s:%d: not a NAME=value line: %q", path, n+1, line)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	return vars
}
