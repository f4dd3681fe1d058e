package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// units are the unit files, with the instance each is verified as.
var units = []struct {
	file, verifyAs, defaults, command string
}{
	{"jobengine-executor.service", "jobengine-executor.service", "jobengine-executor", "executor"},
	{"jobengine-distributor@.service", "jobengine-distributor@demo.service", "jobengine-distributor", "distributor"},
	{"jobengine-controller.service", "jobengine-controller.service", "jobengine-controller", "controller"},
}

// systemUnitDir is where the distribution keeps systemd's own units
// (targets the jobengine units refer to).
func systemUnitDir(t *testing.T) string {
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "multi-user.target")); err == nil {
			return d
		}
	}
	t.Skip("no systemd unit directory with multi-user.target: systemd is not installed")
	return ""
}

// verifyRoot makes a root directory for `systemd-analyze verify --root`:
// systemd's own units, the binary at /usr/bin/jobengine where ExecStart
// expects it, and the given unit files in /etc/systemd/system, unchanged.
func verifyRoot(t *testing.T, bin string, unitFiles map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	lib := filepath.Join(root, "usr/lib/systemd")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, time.Minute, "cp", "-a", systemUnitDir(t), filepath.Join(lib, "system"))
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, time.Minute, "cp", bin, filepath.Join(root, "usr/bin/jobengine"))
	etc := filepath.Join(root, "etc/systemd/system")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range unitFiles {
		if err := os.WriteFile(filepath.Join(etc, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestUnitsVerify runs `systemd-analyze verify` on each unit as shipped
// and fails on any output on stderr: unknown keys and bad values are only
// warnings there, with exit status 0.
func TestUnitsVerify(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	bin, _ := binaries(t)

	files := map[string][]byte{}
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(repoRoot, "systemd", u.file))
		if err != nil {
			t.Fatal(err)
		}
		files[u.file] = b
	}
	root := verifyRoot(t, bin, files)
	for _, u := range units {
		t.Run(u.verifyAs, func(t *testing.T) {
			out, errOut, code := run(t, time.Minute, nil, analyze, "verify", "--root="+root, u.verifyAs)
			if code != 0 || strings.TrimSpace(errOut) != "" {
				t.Fatalf("systemd-analyze verify %s: exit status %d\nstderr:\n%s\nstdout:\n%s", u.verifyAs, code, errOut, out)
			}
		})
	}

	// The same check must see a mistake, or it proves nothing: an unknown
	// key and a missing binary in copies of the units.
	t.Run("detects mistakes", func(t *testing.T) {
		broken := map[string][]byte{}
		for _, u := range units {
			broken[u.file] = append(append([]byte(nil), files[u.file]...), "\n[Service]\nNoSuchKey=1\n"...)
		}
		root := verifyRoot(t, bin, broken)
		for _, u := range units {
			_, errOut, _ := run(t, time.Minute, nil, analyze, "verify", "--root="+root, u.verifyAs)
			if !strings.Contains(errOut, "NoSuchKey") {
				t.Errorf("%s with an unknown key: systemd-analyze said nothing about it; stderr:\n%s", u.verifyAs, errOut)
			}
		}
		if err := os.Remove(filepath.Join(root, "usr/bin/jobengine")); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := run(t, time.Minute, nil, analyze, "verify", "--root="+root, units[0].verifyAs)
		if code == 0 || !strings.Contains(errOut, "/usr/bin/jobengine") {
			t.Errorf("verify without the binary: exit status %d, stderr:\n%s", code, errOut)
		}
	})
}

// TestUnitSettings reads the units for what systemd-analyze does not judge:
// how they start, stop, restart and are confined.
func TestUnitSettings(t *testing.T) {
	for _, uf := range units {
		t.Run(uf.file, func(t *testing.T) {
			u := readUnit(t, filepath.Join(repoRoot, "systemd", uf.file))
			want := map[string]string{
				"Type":                     "notify",
				"NotifyAccess":             "main",
				"User":                     "jobengine",
				"Group":                    "jobengine",
				"Restart":                  "on-failure",
				"RestartPreventExitStatus": "2", // a usage error is not fixed by restarting
				"KillSignal":               "SIGTERM",
				"KillMode":                 "mixed", // SIGTERM to the daemon only; it stops its plugins itself
				"NoNewPrivileges":          "yes",
				"ProtectSystem":            "strict",
				"ReadWritePaths":           "/var/log/jobengine /var/lib/jobengine",
				"PrivateTmp":               "yes",
				"ProtectHome":              "yes",
				"ProtectKernelTunables":    "yes",
				"ProtectControlGroups":     "yes",
				"RestrictSUIDSGID":         "yes",
				"LockPersonality":          "yes",
				"CapabilityBoundingSet":    "",
				"UMask":                    "0077", // what the daemon creates is its own
			}
			for k, v := range want {
				if got := u.get(t, "Service", k); got != v {
					t.Errorf("[Service] %s=%s, want %s", k, got, v)
				}
			}
			// Debian's settings, then Red Hat's; '-': a missing file is fine.
			wantEnv := []string{"-/etc/default/" + uf.defaults, "-/etc/sysconfig/" + uf.defaults}
			if got := u["Service"]["EnvironmentFile"]; strings.Join(got, " ") != strings.Join(wantEnv, " ") {
				t.Errorf("EnvironmentFile=%q, want %q", got, wantEnv)
			}
			// Bounds that stop a runaway daemon or plugin before the machine.
			for _, k := range []string{"MemoryMax", "TasksMax"} {
				if v := u.get(t, "Service", k); v == "" || v == "infinity" {
					t.Errorf("[Service] %s=%q, want a bound", k, v)
				}
			}
			if got := u.get(t, "Install", "WantedBy"); got != "multi-user.target" {
				t.Errorf("[Install] WantedBy=%s", got)
			}

			// The daemon runs the command with DAEMON_ARGS split into
			// words; a distributor's name comes after its flags.
			wantExec := "/usr/bin/jobengine " + uf.command + " $DAEMON_ARGS"
			if uf.command == "distributor" {
				wantExec += " %i"
			}
			if got := u.get(t, "Service", "ExecStart"); got != wantExec {
				t.Errorf("ExecStart=%s, want %s", got, wantExec)
			}

			// A daemon failing at start must not spin: restarts are spaced
			// by RestartSec, and StartLimitBurst of them fit in
			// StartLimitIntervalSec, so the start limit stops them.
			restartDelay := parseSpan(t, u.get(t, "Service", "RestartSec"))
			if restartDelay < time.Second {
				t.Errorf("RestartSec=%s: restarts would come too fast", restartDelay)
			}
			burst, err := strconv.Atoi(u.get(t, "Unit", "StartLimitBurst"))
			if err != nil {
				t.Fatalf("StartLimitBurst: %v", err)
			}
			interval := parseSpan(t, u.get(t, "Unit", "StartLimitIntervalSec"))
			if burst < 1 || time.Duration(burst)*restartDelay >= interval {
				t.Errorf("StartLimitBurst=%d × RestartSec=%s does not fit in StartLimitIntervalSec=%s: a failing daemon would restart forever",
					burst, restartDelay, interval)
			}

			stop := parseSpan(t, u.get(t, "Service", "TimeoutStopSec"))
			if uf.command == "executor" && stop <= executorShutdownGrace {
				t.Errorf("TimeoutStopSec=%s is not longer than the executor's shutdown grace %s", stop, executorShutdownGrace)
			}
			if stop < 10*time.Second {
				t.Errorf("TimeoutStopSec=%s leaves no time to stop cleanly", stop)
			}
		})
	}
}

// TestDefaultsFiles checks that the /etc/default files parse the way
// systemd reads them, leave DAEMON_ARGS empty, and only name environment
// variables the binary reads.
func TestDefaultsFiles(t *testing.T) {
	bin, _ := binaries(t)
	help := mustRun(t, time.Minute, bin, "--help")
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$(JOBENGINE_[A-Z0-9_]+)`).FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
	}
	if !known["JOBENGINE_ZK_HOSTS"] {
		t.Fatalf("jobengine --help names no JOBENGINE_ZK_HOSTS; help:\n%s", help)
	}
	for _, u := range units {
		t.Run(u.defaults, func(t *testing.T) {
			path := filepath.Join(repoRoot, "packaging/default", u.defaults)
			vars := defaultsFile(t, path)
			if v, ok := vars["DAEMON_ARGS"]; !ok || v != "" {
				t.Errorf("DAEMON_ARGS=%q (present: %v), want present and empty", v, ok)
			}
			b, _ := os.ReadFile(path)
			for _, m := range regexp.MustCompile(`\b(JOBENGINE_[A-Z0-9_]+)=`).FindAllStringSubmatch(string(b), -1) {
				if !known[m[1]] {
					t.Errorf("%s names %s, which jobengine --help does not list", u.defaults, m[1])
				}
			}
		})
	}
}

// TestScriptsSyntax parses the install scripts with /bin/sh (dash on
// Debian, bash on Red Hat).
func TestScriptsSyntax(t *testing.T) {
	var scripts []string
	for _, s := range scriptNames {
		scripts = append(scripts, filepath.Join(repoRoot, s.deb), filepath.Join(repoRoot, s.rpm))
	}
	scripts = append(scripts, filepath.Join(repoRoot, "packaging/build.sh"), filepath.Join(repoRoot, "packaging/version.sh"))
	shells := []string{"/bin/sh"}
	for _, s := range []string{"dash", "bash"} {
		if p, err := exec.LookPath(s); err == nil {
			shells = append(shells, p)
		}
	}
	for _, s := range scripts {
		for _, sh := range shells {
			if _, errOut, code := run(t, time.Minute, nil, sh, "-n", s); code != 0 {
				t.Errorf("%s -n %s: %s", sh, filepath.Base(s), errOut)
			}
		}
	}
}
