package packaging_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unitCommand returns the command line a unit runs, as systemd would build
// it from ExecStart with the given DAEMON_ARGS and instance name demo, with
// the built binary in place of /usr/bin/jobengine.
func unitCommand(t *testing.T, file, bin, daemonArgs string) []string {
	t.Helper()
	u := readUnit(t, filepath.Join(repoRoot, "systemd", file))
	var argv []string
	for _, w := range strings.Fields(u.get(t, "Service", "ExecStart")) {
		switch w {
		case "/usr/bin/jobengine":
			argv = append(argv, bin)
		case "$DAEMON_ARGS": // unbraced: split into words
			argv = append(argv, strings.Fields(daemonArgs)...)
		case "%i":
			argv = append(argv, "demo")
		default:
			argv = append(argv, w)
		}
	}
	if len(argv) == 0 || argv[0] != bin {
		t.Fatalf("%s: ExecStart does not run /usr/bin/jobengine: %q", file, argv)
	}
	return argv
}

// daemonEnv is the environment of a daemon under test: what an
// /etc/default file could set, and a ZooKeeper address nothing listens on,
// so that a daemon that wrongly went on would fail fast instead of serving.
func daemonEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"JOBENGINE_ZK_HOSTS=127.0.0.1:1",
		"JOBENGINE_ZK_CONNECT_TIMEOUT=2s",
	}, extra...)
}

// haveCommand says whether the binary has a command yet.
func haveCommand(t *testing.T, bin, name string) bool {
	_, _, code := run(t, time.Minute, nil, bin, name, "--help")
	return code == 0
}

// oneLine checks that stderr holds one message line containing want,
// optionally followed by the usage hint of exit status 2.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "jobengine: ") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr does not start with one line 'jobengine: ...%s...':\n%s", want, stderr)
		return
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "run 'jobengine help'") {
			t.Errorf("stderr has more than the one message line (and the usage hint):\n%s", stderr)
			return
		}
	}
}

// TestBadDaemonArgs runs each unit's command line with an unknown flag in
// DAEMON_ARGS: the daemon must exit with status 2 (which the units do not
// restart) and one clear line, which the journal shows.
func TestBadDaemonArgs(t *testing.T) {
	bin, _ := binaries(t)

	// Before any command: the global flag parser.
	_, errOut, code := run(t, time.Minute, daemonEnv(t), bin, "-x")
	if code != 2 {
		t.Errorf("jobengine -x: exit status %d, want 2", code)
	}
	oneLine(t, errOut, "unknown flag -x: jobengine has no such flag")

	for _, u := range units {
		t.Run(u.command, func(t *testing.T) {
			if !haveCommand(t, bin, u.command) {
				t.Skipf("the binary has no %q command yet", u.command)
			}
			argv := unitCommand(t, u.file, bin, "--no-such-flag")
			_, errOut, code := run(t, time.Minute, daemonEnv(t), argv[0], argv[1:]...)
			if code != 2 {
				t.Errorf("%q: exit status %d, want 2; stderr:\n%s", argv[1:], code, errOut)
			}
			oneLine(t, errOut, "unknown flag --no-such-flag: jobengine "+u.command+" has no such flag")
		})
	}
}

// TestUnwritableLogFile runs each unit's command line with a log file that
// cannot be created: the daemon must exit non-zero with one line naming it.
func TestUnwritableLogFile(t *testing.T) {
	bin, _ := binaries(t)
	const logFile = "/proc/x/y"
	for _, u := range units {
		t.Run(u.command, func(t *testing.T) {
			if !haveCommand(t, bin, u.command) {
				t.Skipf("the binary has no %q command yet", u.command)
			}
			argv := unitCommand(t, u.file, bin, "")
			_, errOut, code := run(t, time.Minute, daemonEnv(t, "JOBENGINE_LOG_FILE="+logFile), argv[0], argv[1:]...)
			if code == 0 {
				t.Errorf("%q with JOBENGINE_LOG_FILE=%s: exit status 0", argv[1:], logFile)
			}
			oneLine(t, errOut, logFile)
		})
	}
}
