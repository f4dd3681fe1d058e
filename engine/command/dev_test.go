package command

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var (
	exportLine = regexp.MustCompile(`export JOBENGINE_ZK_HOSTS=(\S+)`)
	zkPIDLine  = regexp.MustCompile(`ZooKeeper is running at \S+ \(pid (\d+),`)
	dashLine   = regexp.MustCompile(`The dashboard is at (http://\S+)/\n  log in as (\S+) with the password (\S+) `)
)

// devDashboard waits for dev's dashboard lines, then logs in there with
// the printed credentials and fetches the dashboard's page.
func devDashboard(t *testing.T, d *proc) {
	t.Helper()
	var m []string
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		if m = dashLine.FindStringSubmatch(d.out.String()); m == nil {
			return fmt.Errorf("no dashboard line yet")
		}
		return nil
	})
	body := fmt.Sprintf(`{"username": %q, "password": %q}`, m[2], m[3])
	res, err := http.Post(m[1]+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("logging in with the printed credentials: %s", res.Status)
	}
	res, err = http.Get(m[1] + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "/ui/app.js") {
		t.Fatalf("the dashboard's page: %s\n%s", res.Status, page)
	}
}

// devAddr waits for dev's export line and returns the address in it.
func devAddr(t *testing.T, d *proc) string {
	t.Helper()
	var addr string
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		m := exportLine.FindStringSubmatch(d.out.String())
		if m == nil {
			return fmt.Errorf("no export line yet")
		}
		addr = m[1]
		return nil
	})
	return addr
}

// devExecutor waits until cluster status at addr shows dev's executor,
// run by the process pid.
func devExecutor(t *testing.T, addr string, pid int) {
	t.Helper()
	poll.For(t, 60*time.Second, 200*time.Millisecond, func() error {
		out, errOut, code := run(t, "--zk-hosts", addr, "--zk-connect-timeout", "2s", "cluster", "status", "--json")
		if code != 0 {
			return fmt.Errorf("cluster status exit %d: %s", code, errOut)
		}
		var members []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		}
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			return err
		}
		if len(members) != 1 || members[0].Name != "dev" || members[0].PID != pid {
			return fmt.Errorf("executors %+v, want dev of pid %d", members, pid)
		}
		return nil
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	ports, err := zkserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

func TestDevDefaultPort(t *testing.T) {
	for _, f := range devCommand().Flags {
		if f.Names()[0] == "zk-port" {
			if v := f.(interface{ GetValue() string }).GetValue(); v != "2181" {
				t.Fatalf("--zk-port defaults to %s, want ZooKeeper's 2181", v)
			}
			return
		}
	}
	t.Fatal("dev has no --zk-port")
}

// TestDevRunsALocalSystemAndStopsIt: dev runs jobs and stops on Ctrl-C;
// its port taken, ZooKeeper gets another and dev says so.
func TestDevRunsALocalSystemAndStopsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own ZooKeeper; skipped in -short mode")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	d := startDaemon(t, "/", "dev", "--data-dir", t.TempDir(), "--zk-port", strconv.Itoa(port), "--demo-interval", "1s", "--plugin-dir", t.TempDir())
	addr := devAddr(t, d)
	if addr == taken.Addr().String() || !strings.Contains(d.out.String(), fmt.Sprintf("Port %d is taken", port)) {
		t.Fatalf("ZooKeeper at %s with port %d taken; output:\n%s", addr, port, d.out.String())
	}
	devDashboard(t, d)
	// The demo distributor creates jobs and the executor runs them.
	poll.For(t, 60*time.Second, 200*time.Millisecond, func() error {
		out, errOut, code := run(t, "--zk-hosts", addr, "job", "list", "--action", "dummy_test_action", "--state", "SUCCESS", "--json")
		if code != 0 {
			return fmt.Errorf("job list exit %d: %s", code, errOut)
		}
		var list []map[string]any
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			return err
		}
		if len(list) == 0 {
			return fmt.Errorf("no finished demo job yet")
		}
		return nil
	})
	// The controller schedules a job with scheduling needs onto the
	// executor.
	out, errOut, code := run(t, "--zk-hosts", addr, "job", "add", "echo", "--impact", "1", "--payload", `{"message":"hi"}`)
	if code != 0 {
		t.Fatalf("job add: exit %d: %s", code, errOut)
	}
	if _, errOut, code := run(t, "--zk-hosts", addr, "job", "wait", strings.TrimSpace(out), "--timeout", "60s"); code != 0 {
		t.Fatalf("scheduled job: exit %d: %s", code, errOut)
	}
	d.signal(syscall.SIGINT)
	if code := d.wait(60 * time.Second); code != 0 {
		t.Fatalf("exit %d after Ctrl-C", code)
	}
	if _, err := zkserver.FourLetter(addr, "srvr", time.Second); err == nil {
		t.Fatal("ZooKeeper still answers after jobengine dev stopped")
	}
}

// TestDevLifecycle: dev on a fixed port answers SIGUSR1 with the state of
// both daemons; a second dev in its data directory is refused before it
// touches ZooKeeper's files; after a kill -9 dev starts again in the same
// directory, on the same port; and when its ZooKeeper dies, dev ends.
func TestDevLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own ZooKeeper; skipped in -short mode")
	}
	dir, port := t.TempDir(), freePort(t)
	args := []string{"dev", "--data-dir", dir, "--zk-port", strconv.Itoa(port), "--demo-interval", "0", "--plugin-dir", t.TempDir()}
	first := startDaemon(t, "/", args...)
	addr := devAddr(t, first)
	if want := fmt.Sprintf("127.0.0.1:%d", port); addr != want {
		t.Fatalf("ZooKeeper at %s, want %s", addr, want)
	}
	devExecutor(t, addr, first.cmd.Process.Pid)

	// SIGUSR1: the state of the executor and of the controller (no
	// distributor runs without a demo).
	first.signal(syscall.SIGUSR1)
	first.waitLog(10*time.Second, daemon.LogDump, `"daemon":"executor"`)
	first.waitLog(10*time.Second, daemon.LogDump, `"daemon":"controller"`)

	// A second dev in the same directory.
	cfgPath := filepath.Join(dir, "zk1", "zoo.cfg")
	cfgBefore, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	second := startDaemon(t, "/", append(args[:len(args):len(args)], "--zk-port", "0")...)
	if code := second.wait(30 * time.Second); code != 1 {
		t.Fatalf("second dev in one data directory: exit %d, want 1", code)
	}
	if s := second.out.String(); !strings.Contains(s, errDevRunning.Error()) || !strings.Contains(s, fmt.Sprintf("pid %d", first.cmd.Process.Pid)) || !strings.Contains(s, "--data-dir") {
		t.Fatalf("second dev does not say why it stops:\n%s", s)
	}
	if after, _ := os.ReadFile(cfgPath); string(after) != string(cfgBefore) {
		t.Fatalf("the second dev rewrote ZooKeeper's config:\n%s\nwas:\n%s", after, cfgBefore)
	}

	// kill -9, then start again: its executor's name is free again.
	first.signal(syscall.SIGKILL)
	first.wait(10 * time.Second)
	// Its ZooKeeper dies with it (the kernel kills it); wait for the port.
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if _, err := zkserver.FourLetter(addr, "srvr", time.Second); err == nil {
			return fmt.Errorf("the killed dev's ZooKeeper still answers")
		}
		return nil
	})
	third := startDaemon(t, "/", args...)
	if addr3 := devAddr(t, third); addr3 != addr {
		t.Fatalf("ZooKeeper at %s after a restart, want %s as before", addr3, addr)
	}
	devExecutor(t, addr, third.cmd.Process.Pid)

	// Its ZooKeeper dies: dev ends at once, saying why.
	m := zkPIDLine.FindStringSubmatch(third.out.String())
	if m == nil {
		t.Fatalf("no ZooKeeper pid in:\n%s", third.out.String())
	}
	zkPID, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(zkPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := third.wait(devStopAfterZKExit + 10*time.Second); code != 1 {
		t.Fatalf("dev after its ZooKeeper died: exit %d, want 1", code)
	}
	if s := third.out.String(); !strings.Contains(s, fmt.Sprintf("ZooKeeper (pid %d) exited unexpectedly", zkPID)) {
		t.Fatalf("dev does not say its ZooKeeper died:\n%s", s)
	}
}

// TestMakeDevShowsProgress: `make dev` says what it builds, and builds
// verbosely, so a first build that takes minutes is not silent.
func TestMakeDevShowsProgress(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", "-n", "dev")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n dev: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "echo \"building ") || !regexp.MustCompile(`(?m)go build .*-v .*-o bin/jobengine `).MatchString(s) {
		t.Fatalf("make dev neither says what it builds nor builds with -v:\n%s", s)
	}
}
