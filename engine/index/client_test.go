package index_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  index.Config
		want string
	}{
		{"no hosts", index.Config{}, "no Elasticsearch hosts"},
		{"bad scheme", index.Config{Hosts: []string{"ftp://es:9200"}}, "scheme must be http or https"},
		{"upper-case prefix", index.Config{Hosts: []string{"es"}, Prefix: "Jobs-"}, "must be lowercase"},
		{"prefix with a comma", index.Config{Hosts: []string{"es"}, Prefix: "a,b"}, "must not contain"},
		{"prefix starting with _", index.Config{Hosts: []string{"es"}, Prefix: "_x"}, "must not start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := index.New(tc.cfg, nil)
			if !errors.Is(err, index.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
	c, err := index.New(index.Config{Hosts: []string{"es1", "http://u:secret@es2:9201"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts() != "http://es1:9200,http://u@es2:9201" {
		t.Fatalf("hosts = %q (want the default port added and no password)", c.Hosts())
	}
	// A path prefix is kept (a proxy: its scheme's port); a bare "/" is none.
	c, err = index.New(index.Config{Hosts: []string{"https://proxy/es/", "http://es3/", "http://proxy:8080/a/b"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts() != "https://proxy/es,http://es3:9200,http://proxy:8080/a/b" {
		t.Fatalf("hosts with paths = %q", c.Hosts())
	}
	if _, err := index.New(index.Config{Hosts: []string{"https://proxy/es?x=1"}}, nil); !errors.Is(err, index.ErrConfig) {
		t.Fatalf("a host with a query: %v", err)
	}
	if c.JobsIndex() != "jobengine-jobs" || c.EventsIndex() != "jobengine-job-events" {
		t.Fatalf("index names: %s %s", c.JobsIndex(), c.EventsIndex())
	}
}

func TestPingSaysWhatIsWrong(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{Username: "elastic", Password: "right"})

	good, _ := index.New(index.Config{Hosts: []string{s.URL()}, Username: "elastic", Password: "right"}, nil)
	if err := good.Ping(ctx); err != nil {
		t.Fatalf("ping with the right password: %v", err)
	}
	bad, _ := index.New(index.Config{Hosts: []string{s.URL()}, Username: "elastic", Password: "wrong"}, nil)
	if err := bad.Ping(ctx); !errors.Is(err, index.ErrAuth) || !strings.Contains(err.Error(), "username and password") {
		t.Fatalf("wrong password: %v", err)
	}

	s.Down()
	if err := good.Ping(ctx); !index.Retryable(err) || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), s.URL()) {
		t.Fatalf("server down: %v", err)
	}

	notES := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"hello":"world"}`))
	}))
	defer notES.Close()
	other, _ := index.New(index.Config{Hosts: []string{notES.URL}}, nil)
	if err := other.Ping(ctx); !errors.Is(err, index.ErrConfig) || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Fatalf("a server that is not Elasticsearch: %v", err)
	}
}

func TestEnsureTemplatesInstallsExplicitMappings(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{})
	c := newClient(t, s, nil)
	for i := 0; i < 2; i++ { // idempotent
		if err := c.EnsureTemplates(ctx); err != nil {
			t.Fatalf("EnsureTemplates #%d: %v", i+1, err)
		}
	}
	if got := strings.Join(s.Indices(), ","); got != "jobengine-job-events,jobengine-jobs" {
		t.Fatalf("indices = %s", got)
	}
	tpl, ok := s.Template("jobengine-jobs")
	if !ok || !strings.Contains(string(tpl), `"index_patterns":["jobengine-jobs"]`) {
		t.Fatalf("jobs template: %s", tpl)
	}
	var m struct {
		Dynamic    any `json:"dynamic"`
		Properties map[string]struct {
			Type       string          `json:"type"`
			Enabled    *bool           `json:"enabled"`
			Properties json.RawMessage `json:"properties"`
		} `json:"properties"`
	}
	raw, _ := s.Mapping("jobengine-jobs")
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": "keyword", "state": "keyword", "action": "keyword", "executor": "keyword", "tags": "keyword",
		"parent-job": "keyword", "created": "date", "updated": "date", "started": "date",
		"time-of-status-change": "date", "progress": "integer", "priority": "integer", "attempt": "integer",
		"version": "long", "duration": "double", "status-message": "text",
	}
	for f, typ := range want {
		if got := m.Properties[f].Type; got != typ {
			t.Errorf("jobs mapping: %s is %q, want %q", f, got, typ)
		}
	}
	if p := m.Properties["payload"]; p.Enabled == nil || *p.Enabled {
		t.Errorf("payload must be an object with enabled: false, got %+v", p)
	}
	if !strings.Contains(string(m.Properties["target-resource"].Properties), `"href":{"ignore_above":1024,"type":"keyword"}`) {
		t.Errorf("target-resource.href is not a keyword: %s", m.Properties["target-resource"].Properties)
	}
	if fmt.Sprint(m.Dynamic) != "false" {
		t.Errorf("dynamic = %v, want false", m.Dynamic)
	}
	ev, _ := s.Mapping("jobengine-job-events")
	for _, want := range []string{`"time":{"type":"date_nanos"}`, `"job":{"ignore_above":1024,"type":"keyword"}`, `"type":{"ignore_above":1024,"type":"keyword"}`} {
		if !strings.Contains(string(ev), want) {
			t.Errorf("events mapping lacks %s: %s", want, ev)
		}
	}
}

func TestIndexJobsUsesExternalVersions(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{})
	c := newClient(t, s, nil)
	v1 := newJob("deploy", 0)
	v2 := next(v1, jobs.Running)
	v3 := next(v2, jobs.Success)

	if _, err := c.IndexJobs(ctx, v2); err != nil {
		t.Fatal(err)
	}
	res, err := c.IndexJobs(ctx, v1, v3)
	if err != nil {
		t.Fatalf("an older version must not be an error: %v", err)
	}
	if !res[0].Superseded || res[0].Err != nil || res[0].Status != 409 {
		t.Fatalf("older version: %+v, want Superseded after a 409", res[0])
	}
	if res[1].Superseded || res[1].Err != nil {
		t.Fatalf("newer version: %+v", res[1])
	}
	// Same version again (a redelivery): also superseded, nothing changes.
	if res, err := c.IndexJobs(ctx, v3); err != nil || !res[0].Superseded {
		t.Fatalf("redelivery: %+v %v", res, err)
	}
	d, ok := s.Doc(c.JobsIndex(), v1.UUID())
	if !ok || d.Version != 3 || d.Writes != 2 {
		t.Fatalf("stored: %+v, want version 3 written twice", d)
	}
	got, err := c.GetJob(ctx, v1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != jobs.Success || got.Version != 3 || string(got.Payload) != string(v1.Payload) {
		t.Fatalf("GetJob = %+v", got)
	}
	if _, err := c.GetJob(ctx, newJob("x", 0).ID); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("GetJob of an unknown job: %v", err)
	}
}

func TestIndexJobsRetryableAndPartialFailures(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{})
	c := newClient(t, s, nil)
	if err := c.EnsureTemplates(ctx); err != nil {
		t.Fatal(err)
	}
	a, b, d, e := newJob("a", 0), newJob("b", 1), newJob("d", 2), newJob("e", 3)

	// 429 on the whole request: every item can be retried, none is indexed.
	s.FailNext(1, http.StatusTooManyRequests)
	res, err := c.IndexJobs(ctx, a, b)
	if !index.Retryable(err) || !index.Retryable(res[0].Err) || !index.Retryable(res[1].Err) || s.Count(c.JobsIndex()) != 0 {
		t.Fatalf("429: %v %+v", err, res)
	}
	if !strings.Contains(res[0].Err.Error(), "429") {
		t.Fatalf("the error does not say 429: %v", res[0].Err)
	}
	// A short 503 is ridden over by the client's own quick retries.
	s.FailNext(2, http.StatusServiceUnavailable)
	if _, err := c.IndexJobs(ctx, a); err != nil {
		t.Fatalf("after a short 503: %v", err)
	}

	// A partial failure: one document refused for good, one for now.
	s.Reject(b.UUID(), 400, "mapper_parsing_exception", "failed to parse field [created] of type [date]")
	s.Reject(d.UUID(), 429, "es_rejected_execution_exception", "rejected execution")
	res, err = c.IndexJobs(ctx, b, d, e)
	if err == nil {
		t.Fatal("a partial failure returned no error")
	}
	if !errors.Is(res[0].Err, index.ErrRejected) || index.Retryable(res[0].Err) || !strings.Contains(res[0].Err.Error(), "mapper_parsing_exception") {
		t.Errorf("refused document: %v", res[0].Err)
	}
	if !index.Retryable(res[1].Err) {
		t.Errorf("document rejected with 429: %v", res[1].Err)
	}
	if res[2].Err != nil {
		t.Errorf("good document: %v", res[2].Err)
	}
	if _, ok := s.Doc(c.JobsIndex(), e.UUID()); !ok {
		t.Error("the good document of a partially failed request is not indexed")
	}
	if _, ok := s.Doc(c.JobsIndex(), b.UUID()); ok {
		t.Error("the refused document is indexed")
	}
}

func TestSearchJobsAndEvents(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{RefreshInterval: -1})
	c := newClient(t, s, nil)
	var all []*jobs.Job
	for i := 0; i < 6; i++ {
		action := "deploy"
		if i%2 == 1 {
			action = "backup"
		}
		j := newJob(action, i)
		if i < 4 {
			j = next(next(j, jobs.Running), map[bool]jobs.State{true: jobs.Success, false: jobs.Failed}[i != 2])
		}
		all = append(all, j)
	}
	if _, err := c.IndexJobs(ctx, all...); err != nil {
		t.Fatal(err)
	}
	if got, err := c.SearchJobs(ctx, index.JobQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("before a refresh nothing is searchable: %d %v", len(got), err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ids := func(js []jobs.Job) string {
		var out []string
		for _, j := range js {
			for i, a := range all {
				if a.ID == j.ID {
					out = append(out, string(rune('0'+i)))
				}
			}
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		q    index.JobQuery
		want string
	}{
		{index.JobQuery{}, "5,4,3,2,1,0"},
		{index.JobQuery{Limit: 2}, "5,4"},
		{index.JobQuery{State: "success"}, "3,1,0"},
		{index.JobQuery{Action: "backup"}, "5,3,1"},
		{index.JobQuery{State: "FAILED", Action: "deploy"}, "2"},
		{index.JobQuery{State: "QUEUED", Action: "nothing"}, ""},
	} {
		got, err := c.SearchJobs(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if ids(got) != tc.want {
			t.Errorf("SearchJobs(%+v) = %s, want %s", tc.q, ids(got), tc.want)
		}
	}
	if _, err := c.SearchJobs(ctx, index.JobQuery{State: "DONE"}); !errors.Is(err, index.ErrConfig) {
		t.Errorf("unknown state: %v", err)
	}

	// Page by page after a position: the rest of the order, and jobs created
	// in the same millisecond are told apart by their id.
	pos := func(i int) *index.JobPosition { return &index.JobPosition{Created: all[i].Created, ID: all[i].ID} }
	for _, tc := range []struct {
		q    index.JobQuery
		want string
	}{
		{index.JobQuery{Limit: 2, After: pos(4)}, "3,2"},
		{index.JobQuery{After: pos(1)}, "0"},
		{index.JobQuery{After: pos(0)}, ""},
		{index.JobQuery{Action: "backup", After: pos(4)}, "3,1"},
		{index.JobQuery{After: &index.JobPosition{Created: all[3].Created.Add(999 * time.Microsecond), ID: "job/~"}}, "3,2,1,0"},
		{index.JobQuery{After: &index.JobPosition{Created: all[3].Created, ID: "job/"}}, "2,1,0"},
	} {
		got, err := c.SearchJobs(ctx, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if ids(got) != tc.want {
			t.Errorf("SearchJobs(after %+v) = %s, want %s", *tc.q.After, ids(got), tc.want)
		}
	}

	j := all[0]
	base := epoch.Add(time.Hour)
	evs := []index.Event{index.StateEvent(j)}
	for i := 0; i < 5; i++ {
		evs = append(evs, index.Event{Job: j.ID, Type: index.EventLog, Level: "info", Message: "line " + string(rune('0'+i)), Time: base.Add(time.Duration(i) * time.Microsecond)})
	}
	evs = append(evs, index.Event{Job: all[1].ID, Type: index.EventLog, Message: "other job", Time: base})
	if _, err := c.IndexEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.JobEvents(ctx, j.ID, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0].Type != index.EventState || got[0].ID != index.StateEventID(j.UUID(), j.Version) {
		t.Fatalf("events: %+v", got)
	}
	// Following: everything after the third log line, sub-millisecond apart.
	got, err = c.JobEvents(ctx, strings.TrimPrefix(j.ID, "job/"), base.Add(2*time.Microsecond), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Message != "line 3" || got[1].Message != "line 4" {
		t.Fatalf("events after line 2: %+v", got)
	}
}
