package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// Errors of this package.
var (
	// ErrInvalid is wrapped by every error about a template, an attachment
	// or a notice that is not valid (as given, or as read from ZooKeeper).
	ErrInvalid = errors.New("notify: invalid")
	// ErrNotFound is returned for a template that does not exist.
	ErrNotFound = errors.New("notify: no such notification template")
	// ErrExists is returned when creating a template whose name is taken.
	ErrExists = errors.New("notify: notification template exists")
	// ErrAttached is returned when deleting a template still attached.
	ErrAttached = errors.New("notify: notification template is attached")
	// ErrConflict is returned when a template changed since it was read.
	ErrConflict = errors.New("notify: notification template changed concurrently")
	// ErrDelivery is wrapped by every failed delivery.
	ErrDelivery = errors.New("notify: delivery failed")
)

// Kind is how a template delivers.
type Kind string

// The kinds of notification templates.
const (
	Webhook Kind = "webhook" // an HTTP POST of the event as JSON, signed
	Email   Kind = "email"   // an e-mail through an SMTP server
	Command Kind = "command" // a program run with the event as JSON on its stdin
)

// Kinds lists the kinds.
var Kinds = []Kind{Webhook, Email, Command}

// Limits of templates.
const (
	MaxTemplateBytes = 16 << 10
	MaxHeaders       = 32
	MaxRecipients    = 50
	MaxArgs          = 64
	MaxSecretBytes   = 4096
	DefaultTimeout   = 10 * time.Second
	MaxTimeout       = 5 * time.Minute
)

// Duration is a time.Duration written as text ("10s") in JSON.
type Duration time.Duration

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads text such as "10s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is text such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Template is a notification template, stored as JSON in
// /config/notifications/<name>. Its secret (a webhook's signing key, an SMTP
// password) is kept apart, in /config/notification-secrets/<name>, and is
// never part of a Template.
type Template struct {
	Name        string       `json:"name"`
	Kind        Kind         `json:"kind"`
	Description string       `json:"description,omitempty"`
	Webhook     *WebhookSpec `json:"webhook,omitempty"`
	Email       *EmailSpec   `json:"email,omitempty"`
	Command     *CommandSpec `json:"command,omitempty"`
	Timeout     Duration     `json:"timeout,omitempty"` // per delivery attempt; DefaultTimeout when 0
	Created     time.Time    `json:"created"`
	Updated     time.Time    `json:"updated"`
	HasSecret   bool         `json:"has-secret,omitempty"` // a secret is set (its value is never shown)
}

// WebhookSpec is where and how a webhook posts.
type WebhookSpec struct {
	// URL is an http or https URL.
	URL string `json:"url"`
	// Headers are added to every request. They are shown by `notification
	// show`: put no credentials here; receivers check the signature.
	Headers map[string]string `json:"headers,omitempty"`
}

// StartTLS is when an e-mail template upgrades its SMTP connection.
type StartTLS string

// STARTTLS modes.
const (
	StartTLSRequired StartTLS = "required" // refuse to send without it (the default)
	StartTLSOptional StartTLS = "optional" // upgrade when the server offers it
	StartTLSOff      StartTLS = "off"      // never (a local relay)
)

// EmailSpec is an SMTP server and the message's addresses.
type EmailSpec struct {
	Host     string   `json:"host"`
	Port     int      `json:"port"` // 587 when 0
	StartTLS StartTLS `json:"starttls,omitempty"`
	// CAFile, when set, is a PEM file of the certificate authorities the
	// sending host trusts for this server (the system's otherwise).
	CAFile string `json:"ca-file,omitempty"`
	// Username authenticates (PLAIN) with the template's secret as
	// password; none when empty.
	Username string   `json:"username,omitempty"`
	From     string   `json:"from"`
	To       []string `json:"to"`
}

// CommandSpec is a program to run: argv[0] is an absolute path, run without
// a shell, with the event as JSON on stdin.
type CommandSpec struct {
	Argv []string `json:"argv"`
}

// timeout returns the delivery timeout.
func (t *Template) timeout() time.Duration {
	if t.Timeout <= 0 {
		return DefaultTimeout
	}
	return time.Duration(t.Timeout)
}

// Validate reports what is wrong with t, naming the field.
func (t *Template) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: notification template %q: %s", ErrInvalid, t.Name, fmt.Sprintf(format, args...))
	}
	if !jobs.ValidNotificationName(t.Name) {
		return fmt.Errorf("%w: name %q: use 1–%d letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, t.Name, jobs.MaxNotificationName)
	}
	if len(t.Description) > 1024 {
		return bad("description over 1024 bytes")
	}
	if t.Timeout < 0 || time.Duration(t.Timeout) > MaxTimeout {
		return bad("timeout %s: give 1s–%s", time.Duration(t.Timeout), MaxTimeout)
	}
	set := 0
	for _, p := range []bool{t.Webhook != nil, t.Email != nil, t.Command != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return bad("give exactly one of webhook, email and command settings")
	}
	switch t.Kind {
	case Webhook:
		if t.Webhook == nil {
			return bad("kind webhook without webhook settings")
		}
		return t.Webhook.validate(bad)
	case Email:
		if t.Email == nil {
			return bad("kind email without email settings")
		}
		return t.Email.validate(bad)
	case Command:
		if t.Command == nil {
			return bad("kind command without command settings")
		}
		return t.Command.validate(bad)
	}
	return bad("kind %q: use webhook, email or command", t.Kind)
}

func (w *WebhookSpec) validate(bad func(string, ...any) error) error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("url %q: give an http:// or https:// URL", w.URL)
	}
	if len(w.URL) > 2048 {
		return bad("url over 2048 bytes")
	}
	if len(w.Headers) > MaxHeaders {
		return bad("%d headers, at most %d", len(w.Headers), MaxHeaders)
	}
	for k, v := range w.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n\t") || strings.ContainsAny(v, "\r\n") || len(k)+len(v) > 1024 {
			return bad("header %q: a name without spaces or colons, a value on one line", k)
		}
		switch textproto.CanonicalMIMEHeaderKey(k) {
		case "Content-Type", "Content-Length", "Host", "X-Jobengine-Signature", "X-Jobengine-Timestamp", "X-Jobengine-Delivery", "X-Jobengine-Event":
			return bad("header %s is set by the sender", k)
		}
	}
	return nil
}

func (e *EmailSpec) validate(bad func(string, ...any) error) error {
	if e.Host == "" || strings.ContainsAny(e.Host, " /:\r\n") || len(e.Host) > 255 {
		return bad("host %q: give the SMTP server's name or address, and its port apart", e.Host)
	}
	if e.Port < 0 || e.Port > 65535 {
		return bad("port %d: give 1–65535 (587 by default)", e.Port)
	}
	switch e.StartTLS {
	case "", StartTLSRequired, StartTLSOptional, StartTLSOff:
	default:
		return bad("starttls %q: use required, optional or off", e.StartTLS)
	}
	if e.CAFile != "" && !filepath.IsAbs(e.CAFile) {
		return bad("ca-file %q: give an absolute path", e.CAFile)
	}
	if strings.ContainsAny(e.Username, "\r\n") || len(e.Username) > 256 {
		return bad("username on one line, at most 256 bytes")
	}
	if _, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") {
		return bad("from %q is not an e-mail address", e.From)
	}
	if len(e.To) == 0 || len(e.To) > MaxRecipients {
		return bad("give 1–%d recipients (to)", MaxRecipients)
	}
	for _, a := range e.To {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n,") {
			return bad("recipient %q is not one e-mail address", a)
		}
	}
	return nil
}

func (c *CommandSpec) validate(bad func(string, ...any) error) error {
	if len(c.Argv) == 0 || len(c.Argv) > MaxArgs {
		return bad("give the program and 0–%d arguments", MaxArgs-1)
	}
	if !filepath.IsAbs(c.Argv[0]) {
		return bad("program %q: give an absolute path (it runs without a shell and without a search path)", c.Argv[0])
	}
	for _, a := range c.Argv {
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return bad("argument %q: at most 4096 bytes, no NUL", a)
		}
	}
	return nil
}

// smtpPort returns the port to dial.
func (e *EmailSpec) smtpPort() int {
	if e.Port == 0 {
		return 587
	}
	return e.Port
}

// startTLS returns the STARTTLS mode.
func (e *EmailSpec) startTLS() StartTLS {
	if e.StartTLS == "" {
		return StartTLSRequired
	}
	return e.StartTLS
}
