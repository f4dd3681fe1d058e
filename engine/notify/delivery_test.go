package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// receiver is a webhook receiver as a user would write one: it checks the
// signature and the timestamp, and keeps the messages by delivery ID.
type receiver struct {
	t      *testing.T
	secret []byte

	mu       sync.Mutex
	status   int           // answer with this status (200 when 0)
	block    chan struct{} // when set, requests wait on it before answering
	got      []Message     // verified messages, in order of arrival
	requests int
	bad      []string // requests that failed verification
	headers  []http.Header
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: []byte(secret)}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	block, status := r.block, r.status
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	err := Verify(r.secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body, time.Now(), DefaultTolerance)
	var m Message
	if err == nil {
		err = json.Unmarshal(body, &m)
	}
	if err == nil && m.ID != req.Header.Get(HeaderDelivery) {
		err = fmt.Errorf("delivery header %s, body id %s", req.Header.Get(HeaderDelivery), m.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if status != 0 && status != http.StatusOK {
		http.Error(w, "try later", status)
		return
	}
	r.got = append(r.got, m)
	r.headers = append(r.headers, req.Header.Clone())
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(status int, block chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.block = status, block
}

func (r *receiver) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.got...)
}

func (r *receiver) summary() []string {
	var out []string
	for _, m := range r.messages() {
		out = append(out, string(m.Event)+":"+string(m.Job.State))
	}
	return out
}

// A job's started and success notices reach a real HTTP server, signed;
// the outbox is empty once they are delivered.
func TestWebhookDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	rcv, srv := newReceiver(t, "hmac-key")
	if err := e.store.Create(ctx, webhookTemplate("hook", srv.URL+"/jobs"), []byte("hmac-key")); err != nil {
		t.Fatal(err)
	}
	e.sender(3)
	ok := e.runJob("deploy", jobs.Notifications{Started: []string{"hook"}, Success: []string{"hook"}, Failure: []string{"hook"}}, jobs.Success)
	bad := e.runJob("deploy", jobs.Notifications{Failure: []string{"hook"}}, jobs.Failed)
	waitFor(t, func() error {
		if len(rcv.messages()) < 3 || len(e.outbox()) > 0 {
			return fmt.Errorf("received %v, outbox %v", rcv.summary(), e.outbox())
		}
		return nil
	})
	got := map[string]Message{}
	for _, m := range rcv.messages() {
		got[m.Job.ID+" "+string(m.Event)] = m
	}
	if len(got) != 3 || len(rcv.messages()) != 3 {
		t.Fatalf("received %v", rcv.summary())
	}
	s := got[ok.ID+" success"]
	if s.Job.State != jobs.Success || s.Job.StatusMessage != "it success" || s.Notification != "hook" || s.ID != jobs.NoticeName(ok.UUID(), ok.Version, "hook") {
		t.Fatalf("success message: %+v", s)
	}
	if st := got[ok.ID+" started"]; st.Job.State != jobs.Running || st.Job.Executor != "x1" {
		t.Fatalf("started message: %+v", st)
	}
	if f := got[bad.ID+" failure"]; f.Job.State != jobs.Failed || f.Job.ReturnCode == nil || *f.Job.ReturnCode != 3 {
		t.Fatalf("failure message: %+v", f)
	}
	h := rcv.headers[0]
	if h.Get("X-Team") != "ops" || h.Get("Content-Type") != "application/json" || h.Get(HeaderEvent) == "" {
		t.Fatalf("headers: %v", h)
	}
	if len(rcv.bad) > 0 {
		t.Fatalf("requests failed verification: %v", rcv.bad)
	}
}

// A receiver that keeps failing gets a bounded number of attempts; the
// notice is then parked with the error, and sent again by Retry.
func TestWebhookRetriesThenParks(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	rcv, srv := newReceiver(t, "k")
	rcv.set(http.StatusServiceUnavailable, nil)
	if err := e.store.Create(ctx, webhookTemplate("hook", srv.URL), []byte("k")); err != nil {
		t.Fatal(err)
	}
	e.sender(3)
	j := e.runJob("deploy", jobs.Notifications{Failure: []string{"hook"}}, jobs.Failed)
	var parked *Record
	waitFor(t, func() error {
		failed, err := e.store.Failed(ctx)
		if err != nil || len(failed) != 1 {
			return fmt.Errorf("parked %d, %v", len(failed), err)
		}
		parked = failed[0]
		return nil
	})
	if parked.Attempts != 3 || !strings.Contains(parked.LastError, "HTTP 503") || parked.Job.ID != j.ID || parked.Parked == nil {
		t.Fatalf("parked: %+v", parked)
	}
	rcv.mu.Lock()
	tries := rcv.requests
	rcv.mu.Unlock()
	if tries != 3 {
		t.Fatalf("%d requests for 3 attempts", tries)
	}
	rcv.set(http.StatusOK, nil)
	if n, err := e.store.Retry(ctx); err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	waitFor(t, func() error {
		if len(rcv.messages()) != 1 {
			return fmt.Errorf("received %v", rcv.summary())
		}
		return nil
	})
	if rcv.messages()[0].ID != parked.ID {
		t.Fatalf("the retried delivery has another id: %s, was %s", rcv.messages()[0].ID, parked.ID)
	}
	waitFor(t, func() error {
		if f, _ := e.store.Failed(ctx); len(f) > 0 || len(e.outbox()) > 0 {
			return errors.New("not cleared yet")
		}
		return nil
	})
}

// A leader stopped in the middle of a delivery leaves the notice in the
// outbox; the next leader delivers it with the same delivery ID, so the
// receiver, deduplicating by ID, acts on it once.
func TestDeliveryCutShortByAFailover(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	rcv, srv := newReceiver(t, "k")
	block := make(chan struct{})
	rcv.set(0, block)
	if err := e.store.Create(ctx, webhookTemplate("hook", srv.URL), []byte("k")); err != nil {
		t.Fatal(err)
	}
	stopFirst := e.sender(3)
	e.runJob("deploy", jobs.Notifications{Success: []string{"hook"}}, jobs.Success)
	waitFor(t, func() error {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if rcv.requests == 0 {
			return errors.New("no request yet")
		}
		return nil
	})
	stopFirst() // mid-request
	if len(e.outbox()) != 1 {
		t.Fatalf("the notice left the outbox undelivered: %v", e.outbox())
	}
	close(block)
	rcv.set(0, nil)
	e.sender(3)
	waitFor(t, func() error {
		if len(rcv.messages()) == 0 || len(e.outbox()) > 0 {
			return errors.New("not delivered yet")
		}
		return nil
	})
	ids := map[string]int{}
	for _, m := range rcv.messages() {
		ids[m.ID]++
	}
	if len(ids) != 1 {
		t.Fatalf("deliveries of %d notices, want one: %v", len(ids), ids)
	}
}

// An e-mail reaches a real SMTP server, authenticated, with the delivery ID
// as its Message-ID.
func TestEmailDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	smtpd := startSMTP(t, "--user", "jobs", "--password", "mail-pass")
	tm := Template{Name: "mail", Kind: Email, Email: &EmailSpec{
		Host: "127.0.0.1", Port: smtpd.port, StartTLS: StartTLSOff, Username: "jobs",
		From: "Jobs <jobs@example.com>", To: []string{"ops@example.com", "Dev <dev@example.com>"},
	}}
	if err := e.store.Create(ctx, tm, []byte("mail-pass")); err != nil {
		t.Fatal(err)
	}
	e.sender(3)
	j := e.runJob("backup", jobs.Notifications{Failure: []string{"mail"}}, jobs.Failed)
	var msgs []smtpMessage
	waitFor(t, func() error {
		if msgs = smtpd.messages(t); len(msgs) == 0 || len(e.outbox()) > 0 {
			return errors.New("no message yet")
		}
		return nil
	})
	m := msgs[0]
	if len(msgs) != 1 || m.From != "jobs@example.com" || strings.Join(m.To, ",") != "ops@example.com,dev@example.com" || m.Login != "jobs" {
		t.Fatalf("envelope: %+v", m)
	}
	for _, want := range []string{
		"Subject: [jobengine] backup failed: " + j.ID,
		"Message-ID: <" + jobs.NoticeName(j.UUID(), j.Version, "mail") + "@jobengine>",
		"Return code:    3",
		"it failed",
	} {
		if !strings.Contains(m.Raw, want) {
			t.Fatalf("message lacks %q:\n%s", want, m.Raw)
		}
	}

	// A wrong password is a failed delivery.
	tm.Name = "wrong"
	if err := e.store.Create(ctx, tm, []byte("not-it")); err != nil {
		t.Fatal(err)
	}
	wrong, _, _ := e.store.Get(ctx, "wrong")
	if err := Deliver(ctx, wrong, "not-it", TestMessage("wrong", time.Now())); !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "AUTH") {
		t.Fatalf("a wrong password: %v", err)
	}
}

// With a certificate the server offers STARTTLS: the template trusts its
// CA file, upgrades, and authenticates over TLS. A template that requires
// STARTTLS refuses a server that does not offer it.
func TestEmailStartTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	smtpd := startSMTP(t, "--user", "jobs", "--password", "pw", "--cert", cert, "--key", key)
	tm := &Template{Name: "mail", Kind: Email, Email: &EmailSpec{
		Host: "127.0.0.1", Port: smtpd.port, StartTLS: StartTLSRequired, CAFile: cert, Username: "jobs",
		From: "jobs@example.com", To: []string{"ops@example.com"},
	}}
	if err := tm.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Deliver(context.Background(), tm, "pw", TestMessage("mail", time.Now())); err != nil {
		t.Fatal(err)
	}
	msgs := smtpd.messages(t)
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Login != "jobs" || !strings.Contains(msgs[0].Raw, "[test]") {
		t.Fatalf("messages: %+v", msgs)
	}

	plain := startSMTP(t)
	tm.Email.Port, tm.Email.Username = plain.port, ""
	if err := Deliver(context.Background(), tm, "", TestMessage("mail", time.Now())); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("STARTTLS required, not offered: %v", err)
	}
	if len(plain.messages(t)) != 0 {
		t.Fatal("sent in the clear")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// A command gets the message as JSON on stdin and its delivery ID in its
// environment, runs without a shell, and is killed with its children when
// its time is up.
func TestCommandDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	out := filepath.Join(t.TempDir(), "events.jsonl")
	tm := Template{Name: "log", Kind: Command, Command: &CommandSpec{Argv: []string{"/usr/bin/tee", "-a", out}}}
	if err := e.store.Create(ctx, tm, nil); err != nil {
		t.Fatal(err)
	}
	e.sender(3)
	j := e.runJob("a", jobs.Notifications{Started: []string{"log"}, Success: []string{"log"}}, jobs.Success)
	var lines []string
	waitFor(t, func() error {
		data, _ := os.ReadFile(out)
		// tee writes each message whole: two messages are two JSON
		// documents, one after the other.
		lines = splitJSON(string(data))
		if len(lines) != 2 || len(e.outbox()) > 0 {
			return fmt.Errorf("%d messages", len(lines))
		}
		return nil
	})
	events := map[jobs.NotifyEvent]bool{}
	for _, l := range lines {
		var m Message
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Job.ID != j.ID {
			t.Fatalf("stdin was %q: %v", l, err)
		}
		events[m.Event] = true
	}
	if !events[jobs.NotifyStarted] || !events[jobs.NotifySuccess] {
		t.Fatalf("events %v", events)
	}

	// The environment, and the time limit.
	envFile := filepath.Join(t.TempDir(), "env")
	pidFile := filepath.Join(t.TempDir(), "pid")
	slow := &Template{Name: "slow", Kind: Command, Timeout: Duration(time.Second), Command: &CommandSpec{Argv: []string{
		"/bin/sh", "-c", `env > "$0"; sleep 60 & echo $! > "$1"; wait`, envFile, pidFile}}}
	m := TestMessage("slow", time.Now())
	err := Deliver(ctx, slow, "", m)
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("a command past its timeout: %v", err)
	}
	envData, _ := os.ReadFile(envFile)
	if !strings.Contains(string(envData), "JOBENGINE_DELIVERY="+m.ID) || strings.Contains(string(envData), "NOTIFY_TEST") || strings.Contains(string(envData), "HOME=") {
		t.Fatalf("the command's environment:\n%s", envData)
	}
	pidData, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if pid <= 0 {
		t.Fatalf("no child pid: %q", pidData)
	}
	waitFor(t, func() error {
		if err := syscall.Kill(pid, 0); err == nil {
			return fmt.Errorf("the command's child %d outlived it", pid)
		}
		return nil
	})

	fail := &Template{Name: "fail", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/sh", "-c", "echo refused by the pager >&2; exit 4"}}}
	if err := Deliver(ctx, fail, "", m); !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "exit status 4") || !strings.Contains(err.Error(), "refused by the pager") {
		t.Fatalf("a failing command: %v", err)
	}
}

// splitJSON splits concatenated JSON documents.
func splitJSON(s string) []string {
	var out []string
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return out
		}
		out = append(out, string(raw))
	}
}
