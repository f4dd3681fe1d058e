// Package tlstest makes a throwaway certificate authority for tests: a CA,
// a server certificate for the loopback interface and a client
// certificate, written as PEM files into a test's temporary directory.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA and the certificates it signed, as files.
type PKI struct {
	Dir string
	// CA is the CA certificate (PEM).
	CA string
	// ServerCert and ServerKey are the server's certificate and key, for
	// 127.0.0.1, ::1 and localhost; ServerBundle holds both, certificate
	// first (ZooKeeper's PEM key store).
	ServerCert, ServerKey, ServerBundle string
	// ClientCert and ClientKey are a client certificate (CN "jobengine").
	ClientCert, ClientKey string
	// Pool holds the CA certificate.
	Pool *x509.CertPool

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// New makes a CA and its certificates in a temporary directory of t. Keys
// are written mode 0600.
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), Pool: x509.NewCertPool()}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jobengine test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p.caKey = key
	p.Pool.AddCert(p.caCert)
	p.CA = p.write(t, "ca.pem", pemBlock("CERTIFICATE", der), 0o644)

	cert, skey := p.issue(t, 2, "127.0.0.1", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	p.ServerCert = p.write(t, "server.pem", cert, 0o644)
	p.ServerKey = p.write(t, "server.key", skey, 0o600)
	p.ServerBundle = p.write(t, "server-bundle.pem", append(append([]byte{}, cert...), skey...), 0o600)

	cert, ckey := p.issue(t, 3, "jobengine", x509.ExtKeyUsageClientAuth)
	p.ClientCert = p.write(t, "client.pem", cert, 0o644)
	p.ClientKey = p.write(t, "client.key", ckey, 0o600)
	return p
}

// ServerTLS returns a server configuration with the server certificate
// that asks clients for a certificate signed by the CA when clientCerts.
func (p *PKI) ServerTLS(t testing.TB, clientCerts bool) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCerts {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.Pool
	}
	return cfg
}

func (p *PKI) issue(t testing.TB, serial int64, cn string, usage ...x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
	}
	if cn == "127.0.0.1" {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder)
}

func (p *PKI) write(t testing.TB, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
