package command

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/zkserver"
)

// watches returns how many watches the server holds (the wchs command).
func watches(s *zkserver.Server) (int, error) {
	out, err := s.FourLetter("wchs", 2*time.Second)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(out, "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "Total watches:%d", &n); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no watch count in %q", out)
}

// TestFrozenZooKeeperEndsWaitAndLogs freezes the server (SIGSTOP) under a
// `job wait` and a `job logs -f` that watch a job: the connections stay
// up, the server answers nothing. Both end with exit 1 soon after the
// connect timeout, saying why, instead of hanging.
func TestFrozenZooKeeperEndsWaitAndLogs(t *testing.T) {
	zc := zktest.StartT(t, zkserver.Options{ExtraConfig: []string{"4lw.commands.whitelist=*"}})
	root, hosts := testRoot(t), zc.ConnectString()
	out, errOut, code := run(t, "--zk-hosts", hosts, "--zk-root", root, "job", "add", "a")
	if code != 0 {
		t.Fatalf("job add: exit %d, %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	const connectTimeout = 2 * time.Second
	flags := []string{"--zk-hosts", hosts, "--zk-root", root, "--zk-connect-timeout", connectTimeout.String(), "--zk-session-timeout", "10s"}
	wait := startProcess(t, nil, append(flags, "job", "wait", id)...)
	logs := startProcess(t, nil, append(flags, "job", "logs", "--follow", id)...)
	// Both watch the job: the wait its document, logs the document and
	// the log node.
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		n, err := watches(zc.Servers[0])
		if err == nil && n < 3 {
			err = fmt.Errorf("%d watches, want 3", n)
		}
		return err
	})
	if err := zc.Servers[0].Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zc.Servers[0].Resume() })
	frozen := time.Now()
	// go-zookeeper alone notices a silent server after two thirds of the
	// session timeout (6.7s here), then hangs in its handshake for a
	// minute: the bound is well below that.
	const within = connectTimeout + 5*time.Second
	for name, p := range map[string]*proc{"job wait": wait, "job logs --follow": logs} {
		if code := p.wait(max(time.Until(frozen.Add(within)), time.Second)); code != 1 {
			t.Errorf("%s under a frozen ZooKeeper: exit %d, want 1; output:\n%s", name, code, p.out.String())
		}
		if s := p.out.String(); !strings.Contains(s, "lost the connection to ZooKeeper") || !strings.Contains(s, "--zk-connect-timeout") {
			t.Errorf("%s does not say what happened:\n%s", name, s)
		}
	}
	if took := time.Since(frozen); took < connectTimeout {
		t.Errorf("gave up after %s, before the connect timeout (%s)", took, connectTimeout)
	}
}

// TestRefusedConnectionsGiveUpEarly points commands at ports nothing
// listens on, with the default connect timeout (15s): they say what they
// wait for, then give up once every host has refused a few times.
func TestRefusedConnectionsGiveUpEarly(t *testing.T) {
	ports, err := zkserver.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	hosts := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1])
	for _, args := range [][]string{
		{"job", "list"},
		{"job", "wait", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"},
		{"cluster", "status"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			start := time.Now()
			out, errOut, code := runBinary(t, nil, append([]string{"--zk-hosts", hosts}, args...)...)
			took := time.Since(start)
			if code != 1 || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 1", code, out, errOut)
			}
			if !strings.Contains(errOut, WaitingMessage+" "+hosts+" (") || !strings.Contains(errOut, "connection refused") {
				t.Errorf("no notice of what the command waits for:\n%s", errOut)
			}
			if !strings.Contains(errOut, errZKRefused.Error()) || !strings.Contains(errOut, "--zk-hosts") {
				t.Errorf("the error does not say every host refused, or what to do:\n%s", errOut)
			}
			// The default connect timeout is 15s; refusals end it sooner.
			if took > 12*time.Second {
				t.Errorf("gave up after %s", took)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		_, errOut, code := runBinary(t, nil, "--zk-hosts", hosts, "job", "list", "--json")
		if v := decode[map[string]any](t, errOut); code != 1 || v["kind"] != "unavailable" {
			t.Fatalf("exit %d, stderr %q: want 1 and one JSON error of kind unavailable", code, errOut)
		}
	})
}
