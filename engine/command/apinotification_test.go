package command

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// startSMTPD starts the notification tests' real SMTP server
// (engine/notify/testdata/smtpd.py, on Debian's python3-aiosmtpd) with
// args, and returns its port and the directory it writes messages to.
func startSMTPD(t *testing.T, args ...string) (int, string) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Fatal("the e-mail tests need /usr/bin/python3 with Debian's python3-aiosmtpd (scripts/deps.sh)")
	}
	dir := t.TempDir()
	script, _ := filepath.Abs("../notify/testdata/smtpd.py")
	cmd := exec.Command("/usr/bin/python3", append([]string{script, "--dir", dir}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var port int
			if _, err := fmt.Sscanf(sc.Text(), "ready %d", &port); err == nil {
				ready <- port
			}
		}
	}()
	select {
	case port := <-ready:
		return port, dir
	case <-time.After(30 * time.Second):
		t.Fatalf("the SMTP server did not start (is python3-aiosmtpd installed?): %s", stderr.String())
	}
	return 0, ""
}

// smtpLogins returns the logins of the messages the server accepted.
func smtpLogins(dir string) []string {
	var out []string
	for n := 1; ; n++ {
		meta, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%d.json", n)))
		if err != nil {
			return out
		}
		var m struct {
			Login string `json:"login"`
		}
		_ = json.Unmarshal(meta, &m)
		out = append(out, m.Login)
	}
}

// parkNotices writes a parked notice for each template named, as the
// sender leaves one whose delivery kept failing, and returns their ids.
func parkNotices(t *testing.T, e *apiEnv, names ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := zkconn.Dial(ctx, e.zc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := notify.NewStore(conn)
	if err := st.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, name := range names {
		_, u := jobs.NewID()
		now := time.Now().UTC()
		id := jobs.NoticeName(u, 7, name)
		rec := notify.Record{Notice: jobs.Notice{ID: id, Event: jobs.NotifyFailure, Notification: name, Time: now,
			Job: jobs.NoticeJob{ID: "job/" + u, Action: "backup", State: jobs.Failed, Created: now, TimeOfStatusChange: now}},
			Attempts: 5, LastError: "HTTP 502: not now", Parked: &now}
		data, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Create(st.FailedPath()+"/"+id, data, 0, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestCLINotificationsThroughAPI: every notification command prints
// through the API what it prints with ZooKeeper (writes on twin
// templates, zk-* with ZooKeeper and ap-* through the API; reads of the
// same state), with the same exit codes; test deliveries reach a real
// webhook receiver and a real SMTP server; a user who is not a system
// administrator is refused and bad input is refused (exit 2), with
// nothing written; no secret is printed.
func TestCLINotificationsThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	const hookSecret, mailPassword = "hook-s3cret-key", "mail-s3cret-pass"
	rcv, hookURL := newHookReceiver(t, hookSecret)
	port, mailDir := startSMTPD(t, "--user", "jobs", "--password", mailPassword)
	hookFile, mailFile := writeSecret(t, hookSecret), writeSecret(t, mailPassword)

	// twin runs args with ZooKeeper on the zk- twin and through the API on
	// the ap- twin (same length: tables line up alike), and compares what
	// they print and their exit codes.
	twin := func(args ...string) (string, string, int) {
		t.Helper()
		zargs, aargs := make([]string, len(args)), make([]string, len(args))
		for i, a := range args {
			zargs[i] = strings.ReplaceAll(a, "TWIN", "zk")
			aargs[i] = strings.ReplaceAll(a, "TWIN", "ap")
		}
		wantOut, wantErr, wantCode := e.zk(zargs...)
		gotOut, gotErr, gotCode := e.as(e.admin, aargs...)
		wantOut = strings.ReplaceAll(wantOut, "zk-", "ap-")
		if gotOut != wantOut || gotCode != wantCode {
			t.Errorf("%v through the API: exit %d\n%s%s\nwith ZooKeeper (zk- read as ap-): exit %d\n%s%s", aargs, gotCode, gotOut, gotErr, wantCode, wantOut, wantErr)
		}
		for _, s := range []string{gotOut, gotErr, wantOut, wantErr} {
			if strings.Contains(s, hookSecret) || strings.Contains(s, mailPassword) {
				t.Fatalf("%v printed a secret:\n%s", args, s)
			}
		}
		return gotOut, gotErr, gotCode
	}
	// same runs args both ways on the same state.
	same := func(args ...string) string {
		t.Helper()
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		got := e.ok(e.admin, args...)
		if got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
		if strings.Contains(got, hookSecret) || strings.Contains(got, mailPassword) {
			t.Fatalf("%v printed a secret:\n%s", args, got)
		}
		return got
	}
	// unchanged checks that what ZooKeeper holds is still before.
	state := func() string {
		t.Helper()
		out, errOut, code := e.zk("notification", "list", "--json")
		if code != 0 {
			t.Fatalf("notification list: exit %d: %s", code, errOut)
		}
		return out
	}

	// Created, with their secrets read from files.
	for _, args := range [][]string{
		{"notification", "create", "TWIN-hook", "--webhook", hookURL + "/jobs", "--header", "X-Team=ops", "--secret-file", hookFile, "--description", "ops channel"},
		{"notification", "create", "TWIN-mail", "--email", "--smtp-host", "127.0.0.1", "--smtp-port", fmt.Sprint(port), "--starttls", "off",
			"--username", "jobs", "--secret-file", mailFile, "--from", "jobs@example.com", "--to", "ops@example.com", "--timeout", "20s"},
		{"notification", "create", "TWIN-page", "--command", "/bin/true", "--arg", "--team", "--arg", "ops"},
	} {
		if _, errOut, code := twin(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	// Attached, several events in one command.
	for _, args := range [][]string{
		{"notification", "attach", "TWIN-hook", "--template", "tpl", "--on", "started,failure"},
		{"notification", "attach", "TWIN-hook", "--action", "backup", "--on", "success", "--on", "failure"},
		{"notification", "attach", "TWIN-mail", "--workflow", "nightly", "--on", "failure"},
		{"notification", "attach", "TWIN-page", "--inventory", "hosts", "--on", "started"},
	} {
		if _, errOut, code := twin(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	for _, args := range [][]string{
		{"notification", "list"}, {"notification", "list", "--json"},
		{"notification", "show", "ap-hook"}, {"notification", "show", "--json", "ap-hook"},
		{"notification", "show", "zk-mail"}, {"notification", "show", "--json", "ap-page"},
	} {
		same(args...)
	}
	if out := e.ok(e.admin, "notification", "show", "ap-hook"); !strings.Contains(out, "action backup (failure), action backup (success), template tpl (failure), template tpl (started)") {
		t.Fatalf("show through the API does not say where ap-hook is attached:\n%s", out)
	}

	// Test deliveries: the webhook's signed, the e-mail's authenticated.
	twin("notification", "test", "TWIN-hook")
	twin("notification", "test", "TWIN-mail")
	twin("notification", "test", "TWIN-page")
	events, _, _ := rcv.delivered()
	if len(events) != 2 || !events[0].Test || events[0].Notification != "zk-hook" || events[1].Notification != "ap-hook" {
		t.Fatalf("the webhook received %+v", events)
	}
	poll.For(t, time.Minute, 50*time.Millisecond, func() error {
		if got := smtpLogins(mailDir); len(got) != 2 || got[0] != "jobs" || got[1] != "jobs" {
			return fmt.Errorf("the SMTP server accepted messages with logins %q", got)
		}
		return nil
	})
	// A failing receiver: exit 1 both ways, with the same error.
	rcv.set(http.StatusBadGateway, nil)
	_, gotErr, code := twin("notification", "test", "TWIN-hook")
	_, wantErr, _ := e.zk("notification", "test", "zk-hook")
	if code != 1 || !strings.Contains(gotErr, "HTTP 502") || gotErr != strings.ReplaceAll(wantErr, "zk-", "ap-") {
		t.Fatalf("a failing test through the API: exit %d\n%s\nwith ZooKeeper:\n%s", code, gotErr, wantErr)
	}
	rcv.set(0, nil)

	// Detached: several events at once; an event not attached changes
	// nothing (exit 1 both ways).
	before := state()
	if _, _, code := twin("notification", "detach", "TWIN-hook", "--template", "tpl", "--on", "started,success"); code != 1 {
		t.Fatalf("detach for an event not attached: exit %d, want 1", code)
	}
	if after := state(); after != before {
		t.Fatalf("a refused detach changed the attachments:\n%s\nwas\n%s", after, before)
	}
	twin("notification", "detach", "TWIN-hook", "--template", "tpl", "--on", "started", "--on", "failure")
	twin("notification", "detach", "TWIN-page", "--inventory", "hosts", "--on", "started")
	same("notification", "list")
	same("notification", "show", "ap-page")
	twin("notification", "delete", "TWIN-page")

	// Parked notices: listed alike, sent back alike; the sender then
	// delivers the one sent back through the API.
	ids := parkNotices(t, e, "zk-hook", "ap-hook", "ap-hook")
	same("notification", "list", "--failed")
	same("notification", "list", "--failed", "--json")
	same("notification", "list", "--pending", "--json")
	if _, _, code := twin("notification", "retry", ids[1], "not-a-notice"); code != 2 {
		t.Fatalf("retry of a bad id: exit %d, want 2", code)
	}
	_, missing := jobs.NewID()
	if _, _, code := twin("notification", "retry", ids[1], jobs.NoticeName(missing, 1, "ap-hook")); code != 1 {
		t.Fatalf("retry of a notice not parked: exit %d, want 1", code)
	}
	if out := same("notification", "list", "--failed"); strings.Count(out, "\n") != 4 {
		t.Fatalf("a refused retry moved notices:\n%s", out)
	}
	if _, errOut, code := e.as(e.alice, "notification", "retry"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's retry: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if out, errOut, code := e.zk("notification", "retry", ids[0]); code != 0 || out != "1 notification(s) sent back for delivery\n" {
		t.Fatalf("retry with ZooKeeper: exit %d: %s%s", code, out, errOut)
	}
	if out := e.ok(e.admin, "notification", "retry", ids[1]); out != "1 notification(s) sent back for delivery\n" {
		t.Fatalf("retry through the API printed %q", out)
	}
	if out := e.ok(e.admin, "notification", "retry"); out != "1 notification(s) sent back for delivery\n" {
		t.Fatalf("retry of all through the API printed %q", out)
	}
	poll.For(t, 2*time.Minute, 50*time.Millisecond, func() error {
		_, seen, _ := rcv.delivered()
		for _, id := range ids {
			if seen[id] != 1 {
				return fmt.Errorf("the webhook received %v, want each of %v once", seen, ids)
			}
		}
		return nil
	})
	same("notification", "list", "--failed")

	// Refused: alice is no system administrator (403 on lists, 404 on a
	// template's changes); nothing is written.
	before = state()
	for _, args := range [][]string{
		{"notification", "list"}, {"notification", "list", "--failed"}, {"notification", "show", "ap-hook"},
		{"notification", "create", "ap-new", "--command", "/bin/true"},
		{"notification", "attach", "ap-hook", "--action", "deploy", "--on", "failure"},
		{"notification", "detach", "ap-hook", "--action", "backup", "--on", "failure"},
		{"notification", "test", "ap-hook"},
		{"notification", "delete", "ap-hook"},
	} {
		if out, errOut, code := e.as(e.alice, args...); code != 1 || out != "" || !strings.Contains(errOut, "API: ") {
			t.Errorf("alice's %v: exit %d, want 1:\n%s%s", args, code, out, errOut)
		}
	}
	if _, errOut, code := e.as(e.alice, "notification", "attach", "ap-hook", "--action", "deploy", "--on", "failure"); !strings.Contains(errOut, "no such notification template") {
		t.Errorf("alice's attach: exit %d, want the 404 message:\n%s", code, errOut)
	}
	// Bad input: exit 2 both ways, nothing printed or written.
	for _, args := range [][]string{
		{"notification", "create", "TWIN-x"},
		{"notification", "create", "TWIN-x", "--webhook", "https://x.example"},
		{"notification", "create", "TWIN-x", "--webhook", "ftp://x", "--secret-file", hookFile},
		{"notification", "create", "bad name", "--command", "/bin/true"},
		{"notification", "attach", "TWIN-hook", "--on", "failure"},
		{"notification", "attach", "TWIN-hook", "--action", "a"},
		{"notification", "attach", "TWIN-hook", "--action", "a", "--on", "done"},
		{"notification", "attach", "TWIN-hook", "--action", "a b", "--on", "failure"},
		{"notification", "detach", "TWIN-hook", "--action", "a", "--template", "t", "--on", "failure"},
		{"notification", "show"},
		{"notification", "test", "TWIN-hook", "extra"},
		{"notification", "list", "extra"},
		{"notification", "retry", "not-a-notice"},
	} {
		if out, _, code := twin(args...); code != 2 || out != "" {
			t.Errorf("%v: exit %d, want 2 without output:\n%s", args, code, out)
		}
	}
	// Not found: exit 1 both ways.
	for _, args := range [][]string{
		{"notification", "show", "TWIN-none"}, {"notification", "test", "TWIN-none"},
		{"notification", "attach", "TWIN-none", "--action", "a", "--on", "failure"},
	} {
		if _, _, code := twin(args...); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
	if after := state(); after != before {
		t.Fatalf("refused commands changed the notification templates:\n%s\nwas\n%s", after, before)
	}
}
