package command

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessCommands bootstraps an administrator and manages users, teams,
// tokens and grants with direct ZooKeeper access, and checks that bad
// input exits 2 and writes nothing.
func TestAccessCommands(t *testing.T) {
	zk := []string{"--zk-hosts", strings.Join(testZK.Addrs(), ","), "--zk-root", testRoot(t)}
	do := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, append(args, zk...)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
		}
		return out
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	do(0, "user", "create", "--admin", "root", "--password-file", pwFile)
	do(2, "user", "create", "weak", "--password-file", short)
	do(2, "user", "create", "bad/name", "--password-file", pwFile)
	do(2, "user", "create", "both", "--admin", "--auditor", "--no-password")
	do(1, "user", "create", "root", "--password-file", pwFile)
	do(0, "user", "create", "auditor1", "--auditor", "--no-password")
	var users []struct {
		Name        string `json:"name"`
		Role        string `json:"role"`
		HasPassword bool   `json:"has-password"`
	}
	if err := json.Unmarshal([]byte(do(0, "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[1].Name != "root" || users[1].Role != "admin" || !users[1].HasPassword || users[0].HasPassword {
		t.Fatalf("users: %+v (weak, bad/name and both must not exist)", users)
	}
	if out := do(0, "user", "list"); strings.Contains(out, "argon2") {
		t.Fatalf("user list shows a password hash:\n%s", out)
	}
	do(0, "user", "edit", "auditor1", "--role", "none")
	do(2, "user", "edit", "auditor1", "--role", "boss")
	do(0, "user", "passwd", "auditor1", "--password-file", pwFile)

	tok := strings.TrimSpace(do(0, "token", "create", "--user", "root", "--expires", "1d"))
	if !strings.HasPrefix(tok, "jet_") {
		t.Fatalf("token %q", tok)
	}
	do(2, "token", "create", "--user", "root", "--expires", "soon")
	do(2, "token", "create")
	if list := do(0, "token", "list"); strings.Contains(list, tok[21:]) || !strings.Contains(list, tok[4:20]) {
		t.Fatalf("token list shows the secret or misses the id:\n%s", list)
	}

	do(0, "team", "create", "ops", "--member", "auditor1")
	do(2, "team", "create", "ghosts", "--member", "nobody")
	do(0, "grant", "add", "--team", "ops", "--role", "execute", "template/deploy")
	do(0, "grant", "add", "--user", "auditor1", "--role", "read", "inventory/prod")
	do(2, "grant", "add", "--user", "auditor1", "--role", "owner", "inventory/prod")
	do(2, "grant", "add", "--user", "auditor1", "--role", "read", "host/x")
	do(2, "grant", "add", "--user", "nobody", "--role", "read", "inventory/prod")
	if out := do(0, "grant", "list"); !strings.Contains(out, "team/ops") || !strings.Contains(out, "template/deploy") || strings.Count(out, "\n") != 3 {
		t.Fatalf("grant list:\n%s", out)
	}
	do(0, "grant", "remove", "--team", "ops", "--role", "execute", "template/deploy")
	do(1, "grant", "remove", "--team", "ops", "--role", "execute", "template/deploy")

	do(0, "token", "revoke", tok[4:20])
	do(0, "user", "delete", "auditor1")
	if out := do(0, "grant", "list"); strings.Contains(out, "auditor1") {
		t.Fatalf("a deleted user's grants remain:\n%s", out)
	}
}

// TestControllerRefusesPlainHTTPBeyondLoopback checks that the controller
// exits 2 naming the flag, before contacting anything, when it would serve
// plain HTTP to other machines.
func TestControllerRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	_, errOut, code := run(t, "controller", "--listen", "0.0.0.0:8052", "--zk-hosts", "127.0.0.1:1", "--config-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "--listen") {
		t.Fatalf("exit %d, want 2 naming --listen:\n%s", code, errOut)
	}
	_, errOut, code = run(t, "controller", "--tls-cert", "/nonexistent.pem", "--zk-hosts", "127.0.0.1:1", "--config-dir", t.TempDir())
	if code != 2 || !strings.Contains(errOut, "--tls-cert") {
		t.Fatalf("exit %d, want 2 naming --tls-cert:\n%s", code, errOut)
	}
}
