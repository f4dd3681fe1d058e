package packaging_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVersion checks the mapping of git describe outputs to package
// versions, and that dpkg and rpm order them as git does.
func TestVersion(t *testing.T) {
	script := filepath.Join(repoRoot, "packaging/version.sh")
	for _, c := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-rc.1-4-gabc1234", "1.2.3~rc.1+4.gabc1234"},
		{"v1.2.3-rc.1-dirty", "1.2.3~rc.1+0.dirty"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"v1.2.3-dirty", "1.2.3+0.dirty"},
		{"abc1234", "0.0.0~git.abc1234"},
		{"1234567", "0.0.0~git.1234567"},
		{"abc1234-dirty", "0.0.0~git.abc1234.dirty"},
		{"dev", "0.0.0~dev"},
	} {
		out, errOut, code := run(t, time.Minute, nil, script, c.in)
		if got := strings.TrimSpace(out); code != 0 || got != c.want {
			t.Errorf("version.sh %s = %q (exit %d, %s), want %q", c.in, got, code, strings.TrimSpace(errOut), c.want)
		}
	}
	for _, bad := range []string{"", "v1.x", "release-1", "v1.2.3-4-gXYZ", "v1.2.3-rc-1", "v1.2.3 4"} {
		out, errOut, code := run(t, time.Minute, nil, script, bad)
		if code != 2 || out != "" || !strings.Contains(errOut, "VERSION") && !strings.Contains(errOut, "cannot make a deb/rpm version") {
			t.Errorf("version.sh %q: exit %d, stdout %q, stderr %q; want exit 2 and a message", bad, code, out, errOut)
		}
	}

	// Ascending, as git history goes.
	order := []string{"dev", "v1.2.3-rc.1", "v1.2.3-rc.1-dirty", "v1.2.3-rc.1-4-gabc1234", "v1.2.3", "v1.2.3-dirty", "v1.2.3-4-gabc1234", "v1.2.3-4-gabc1234-dirty", "v1.2.4-rc.1", "v1.10.0"}
	versions := make([]string, len(order))
	for i, in := range order {
		out, _, _ := run(t, time.Minute, nil, script, in)
		versions[i] = strings.TrimSpace(out)
	}
	t.Run("dpkg order", func(t *testing.T) {
		dpkg := needTool(t, "dpkg")
		for i := 1; i < len(versions); i++ {
			if _, errOut, code := run(t, time.Minute, nil, dpkg, "--compare-versions", versions[i-1], "lt", versions[i]); code != 0 {
				t.Errorf("dpkg: %s is not older than %s %s", versions[i-1], versions[i], errOut)
			}
		}
	})
	t.Run("rpm order", func(t *testing.T) {
		rpm := needTool(t, "rpm")
		for i := 1; i < len(versions); i++ {
			expr := `%{lua: print(rpm.vercmp("` + versions[i-1] + `", "` + versions[i] + `"))}`
			out, errOut, code := run(t, time.Minute, nil, rpm, "--eval", expr)
			if code != 0 || strings.TrimSpace(out) != "-1" {
				t.Errorf("rpm: vercmp(%s, %s) = %q, want -1 %s", versions[i-1], versions[i], strings.TrimSpace(out), errOut)
			}
		}
	})
}

// TestBuildRefuses checks that the package build stops with a clear
// message, before building anything, when its inputs are missing or bad.
func TestBuildRefuses(t *testing.T) {
	script := filepath.Join(repoRoot, "packaging/build.sh")
	dist := t.TempDir()
	bin, _ := binaries(t)
	for _, c := range []struct {
		name    string
		env     []string
		args    []string
		code    int
		message string
	}{
		{"no version", nil, nil, 2, "usage:"},
		{"bad version", nil, []string{"v1.x"}, 2, "cannot make a deb/rpm version of 'v1.x'"},
		{"no binary", []string{"JOBENGINE_BIN=" + filepath.Join(dist, "none")}, []string{"dev"}, 1, "make build"},
		{"no plugin", []string{"JOBENGINE_BIN=" + bin, "JOBENGINE_PLUGIN=" + filepath.Join(dist, "none")}, []string{"dev"}, 1, "make plugins"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(script, c.args...)
			cmd.Env = append(append(cmd.Environ(), "DIST="+dist), c.env...)
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(string(out), c.message) {
				t.Errorf("build.sh %v: exit %d (%v), output:\n%s\nwant exit %d and %q", c.args, code, err, out, c.code, c.message)
			}
		})
	}
	if files, _ := filepath.Glob(filepath.Join(dist, "*")); len(files) != 0 {
		t.Errorf("a refused build wrote %v", files)
	}
}
