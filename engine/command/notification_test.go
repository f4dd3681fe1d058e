package command

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
)

// hookReceiver is a webhook receiver that checks signatures and counts
// deliveries by ID.
type hookReceiver struct {
	secret []byte

	mu     sync.Mutex
	status int           // 0: 204
	block  chan struct{} // requests wait on it when set
	seen   int           // requests, verified or not
	gone   int           // blocked requests whose client went away
	ids    map[string]int
	events []notify.Message
	bad    []string
}

func newHookReceiver(t *testing.T, secret string) (*hookReceiver, string) {
	r := &hookReceiver{secret: []byte(secret), ids: map[string]int{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.seen++
	block, status := r.block, r.status
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			r.mu.Lock()
			r.gone++
			r.mu.Unlock()
			return
		}
	}
	err := notify.Verify(r.secret, req.Header.Get(notify.HeaderTimestamp), req.Header.Get(notify.HeaderSignature), body, time.Now(), notify.DefaultTolerance)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if status != 0 {
		http.Error(w, "not now", status)
		return
	}
	var m notify.Message
	_ = json.Unmarshal(body, &m)
	r.ids[m.ID]++
	r.events = append(r.events, m)
	w.WriteHeader(http.StatusNoContent)
}

// abandoned returns how many blocked requests ended with their client
// gone, unanswered.
func (r *hookReceiver) abandoned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone
}

func (r *hookReceiver) set(status int, block chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.block = status, block
}

func (r *hookReceiver) delivered() (events []notify.Message, ids map[string]int, requests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := map[string]int{}
	for k, v := range r.ids {
		cp[k] = v
	}
	return append([]notify.Message(nil), r.events...), cp, r.seen
}

func writeSecret(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotificationCommands(t *testing.T) {
	e := newJobEnv(t)
	rcv, url := newHookReceiver(t, "very-secret-key")
	secretFile := writeSecret(t, "very-secret-key")
	e.ok("notification", "create", "hook", "--webhook", url+"/jobs", "--header", "X-Team=ops", "--secret-file", secretFile, "--description", "ops channel")
	e.ok("notification", "create", "page", "--command", "/bin/true", "--arg", "--team", "--arg", "ops", "--timeout", "5s")
	e.ok("notification", "create", "mail", "--email", "--smtp-host", "smtp.example.com", "--from", "jobs@example.com", "--to", "ops@example.com", "--to", "dev@example.com")

	for _, args := range [][]string{{"notification", "show", "hook"}, {"notification", "show", "hook", "--json"}, {"notification", "list"}, {"notification", "list", "--json"}} {
		out := e.ok(args...)
		if strings.Contains(out, "very-secret-key") {
			t.Fatalf("%v prints the secret:\n%s", args, out)
		}
	}
	show := e.ok("notification", "show", "hook")
	for _, want := range []string{"kind:", "webhook", url + "/jobs", "X-Team: ops", "secret:", "set", "ops channel"} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}
	if show := e.ok("notification", "show", "page"); !strings.Contains(show, "/bin/true --team ops") || !strings.Contains(show, "not set") {
		t.Fatalf("show page:\n%s", show)
	}

	// test delivers at once, signed.
	if out := e.ok("notification", "test", "hook"); !strings.Contains(out, "delivered") {
		t.Fatalf("test said %q", out)
	}
	events, _, _ := rcv.delivered()
	if len(events) != 1 || !events[0].Test || events[0].Notification != "hook" {
		t.Fatalf("the test delivery: %+v", events)
	}
	rcv.set(http.StatusBadGateway, nil)
	if _, errOut, code := e.run("notification", "test", "hook"); code != 1 || !strings.Contains(errOut, "HTTP 502") {
		t.Fatalf("a failing test: exit %d, %s", code, errOut)
	}

	// Attached to an action, a template is named by every new job of it.
	e.ok("notification", "attach", "hook", "--action", "backup", "--on", "started,failure")
	id := e.add("backup")
	j, _, err := e.store.Get(e.ctx(), id)
	if err != nil || j.Notifications == nil || strings.Join(j.Notifications.Failure, ",") != "hook" || strings.Join(j.Notifications.Started, ",") != "hook" {
		t.Fatalf("a backup job notifies %+v (%v)", j.Notifications, err)
	}
	if list := e.ok("notification", "list"); !strings.Contains(list, "action backup (failure), action backup (started)") {
		t.Fatalf("list does not say where hook is attached:\n%s", list)
	}
	if _, errOut, code := e.run("notification", "delete", "hook"); code != 1 || !strings.Contains(errOut, "detach it first") {
		t.Fatalf("deleting an attached template: exit %d, %s", code, errOut)
	}
	e.ok("notification", "detach", "hook", "--action", "backup", "--on", "started", "--on", "failure")
	e.ok("notification", "delete", "hook")

	// job add names templates itself.
	id = e.add("deploy", "--notify-success", "page", "--notify-failure", "page,mail")
	j, _, _ = e.store.Get(e.ctx(), id)
	if j.Notifications == nil || strings.Join(j.Notifications.Failure, ",") != "page,mail" {
		t.Fatalf("job add --notify-failure page,mail: %+v", j.Notifications)
	}
	// A canceled job notifies failure: the notice waits in the outbox.
	e.ok("job", "cancel", id)
	var pending []notify.Record
	if err := json.Unmarshal([]byte(e.ok("notification", "list", "--pending", "--json")), &pending); err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].Event != jobs.NotifyFailure || pending[0].Job.State != jobs.Canceled {
		t.Fatalf("pending: %+v", pending)
	}
}

func TestNotificationBadInput(t *testing.T) {
	e := newJobEnv(t)
	secretFile := writeSecret(t, "k")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"notification", "create", "n"}, "give one of --webhook URL, --email or --command"},
		{[]string{"notification", "create", "n", "--webhook", "https://x", "--command", "/bin/true"}, "give one of"},
		{[]string{"notification", "create", "n", "--webhook", "https://x"}, "--secret-file"},
		{[]string{"notification", "create", "n", "--webhook", "https://x", "--secret", "k"}, "flag provided but not defined"},
		{[]string{"notification", "create", "n", "--webhook", "ftp://x", "--secret-file", secretFile}, "http://"},
		{[]string{"notification", "create", "n", "--webhook", "https://x", "--secret-file", secretFile, "--header", "nocolon"}, "NAME=VALUE"},
		{[]string{"notification", "create", "n", "--webhook", "https://x", "--secret-file", "/no/such/file"}, "--secret-file"},
		{[]string{"notification", "create", "n", "--command", "true"}, "absolute path"},
		{[]string{"notification", "create", "n", "--email", "--smtp-host", "h", "--from", "a@b"}, "recipients"},
		{[]string{"notification", "create", "n", "--email", "--smtp-host", "h", "--from", "a@b", "--to", "c@d", "--username", "u"}, "--secret-file"},
		{[]string{"notification", "create", "n", "--email", "--smtp-host", "h", "--from", "a@b", "--to", "c@d", "--starttls", "maybe"}, "starttls"},
		{[]string{"notification", "create", "bad name", "--command", "/bin/true"}, "not a notification name"},
		{[]string{"notification", "attach", "n", "--on", "failure"}, "--action"},
		{[]string{"notification", "attach", "n", "--action", "a"}, "--on"},
		{[]string{"notification", "attach", "n", "--action", "a", "--on", "done"}, "started, success or failure"},
		{[]string{"notification", "attach", "n", "--action", "a", "--template", "t", "--on", "failure"}, "one of"},
		{[]string{"job", "add", "a", "--notify-failure", "no way"}, "notification"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := e.run(tc.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 saying %q", code, out, errOut, tc.want)
			}
		})
	}
	if ok, _, _ := e.conn.Exists(e.conn.Path("/config")); ok {
		t.Fatal("bad input wrote the configuration")
	}
}
