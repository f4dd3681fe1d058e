// Package zktest is test support around a real ZooKeeper: a cluster per test
// or per package, and a TCP proxy that can cut connections.
package zktest

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/credentials"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/tlstest"
)

// StartT starts a cluster for a test and closes it when the test ends. It
// fails the test when ZooKeeper cannot start.
func StartT(t testing.TB, opts zkserver.Options) *zkserver.Cluster {
	t.Helper()
	c, err := zkserver.Start(opts)
	if err != nil {
		t.Fatalf("starting ZooKeeper: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// RunTests is the body of a package's TestMain when its tests share one
// ZooKeeper: it starts the cluster into *c, runs the tests, stops the
// cluster and returns the exit code for os.Exit.
func RunTests(m *testing.M, opts zkserver.Options, c **zkserver.Cluster) int {
	var err error
	*c, err = zkserver.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer (*c).Close()
	return m.Run()
}

// Secure is a ZooKeeper that refuses clients without digest credentials and
// serves TLS that needs a client certificate, with what a client needs.
type Secure struct {
	*zkserver.Cluster
	// PKI holds the CA, the servers' and the client's certificates.
	PKI *tlstest.PKI
	// Auth is the engine's identity, with Monitor's digest id read-only.
	Auth *zkconn.Auth
	// CredentialsFile holds Auth in the credentials-file format (mode 0600).
	CredentialsFile string
	// Monitor is a read-only identity ("user:password"); Super passes
	// every ACL.
	Monitor, Super string
}

// StartSecure starts a secure cluster for a test (see Secure) and closes it
// when the test ends.
func StartSecure(t testing.TB, opts zkserver.Options) *Secure {
	t.Helper()
	pki := tlstest.New(t)
	s := &Secure{
		PKI:     pki,
		Monitor: "monitor:watching",
		Super:   "super:superpassword",
		Auth: &zkconn.Auth{User: "jobengine", Password: "engine-secret",
			ReadOnly: []zk.ACL{{Perms: zk.PermRead, Scheme: "digest", ID: zkconn.DigestID("monitor", "watching")}}},
	}
	s.CredentialsFile = filepath.Join(pki.Dir, "zookeeper.cred")
	cred := fmt.Sprintf("# test credentials\ndigest = %s:%s\nread-only = digest:%s\n", s.Auth.User, s.Auth.Password, s.Auth.ReadOnly[0].ID)
	if err := os.WriteFile(s.CredentialsFile, []byte(cred), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.TLSKeyStore, opts.TLSTrustStore = pki.ServerBundle, pki.CA
	opts.RequireAuth = true
	opts.SuperDigest = zkconn.DigestID("super", "superpassword")
	s.Cluster = StartT(t, opts)
	return s
}

// TLS returns the client TLS configuration of the cluster (CA and client
// certificate).
func (s *Secure) TLS(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := credentials.TLSFiles{CA: s.PKI.CA, Cert: s.PKI.ClientCert, Key: s.PKI.ClientKey}.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
