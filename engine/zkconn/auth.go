package zkconn

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/credentials"
)

// ErrAuthRequired is returned by Dial when the server refuses a client that
// has not authenticated (ZooKeeper 3.8's enforce.auth).
var ErrAuthRequired = errors.New("ZooKeeper requires authentication")

// errSessionClosedRequireAuth is ZooKeeper's code for a request refused
// because the session has not authenticated (SESSIONCLOSEDREQUIRESASLAUTH,
// also used by enforce.auth for every scheme); go-zookeeper does not name it.
const errSessionClosedRequireAuth = "unknown error: -124"

// Auth is the identity the engine authenticates with and the ACL it gives
// the nodes it creates: every permission to its own identity, read to the
// ReadOnly identities, nothing to anyone else. Every process of one engine
// (executors, distributors, commands) must use the same identity, since
// each deletes and rewrites nodes the others created.
type Auth struct {
	// User and Password are the digest credentials ("addauth digest
	// user:password" in zkCli terms).
	User, Password string
	// ReadOnly lists identities allowed to read (monitoring, auditors),
	// as ACL entries with zk.PermRead.
	ReadOnly []zk.ACL
}

// ACL returns the ACL of the nodes created with these credentials.
func (a *Auth) ACL() []zk.ACL {
	acl := zk.DigestACL(zk.PermAll, a.User, a.Password)
	return append(acl, a.ReadOnly...)
}

// DigestID returns the id ZooKeeper's digest scheme gives user with
// password: "user:" and the base64 SHA-1 of "user:password". It is what a
// read-only entry of a credentials file names.
func DigestID(user, password string) string {
	h := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(h[:])
}

// ReadCredentialsFile reads a ZooKeeper credentials file; see
// ParseCredentials for its format.
func ReadCredentialsFile(path string) (*Auth, error) {
	s, err := credentials.ReadSecret(path)
	if err != nil {
		return nil, fmt.Errorf("%w: ZooKeeper credentials: %v", ErrConfig, err)
	}
	a, err := ParseCredentials([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return a, nil
}

// ParseCredentials parses a credentials file: "key = value" lines, blank
// lines and # comments ignored.
//
//	digest = USER:PASSWORD          the engine's identity (exactly one)
//	read-only = digest:USER:HASH    may read every node (any number)
//	read-only = x509:CN=monitor,O=example
//
// A read-only entry is a ZooKeeper ACL id: scheme digest (HASH as
// DigestID computes it, never the password), x509, sasl or ip. Errors
// never quote the password.
func ParseCredentials(b []byte) (*Auth, error) {
	a := &Auth{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok {
			return nil, fmt.Errorf("%w: credentials line %d: want \"key = value\" (keys: digest, read-only)", ErrConfig, n)
		}
		switch key {
		case "digest":
			user, pw, ok := strings.Cut(val, ":")
			if a.User != "" {
				return nil, fmt.Errorf("%w: credentials line %d: a second digest identity; the engine has exactly one", ErrConfig, n)
			}
			if !ok || user == "" || pw == "" {
				return nil, fmt.Errorf("%w: credentials line %d: digest wants USER:PASSWORD", ErrConfig, n)
			}
			a.User, a.Password = user, pw
		case "read-only":
			acl, err := parseID(val)
			if err != nil {
				return nil, fmt.Errorf("%w: credentials line %d: read-only %v", ErrConfig, n, err)
			}
			a.ReadOnly = append(a.ReadOnly, acl)
		default:
			return nil, fmt.Errorf("%w: credentials line %d: unknown key %q (keys: digest, read-only)", ErrConfig, n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: credentials: %v", ErrConfig, err)
	}
	if a.User == "" {
		return nil, fmt.Errorf("%w: credentials: no \"digest = USER:PASSWORD\" line", ErrConfig)
	}
	return a, nil
}

// parseID parses a read-only "scheme:id" entry.
func parseID(s string) (zk.ACL, error) {
	scheme, id, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return zk.ACL{}, fmt.Errorf("%q: want SCHEME:ID, e.g. digest:monitor:HASH or x509:CN=monitor", s)
	}
	switch scheme {
	case "digest":
		user, hash, ok := strings.Cut(id, ":")
		raw, err := base64.StdEncoding.DecodeString(hash)
		if !ok || user == "" || err != nil || len(raw) != sha1.Size {
			return zk.ACL{}, fmt.Errorf("digest:%s: want digest:USER:HASH, HASH being base64(sha1(USER:PASSWORD)), e.g. from "+
				"`printf %%s USER:PASSWORD | openssl dgst -binary -sha1 | base64` (never the password itself)", user)
		}
	case "x509", "sasl", "ip":
	default:
		return zk.ACL{}, fmt.Errorf("%q: scheme %q is not one of digest, x509, sasl, ip", s, scheme)
	}
	return zk.ACL{Perms: zk.PermRead, Scheme: scheme, ID: id}, nil
}

// tlsDialer returns a go-zookeeper dialer that speaks TLS with cfg. The
// server's name is checked against the host dialled unless cfg names one.
func tlsDialer(cfg *tls.Config) zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c := cfg.Clone()
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			c.ServerName = host
		}
		d := &net.Dialer{Timeout: timeout}
		conn, err := tls.DialWithDialer(d, network, address, c)
		if err != nil {
			return nil, fmt.Errorf("TLS to %s: %w", address, err)
		}
		return conn, nil
	}
}

// acls maps each open client to its connection's ACL, for EnsureSync, whose
// callers hold go-zookeeper's client inside a Do closure.
var acls sync.Map // *zk.Conn → []zk.ACL

func aclOf(zc *zk.Conn) []zk.ACL {
	if v, ok := acls.Load(zc); ok {
		return v.([]zk.ACL)
	}
	return OpenACL
}

// OpenACL is the ACL of a connection without credentials: anyone may do
// anything, as ZooKeeper's default.
var OpenACL = zk.WorldACL(zk.PermAll)

// ACL is what callers pass when creating a node: the empty ACL, which Create,
// Multi and EnsurePath replace by the connection's ACL (Conn.ACL). Passed
// to go-zookeeper's client directly it makes ZooKeeper refuse the create
// (invalid ACL), so a node is never created more open than configured.
var ACL []zk.ACL

// ACL returns the ACL the connection gives the nodes it creates.
func (c *Conn) ACL() []zk.ACL { return append([]zk.ACL(nil), c.acl...) }

// Create creates a node like go-zookeeper's Create; an empty acl means the
// connection's ACL. A request over RequestBudget is not sent (ErrTooLarge).
func (c *Conn) Create(path string, data []byte, flags int32, acl []zk.ACL) (string, error) {
	if len(acl) == 0 {
		acl = c.acl
	}
	if err := CheckRequest("creating "+path, framingBytes+createSize(path, data, acl)); err != nil {
		return "", err
	}
	return c.Conn.Create(path, data, flags, acl)
}

// Multi runs a transaction like go-zookeeper's Multi; a create with an
// empty ACL gets the connection's ACL (the caller's request is not changed).
// A request over RequestBudget is not sent (ErrTooLarge).
func (c *Conn) Multi(ops ...interface{}) ([]zk.MultiResponse, error) {
	out, copied := ops, false
	for i, op := range ops {
		if cr, ok := op.(*zk.CreateRequest); ok && len(cr.Acl) == 0 {
			if !copied {
				out, copied = append([]interface{}(nil), ops...), true
			}
			cp := *cr
			cp.Acl = c.acl
			out[i] = &cp
		}
	}
	// Sized after the ACLs are filled in: they are part of the request.
	if err := CheckRequest(fmt.Sprintf("a transaction of %d operations", len(out)), RequestSize(out...)); err != nil {
		return nil, err
	}
	return c.Conn.Multi(out...)
}
