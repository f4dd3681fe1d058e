package command

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/zkserver"
)

var exportLine = regexp.MustCompile(`export JOBENGINE_ZK_HOSTS=(\S+)`)

func TestDevRunsALocalSystemAndStopsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own ZooKeeper; skipped in -short mode")
	}
	d := startDaemon(t, "/", "dev", "--data-dir", t.TempDir(), "--demo-interval", "1s", "--plugin-dir", t.TempDir())
	var addr string
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		m := exportLine.FindStringSubmatch(d.out.String())
		if m == nil {
			return fmt.Errorf("no export line yet")
		}
		addr = m[1]
		return nil
	})
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
