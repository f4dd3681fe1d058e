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
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
)

// deadZK is a ZooKeeper address nothing listens on: a command that used it
// fails (exit 1) instead of finding the test server.
const deadZK = "127.0.0.1:1"

// runBinary runs the built binary to its end with env added to this
// process's environment (the test's JOBENGINE_* variables are cleared by
// TestMain).
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(builtBinaries(t), "jobengine"), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("jobengine %q still running after a minute; stderr:\n%s", args, e.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// TestExecutorTakesGlobalFlagsAfterItsName runs `jobengine executor
// --zk-hosts H --threads 4 --log-file F …`, every flag after the command,
// with JOBENGINE_ZK_HOSTS pointing nowhere: the flags win, the executor
// runs a job and logs to F.
func TestExecutorTakesGlobalFlagsAfterItsName(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	logFile := filepath.Join(t.TempDir(), "executor.log")
	x := startProcess(t, []string{"JOBENGINE_ZK_HOSTS=" + deadZK},
		"executor", "--zk-hosts", testZK.ConnectString(), "--threads", "4", "--log-file", logFile,
		"--zk-root", root, "--zk-session-timeout", "2s", "--log-format", "json", "--name", "after", "--plugin-dir", t.TempDir(), "--enable-test-actions")
	j := createJob(t, s, "echo", `{"message":"hi"}`)
	got := waitJob(t, s, j.ID, 20*time.Second, inState(jobs.Success))
	if got.Executor != "after" {
		t.Fatalf("job ran on %q, want the executor named by --name after the command", got.Executor)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("--log-file after the command: %v", err)
	}
	var started struct {
		Msg     string `json:"msg"`
		Threads int    `json:"threads"`
	}
	for _, l := range strings.Split(string(b), "\n") {
		if json.Unmarshal([]byte(l), &started) == nil && started.Msg == "executor started" {
			break
		}
	}
	if started.Msg != "executor started" || started.Threads != 4 {
		t.Fatalf("no JSON line 'executor started' with 4 threads in --log-file:\n%s", b)
	}
	if strings.Contains(x.out.String(), "executor started") {
		t.Fatalf("the executor logged to stderr despite --log-file:\n%s", x.out.String())
	}
	x.signal(syscall.SIGTERM)
	if code := x.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

// TestGlobalFlagsAnywhere lists one job with the ZooKeeper settings given
// in every place the command line takes them: before the command, after a
// nested command, between its levels, after its arguments, and in the
// environment. The environment loses to any flag, and of two flags the one
// nearest the end of the line wins.
func TestGlobalFlagsAnywhere(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	j := createJob(t, s, "echo", "")
	zk := testZK.ConnectString()
	short := "--zk-connect-timeout=2s"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		ok   bool // the job is listed; else exit 1 (the dead address was used)
	}{
		{"before", nil, []string{"--zk-hosts", zk, "--zk-root", root, "job", "list", "--json"}, true},
		{"after a nested command", nil, []string{"job", "list", "--zk-hosts", zk, "--zk-root", root, "--json"}, true},
		{"between levels", nil, []string{"job", "--zk-hosts", zk, "list", "--zk-root=" + root, "--json"}, true},
		{"after the arguments", nil, []string{"job", "show", j.ID, "--zk-hosts", zk, "--zk-root", root, "--json"}, true},
		{"environment", []string{"JOBENGINE_ZK_HOSTS=" + zk, "JOBENGINE_ZK_ROOT=" + root}, []string{"job", "list", "--json"}, true},
		{"flag after the command beats the environment", []string{"JOBENGINE_ZK_HOSTS=" + deadZK, "JOBENGINE_ZK_ROOT=" + root}, []string{"job", "list", "--zk-hosts", zk, "--json"}, true},
		{"flag before the command beats the environment", []string{"JOBENGINE_ZK_HOSTS=" + deadZK}, []string{"--zk-hosts", zk, "job", "list", "--zk-root", root, "--json"}, true},
		{"later wins: after", nil, []string{"--zk-hosts", deadZK, "--zk-root", root, "job", "list", "--zk-hosts", zk, "--json"}, true},
		{"later wins: before", nil, []string{"--zk-hosts", zk, "--zk-root", root, short, "job", "list", "--zk-hosts", deadZK, "--json"}, false},
		{"later wins: deepest", nil, []string{"--zk-hosts", deadZK, "job", "--zk-hosts", deadZK, "list", "--zk-hosts", zk, "--zk-root", root, "--json"}, true},
		{"later wins: middle", nil, []string{"--zk-hosts", zk, short, "job", "--zk-hosts", deadZK, "list", "--zk-root", root, "--json"}, false},
		{"es-hosts-list alias", nil, []string{"job", "list", "--es-hosts-list", "http://127.0.0.1:1", "--zk-hosts", zk, "--zk-root", root, "--json"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runBinary(t, tc.env, tc.args...)
			if !tc.ok {
				if code != 1 || !strings.Contains(errOut, deadZK) {
					t.Fatalf("exit %d, want 1 naming %s (the later flag); stderr:\n%s", code, deadZK, errOut)
				}
				return
			}
			if code != 0 || !strings.Contains(out, j.ID) {
				t.Fatalf("exit %d, want 0 and %s listed; stdout:\n%s\nstderr:\n%s", code, j.ID, out, errOut)
			}
		})
	}
}

// TestCommandLineUsageErrors checks what exits 2 before any server is
// asked: unknown commands at any depth, unknown flags, and logging
// settings a client command would otherwise ignore.
func TestCommandLineUsageErrors(t *testing.T) {
	env := []string{"JOBENGINE_ZK_HOSTS=" + deadZK, "JOBENGINE_ZK_CONNECT_TIMEOUT=1s"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate" for "jobengine"`},
		{"unknown subcommand", nil, []string{"job", "frobnicate"}, `unknown command "frobnicate" for "jobengine job"`},
		{"unknown help topic", nil, []string{"help", "job", "frobnicate"}, `unknown command "frobnicate" for "jobengine job"`},
		{"unknown help topic below", nil, []string{"queue", "help", "frobnicate"}, `unknown command "frobnicate" for "jobengine queue"`},
		{"unknown flag after a nested command", nil, []string{"job", "list", "--frobnicate"}, "unknown flag --frobnicate: jobengine job list has no such flag"},
		{"CIMI flag", nil, []string{"executor", "--api-url=https://nuvla.example"}, "unknown flag --api-url: a flag of the reference engine's CIMI/Nuvla API"},
		{"bad log format", nil, []string{"job", "list", "--log-format", "xml"}, `log format "xml" (want console or json)`},
		{"bad log level before", nil, []string{"--log-level", "chatty", "job", "list"}, `log level "chatty" (want debug, info, warn or error)`},
		{"bad log level in the environment", []string{"JOBENGINE_LOG_LEVEL=chatty"}, []string{"queue", "stats"}, `log level "chatty"`},
		{"bad log format for a daemon", nil, []string{"executor", "--log-format", "xml"}, `log format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runBinary(t, append(env, tc.env...), tc.args...)
			if code != 2 || !strings.HasPrefix(errOut, "jobengine: ") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want 2 and %q; stdout:\n%s\nstderr:\n%s", code, tc.want, out, errOut)
			}
		})
	}
}

// TestHelpReachesAnyDepth checks that `help job list`, `job help list` and
// `job list --help` print the same help, the help of `job list`.
func TestHelpReachesAnyDepth(t *testing.T) {
	want, errOut, code := runBinary(t, nil, "job", "list", "--help")
	if code != 0 || !strings.Contains(want, "jobengine job list - list jobs") || !strings.Contains(want, "--limit") || !strings.Contains(want, "--zk-hosts") {
		t.Fatalf("job list --help: exit %d\n%s%s", code, want, errOut)
	}
	// --help with an argument is the help of the command, not of a
	// subcommand named by the argument.
	for _, args := range [][]string{{"help", "job", "list"}, {"h", "job", "list"}, {"job", "help", "list"}, {"job", "list", "--help", "x"}} {
		out, errOut, code := runBinary(t, nil, args...)
		if code != 0 || out != want {
			t.Errorf("%q: exit %d, want 0 and the help of job list; got\n%s%s", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {}} {
		out, _, code := runBinary(t, nil, args...)
		if code != 0 || !strings.Contains(out, "GLOBAL OPTIONS:") || !strings.Contains(out, "$JOBENGINE_ZK_HOSTS") {
			t.Errorf("%q: exit %d, want the app's help; got\n%s", args, code, out)
		}
	}
}

// TestEveryFlagReadsAnEnvironmentVariable walks the command tree: every
// flag of every command reads a JOBENGINE_ variable and its help says
// which, the copies of the global flags included.
func TestEveryFlagReadsAnEnvironmentVariable(t *testing.T) {
	app := NewApp(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(path string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(path string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			name := f.Names()[0]
			if name == "help" || name == "version" {
				continue
			}
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				t.Errorf("%s --%s: kind %T", path, name, f)
				continue
			}
			env := df.GetEnvVars()
			if len(env) == 0 {
				env = []string{globalEnv[name]}
			}
			// The help lists the flag's variables: its own first, then any
			// other name it answers to.
			if help := f.String(); !strings.HasPrefix(env[0], envPrefix) || (!strings.Contains(help, "[$"+env[0]+"]") && !strings.Contains(help, "[$"+env[0]+", $")) {
				t.Errorf("%s --%s reads no environment variable or its help does not say so: %q", path, name, f.String())
			}
		}
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Flags, c.Subcommands)
		}
	}
	walk("jobengine", app.Flags, app.Commands)
	if t.Failed() {
		return
	}
	// Spot checks of the names: the rule, and the variables that keep the
	// names they always had.
	for path, want := range map[string]string{
		"dev threads": "JOBENGINE_DEV_THREADS", "bench queue jobs": "JOBENGINE_BENCH_QUEUE_JOBS",
		"cluster status json": "JOBENGINE_CLUSTER_STATUS_JSON", "executor threads": "JOBENGINE_THREADS",
		"job list limit": "JOBENGINE_JOB_LIST_LIMIT",
	} {
		words := strings.Fields(path)
		cmds, flags := app.Commands, []cli.Flag(nil)
		for _, w := range words[:len(words)-1] {
			for _, c := range cmds {
				if c.Name == w {
					cmds, flags = c.Subcommands, c.Flags
				}
			}
		}
		var got []string
		for _, f := range flags {
			if f.Names()[0] == words[len(words)-1] {
				got = f.(cli.DocGenerationFlag).GetEnvVars()
			}
		}
		if fmt.Sprint(got) != fmt.Sprint([]string{want}) {
			t.Errorf("%s: environment variables %v, want %s", path, got, want)
		}
	}
}
