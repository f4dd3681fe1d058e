// Package credentials reads the secrets the engine needs (ZooKeeper and
// Elasticsearch credentials, TLS keys) from files, never from the command
// line: a flag names the file, or systemd hands the file over with
// LoadCredential= in $CREDENTIALS_DIRECTORY. It also builds the TLS client
// configurations of both connections from PEM files.
package credentials

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrCredentials is wrapped by every error of this package.
var ErrCredentials = errors.New("credentials")

// MaxFileBytes bounds a secret or certificate file: these are a few
// kilobytes at most, and a bound keeps a wrong path (a device, a log file)
// from being read whole.
const MaxFileBytes = 1 << 20

// DirEnv is the variable systemd sets to the directory of the unit's
// credentials (LoadCredential=, SetCredential=).
const DirEnv = "CREDENTIALS_DIRECTORY"

// Lookup returns the file holding a secret: flagPath when it is set, else
// the systemd credential called name when the unit was given one, else "".
func Lookup(flagPath, name string) string {
	if flagPath != "" {
		return flagPath
	}
	dir := os.Getenv(DirEnv)
	if dir == "" || name == "" {
		return ""
	}
	p := filepath.Join(dir, name)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// ReadSecret reads a secret from the file at path: a regular file of at
// most MaxFileBytes that others cannot read, with its trailing line breaks
// removed. The secret itself never appears in an error.
func ReadSecret(path string) (string, error) {
	b, err := readFile(path, true)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrCredentials, path)
	}
	return s, nil
}

// readFile reads a small regular file. secret refuses a file that every
// user of the machine may read (mode o+r), as OpenSSH does with keys.
func readFile(path string, secret bool) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO must not wait for a writer; the file is
	// then refused as not regular.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrCredentials, path, st.Mode().Type())
	}
	if secret && st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by every user (mode %04o); restrict it: chmod 0600 %s (or 0640 with the service's group)",
			ErrCredentials, path, st.Mode().Perm(), path)
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a credentials file may hold", ErrCredentials, path, st.Size(), MaxFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrCredentials, path, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s grew past %d bytes while read", ErrCredentials, path, MaxFileBytes)
	}
	return b, nil
}

// TLSFiles names the PEM files of a TLS client. All are optional: with none
// the system's roots verify the server and no client certificate is sent.
type TLSFiles struct {
	// CA holds the certificates that may sign the server's certificate,
	// instead of the system's roots.
	CA string
	// Cert and Key are the client's certificate (chain) and private key,
	// for servers that ask for one; both or neither.
	Cert, Key string
	// ServerName overrides the name the server's certificate must carry
	// (by default the host of the address dialled).
	ServerName string
}

// Empty reports whether no file is named.
func (f TLSFiles) Empty() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

// Config builds the client TLS configuration: TLS 1.2 or later, the
// server's certificate verified against CA (or the system's roots), and the
// client certificate when one is given.
func (f TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pem, err := readFile(f.CA, false)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate (want the CA certificate in PEM, \"-----BEGIN CERTIFICATE-----\")", ErrCredentials, f.CA)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert == "" && f.Key == "":
	case f.Cert == "" || f.Key == "":
		return nil, fmt.Errorf("%w: a client certificate needs both its certificate and its key file", ErrCredentials)
	default:
		cert, err := readFile(f.Cert, false)
		if err != nil {
			return nil, err
		}
		key, err := readFile(f.Key, true)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s and key %s: %v", ErrCredentials, f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
