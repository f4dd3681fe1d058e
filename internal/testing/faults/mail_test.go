package faults

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// withMail gives withNotices e-mail notices too: every schedule job
// notifies both templates, and the SMTP receiver got each outcome once.
func withMail() Input {
	in := withNotices()
	in.Notices.Mail = mailName
	for _, j := range in.Jobs {
		if j.Tick != "" {
			j.Notifications.Success = append(j.Notifications.Success, mailName)
			j.Notifications.Failure = append(j.Notifications.Failure, mailName)
			in.Notices.MailDeliveries = append(in.Notices.MailDeliveries, Delivery{ID: j.ID + "-mail", Job: j.ID, Event: jobs.NotifySuccess})
		}
	}
	return in
}

// TestCheckMailNotices: e-mail notices follow the webhook's rule on their
// own: each outcome at least once, duplicates counted and named, a lost
// one or one no job explains a violation.
func TestCheckMailNotices(t *testing.T) {
	in := withMail()
	dup := in.Notices.MailDeliveries[1]
	in.Notices.MailDeliveries = append(in.Notices.MailDeliveries, dup)
	r := Check(in)
	if !r.OK() {
		t.Fatalf("violations:\n%s", violations(r))
	}
	if m := r.Mail; m == nil || m.Expected != 5 || m.Delivered != 5 || m.Duplicates != 1 || !strings.HasPrefix(m.DuplicateKeys[0], dup.ID+" ×2") {
		t.Fatalf("e-mails: %+v", r.Mail)
	}
	if !strings.Contains(r.Summary(), "e-mails:   5 expected, 5 delivered at least once, in 6 e-mails; duplicates: 1") {
		t.Fatalf("summary:\n%s", r.Summary())
	}

	in = withMail()
	lost := in.Notices.MailDeliveries[0]
	in.Notices.MailDeliveries = in.Notices.MailDeliveries[1:]
	if got := violations(Check(in)); !strings.Contains(got, lost.Job+" ended SUCCESS and its success notice never arrived ("+mailName+")") {
		t.Fatalf("a lost e-mail: %q", got)
	}
	in = withMail()
	in.Notices.MailRefused = 1
	if got := violations(Check(in)); !strings.Contains(got, "name no notice of "+mailName) {
		t.Fatalf("an e-mail that names no notice: %q", got)
	}
}

// TestReadMail: an accepted e-mail's delivery header names its notice,
// hence its job; one without it, or from another template, is refused.
func TestReadMail(t *testing.T) {
	dir := t.TempDir()
	uid := "e3ab17e5-98fb-5455-84a9-d806ac17dbc9"
	id := jobs.NoticeName(uid, 3, mailName)
	write := func(name, id string) string {
		p := filepath.Join(dir, name)
		msg := "From: a@b.invalid\r\nMessage-ID: <" + id + "@jobengine>\r\nX-Jobengine-Delivery: " + id + "\r\nX-Jobengine-Event: success\r\n\r\nbody\r\n"
		if err := os.WriteFile(p, []byte(msg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d, err := readMail(write("1.eml", id))
	if err != nil || d.ID != id || d.Job != "job/"+uid || d.Event != jobs.NotifySuccess {
		t.Fatalf("readMail: %+v %v", d, err)
	}
	if _, err := readMail(write("2.eml", jobs.NoticeName(uid, 3, hookName))); err == nil {
		t.Fatal("an e-mail of another template was taken")
	}
	if _, err := readMail(write("3.eml", "nonsense")); err == nil {
		t.Fatal("an e-mail naming no notice was taken")
	}
}
