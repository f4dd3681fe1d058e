package api

import (
	"net/url"
	"strings"
	"testing"
)

// TestJobSearch finds jobs by text through the API, each user only among
// the jobs it may see, and refuses a search text too long.
func TestJobSearch(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	find := func(user, text string) []string {
		var p jobPage
		e.must(200, user, "GET", Prefix+"/jobs?search="+url.QueryEscape(text), nil).json(t, &p)
		var out []string
		for _, j := range p.Items {
			out = append(out, j.ID)
		}
		return out
	}
	if got := find(uAdmin, "db"); len(got) != 1 || got[0] != f.dbJob {
		t.Errorf("admin searching db: %v, want %s", got, f.dbJob)
	}
	if got := find(uAdmin, uid(f.dbJob)[:8]); len(got) != 1 || got[0] != f.dbJob {
		t.Errorf("admin searching an id's prefix: %v, want %s", got, f.dbJob)
	}
	if got := find(uAdmin, "web"); len(got) != 3 {
		t.Errorf("admin searching web: %v, want the container and its 2 slices", got)
	}
	// Carol may read web, not db: she finds web's jobs and not db's.
	if got := find(uCarol, "db"); len(got) != 0 {
		t.Errorf("carol searching db: %v, want nothing (she may not read db)", got)
	}
	if got := find(uCarol, "web"); len(got) != 3 {
		t.Errorf("carol searching web: %v, want 3 jobs", got)
	}
	if got := find(uNobody, "web"); len(got) != 0 {
		t.Errorf("nobody searching web: %v", got)
	}
	r := e.must(400, uAdmin, "GET", Prefix+"/jobs?search="+strings.Repeat("x", 201), nil)
	if !strings.Contains(string(r.body), `"field":"search"`) {
		t.Errorf("a long search: %s, want an error naming search", r.body)
	}
}
