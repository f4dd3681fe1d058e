package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/systemjob"
)

// TestInventorySources sets, shows, lists, changes, updates and removes
// the source of an inventory through the API, under the inventory's
// roles: read shows it, execute starts an update, admin writes it; a
// project a source uses is not deleted; bad input is named.
func TestInventorySources(t *testing.T) {
	e := newEnv(t)
	e.setup() // inventory hosts (carol reads it), project site
	src := Prefix + "/inventories/hosts/source"
	body := map[string]any{"project": "site", "path": "inv/hosts.yml", "update-on-launch": true, "cache-timeout": 60}

	e.must(http.StatusNotFound, uAdmin, "GET", src, nil)
	for user, want := range map[string]int{uAnon: 401, uNobody: 404, uCarol: 403, uAuditor: 403} {
		e.must(want, user, "PUT", src, body)
	}
	var got sourceView
	e.must(http.StatusCreated, uAdmin, "PUT", src, body).json(t, &got)
	if got.Inventory != "hosts" || got.Project != "site" || got.Path != "inv/hosts.yml" || !got.UpdateOnLaunch || got.CacheTimeout != 60 {
		t.Fatalf("PUT answered %+v", got)
	}
	e.must(http.StatusOK, uCarol, "GET", src, nil).json(t, &got)
	if got.Path != "inv/hosts.yml" {
		t.Fatalf("GET answered %+v", got)
	}
	e.must(http.StatusNotFound, uNobody, "GET", src, nil)

	var page struct {
		Items []sourceView `json:"items"`
	}
	e.must(http.StatusOK, uCarol, "GET", Prefix+"/inventory-sources?project=site", nil).json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Inventory != "hosts" {
		t.Fatalf("list: %+v", page.Items)
	}
	e.must(http.StatusOK, uNobody, "GET", Prefix+"/inventory-sources", nil).json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("nobody lists %+v", page.Items)
	}

	e.must(http.StatusOK, uAdmin, "PATCH", src, map[string]any{"path": "inv/other.yml"}).json(t, &got)
	if got.Path != "inv/other.yml" || !got.UpdateOnLaunch || got.Project != "site" {
		t.Fatalf("PATCH answered %+v", got)
	}
	for name, c := range map[string]struct {
		body any
		want string
	}{
		"path outside":     {map[string]any{"project": "site", "path": "../x.yml"}, "path"},
		"no such project":  {map[string]any{"project": "nope", "path": "x.yml"}, "project nope does not exist"},
		"cache, no update": {map[string]any{"project": "site", "path": "x.yml", "cache-timeout": 5}, "cache-timeout goes with update-on-launch"},
		"the engine's":     {map[string]any{"project": "site", "path": "x.yml", "last-update-job": "job/x"}, "last-update-job"},
	} {
		r := e.do(uAdmin, "PUT", src, c.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", name, r.status, r.body, c.want)
		}
	}

	// Updating needs execute on the inventory; carol only reads it.
	e.must(http.StatusForbidden, uCarol, "POST", src+"/update", nil)
	e.must(http.StatusCreated, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol,
		Kind: access.KindInventory, Object: "hosts", Role: access.RoleExecute})
	var l launched
	e.must(http.StatusCreated, uCarol, "POST", src+"/update", nil).json(t, &l)
	if l.Job == nil || l.Job.Action != invsource.UpdateAction || l.Job.Inventory != "hosts" {
		t.Fatalf("update started %+v", l.Job)
	}
	e.must(http.StatusOK, uCarol, "GET", src, nil).json(t, &got)
	if got.LastUpdateJob != l.Job.ID {
		t.Fatalf("the source records %q, want %s", got.LastUpdateJob, l.Job.ID)
	}

	r := e.must(http.StatusConflict, uAdmin, "DELETE", Prefix+"/projects/site", nil)
	if !strings.Contains(string(r.body), "project site is the source of inventory hosts") {
		t.Errorf("deleting the project: %s", r.body)
	}
	e.must(http.StatusForbidden, uCarol, "DELETE", src, nil)
	e.must(http.StatusNoContent, uAdmin, "DELETE", src, nil)
	e.must(http.StatusNotFound, uAdmin, "GET", src, nil)
	e.must(http.StatusNotFound, uAdmin, "POST", src+"/update", nil)
	e.must(http.StatusNoContent, uAdmin, "DELETE", Prefix+"/projects/site", nil)
}

// TestSystemJobsThroughTheAPI: every caller lists the kinds; only a
// system administrator launches one, PENDING with the system key and
// impact 5; a bad kind or age is named.
func TestSystemJobsThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	e.setup()
	var kinds struct {
		Items []systemjob.KindInfo `json:"items"`
	}
	e.must(http.StatusOK, uNobody, "GET", Prefix+"/system-jobs", nil).json(t, &kinds)
	if len(kinds.Items) != len(systemjob.Kinds) || kinds.Items[0].Kind != systemjob.CleanupJobs {
		t.Fatalf("kinds %+v", kinds.Items)
	}
	launch := Prefix + "/system-jobs/cleanup_jobs/launch"
	for user, want := range map[string]int{uAnon: 401, uNobody: 403, uCarol: 403, uAuditor: 403} {
		e.must(want, user, "POST", launch, map[string]any{"days": 30})
	}
	var l launched
	e.must(http.StatusCreated, uAdmin, "POST", launch, map[string]any{"days": 30}).json(t, &l)
	if l.Job == nil || l.Job.Action != jobs.SystemAction || l.Job.State != jobs.Pending || l.Job.Impact != jobs.SystemImpact ||
		!slices.Equal(l.Job.ConcurrencyKeys, []string{jobs.SystemKey}) {
		t.Fatalf("launched %+v", l.Job)
	}
	e.must(http.StatusCreated, uAdmin, "POST", Prefix+"/system-jobs/cleanup_tokens/launch", nil)
	e.must(http.StatusNotFound, uAdmin, "POST", Prefix+"/system-jobs/cleanup_all/launch", nil)
	for body, want := range map[string]string{`{"days": -1}`: "0–36500", `{"days": 3, "x": 1}`: "x"} {
		r := e.do(uAdmin, "POST", launch, json.RawMessage(body))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %d %s, want 400 naming %q", body, r.status, r.body, want)
		}
	}
	r := e.do(uAdmin, "POST", Prefix+"/system-jobs/cleanup_tokens/launch", map[string]any{"days": 3})
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "takes no days") {
		t.Errorf("days for cleanup_tokens: %d %s", r.status, r.body)
	}
}
