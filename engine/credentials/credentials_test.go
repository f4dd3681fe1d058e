package credentials_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jobengine/jobengine/engine/credentials"
	"github.com/jobengine/jobengine/internal/testing/tlstest"
)

func write(t *testing.T, name, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadSecret(t *testing.T) {
	if s, err := credentials.ReadSecret(write(t, "ok", "s3cret\r\n\n", 0o600)); err != nil || s != "s3cret" {
		t.Errorf("ReadSecret = %q, %v; want s3cret", s, err)
	}
	if s, err := credentials.ReadSecret(write(t, "group", "s3cret", 0o640)); err != nil || s != "s3cret" {
		t.Errorf("group-readable: %q, %v", s, err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := write(t, "big", strings.Repeat("x", credentials.MaxFileBytes+1), 0o600)
	for name, tc := range map[string]struct{ path, want string }{
		"world-readable": {write(t, "loose", "topsecret", 0o644), "readable by every user"},
		"empty":          {write(t, "empty", "\n", 0o600), "is empty"},
		"missing":        {filepath.Join(t.TempDir(), "nope"), "no such file"},
		"directory":      {t.TempDir(), "not a regular file"},
		"fifo":           {fifo, "not a regular file"}, // never blocks on a reader
		"too big":        {big, "more than"},
	} {
		_, err := credentials.ReadSecret(tc.path)
		if !errors.Is(err, credentials.ErrCredentials) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%s: the error quotes the secret: %v", name, err)
		}
	}
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zookeeper"), []byte("digest = a:b"), 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv(credentials.DirEnv, dir)
	if got := credentials.Lookup("/etc/flag", "zookeeper"); got != "/etc/flag" {
		t.Errorf("the flag must win: %q", got)
	}
	if got := credentials.Lookup("", "zookeeper"); got != filepath.Join(dir, "zookeeper") {
		t.Errorf("systemd credential: %q", got)
	}
	if got := credentials.Lookup("", "es-password"); got != "" {
		t.Errorf("absent credential: %q", got)
	}
	t.Setenv(credentials.DirEnv, "")
	if got := credentials.Lookup("", "zookeeper"); got != "" {
		t.Errorf("no credentials directory: %q", got)
	}
}

func TestTLSFiles(t *testing.T) {
	pki := tlstest.New(t)
	cfg, err := credentials.TLSFiles{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}.Config()
	if err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Fatalf("Config = %+v, %v", cfg, err)
	}
	loose := write(t, "client.key", "", 0o644)
	key, _ := os.ReadFile(pki.ClientKey)
	if err := os.WriteFile(loose, key, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		f    credentials.TLSFiles
		want string
	}{
		"cert without key": {credentials.TLSFiles{Cert: pki.ClientCert}, "both its certificate and its key"},
		"CA not PEM":       {credentials.TLSFiles{CA: write(t, "ca", "hello", 0o644)}, "no PEM certificate"},
		"key readable":     {credentials.TLSFiles{Cert: pki.ClientCert, Key: loose}, "readable by every user"},
		"key of another":   {credentials.TLSFiles{Cert: pki.ServerCert, Key: pki.ClientKey}, "client certificate"},
	} {
		if _, err := tc.f.Config(); !errors.Is(err, credentials.ErrCredentials) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
