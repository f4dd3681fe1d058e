package packaging_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// daemon is a unit's command line started in the background.
type daemon struct {
	cmd  *exec.Cmd
	out  bytes.Buffer // written until done is closed
	done chan struct{}
}

// startUnit starts a unit's command line, as systemd would build it from
// the DAEMON_ARGS of an /etc/default file with the given text (see
// defaultsFile), in env.
func startUnit(t *testing.T, unitFile, defaults string, env []string) *daemon {
	t.Helper()
	bin, _ := binaries(t)
	path := filepath.Join(t.TempDir(), "default")
	if err := os.WriteFile(path, []byte(defaults), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := unitCommand(t, unitFile, bin, defaultsFile(t, path)["DAEMON_ARGS"])
	d := &daemon{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("output of %q:\n%s", argv[1:], d.out.String())
		}
	})
	return d
}

// stop sends SIGTERM and wants exit status 0 within a minute.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		t.Fatal("still running a minute after SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM", code)
	}
}

// TestReferenceDaemonArgsStartAnExecutor gives the executor unit the
// reference engine's DAEMON_ARGS line, without its CIMI/Nuvla API flags, in
// an environment whose JOBENGINE_ZK_HOSTS points nowhere: the flags of the
// line win, the executor runs a job under its --name with --threads
// workers, and indexes it into the Elasticsearch of --es-hosts-list (given
// as host:port, as the reference engine's operators write it).
func TestReferenceDaemonArgsStartAnExecutor(t *testing.T) {
	bin, _ := binaries(t)
	zk := zktest.StartT(t, zkserver.Options{})
	es := estest.Start(t, estest.Options{})
	line := fmt.Sprintf("DAEMON_ARGS='--zk-hosts=%s --threads=8 --es-hosts-list=%s --name=ref-executor'\n",
		zk.ConnectString(), strings.TrimPrefix(es.URL(), "http://"))
	x := startUnit(t, "jobengine-executor.service", line, daemonEnv(t, "JOBENGINE_PLUGIN_DIR="+t.TempDir(), "JOBENGINE_ENABLE_TEST_ACTIONS=true"))

	client := []string{"--zk-hosts", zk.ConnectString()}
	out, errOut, code := run(t, time.Minute, nil, bin, append([]string{"job", "add", "echo", "--payload", `{"message":"hi"}`}, client...)...)
	if code != 0 {
		t.Fatalf("job add: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	out, errOut, code = run(t, time.Minute, nil, bin, append([]string{"job", "wait", id, "--timeout", "30s", "--json"}, client...)...)
	var j struct {
		State    string `json:"state"`
		Executor string `json:"executor"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil || j.State != "SUCCESS" || j.Executor != "ref-executor" {
		t.Fatalf("job wait: exit %d, want SUCCESS on ref-executor; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = run(t, time.Minute, nil, bin, append([]string{"cluster", "status", "--json"}, client...)...)
	var members []struct {
		Name    string `json:"name"`
		Threads int    `json:"threads"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &members) != nil || len(members) != 1 || members[0].Name != "ref-executor" || members[0].Threads != 8 {
		t.Fatalf("cluster status: exit %d, want ref-executor with 8 threads; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	uid := strings.TrimPrefix(id, "job/")
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		for _, ix := range es.Indices() {
			for _, d := range es.Docs(ix) {
				if strings.Contains(string(d.Source), uid) {
					return nil
				}
			}
		}
		return fmt.Errorf("%s not indexed into %v", id, es.Indices())
	})
	x.stop(t)
}

// TestReferenceDaemonArgsStartADistributor gives a distributor unit the
// reference engine's distributor line (--zk-hosts, --name): it leads the
// election of its distributor under that name.
func TestReferenceDaemonArgsStartADistributor(t *testing.T) {
	bin, _ := binaries(t)
	zk := zktest.StartT(t, zkserver.Options{})
	dir := t.TempDir()
	// unitCommand names the instance demo.
	if err := os.WriteFile(filepath.Join(dir, "demo.yaml"), []byte("action: echo\ninterval: 1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("DAEMON_ARGS='--zk-hosts=%s --name=ref-distributor'\n", zk.ConnectString())
	d := startUnit(t, "jobengine-distributor@.service", line, daemonEnv(t, "JOBENGINE_DISTRIBUTOR_CONFIG_DIR="+dir))
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		out, errOut, code := run(t, time.Minute, nil, bin, "distributor", "list", "--json", "--config-dir", dir, "--zk-hosts", zk.ConnectString())
		var rows []struct {
			Name   string `json:"name"`
			Leader string `json:"leader"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			return fmt.Errorf("distributor list: exit %d: %s%s", code, out, errOut)
		}
		for _, r := range rows {
			if r.Name == "demo" && r.Leader == "ref-distributor" {
				return nil
			}
		}
		return fmt.Errorf("demo is not led by ref-distributor: %s", out)
	})
	d.stop(t)
}

// TestReferenceDaemonArgsWithCIMIFlags gives each unit the reference
// engine's line with its CIMI/Nuvla API flags: the daemon exits with status
// 2 (not restarted) and one line naming the flag and saying what to do,
// without the password that followed it.
func TestReferenceDaemonArgsWithCIMIFlags(t *testing.T) {
	bin, _ := binaries(t)
	for _, tc := range []struct{ unit, line, flag string }{
		{"jobengine-executor.service", "--api-url=https://nuvla.example --api-user=super --api-pass=s3cret --zk-hosts=zk1:2181 --threads=8 --es-hosts-list=es1", "--api-url"},
		{"jobengine-executor.service", "--zk-hosts=zk1:2181 --threads=8 --api-authn-header=group/nuvla-admin --api-pass s3cret", "--api-authn-header"},
		{"jobengine-executor.service", "--zk-hosts=zk1:2181 --api-insecure", "--api-insecure"},
		{"jobengine-distributor@.service", "--api-url=https://nuvla.example --api-key=k --api-secret=s3cret --zk-hosts=zk1:2181", "--api-url"},
	} {
		t.Run(strings.TrimSuffix(tc.unit, ".service")+" "+tc.flag, func(t *testing.T) {
			argv := unitCommand(t, tc.unit, bin, tc.line)
			_, errOut, code := run(t, time.Minute, daemonEnv(t), argv[0], argv[1:]...)
			if code != 2 {
				t.Errorf("%q: exit status %d, want 2; stderr:\n%s", argv[1:], code, errOut)
			}
			oneLine(t, errOut, "unknown flag "+tc.flag+": a flag of the reference engine's CIMI/Nuvla API client")
			if strings.Contains(errOut, "s3cret") {
				t.Errorf("the error shows the password:\n%s", errOut)
			}
		})
	}
}

// TestDefaultsFilesExamples runs the DAEMON_ARGS examples in the comments
// of the /etc/default files through their unit's command line with --help
// added: every flag they show is one the daemon knows.
func TestDefaultsFilesExamples(t *testing.T) {
	bin, _ := binaries(t)
	example := regexp.MustCompile(`(?m)^#\s+(DAEMON_ARGS=.*)$`)
	for _, u := range units {
		t.Run(u.defaults, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/default", u.defaults))
			if err != nil {
				t.Fatal(err)
			}
			found := example.FindAllStringSubmatch(string(b), -1)
			if len(found) == 0 {
				t.Fatal("no DAEMON_ARGS example in the comments")
			}
			for _, m := range found {
				path := filepath.Join(t.TempDir(), "default")
				if err := os.WriteFile(path, []byte(m[1]+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				argv := unitCommand(t, u.file, bin, defaultsFile(t, path)["DAEMON_ARGS"]+" --help")
				out, errOut, code := run(t, time.Minute, daemonEnv(t), argv[0], argv[1:]...)
				if code != 0 || !strings.Contains(out, "jobengine "+u.command) {
					t.Errorf("%s: %q: exit status %d, want 0 and the help; stderr:\n%s", u.defaults, argv[1:], code, errOut)
				}
			}
		})
	}
}
