package credential

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var rootSeq atomic.Int64

func dial(t *testing.T) *zkconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: fmt.Sprintf("/cred%d", rootSeq.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func testKey(t *testing.T) *Key {
	t.Helper()
	k, err := GenerateKeyFile(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const secretPassword = "pa55-w0rd-nobody-guesses"

// TestSecretsAreSealedAtRest: a created credential's znode holds none of
// its secrets; Open with the key gives them back; without the key, or with
// another key, it is refused and says why.
func TestSecretsAreSealedAtRest(t *testing.T) {
	conn := dial(t)
	ctx := context.Background()
	key := testKey(t)
	s := NewStore(conn, key)
	c := &Credential{Name: "web", Kind: Machine, Username: "deploy", Secrets: Secrets{Password: secretPassword, BecomePassword: "become-" + secretPassword}}
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	data, _, err := conn.Get(conn.Path(Dir, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "w0rd") || !strings.Contains(string(data), "deploy") {
		t.Fatalf("stored node: %s", data)
	}
	got, err := s.Open(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Secrets.Password != secretPassword || got.Username != "deploy" || strings.Join(got.SecretFields, ",") != "become-password,password" {
		t.Fatalf("opened %+v", got)
	}
	if meta, _ := s.Get(ctx, "web"); meta.Secrets.Password != "" {
		t.Fatal("Get returned secrets")
	}
	if _, err := NewStore(conn, nil).Open(ctx, "web"); !errors.Is(err, ErrKey) {
		t.Errorf("open without a key: %v", err)
	}
	if _, err := NewStore(conn, testKey(t)).Open(ctx, "web"); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "wrong key file") {
		t.Errorf("open with another key: %v", err)
	}
	if err := s.Create(ctx, c); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}

	// Sealed secrets copied onto another credential's node do not open.
	other := &Credential{Name: "other", Kind: Machine, Username: "x", Secrets: Secrets{Password: "other-password"}}
	if err := s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(data), `"name":"web"`, `"name":"other"`, 1)
	if _, err := conn.Set(conn.Path(Dir, "other"), []byte(moved), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "other"); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "moved from another credential") {
		t.Errorf("open of moved secrets: %v", err)
	}

	// What ZooKeeper holds is input: garbage is named, not acted on.
	if _, err := conn.Create(conn.Path(Dir, "junk"), []byte("{not json"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	list, bad, err := s.List(ctx)
	if err != nil || len(list) != 2 || len(bad) != 1 || !errors.Is(bad[0], ErrInvalid) {
		t.Fatalf("list %v, bad %v, err %v", list, bad, err)
	}
	if err := s.Delete(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		c    Credential
		want string
	}{
		{Credential{Name: "a/b", Kind: Machine, Username: "u"}, "name"},
		{Credential{Name: "a", Kind: "ssh"}, `kind "ssh"`},
		{Credential{Name: "a", Kind: Machine}, "needs a username"},
		{Credential{Name: "a", Kind: Machine, Secrets: Secrets{SSHKey: "hello"}}, "not a private key"},
		{Credential{Name: "a", Kind: Machine, Username: "u", Secrets: Secrets{VaultPassword: "x"}}, "no vault-password"},
		{Credential{Name: "a", Kind: Machine, Username: "u; rm"}, "username"},
		{Credential{Name: "a", Kind: Vault}, "needs a vault password"},
		{Credential{Name: "a", Kind: Vault, Username: "u", Secrets: Secrets{VaultPassword: "x"}}, "no username"},
		{Credential{Name: "a", Kind: Secret}, "at least one value"},
		{Credential{Name: "a", Kind: Secret, Secrets: Secrets{Values: map[string]string{"1X": "v"}}}, "not an environment variable name"},
		{Credential{Name: "a", Kind: Secret, Secrets: Secrets{Values: map[string]string{"ANSIBLE_CONFIG": "v"}}}, "reserved"},
		{Credential{Name: "a", Kind: Secret, Secrets: Secrets{Values: map[string]string{"PATH": "v"}}}, "reserved"},
		{Credential{Name: "a", Kind: Secret, Secrets: Secrets{Values: map[string]string{"X": ""}}}, "empty"},
	} {
		err := tc.c.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	k, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode())
	}
	if _, err := GenerateKeyFile(path); err == nil {
		t.Error("keygen overwrote a key file")
	}
	again, err := LoadKeyFile(path)
	if err != nil || again.ID() != k.ID() {
		t.Fatalf("reload: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(path); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "chmod") {
		t.Errorf("world-readable key file: %v", err)
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte("abc"), 0o600)
	if _, err := LoadKeyFile(short); !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "keygen") {
		t.Errorf("short key: %v", err)
	}
	if _, err := LoadKeyFile(""); !errors.Is(err, ErrKey) {
		t.Errorf("no key file: %v", err)
	}
}

// TestUpdate: an update keeps the secrets it is not given, seals the new
// ones, refuses a change of name and a store without the key, and a
// concurrent change is a conflict, not a lost write.
func TestUpdate(t *testing.T) {
	conn := dial(t)
	ctx := context.Background()
	s := NewStore(conn, testKey(t))
	if err := s.Create(ctx, &Credential{Name: "web", Kind: Machine, Username: "deploy", Secrets: Secrets{Password: secretPassword}}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Update(ctx, "web", func(c *Credential) error {
		c.Username, c.Description = "ops", "the web hosts"
		c.Secrets.BecomePassword = "become-" + secretPassword
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "ops" || c.Updated.IsZero() || strings.Join(c.SecretFields, ",") != "become-password,password" || c.Secrets.Password != "" {
		t.Fatalf("updated to %+v", c)
	}
	opened, err := s.Open(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if opened.Secrets.Password != secretPassword || opened.Secrets.BecomePassword != "become-"+secretPassword || opened.Description != "the web hosts" {
		t.Fatalf("opened %+v", opened)
	}
	data, _, err := conn.Get(conn.Path(Dir, "web"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secretPassword) {
		t.Fatal("a secret is stored in clear after an update")
	}
	if _, err := s.Update(ctx, "web", func(c *Credential) error { c.Name = "other"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("renaming: %v", err)
	}
	if _, err := s.Update(ctx, "web", func(c *Credential) error { c.Kind = Vault; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a machine credential's secrets under kind vault: %v", err)
	}
	if _, err := s.Update(ctx, "nowhere", func(*Credential) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating a missing credential: %v", err)
	}
	if _, err := NewStore(conn, nil).Update(ctx, "web", func(*Credential) error { return nil }); !errors.Is(err, ErrKey) {
		t.Fatalf("updating without the key: %v", err)
	}
	// A change made between the read and the write: conflict.
	_, err = s.Update(ctx, "web", func(c *Credential) error {
		if _, err := s.Update(ctx, "web", func(c *Credential) error { c.Description = "first"; return nil }); err != nil {
			t.Fatal(err)
		}
		c.Description = "second"
		return nil
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("a concurrent update: %v", err)
	}
	if got, _ := s.Get(ctx, "web"); got.Description != "first" {
		t.Fatalf("description %q after the conflict", got.Description)
	}
}
