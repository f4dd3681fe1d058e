package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/jobs"
)

// TestLoginRateLimit: failed logins of a user are refused with 429 and
// Retry-After once the user's bucket is empty, even with the right
// password; another user from the same address is still let in until the
// address's bucket is empty too; a limiter refills.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	e.api.logins = newLoginLimiter(LoginLimit{PerUser: 3, PerAddress: 5, Refill: time.Hour})
	login := func(user, pw string) resp {
		return e.do(uAnon, "POST", Prefix+"/login", map[string]string{"username": user, "password": pw})
	}
	for i := 0; i < 3; i++ {
		if r := login(uCarol, "wrong"); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d %s", i, r.status, r.body)
		}
	}
	r := login(uCarol, uCarol+"-password")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d %s", r.status, r.body)
	}
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > 3600 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Basic credentials count as logins too.
	req, _ := http.NewRequest("GET", e.srv.URL+Prefix+"/me", nil)
	req.SetBasicAuth(uCarol, uCarol+"-password")
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("basic credentials of a limited user: %d", res.StatusCode)
	}
	// The address has 2 failures left: another user logs in.
	if r := login(uAuditor, uAuditor+"-password"); r.status != http.StatusOK {
		t.Fatalf("another user: %d %s", r.status, r.body)
	}
	for i := 0; i < 2; i++ {
		login(uNobody, "wrong")
	}
	if r := login(uAuditor, uAuditor+"-password"); r.status != http.StatusTooManyRequests {
		t.Fatalf("after the address's failures: %d %s", r.status, r.body)
	}
	// A bucket refills.
	l := newLoginLimiter(LoginLimit{PerUser: 1, PerAddress: 10, Refill: time.Minute})
	now := time.Now()
	l.failed("u", "a", now)
	if d := l.wait("u", "a", now); d <= 0 || d > time.Minute {
		t.Fatalf("wait %s", d)
	}
	if d := l.wait("u", "a", now.Add(time.Minute)); d != 0 {
		t.Fatalf("after a refill: wait %s", d)
	}
}

// TestClusterOverview: /cluster names no controller and no executor on an
// empty cluster, and counts the queue; /cluster/activity counts the jobs
// a caller may see, per minute, and refuses a bad window.
func TestClusterOverview(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	var c ClusterView
	e.must(200, uNobody, "GET", Prefix+"/cluster", nil).json(t, &c)
	// Two slices and the db job wait for the scheduler (the container runs
	// nothing itself and waits with its slices); nothing is queued.
	if c.Queue != (QueueDepth{Pending: 3}) || c.Quarantined != 0 || len(c.Instances) != 0 || len(c.Controllers) != 0 || c.Controller != "test-controller" {
		t.Fatalf("cluster %+v", c)
	}
	// A plain job goes to the shared queue: counted from the queue.
	if _, err := e.store.Create(context.Background(), jobs.NewJob{Action: "echo"}); err != nil {
		t.Fatal(err)
	}
	e.must(200, uNobody, "GET", Prefix+"/cluster", nil).json(t, &c)
	if c.Queue != (QueueDepth{Pending: 3, Queued: 1, Entries: 1}) {
		t.Fatalf("queue %+v after a plain job", c.Queue)
	}
	var a Activity
	e.must(200, uAdmin, "GET", Prefix+"/cluster/activity", nil).json(t, &a)
	if len(a.Minutes) != 60 || a.Jobs != 4 || a.Minutes[59].Waiting != 4 {
		t.Fatalf("admin's activity: %d minutes, %d jobs, last %+v", len(a.Minutes), a.Jobs, a.Minutes[len(a.Minutes)-1])
	}
	e.must(200, uCarol, "GET", Prefix+"/cluster/activity?minutes=5", nil).json(t, &a)
	if len(a.Minutes) != 5 || a.Jobs != len(f.slices) {
		t.Fatalf("carol's activity: %d minutes, %d jobs", len(a.Minutes), a.Jobs)
	}
	e.must(200, uNobody, "GET", Prefix+"/cluster/activity", nil).json(t, &a)
	if a.Jobs != 0 {
		t.Fatalf("nobody's activity counts %d jobs", a.Jobs)
	}
	e.must(400, uAdmin, "GET", Prefix+"/cluster/activity?minutes=0", nil)
	e.must(401, uAnon, "GET", Prefix+"/cluster", nil)
}

// TestSchedules: a schedule shows its rule and next runs, a PATCH changes
// only what it names, a disabled schedule has no next run, and bad input
// is refused naming what is wrong, with nothing written.
func TestSchedules(t *testing.T) {
	e := newEnv(t)
	e.setup()
	var v ScheduleView
	e.must(201, uCarol, "POST", Prefix+"/schedules", map[string]any{
		"name": "weekly", "description": "every Monday", "cron": "0 9 * * 1", "time-zone": "Europe/Paris",
		"launch": map[string]any{"template": "web", "values": map[string]any{"limit": "w1"}},
	}).json(t, &v)
	if !v.Enabled || len(v.NextRuns) != NextRuns || v.NextRuns[0].Weekday() != time.Monday || v.UID == "" || v.LastRun != nil {
		t.Fatalf("created %+v", v)
	}
	e.must(200, uCarol, "PATCH", Prefix+"/schedules/weekly", map[string]any{"enabled": false}).json(t, &v)
	if v.Enabled || len(v.NextRuns) != 0 || v.Description != "every Monday" || v.Cron != "0 9 * * 1" {
		t.Fatalf("patched %+v", v)
	}
	v = ScheduleView{} // absent fields would keep their old values
	e.must(200, uCarol, "PATCH", Prefix+"/schedules/weekly", map[string]any{"enabled": true, "rrule": "DTSTART:20260101T000000Z RRULE:FREQ=DAILY"}).json(t, &v)
	if v.Cron != "" || v.RRule == "" || len(v.NextRuns) != NextRuns {
		t.Fatalf("an rrule for a cron: %+v", v)
	}
	for _, bad := range []map[string]any{
		{"name": "bad", "cron": "not a cron", "launch": map[string]any{"template": "web"}},
		{"name": "bad", "launch": map[string]any{"template": "web"}},
		{"name": "bad", "cron": "0 9 * * 1", "launch": map[string]any{"template": "nowhere"}},
		{"name": "bad", "cron": "0 9 * * 1", "launch": map[string]any{"template": "web"}, "color": "blue"},
	} {
		r := e.must(400, uAdmin, "POST", Prefix+"/schedules", bad)
		var ae Error
		r.json(t, &ae)
		if ae.Message == "" {
			t.Errorf("%v: no message", bad)
		}
	}
	e.must(404, uAdmin, "GET", Prefix+"/schedules/bad", nil)
	var page struct{ Items []ScheduleView }
	e.must(200, uAdmin, "GET", Prefix+"/schedules?template=web", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Name != "weekly" {
		t.Fatalf("listed %+v", page.Items)
	}
	e.must(200, uNobody, "GET", Prefix+"/schedules", nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("nobody lists %+v", page.Items)
	}
}

// TestSecretsAreWriteOnly: the secret of a notification template and the
// secrets of a credential are taken at creation and never shown again;
// without the credential key a credential is refused, saying what to do.
func TestSecretsAreWriteOnly(t *testing.T) {
	e := newEnv(t)
	const secret = "hunter2-signing-secret"
	r := e.must(201, uAdmin, "POST", Prefix+"/notification-templates", map[string]any{
		"name": "hook", "kind": "webhook", "webhook": map[string]any{"url": "https://example.invalid/hook"}, "secret": secret})
	for _, r := range []resp{r, e.must(200, uAuditor, "GET", Prefix+"/notification-templates/hook", nil), e.must(200, uAdmin, "GET", Prefix+"/notification-templates", nil)} {
		if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), `"has-secret":true`) {
			t.Fatalf("a notification template shows its secret, or not that it has one: %s", r.body)
		}
	}
	e.must(400, uAdmin, "POST", Prefix+"/notification-templates", map[string]any{"name": "bad", "kind": "webhook", "webhook": map[string]any{"url": "ftp://x"}, "secret": "s"})
	e.must(404, uAdmin, "GET", Prefix+"/notification-templates/bad", nil)

	cred := map[string]any{"name": "vault1", "kind": "vault", "secrets": map[string]any{"vault-password": secret}}
	r = e.must(503, uAdmin, "POST", Prefix+"/credentials", cred)
	if !strings.Contains(string(r.body), "--credential-key-file") {
		t.Fatalf("no key: %s", r.body)
	}
	key := e.withCredentialKey()
	r = e.must(201, uAdmin, "POST", Prefix+"/credentials", cred)
	for _, r := range []resp{r, e.must(200, uAuditor, "GET", Prefix+"/credentials/vault1", nil), e.must(200, uAdmin, "GET", Prefix+"/credentials", nil)} {
		if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), `"vault-password"`) {
			t.Fatalf("a credential shows its secret, or not which are set: %s", r.body)
		}
	}
	// The secret is sealed: it opens with the key.
	c, err := credential.NewStore(e.conn, key).Open(context.Background(), "vault1")
	if err != nil || c.Secrets.VaultPassword != secret {
		t.Fatalf("opened %v, %v", c, err)
	}
	e.must(400, uAdmin, "POST", Prefix+"/credentials", map[string]any{"name": "bad", "kind": "nothing"})

	// Changes keep the secrets unless given new ones, and never show them.
	r = e.must(200, uAdmin, "PATCH", Prefix+"/credentials/vault1", map[string]any{"description": "the vault", "vault-id": "prod"})
	if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), `"vault-id":"prod"`) || !strings.Contains(string(r.body), `"updated"`) {
		t.Fatalf("PATCH answered %s", r.body)
	}
	if c, err := credential.NewStore(e.conn, key).Open(context.Background(), "vault1"); err != nil || c.Secrets.VaultPassword != secret || c.Description != "the vault" {
		t.Fatalf("after PATCH: %+v, %v", c, err)
	}
	r = e.must(200, uAdmin, "PUT", Prefix+"/credentials/vault1", map[string]any{"kind": "vault", "secrets": map[string]any{"vault-password": "an0ther-" + secret}})
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), "the vault") {
		t.Fatalf("PUT answered %s (a secret, or a field it should have cleared)", r.body)
	}
	if c, err := credential.NewStore(e.conn, key).Open(context.Background(), "vault1"); err != nil || c.Secrets.VaultPassword != "an0ther-"+secret || c.VaultID != "" {
		t.Fatalf("after PUT: %+v, %v", c, err)
	}
	e.must(400, uAdmin, "PUT", Prefix+"/credentials/vault1", map[string]any{"description": "no kind"})
	e.must(400, uAdmin, "PATCH", Prefix+"/credentials/vault1", map[string]any{"name": "renamed"})
	e.must(400, uAdmin, "PATCH", Prefix+"/credentials/vault1", map[string]any{"secrets": map[string]any{"ssh-key": "x"}})
	r = e.must(200, uAdmin, "PATCH", Prefix+"/notification-templates/hook", map[string]any{"description": "signed"})
	if strings.Contains(string(r.body), secret) || !strings.Contains(string(r.body), `"has-secret":true`) || !strings.Contains(string(r.body), "example.invalid/hook") {
		t.Fatalf("PATCH of a notification template answered %s", r.body)
	}
	e.must(400, uAdmin, "PATCH", Prefix+"/notification-templates/hook", map[string]any{"secret": ""})
	e.must(400, uAdmin, "PATCH", Prefix+"/notification-templates/hook", map[string]any{"has-secret": false})
	e.must(400, uAdmin, "PUT", Prefix+"/notification-templates/hook", map[string]any{"kind": "webhook"})
	r = e.must(200, uAdmin, "PUT", Prefix+"/notification-templates/hook", map[string]any{"kind": "webhook", "webhook": map[string]any{"url": "https://example.invalid/v2"}, "secret": "n3w-" + secret})
	if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), "signed") {
		t.Fatalf("PUT of a notification template answered %s", r.body)
	}
	e.must(204, uAdmin, "DELETE", Prefix+"/credentials/vault1", nil)
	e.must(404, uAdmin, "GET", Prefix+"/credentials/vault1", nil)
}
