package command

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkserver"
)

func TestWaitExitCodes(t *testing.T) {
	e := newJobEnv(t)
	logFile := filepath.Join(t.TempDir(), "wait.log")

	t.Run("success", func(t *testing.T) {
		id := e.add("a")
		type result struct {
			out, errOut string
			code        int
		}
		done := make(chan result, 1)
		go func() {
			out, errOut, code := e.run("--log-level", "debug", "--log-file", logFile, "job", "wait", id, "--timeout", "60s")
			done <- result{out, errOut, code}
		}()
		// Complete the job only once the command watches its document, so
		// the watch is what wakes it.
		poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
			b, _ := os.ReadFile(logFile)
			if !strings.Contains(string(b), history.LogWatching) || !strings.Contains(string(b), id) {
				return fmt.Errorf("the command does not watch %s yet", id)
			}
			return nil
		})
		e.advance(id, jobs.Running)
		e.advance(id, jobs.Success)
		select {
		case r := <-done:
			if r.code != 0 || r.out != id+" SUCCESS (return code 0): done: SUCCESS\n" {
				t.Fatalf("wait for a job that succeeds: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("job wait did not return after the job succeeded")
		}
		b, _ := os.ReadFile(logFile)
		// One read to start and at most one per change before the final one:
		// the command waits on its watch, it does not poll.
		if n := strings.Count(string(b), history.LogWatching); n < 1 || n > 2 {
			t.Fatalf("the document was read %d times before it was final, for 1 change", n)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		id := e.add("a")
		e.ok("job", "cancel", id)
		out, errOut, code := e.run("job", "wait", id)
		if code != 1 || !strings.HasPrefix(out, id+" CANCELED") || !strings.Contains(errOut, "ended CANCELED") {
			t.Fatalf("wait for a canceled job: exit %d, stdout %q, stderr %q; want 1 and the final state", code, out, errOut)
		}
	})

	t.Run("failed-json", func(t *testing.T) {
		id := e.add("a")
		e.advance(id, jobs.Running, jobs.Failed)
		out, _, code := e.run("job", "wait", "--json", id)
		if v := decode[map[string]any](t, out); code != 1 || v["state"] != "FAILED" || v["return-code"] != 2.0 {
			t.Fatalf("wait --json for a failed job: exit %d, %v", code, v)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		id := e.add("a")
		out, errOut, code := e.run("job", "wait", id, "--timeout", "300ms")
		if code != 3 || out != "" || !strings.Contains(errOut, "timed out") || !strings.Contains(errOut, "QUEUED") {
			t.Fatalf("wait that times out: exit %d, stdout %q, stderr %q; want 3", code, out, errOut)
		}
	})
}

func TestZooKeeperUnreachable(t *testing.T) {
	ports, err := zkserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", ports[0])
	for _, args := range [][]string{
		{"job", "add", "a"},
		{"job", "list"},
		{"job", "wait", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"},
		{"queue", "stats"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			type result struct {
				out, errOut string
				code        int
			}
			done := make(chan result, 1)
			go func() {
				out, errOut, code := run(t, append([]string{"--zk-hosts", closed, "--zk-connect-timeout", "500ms"}, args...)...)
				done <- result{out, errOut, code}
			}()
			select {
			case r := <-done:
				if r.code != 1 || r.out != "" || !strings.Contains(r.errOut, closed) || !strings.Contains(r.errOut, "--zk-hosts") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and how to point at ZooKeeper", r.code, r.out, r.errOut)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the command hangs while ZooKeeper is unreachable")
			}
		})
	}
}

// TestLostZooKeeperEndsAWait stops the server a wait is watching through: the
// wait ends with exit 1 once ZooKeeper has been gone for the connect timeout.
func TestLostZooKeeperEndsAWait(t *testing.T) {
	zc := zktest.StartT(t, zkserver.Options{})
	root, hosts := testRoot(t), zc.ConnectString()
	out, errOut, code := run(t, "--zk-hosts", hosts, "--zk-root", root, "job", "add", "a")
	if code != 0 {
		t.Fatalf("job add: exit %d, %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	logFile := filepath.Join(t.TempDir(), "wait.log")
	done := make(chan [2]string, 1)
	go func() {
		_, errOut, code := run(t, "--zk-hosts", hosts, "--zk-root", root, "--zk-connect-timeout", "1s",
			"--log-level", "debug", "--log-file", logFile, "job", "wait", id)
		done <- [2]string{fmt.Sprint(code), errOut}
	}()
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), history.LogWatching) {
			return fmt.Errorf("not watching yet")
		}
		return nil
	})
	if err := zc.Servers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r[0] != "1" || !strings.Contains(r[1], "lost the connection to ZooKeeper") || !strings.Contains(r[1], "--zk-hosts") {
			t.Fatalf("wait through a stopped ZooKeeper: exit %s, stderr %q", r[0], r[1])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("job wait hangs after ZooKeeper stopped")
	}
}
