package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// TestSecureZooKeeperExecutorAndDistributor runs an executor and a
// distributor, the real binary, against a ZooKeeper that requires digest
// authentication over TLS with client certificates, and checks that every
// node they created carries the credentials file's ACL.
func TestSecureZooKeeperExecutorAndDistributor(t *testing.T) {
	zks := zktest.StartSecure(t, zkserver.Options{})
	root := testRoot(t)
	tlsFlags := []string{"--zk-hosts", zks.SecureConnectString(), "--zk-root", root,
		"--zk-tls-ca", zks.PKI.CA, "--zk-tls-cert", zks.PKI.ClientCert, "--zk-tls-key", zks.PKI.ClientKey}
	secure := append(slices.Clone(tlsFlags), "--zk-credentials-file", zks.CredentialsFile)

	// Without credentials the engine is refused, with a usage error that
	// says what to give.
	_, errOut, code := run(t, append(slices.Clone(tlsFlags), "queue", "stats")...)
	if code != ExitUsage || !strings.Contains(errOut, "requires authentication") || !strings.Contains(errOut, "--zk-credentials-file") {
		t.Fatalf("queue stats without credentials: exit %d, stderr:\n%s", code, errOut)
	}

	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "tick.yaml"), []byte(tickFile), 0o644); err != nil {
		t.Fatal(err)
	}
	x := startWith(t, append(slices.Clone(secure), "--zk-session-timeout", "4s", "--log-format", "json",
		"executor", "--enable-test-actions", "--name", "secure-x", "--threads", "2", "--plugin-dir", t.TempDir())...)
	d := startWith(t, append(slices.Clone(secure), "--zk-session-timeout", "4s", "--log-format", "json",
		"distributor", "--config-dir", cfgDir, "tick")...)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zks.SecureAddrs(), Root: root, SessionTimeout: 4 * time.Second, Auth: zks.Auth, TLS: zks.TLS(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	store := jobs.NewStore(conn, jobs.StoreConfig{})

	// The distributor creates echo jobs and the executor runs them.
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		var done []string
		err := store.Walk(context.Background(), func(j *jobs.Job, _ int32) {
			if j.State == jobs.Success && j.Executor == "secure-x" {
				done = append(done, j.ID)
			}
		})
		if err != nil {
			return err
		}
		if len(done) < 2 {
			return fmt.Errorf("%d distributor jobs run by the executor, want 2", len(done))
		}
		return nil
	})

	// A command with the credentials sees them.
	out, errOut, code := run(t, append(slices.Clone(secure), "job", "list", "--state", "SUCCESS")...)
	if code != 0 || !strings.Contains(out, "echo") {
		t.Fatalf("job list with credentials: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// The read-only identity reads with a credentials file of its own and
	// cannot write.
	monitorCred := filepath.Join(t.TempDir(), "monitor.cred")
	if err := os.WriteFile(monitorCred, []byte("digest = "+zks.Monitor+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	monitor := append(slices.Clone(tlsFlags), "--zk-credentials-file", monitorCred)
	if out, errOut, code := run(t, append(slices.Clone(monitor), "job", "list")...); code != 0 || !strings.Contains(out, "echo") {
		t.Errorf("job list as the read-only identity: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, errOut, code := run(t, append(slices.Clone(monitor), "job", "add", "echo")...); code != ExitFailure {
		t.Errorf("job add as the read-only identity: exit %d, stderr:\n%s", code, errOut)
	}

	// A credentials file every user may read is refused.
	loose := filepath.Join(t.TempDir(), "loose.cred")
	if err := os.WriteFile(loose, []byte("digest = a:b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := run(t, append(slices.Clone(tlsFlags), "--zk-credentials-file", loose, "queue", "stats")...); code != ExitUsage || !strings.Contains(errOut, "readable by every user") {
		t.Errorf("world-readable credentials file: exit %d, stderr:\n%s", code, errOut)
	}

	// Every node under the root, whoever of the processes made it (queue,
	// documents, membership, election, distributor state), has the ACL.
	want := zks.Auth.ACL()
	seen := map[string]bool{}
	var walk func(p string) error
	walk = func(p string) error {
		acl, _, err := conn.GetACL(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil // an ephemeral or consumed entry went away meanwhile
		}
		if err != nil {
			return fmt.Errorf("GetACL %s: %w", p, err)
		}
		if !slices.Equal(acl, want) {
			return fmt.Errorf("%s has ACL %v, want %v", p, acl, want)
		}
		seen[strings.Split(strings.TrimPrefix(p, root+"/"), "/")[0]] = true
		kids, _, err := conn.Children(p)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, k := range kids {
			if err := walk(path.Join(p, k)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{"job", "jobs", "executors", "election", "distributors"} {
		if !seen[top] {
			t.Errorf("no node under %s/%s was checked; seen %v", root, top, seen)
		}
	}

	x.signal(syscall.SIGTERM)
	d.signal(syscall.SIGTERM)
	if c := x.wait(30 * time.Second); c != 0 {
		t.Errorf("executor exit %d", c)
	}
	if c := d.wait(30 * time.Second); c != 0 {
		t.Errorf("distributor exit %d", c)
	}
}

// startWith runs the built binary with exactly args, killed at the end of
// the test.
func startWith(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(builtBinaries(t), "jobengine"), args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	p := &proc{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.out.String())
		}
	})
	return p
}
