package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobengine/jobengine/engine/version"
)

// maxOutput bounds what is kept of a receiver's answer or a command's
// output, for the error of a failed delivery.
const maxOutput = 2048

// Deliver sends m with template t (whose secret is secret) once, within
// t's timeout, and returns nil when the receiver took it: a 2xx answer to
// the webhook, the SMTP server's acceptance of the message, the command's
// exit status 0. Its errors wrap ErrDelivery.
func Deliver(ctx context.Context, t *Template, secret string, m *Message) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout())
	defer cancel()
	var err error
	switch t.Kind {
	case Webhook:
		err = postWebhook(ctx, t.Webhook, secret, m)
	case Email:
		err = sendEmail(ctx, t.Email, secret, m)
	case Command:
		err = runCommand(ctx, t.Command, m)
	default:
		err = fmt.Errorf("kind %q", t.Kind)
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timeout %s)", err, t.timeout())
		}
		return fmt.Errorf("%w: %s %s: %w", ErrDelivery, t.Kind, t.Name, err)
	}
	return nil
}

// webhookClient follows no redirect: a POST redirected would be resent
// as a GET, or elsewhere than configured.
var webhookClient = &http.Client{
	CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse },
}

func postWebhook(ctx context.Context, w *WebhookSpec, secret string, m *Message) error {
	body := m.encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jobengine/"+version.Version)
	req.Header.Set(HeaderDelivery, m.ID)
	req.Header.Set(HeaderEvent, string(m.Event))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if secret != "" {
		req.Header.Set(HeaderSignature, Sign([]byte(secret), ts, body))
	}
	resp, err := webhookClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("HTTP %d, redirected to %q: set the template's URL to where it points", resp.StatusCode, resp.Header.Get("Location"))
	}
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, oneLine(string(answer)))
}

func sendEmail(ctx context.Context, e *EmailSpec, password string, m *Message) error {
	addr := net.JoinHostPort(e.Host, strconv.Itoa(e.smtpPort()))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// net/smtp has no context: closing the connection ends a call that
	// outlives it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, e.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP greeting of %s: %w", addr, err)
	}
	defer c.Close()
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if err := c.Hello(host); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if mode := e.startTLS(); mode != StartTLSOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			cfg := &tls.Config{ServerName: e.Host, MinVersion: tls.VersionTLS12}
			if e.CAFile != "" {
				pem, err := os.ReadFile(e.CAFile)
				if err != nil {
					return fmt.Errorf("reading ca-file: %w", err)
				}
				cfg.RootCAs = x509.NewCertPool()
				if !cfg.RootCAs.AppendCertsFromPEM(pem) {
					return fmt.Errorf("ca-file %s holds no PEM certificate", e.CAFile)
				}
			}
			if err := c.StartTLS(cfg); err != nil {
				return fmt.Errorf("SMTP STARTTLS: %w", err)
			}
		} else if mode == StartTLSRequired {
			return fmt.Errorf("%s offers no STARTTLS and the template requires it (set starttls optional or off for a local relay)", addr)
		}
	}
	if e.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("%s offers no AUTH and the template has a username", addr)
		}
		// PlainAuth sends the password only over TLS or to localhost.
		if err := c.Auth(smtp.PlainAuth("", e.Username, password, e.Host)); err != nil {
			return fmt.Errorf("SMTP AUTH as %s: %w", e.Username, err)
		}
	}
	from, _ := mail.ParseAddress(e.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	for _, to := range e.To {
		a, _ := mail.ParseAddress(to)
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("SMTP RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(emailMessage(e, m)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	return c.Quit()
}

// emailMessage returns the message: headers (the subject encoded, the
// delivery ID as Message-ID, so a mailbox can tell a resent copy) and a
// quoted-printable text.
func emailMessage(e *EmailSpec, m *Message) []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", e.From)
	h("To", strings.Join(e.To, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", m.summary()))
	h("Date", time.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+m.ID+"@jobengine>")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h(HeaderDelivery, m.ID)
	h(HeaderEvent, string(m.Event))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.text(), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// limited keeps the first max bytes written to it.
type limited struct {
	buf bytes.Buffer
	max int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func runCommand(ctx context.Context, c *CommandSpec, m *Message) error {
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(m.encode())
	// A fixed environment: the sender's own (its credentials, its flags)
	// is none of the command's business.
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"JOBENGINE_EVENT=" + string(m.Event),
		"JOBENGINE_DELIVERY=" + m.ID,
		"JOBENGINE_NOTIFICATION=" + m.Notification,
		"JOBENGINE_JOB=" + m.Job.ID,
	}
	cmd.Dir = "/"
	out := &limited{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	inGroup(cmd)
	cmd.WaitDelay = 2 * time.Second // output pipes held open by a grandchild
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s killed: %w; output: %s", c.Argv[0], ctx.Err(), oneLine(out.buf.String()))
	}
	return fmt.Errorf("%s: %w; output: %s", c.Argv[0], err, oneLine(out.buf.String()))
}

// oneLine makes a receiver's text fit in an error message.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		cut := 300
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return "(nothing)"
	}
	return s
}

// Test delivers TestMessage with template name, now, from this process
// (not through the outbox), and returns the delivery's error.
func (s *Store) Test(ctx context.Context, name string) error {
	t, _, err := s.Get(ctx, name)
	if err != nil {
		return err
	}
	secret, err := s.secret(ctx, name)
	if err != nil {
		return err
	}
	return Deliver(ctx, t, secret, TestMessage(name, s.now()))
}
