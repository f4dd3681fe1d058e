package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// hookServer is a webhook receiver that checks signatures; status is its
// answer (204 when 0).
type hookServer struct {
	secret []byte
	mu     sync.Mutex
	status int
	got    []notify.Message
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.Verify(h.secret, r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), body, time.Now(), notify.DefaultTolerance); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.status != 0 {
		http.Error(w, "not now", h.status)
		return
	}
	var m notify.Message
	_ = json.Unmarshal(body, &m)
	h.got = append(h.got, m)
	w.WriteHeader(http.StatusNoContent)
}

// TestNotificationAttachments: a template is attached and detached for
// several events in one write; bad input is a 400 naming the field, with
// nothing written; a template still attached is not deleted.
func TestNotificationAttachments(t *testing.T) {
	e := newEnv(t)
	e.must(201, uAdmin, "POST", Prefix+"/notification-templates", map[string]any{"name": "page", "kind": "command", "command": map[string]any{"argv": []string{"/bin/true"}}})
	const atts = Prefix + "/notification-templates/page/attachments"
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"kind": "host", "target": "web", "events": []string{"failure"}}, "kind"},
		{map[string]any{"kind": "template", "target": "a b", "events": []string{"failure"}}, "target"},
		{map[string]any{"kind": "template", "target": "", "events": []string{"failure"}}, "target"},
		{map[string]any{"kind": "template", "target": "web", "events": []string{}}, "events"},
		{map[string]any{"kind": "template", "target": "web", "events": []string{"success", "done"}}, "events"},
		{map[string]any{"kind": "template", "target": "web", "events": []string{"failure"}, "when": "now"}, "when"},
		{"", ""},
	} {
		r := e.must(400, uAdmin, "POST", atts, c.body)
		var ae Error
		r.json(t, &ae)
		if ae.Field != c.field || ae.Message == "" {
			t.Errorf("POST %v: field %q (want %q): %s", c.body, ae.Field, c.field, ae.Message)
		}
	}
	e.must(404, uAdmin, "POST", Prefix+"/notification-templates/nope/attachments", map[string]any{"kind": "template", "target": "web", "events": []string{"failure"}})
	var all listPage[notify.Attachment]
	e.must(200, uAuditor, "GET", Prefix+"/notification-attachments", nil).json(t, &all)
	if len(all.Items) != 0 {
		t.Fatalf("refused attachments were written: %+v", all.Items)
	}

	var a notify.Attachment
	e.must(200, uAdmin, "POST", atts, map[string]any{"kind": "template", "target": "web", "events": []string{"started", "failure", "failure"}}).json(t, &a)
	if a.Kind != notify.AttachTemplate || a.Target != "web" || strings.Join(a.Notifications.Started, ",") != "page" || strings.Join(a.Notifications.Failure, ",") != "page" || len(a.Notifications.Success) != 0 {
		t.Fatalf("attach answered %+v", a)
	}
	e.must(200, uAdmin, "POST", atts, map[string]any{"kind": "action", "target": "backup", "events": []string{"success"}})
	var mine listPage[NotificationAttachment]
	e.must(200, uAuditor, "GET", atts, nil).json(t, &mine)
	want := []NotificationAttachment{{notify.AttachAction, "backup", jobs.NotifySuccess}, {notify.AttachTemplate, "web", jobs.NotifyFailure}, {notify.AttachTemplate, "web", jobs.NotifyStarted}}
	if len(mine.Items) != len(want) {
		t.Fatalf("attachments of page: %+v, want %+v", mine.Items, want)
	}
	for i := range want {
		if mine.Items[i] != want[i] {
			t.Fatalf("attachments of page: %+v, want %+v", mine.Items, want)
		}
	}
	e.must(200, uAdmin, "GET", atts+"?kind=action&order=-object&limit=1", nil).json(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0].Target != "backup" || mine.Next != "" {
		t.Fatalf("?kind=action: %+v", mine)
	}
	e.must(200, uAdmin, "GET", Prefix+"/notification-attachments?notification=page&kind=template", nil).json(t, &all)
	if len(all.Items) != 1 || all.Items[0].Target != "web" {
		t.Fatalf("?notification=page&kind=template: %+v", all.Items)
	}
	e.must(400, uAdmin, "GET", Prefix+"/notification-attachments?kind=host", nil)
	e.must(400, uAdmin, "GET", atts+"?order=name", nil)
	e.must(404, uAuditor, "GET", Prefix+"/notification-templates/nope/attachments", nil)

	// The template is attached: deleting it is a conflict.
	if r := e.must(409, uAdmin, "DELETE", Prefix+"/notification-templates/page", nil); !strings.Contains(string(r.body), "detach it first") {
		t.Fatalf("delete of an attached template: %s", r.body)
	}
	// Detaching for an event it is not attached for changes nothing.
	const web = atts + "/template/web"
	e.must(404, uAdmin, "DELETE", web+"?events=started,success", nil)
	e.must(400, uAdmin, "DELETE", web+"?events=started,done", nil)
	e.must(400, uAdmin, "DELETE", atts+"/host/web", nil)
	e.must(400, uAdmin, "DELETE", web+"?when=now", nil)
	e.must(200, uAdmin, "GET", atts, nil).json(t, &mine)
	if len(mine.Items) != 3 {
		t.Fatalf("a refused detach changed the attachments: %+v", mine.Items)
	}
	e.must(204, uAdmin, "DELETE", web+"?events=started", nil)
	e.must(204, uAdmin, "DELETE", web, nil)
	e.must(404, uAdmin, "DELETE", web, nil)
	e.must(204, uAdmin, "DELETE", atts+"/action/backup?events=success", nil)
	e.must(200, uAdmin, "GET", atts, nil).json(t, &mine)
	if len(mine.Items) != 0 {
		t.Fatalf("after detaching: %+v", mine.Items)
	}
	e.must(204, uAdmin, "DELETE", Prefix+"/notification-templates/page", nil)
}

// TestNotificationTest: a test notification is delivered, signed, by the
// controller; a failing receiver is an answer saying why; the secret is
// in no answer.
func TestNotificationTest(t *testing.T) {
	e := newEnv(t)
	const secret = "s3cret-signing-key"
	hook := &hookServer{secret: []byte(secret)}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	e.must(201, uAdmin, "POST", Prefix+"/notification-templates", map[string]any{"name": "hook", "kind": "webhook", "webhook": map[string]any{"url": srv.URL + "/jobs"}, "secret": secret})
	var res testResult
	r := e.must(200, uAdmin, "POST", Prefix+"/notification-templates/hook/test", nil)
	r.json(t, &res)
	hook.mu.Lock()
	got := append([]notify.Message(nil), hook.got...)
	hook.status = http.StatusBadGateway
	hook.mu.Unlock()
	if !res.Delivered || res.Error != "" || len(got) != 1 || !got[0].Test || got[0].Notification != "hook" {
		t.Fatalf("test answered %s; the receiver got %+v", r.body, got)
	}
	r = e.must(200, uAdmin, "POST", Prefix+"/notification-templates/hook/test", nil)
	r.json(t, &res)
	if res.Delivered || !strings.Contains(res.Error, "HTTP 502") || strings.Contains(string(r.body), secret) {
		t.Fatalf("a failing test answered %s", r.body)
	}
	e.must(400, uAdmin, "POST", Prefix+"/notification-templates/hook/test?now=1", nil)
	e.must(404, uAdmin, "POST", Prefix+"/notification-templates/nope/test", nil)
}

// parkNotice writes a parked notice of template name for a job, as the
// sender leaves one whose delivery kept failing, and returns its id.
func parkNotice(t *testing.T, e *env, name string) string {
	t.Helper()
	_, u := jobs.NewID()
	id := jobs.NoticeName(u, 3, name)
	now := time.Now().UTC()
	rec := notify.Record{Notice: jobs.Notice{ID: id, Event: jobs.NotifyFailure, Notification: name, Time: now,
		Job: jobs.NoticeJob{ID: "job/" + u, Action: "backup", State: jobs.Failed, Created: now, TimeOfStatusChange: now}},
		Attempts: 5, LastError: "HTTP 502", Parked: &now}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	st := notify.NewStore(e.conn)
	if err := st.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Create(st.FailedPath()+"/"+id, data, 0, zkconn.ACL); err != nil && err != zk.ErrNodeExists {
		t.Fatal(err)
	}
	return id
}

// TestNotificationNotices: parked notices are listed, and sent back for
// delivery when every one named is parked; otherwise none moves.
func TestNotificationNotices(t *testing.T) {
	e := newEnv(t)
	a, b := parkNotice(t, e, "hook"), parkNotice(t, e, "page")
	var page listPage[notify.Record]
	e.must(200, uAuditor, "GET", Prefix+"/notifications?state=failed", nil).json(t, &page)
	if len(page.Items) != 2 || page.Items[0].LastError != "HTTP 502" {
		t.Fatalf("failed notices: %+v", page.Items)
	}
	e.must(200, uAuditor, "GET", Prefix+"/notifications?state=failed&notification=page", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != b {
		t.Fatalf("failed notices of page: %+v", page.Items)
	}
	e.must(400, uAdmin, "GET", Prefix+"/notifications", nil)
	e.must(400, uAdmin, "GET", Prefix+"/notifications?state=sent", nil)
	e.must(400, uAdmin, "POST", Prefix+"/notifications/retry", map[string]any{"ids": []string{a, "not-a-notice"}})
	_, other := jobs.NewID()
	e.must(404, uAdmin, "POST", Prefix+"/notifications/retry", map[string]any{"ids": []string{a, jobs.NoticeName(other, 1, "hook")}})
	e.must(403, uAuditor, "POST", Prefix+"/notifications/retry", map[string]any{"ids": []string{a}})
	e.must(200, uAdmin, "GET", Prefix+"/notifications?state=failed", nil).json(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("a refused retry moved notices: %+v", page.Items)
	}
	var res retryResult
	e.must(200, uAdmin, "POST", Prefix+"/notifications/retry", map[string]any{"ids": []string{a, a}}).json(t, &res)
	if res.Retried != 1 {
		t.Fatalf("retry of %s: %+v", a, res)
	}
	page = listPage[notify.Record]{} // absent fields must not keep what the last answer had
	e.must(200, uAdmin, "GET", Prefix+"/notifications?state=pending", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != a || page.Items[0].Attempts != 0 || page.Items[0].LastError != "" {
		t.Fatalf("pending after the retry: %+v", page.Items)
	}
	e.must(200, uAdmin, "POST", Prefix+"/notifications/retry", nil).json(t, &res)
	if res.Retried != 1 {
		t.Fatalf("retry of all: %+v", res)
	}
	e.must(200, uAdmin, "GET", Prefix+"/notifications?state=failed", nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("failed after retrying all: %+v", page.Items)
	}
}
