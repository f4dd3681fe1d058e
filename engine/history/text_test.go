package history

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// TestListByText searches live jobs and the history by their names, their
// status message and their log, within the caller's scope.
func TestListByText(t *testing.T) {
	e := newEnv(t, true)
	ctx := ctxT(t)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	deploy := indexed("ansible", jobs.Failed, at)
	deploy.Template, deploy.StatusMessage = "deploy-web", "3 hosts: ok=2 failed=1; failed hosts: web2"
	backup := indexed("echo", jobs.Success, at.Add(time.Second))
	backup.Template, backup.CreatedBy = "backup", "user/carol"
	quiet := indexed("echo", jobs.Success, at.Add(2*time.Second))
	quiet.Template = "quiet"
	e.index(deploy, backup, quiet)
	live := e.live("sleep", at.Add(3*time.Second))
	// A log line of the quiet job mentions a disk; so does one of the live job.
	for i, j := range []*jobs.Job{quiet, live} {
		if _, err := e.ix.IndexEvents(ctx, index.Event{ID: "ev" + string(rune('a'+i)), Job: j.ID, Type: index.EventLog,
			Time: at.Add(time.Duration(i) * time.Second), Level: "info", Message: "Disk Full on /var"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text  string
		scope *jobs.Scope
		want  []*jobs.Job
	}{
		{"deploy", nil, []*jobs.Job{deploy}},                                  // a template's prefix
		{"web2", nil, []*jobs.Job{deploy}},                                    // a word of the status message
		{"FAILED hosts", nil, []*jobs.Job{deploy}},                            // words, any case
		{"carol", nil, []*jobs.Job{backup}},                                   // the creator without user/
		{strings.TrimPrefix(backup.ID, "job/")[:8], nil, []*jobs.Job{backup}}, // an id's prefix
		{live.ID, nil, []*jobs.Job{live}},                                     // a whole id
		{"sle", nil, []*jobs.Job{live}},                                       // an action's prefix
		{"disk", nil, []*jobs.Job{live, quiet}},                               // a word of a log line, live or not
		{"disk", &jobs.Scope{Templates: []string{"quiet"}}, []*jobs.Job{quiet}},
		{"deploy", &jobs.Scope{Templates: []string{"backup"}}, nil},
		{"nothing-like-it", nil, nil},
	} {
		page, err := e.reader().List(ctx, Query{Text: c.text, Launch: jobs.LaunchFilter{Within: c.scope}})
		if err != nil || page.HistoryErr != nil {
			t.Fatal(c.text, err, page.HistoryErr)
		}
		var want []Job
		for _, j := range c.want {
			src := Indexed
			if j == live {
				src = Live
			}
			want = append(want, Job{j, src})
		}
		if ids(page.Jobs) != ids(want) {
			t.Errorf("search %q within %+v: %s, want %s", c.text, c.scope, ids(page.Jobs), ids(want))
		}
	}

	// Without a history, live jobs are searched by their fields only.
	if page, err := New(Config{Store: e.store}).List(ctx, Query{Text: "sle"}); err != nil || ids(page.Jobs) != ids([]Job{{live, Live}}) {
		t.Fatalf("search without a history: %s, %v", ids(page.Jobs), err)
	}
	// A history that is down leaves the live jobs searchable, and says so.
	e.es.Down()
	page, err := e.reader().List(ctx, Query{Text: "sle"})
	if err != nil || page.HistoryErr == nil || ids(page.Jobs) != ids([]Job{{live, Live}}) {
		t.Fatalf("search with the history down: %s, %v, %v", ids(page.Jobs), err, page.HistoryErr)
	}
	if _, err := e.reader().List(ctx, Query{Text: strings.Repeat("x", MaxText+1)}); !errors.Is(err, ErrQuery) {
		t.Fatalf("a search text too long: %v, want ErrQuery", err)
	}
}
