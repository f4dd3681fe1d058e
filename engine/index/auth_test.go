package index_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/credentials"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/tlstest"
)

// TestAPIKeyOverMutualTLS talks to an Elasticsearch that wants an API key
// over https with client certificates.
func TestAPIKeyOverMutualTLS(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	pki := tlstest.New(t)
	const key = "aWQ6c2VjcmV0LWtleQ=="
	s := estest.Start(t, estest.Options{APIKey: key, TLS: pki.ServerTLS(t, true)})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %s is not https", s.URL())
	}
	tlsCfg := func(t *testing.T, f credentials.TLSFiles) index.Config {
		t.Helper()
		cfg, err := f.Config()
		if err != nil {
			t.Fatal(err)
		}
		return index.Config{Hosts: []string{s.URL()}, TLS: cfg}
	}
	full := credentials.TLSFiles{CA: pki.CA, Cert: pki.ClientCert, Key: pki.ClientKey}

	good := tlsCfg(t, full)
	good.APIKey = key
	c, err := index.New(good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping with the API key and a client certificate: %v", err)
	}

	wrong := tlsCfg(t, full)
	wrong.APIKey = "d3Jvbmc6a2V5"
	c, _ = index.New(wrong, nil)
	if err := c.Ping(ctx); !errors.Is(err, index.ErrAuth) || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("wrong API key: %v, want ErrAuth naming the API key", err)
	}

	noCert := tlsCfg(t, credentials.TLSFiles{CA: pki.CA})
	noCert.APIKey = key
	c, _ = index.New(noCert, nil)
	if err := c.Ping(ctx); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("no client certificate: %v, want a TLS failure", err)
	}

	noCA := tlsCfg(t, credentials.TLSFiles{Cert: pki.ClientCert, Key: pki.ClientKey})
	noCA.APIKey = key
	c, _ = index.New(noCA, nil)
	if err := c.Ping(ctx); !errors.Is(err, index.ErrConfig) || !strings.Contains(err.Error(), "--es-tls-ca") {
		t.Fatalf("server certificate from an unknown CA: %v, want ErrConfig naming --es-tls-ca", err)
	}

	if _, err := index.New(index.Config{Hosts: []string{s.URL()}, APIKey: "id:key with blanks"}, nil); !errors.Is(err, index.ErrConfig) {
		t.Fatalf("API key with blanks: %v, want ErrConfig", err)
	}
}
