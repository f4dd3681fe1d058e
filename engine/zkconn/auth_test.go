package zkconn_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

func TestParseCredentials(t *testing.T) {
	monitor := zkconn.DigestID("monitor", "pw")
	good := "# engine\n\ndigest = jobengine:s3cr:et\nread-only = digest:" + monitor + "\nread-only = x509:CN=audit,O=example\n"
	a, err := zkconn.ParseCredentials([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if a.User != "jobengine" || a.Password != "s3cr:et" {
		t.Errorf("identity %q / %q", a.User, a.Password)
	}
	want := []zk.ACL{
		{Perms: zk.PermAll, Scheme: "digest", ID: zkconn.DigestID("jobengine", "s3cr:et")},
		{Perms: zk.PermRead, Scheme: "digest", ID: monitor},
		{Perms: zk.PermRead, Scheme: "x509", ID: "CN=audit,O=example"},
	}
	if got := a.ACL(); !slices.Equal(got, want) {
		t.Errorf("ACL %v, want %v", got, want)
	}

	for _, tc := range []struct{ in, want string }{
		{"", "no \"digest = USER:PASSWORD\" line"},
		{"digest = jobengine", "digest wants USER:PASSWORD"},
		{"digest = a:b\ndigest = c:d", "a second digest identity"},
		{"digest = a:b\nread-only = digest:monitor:topsecret", "never the password itself"},
		{"digest = a:b\nread-only = world:anyone", "not one of digest"},
		{"digest = a:b\npassword = x", "unknown key"},
		{"digest a:b", "want \"key = value\""},
	} {
		_, err := zkconn.ParseCredentials([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, zkconn.ErrConfig) {
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "topsecret") {
			t.Errorf("%q: the error quotes the secret: %v", tc.in, err)
		}
	}
}

// TestSecureZooKeeper runs against a ZooKeeper that requires digest
// authentication over TLS with client certificates.
func TestSecureZooKeeper(t *testing.T) {
	zks := zktest.StartSecure(t, zkserver.Options{})
	tlsCfg := zks.TLS(t)
	dial := func(t *testing.T, cfg zkconn.Config, within time.Duration) (*zkconn.Conn, error) {
		t.Helper()
		if cfg.Hosts == nil {
			cfg.Hosts = zks.SecureAddrs()
		}
		cfg.Root, cfg.SessionTimeout = "/secure", 4*time.Second
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		c, err := zkconn.Dial(ctx, cfg)
		if err == nil {
			t.Cleanup(c.Close)
		}
		return c, err
	}

	t.Run("unauthenticated client refused", func(t *testing.T) {
		_, err := dial(t, zkconn.Config{TLS: tlsCfg}, 15*time.Second)
		if !errors.Is(err, zkconn.ErrAuthRequired) || !strings.Contains(err.Error(), "--zk-credentials-file") {
			t.Fatalf("Dial without credentials: %v, want ErrAuthRequired naming the flag", err)
		}
	})
	t.Run("plain TCP refused on the TLS port", func(t *testing.T) {
		if _, err := dial(t, zkconn.Config{Auth: zks.Auth}, 3*time.Second); !errors.Is(err, zkconn.ErrUnavailable) {
			t.Fatalf("Dial in plain TCP: %v, want ErrUnavailable", err)
		}
	})
	t.Run("no client certificate refused", func(t *testing.T) {
		noCert := tlsCfg.Clone()
		noCert.Certificates = nil
		if _, err := dial(t, zkconn.Config{Auth: zks.Auth, TLS: noCert}, 3*time.Second); !errors.Is(err, zkconn.ErrUnavailable) {
			t.Fatalf("Dial without a client certificate: %v, want ErrUnavailable", err)
		}
	})

	c, err := dial(t, zkconn.Config{Auth: zks.Auth, TLS: tlsCfg}, 15*time.Second)
	if err != nil {
		t.Fatalf("Dial with credentials over TLS: %v", err)
	}
	ctx := context.Background()
	want := zks.Auth.ACL()
	if got := c.ACL(); !slices.Equal(got, want) {
		t.Fatalf("connection ACL %v, want %v", got, want)
	}

	// Every way the engine creates nodes gives them the ACL: EnsurePath
	// (and so EnsureSync) for parents, Create, and creates inside Multi.
	if err := c.EnsurePath(ctx, c.Path("a", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(c.Path("a", "b", "node"), []byte("x"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(c.Path("a", "b", "eph"), []byte("x"), zk.FlagEphemeral, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	op := &zk.CreateRequest{Path: c.Path("a", "multi"), Data: []byte("y"), Acl: zkconn.ACL}
	if _, err := c.Multi(op); err != nil {
		t.Fatal(err)
	}
	if op.Acl != nil {
		t.Errorf("Multi changed the caller's request: %v", op.Acl)
	}
	for _, p := range []string{"/secure", "/secure/a", "/secure/a/b", "/secure/a/b/node", "/secure/a/b/eph", "/secure/a/multi"} {
		acl, _, err := c.GetACL(p)
		if err != nil {
			t.Fatalf("GetACL %s: %v", p, err)
		}
		if !slices.Equal(acl, want) {
			t.Errorf("%s has ACL %v, want %v", p, acl, want)
		}
	}
	// Reads in one request (GetMany) go over the same authenticated TLS
	// session.
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		got, err := c.GetMany(ctx, []string{c.Path("a", "b", "node"), c.Path("a", "multi"), c.Path("a", "none")})
		switch {
		case err != nil:
			return err
		case string(got[0].Data) != "x" || string(got[1].Data) != "y" || !errors.Is(got[2].Err, zk.ErrNoNode):
			t.Fatalf("GetMany over TLS read %q, %q, %v", got[0].Data, got[1].Data, got[2].Err)
		case zkconn.MultiReads(c) == 0:
			return errors.New("no read went as one request yet")
		}
		return nil
	})
	// The empty ACL passed to go-zookeeper's own client is refused, never
	// turned into an open node.
	if _, err := c.Conn.Create(c.Path("a", "raw"), nil, 0, zkconn.ACL); !errors.Is(err, zk.ErrInvalidACL) {
		t.Errorf("raw create with the empty ACL: %v, want ErrInvalidACL", err)
	}

	// The read-only identity reads but cannot write; another identity
	// (here: the right user with a wrong password) can do neither.
	other := func(t *testing.T, cred string) *zkconn.Conn {
		t.Helper()
		user, pw, _ := strings.Cut(cred, ":")
		oc, err := dial(t, zkconn.Config{Auth: &zkconn.Auth{User: user, Password: pw}, TLS: tlsCfg}, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return oc
	}
	t.Run("read-only identity", func(t *testing.T) {
		m := other(t, zks.Monitor)
		if data, _, err := m.Get("/secure/a/b/node"); err != nil || string(data) != "x" {
			t.Errorf("monitor Get: %q, %v", data, err)
		}
		if _, _, err := m.Children("/secure/a"); err != nil {
			t.Errorf("monitor Children: %v", err)
		}
		if _, err := m.Set("/secure/a/b/node", []byte("evil"), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("monitor Set: %v, want ErrNoAuth", err)
		}
		if _, err := m.Create("/secure/a/evil", nil, 0, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("monitor Create: %v, want ErrNoAuth", err)
		}
		if err := m.Delete("/secure/a/b/node", -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("monitor Delete: %v, want ErrNoAuth", err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		w := other(t, zks.Auth.User+":not-the-password")
		if _, _, err := w.Get("/secure/a/b/node"); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("Get with a wrong password: %v, want ErrNoAuth", err)
		}
		if _, err := w.Set("/secure/a/b/node", []byte("evil"), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("Set with a wrong password: %v, want ErrNoAuth", err)
		}
	})
}
