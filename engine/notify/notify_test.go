package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func webhookTemplate(name, url string) Template {
	return Template{Name: name, Kind: Webhook, Webhook: &WebhookSpec{URL: url, Headers: map[string]string{"X-Team": "ops"}}}
}

func TestTemplateValidate(t *testing.T) {
	ok := []Template{
		webhookTemplate("hook", "https://example.com/hook"),
		{Name: "mail", Kind: Email, Email: &EmailSpec{Host: "smtp.example.com", From: "Jobs <jobs@example.com>", To: []string{"ops@example.com"}}},
		{Name: "page", Kind: Command, Command: &CommandSpec{Argv: []string{"/usr/local/bin/page", "--team", "ops"}}, Timeout: Duration(time.Minute)},
	}
	for _, tm := range ok {
		if err := tm.Validate(); err != nil {
			t.Fatalf("%s: %v", tm.Name, err)
		}
	}
	bad := []struct {
		name string
		t    Template
		want string
	}{
		{"bad name", webhookTemplate("has space", "https://x"), "name"},
		{"no kind", Template{Name: "a", Webhook: &WebhookSpec{URL: "https://x"}}, "kind"},
		{"two kinds", Template{Name: "a", Kind: Webhook, Webhook: &WebhookSpec{URL: "https://x"}, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, "exactly one"},
		{"kind mismatch", Template{Name: "a", Kind: Email, Webhook: &WebhookSpec{URL: "https://x"}}, "without email"},
		{"ftp url", webhookTemplate("a", "ftp://x/y"), "http://"},
		{"no host", webhookTemplate("a", "https:///x"), "http://"},
		{"header injection", Template{Name: "a", Kind: Webhook, Webhook: &WebhookSpec{URL: "https://x", Headers: map[string]string{"X-A": "b\r\nX-B: c"}}}, "one line"},
		{"reserved header", Template{Name: "a", Kind: Webhook, Webhook: &WebhookSpec{URL: "https://x", Headers: map[string]string{"x-jobengine-signature": "forged"}}}, "set by the sender"},
		{"email host with port", Template{Name: "a", Kind: Email, Email: &EmailSpec{Host: "smtp:25", From: "a@b", To: []string{"c@d"}}}, "port apart"},
		{"email bad from", Template{Name: "a", Kind: Email, Email: &EmailSpec{Host: "smtp", From: "nobody", To: []string{"c@d"}}}, "from"},
		{"email no to", Template{Name: "a", Kind: Email, Email: &EmailSpec{Host: "smtp", From: "a@b"}}, "recipients"},
		{"email two in one", Template{Name: "a", Kind: Email, Email: &EmailSpec{Host: "smtp", From: "a@b", To: []string{"c@d, e@f"}}}, "one e-mail address"},
		{"email starttls", Template{Name: "a", Kind: Email, Email: &EmailSpec{Host: "smtp", From: "a@b", To: []string{"c@d"}, StartTLS: "maybe"}}, "starttls"},
		{"relative program", Template{Name: "a", Kind: Command, Command: &CommandSpec{Argv: []string{"page"}}}, "absolute path"},
		{"no program", Template{Name: "a", Kind: Command, Command: &CommandSpec{}}, "program"},
		{"long timeout", Template{Name: "a", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}, Timeout: Duration(time.Hour)}, "timeout"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
}

func TestSignAndVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"id":"x"}`)
	now := time.Unix(1_800_000_000, 0)
	sig := Sign(secret, now.Unix(), body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	ts := "1800000000"
	if err := Verify(secret, ts, sig, body, now.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"other secret":  Verify([]byte("other"), ts, sig, body, now, DefaultTolerance),
		"other body":    Verify(secret, ts, sig, []byte(`{"id":"y"}`), now, DefaultTolerance),
		"other time":    Verify(secret, "1800000001", sig, body, now, DefaultTolerance),
		"replayed late": Verify(secret, ts, sig, body, now.Add(10*time.Minute), DefaultTolerance),
		"bad timestamp": Verify(secret, "soon", sig, body, now, DefaultTolerance),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
}

// Templates keep their secret apart: never in the template's node, never
// in what Get returns; a webhook needs one.
func TestStoreKeepsSecretsApart(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	tm := webhookTemplate("hook", "https://example.com/hook")
	if err := e.store.Create(ctx, tm, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a webhook without a secret: %v", err)
	}
	if err := e.store.Create(ctx, tm, []byte("k3y-value\n")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(ctx, tm, []byte("k3y-value")); !errors.Is(err, ErrExists) {
		t.Fatalf("creating twice: %v", err)
	}
	got, _, err := e.store.Get(ctx, "hook")
	if err != nil || !got.HasSecret || got.Webhook.URL != tm.Webhook.URL {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	raw, _, _ := e.conn.Get(e.store.templatePath("hook"))
	if strings.Contains(string(raw), "k3y-value") {
		t.Fatalf("the template's node holds its secret: %s", raw)
	}
	if s, err := e.store.secret(ctx, "hook"); err != nil || s != "k3y-value" {
		t.Fatalf("secret = %q, %v (a file's trailing newline is dropped)", s, err)
	}
	if err := e.store.Create(ctx, Template{Name: "multi", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, []byte("a\nb")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a secret of two lines: %v", err)
	}

	// What is stored by hand is validated on read.
	if _, err := e.conn.Create(e.store.templatePath("broken"), []byte(`{"name":"broken","kind":"webhook"}`), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Create(e.store.templatePath("liar"), raw, 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	list, problems, err := e.store.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "hook" || len(problems) != 2 {
		t.Fatalf("List = %d templates, problems %+v, %v", len(list), problems, err)
	}
	if err := e.store.Delete(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := e.conn.Exists(e.store.secretPath("hook")); ok {
		t.Fatal("the secret outlived its template")
	}
	if _, _, err := e.store.Get(ctx, "hook"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// TestStoreUpdate: an update keeps the secret unless given one, refuses
// a webhook left without a secret, and is compare-and-set.
func TestStoreUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	if err := e.store.Create(ctx, webhookTemplate("hook", "https://example.com/hook"), []byte("k3y-value")); err != nil {
		t.Fatal(err)
	}
	cur, ver, err := e.store.Get(ctx, "hook")
	if err != nil {
		t.Fatal(err)
	}
	next := *cur
	next.Webhook = &WebhookSpec{URL: "https://example.com/other"}
	got, err := e.store.Update(ctx, next, ver, nil)
	if err != nil || !got.HasSecret || got.Webhook.URL != "https://example.com/other" || !got.Created.Equal(cur.Created) {
		t.Fatalf("Update: %+v, %v", got, err)
	}
	if s, err := e.store.secret(ctx, "hook"); err != nil || s != "k3y-value" {
		t.Fatalf("secret after an update without one = %q, %v", s, err)
	}
	if _, err := e.store.Update(ctx, next, ver, nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("an update over a stale version: %v", err)
	}
	_, ver, _ = e.store.Get(ctx, "hook")
	empty := []byte{}
	if _, err := e.store.Update(ctx, next, ver, &empty); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a webhook left without a secret: %v", err)
	}
	other := []byte("n3w-value\n")
	if _, err := e.store.Update(ctx, next, ver, &other); err != nil {
		t.Fatal(err)
	}
	if s, err := e.store.secret(ctx, "hook"); err != nil || s != "n3w-value" {
		t.Fatalf("secret after an update with one = %q, %v", s, err)
	}
	if _, err := e.store.Update(ctx, Template{Name: "nowhere", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, 0, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating a missing template: %v", err)
	}
}

// Attached to an action, a template is notified by every job of that
// action; it cannot be deleted while attached.
func TestAttachToAnAction(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	if err := e.store.Attach(ctx, AttachAction, "backup", jobs.NotifyFailure, "pager"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attaching a template that does not exist: %v", err)
	}
	if err := e.store.Create(ctx, Template{Name: "pager", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []jobs.NotifyEvent{jobs.NotifyFailure, jobs.NotifyFailure, jobs.NotifySuccess} {
		if err := e.store.Attach(ctx, AttachAction, "backup", ev, "pager"); err != nil {
			t.Fatal(err)
		}
	}
	j, err := e.jobs.Create(ctx, jobs.NewJob{Action: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Notifications == nil || strings.Join(j.Notifications.Failure, ",") != "pager" || strings.Join(j.Notifications.Success, ",") != "pager" {
		t.Fatalf("a backup job notifies %+v", j.Notifications)
	}
	other, _ := e.jobs.Create(ctx, jobs.NewJob{Action: "restore"})
	if other.Notifications != nil {
		t.Fatalf("a restore job notifies %+v", other.Notifications)
	}
	if err := e.store.Delete(ctx, "pager"); !errors.Is(err, ErrAttached) || !strings.Contains(err.Error(), "action backup") {
		t.Fatalf("deleting an attached template: %v", err)
	}
	atts, _ := e.store.Attachments(ctx)
	if len(atts) != 1 || atts[0].Target != "backup" {
		t.Fatalf("Attachments = %+v", atts)
	}
	for _, ev := range []jobs.NotifyEvent{jobs.NotifyFailure, jobs.NotifySuccess} {
		if err := e.store.Detach(ctx, AttachAction, "backup", ev, "pager"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.Detach(ctx, AttachAction, "backup", jobs.NotifyFailure, "pager"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("detaching twice: %v", err)
	}
	if ok, _, _ := e.conn.Exists(e.store.attachmentPath(AttachAction, "backup")); ok {
		t.Fatal("an empty attachment is left behind")
	}
	if err := e.store.Delete(ctx, "pager"); err != nil {
		t.Fatal(err)
	}
}

// A notice whose template is gone, and a notice that is not valid, are
// parked with the reason, not retried forever.
func TestUndeliverableNoticesAreParked(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	if err := e.store.Create(ctx, Template{Name: "gone", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, nil); err != nil {
		t.Fatal(err)
	}
	e.runJob("a", jobs.Notifications{Success: []string{"gone"}}, jobs.Success)
	if err := e.store.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	junk := e.store.OutboxPath() + "/" + jobs.NoticeName("0b9c2f4e-5a7b-4c1d-9e8f-0123456789ab", 3, "x")
	if _, err := e.conn.Create(junk, []byte("not json"), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	e.sender(2)
	waitFor(t, func() error {
		failed, err := e.store.Failed(ctx)
		if err != nil {
			return err
		}
		if len(failed) != 2 {
			return errors.New("not parked yet")
		}
		if !strings.Contains(failed[0].LastError+failed[1].LastError, "does not exist") || !strings.Contains(failed[0].LastError+failed[1].LastError, "not valid JSON") {
			return errors.New("parked without the reasons: " + failed[0].LastError + " / " + failed[1].LastError)
		}
		return nil
	})
	if len(e.outbox()) != 0 {
		t.Fatalf("outbox: %v", e.outbox())
	}
	if _, err := e.store.Retry(ctx, strings.TrimPrefix(junk, e.store.OutboxPath()+"/")); err == nil {
		t.Fatal("a notice that is not valid was sent back to the outbox")
	}
}

// TestAttachEventsInOneWrite: several events are attached and detached
// in one write; a detach for an event not attached changes nothing.
func TestAttachEventsInOneWrite(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	if err := e.store.Create(ctx, Template{Name: "pager", Kind: Command, Command: &CommandSpec{Argv: []string{"/bin/true"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.store.AttachEvents(ctx, AttachTemplate, "web", "nope", jobs.NotifyFailure); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attaching a missing template: %v", err)
	}
	if err := e.store.AttachEvents(ctx, AttachTemplate, "web", "pager", jobs.NotifyStarted, jobs.NotifyFailure, jobs.NotifyFailure); err != nil {
		t.Fatal(err)
	}
	n, err := e.store.AttachedTo(ctx, AttachTemplate, "web")
	if err != nil || strings.Join(n.Started, ",") != "pager" || strings.Join(n.Failure, ",") != "pager" || len(n.Success) != 0 {
		t.Fatalf("attached: %+v, %v", n, err)
	}
	if err := e.store.DetachEvents(ctx, AttachTemplate, "web", "pager", jobs.NotifyStarted, jobs.NotifySuccess); !errors.Is(err, ErrNotFound) {
		t.Fatalf("detaching for an event not attached: %v", err)
	}
	if n, _ := e.store.AttachedTo(ctx, AttachTemplate, "web"); len(n.Started) != 1 || len(n.Failure) != 1 {
		t.Fatalf("a refused detach changed the attachment: %+v", n)
	}
	if err := e.store.DetachEvents(ctx, AttachTemplate, "web", "pager", jobs.NotifyStarted, jobs.NotifyFailure, jobs.NotifyStarted); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := e.conn.Exists(e.store.attachmentPath(AttachTemplate, "web")); ok {
		t.Fatal("an attachment with nothing attached is left")
	}
}
