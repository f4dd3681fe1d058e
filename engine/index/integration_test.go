package index_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// TestRealElasticsearch runs the scenario below against a real cluster.
func TestRealElasticsearch(t *testing.T) {
	u := os.Getenv("JOBENGINE_TEST_ES_URL")
	if u == "" {
		t.Skip("JOBENGINE_TEST_ES_URL is not set; set it to an Elasticsearch 8 URL, credentials included " +
			"(e.g. http://elastic:changeme@127.0.0.1:9200), to run this test against a real cluster")
	}
	clusterScenario(t, u)
}

// TestClusterScenarioOnTestServer keeps the scenario itself working when no
// real cluster is at hand.
func TestClusterScenarioOnTestServer(t *testing.T) {
	s := estest.Start(t, estest.Options{Version: "8.19.0", Username: "elastic", Password: "changeme"})
	clusterScenario(t, strings.Replace(s.URL(), "http://", "http://elastic:changeme@", 1))
}

// clusterScenario drives a cluster at rawURL through the public API, in
// indices of its own that it deletes afterwards.
func clusterScenario(t *testing.T, rawURL string) {
	ctx := ctxT(t, 2*time.Minute)
	log, _ := logs(t)
	prefix := "jobengine-test-" + randHex(4) + "-"
	c, err := index.New(index.Config{Hosts: []string{rawURL}, Prefix: prefix}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range []string{"/" + c.JobsIndex() + "," + c.EventsIndex(), "/_index_template/" + c.JobsIndex(), "/_index_template/" + c.EventsIndex()} {
			if err := deleteRaw(rawURL, p); err != nil {
				t.Errorf("cleaning up %s: %v", p, err)
			}
		}
		_ = c.Close(context.Background())
	})
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureTemplates(ctx); err != nil {
		t.Fatal(err)
	}

	a1 := newJob("scenario-deploy", 0)
	a2 := next(a1, jobs.Running)
	a3 := next(a2, jobs.Failed)
	b1 := newJob("scenario-backup", 1)
	if _, err := c.IndexJobs(ctx, a1, a3, b1); err != nil {
		t.Fatal(err)
	}
	res, err := c.IndexJobs(ctx, a2)
	if err != nil || !res[0].Superseded {
		t.Fatalf("an older version after a newer one: %+v %v", res, err)
	}
	if _, err := c.IndexEvents(ctx, index.StateEvent(a1), index.StateEvent(a2), index.StateEvent(a3),
		index.Event{Job: a1.ID, Type: index.EventLog, Level: "error", Message: "it broke", Time: a3.Updated.Add(time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	// A redelivered state event keeps one copy.
	if _, err := c.IndexEvents(ctx, index.StateEvent(a3)); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	got, err := c.GetJob(ctx, a1.ID)
	if err != nil || got.Version != 3 || got.State != jobs.Failed {
		t.Fatalf("GetJob = %+v, %v", got, err)
	}
	list, err := c.SearchJobs(ctx, index.JobQuery{State: "failed"})
	if err != nil || len(list) != 1 || list[0].ID != a1.ID {
		t.Fatalf("SearchJobs(failed) = %v, %v", list, err)
	}
	list, err = c.SearchJobs(ctx, index.JobQuery{})
	if err != nil || len(list) != 2 || list[0].ID != b1.ID {
		t.Fatalf("SearchJobs() = %v, %v (want newest first)", list, err)
	}
	evs, err := c.JobEvents(ctx, a1.ID, time.Time{}, 0)
	if err != nil || len(evs) != 4 || evs[3].Message != "it broke" {
		t.Fatalf("JobEvents = %+v, %v", evs, err)
	}
	evs, err = c.JobEvents(ctx, a1.ID, evs[2].Time, 0)
	if err != nil || len(evs) != 1 || evs[0].Level != "error" {
		t.Fatalf("JobEvents after the final state = %+v, %v", evs, err)
	}
	if _, err := c.GetJob(ctx, newJob("x", 0).ID); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("GetJob of an unknown job: %v", err)
	}

	// The outbox path end to end, when ZooKeeper is at hand: a poison
	// document is set aside, the rest indexed.
	t.Run("pump", func(t *testing.T) {
		zc := dial(t, "", root(t), 0)
		ok := newJob("scenario-pump", 2)
		write(t, zc, ok)
		poison := newJob("scenario-pump", 3)
		putEntry(t, zc, index.EntryName(poison.UUID(), 1),
			[]byte(fmt.Sprintf(`{"id":%q,"action":"scenario-pump","state":"QUEUED","version":1,"created":"not a date"}`, poison.ID)))
		p, _ := runPump(t, zc, c, log, "scenario")
		outboxEmpty(t, zc)
		poll.For(t, wait, 50*time.Millisecond, func() error {
			_, err := c.GetJob(ctx, ok.ID)
			return err
		})
		if st := p.Stats(); st.Failed != 1 || st.Indexed != 1 {
			t.Fatalf("pump stats: %+v", st)
		}
	})
}

// deleteRaw sends DELETE path to the cluster at rawURL, under the URL's
// path prefix (a cluster behind a proxy). A resource that is not there is
// fine, when Elasticsearch says so: any other 404 (a wrong path, a proxy's
// page) is an error, or the test would leak its indices unnoticed.
func deleteRaw(rawURL, path string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	target := u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequest(http.MethodDelete, target, nil)
	if err != nil {
		return err
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode == http.StatusNotFound {
		var e struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if res.Header.Get("X-Elastic-Product") == "Elasticsearch" &&
			(e.Error.Type == "index_not_found_exception" || e.Error.Type == "resource_not_found_exception") {
			return nil
		}
		return fmt.Errorf("DELETE %s: 404 that is not Elasticsearch's (a wrong URL or path prefix?): %.200s", target, body)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("DELETE %s: %s: %.200s", target, res.Status, body)
	}
	return nil
}

// A cluster behind a reverse proxy under a path prefix: the client, the
// templates, the pump and the test's own cleanup all go under it, and the
// cleanup leaves nothing behind.
func TestClusterScenarioBehindAPathPrefix(t *testing.T) {
	s := estest.Start(t, estest.Options{Version: "8.19.0", Username: "elastic", Password: "changeme", PathPrefix: "/es"})
	t.Cleanup(func() { // runs after the scenario's own cleanup
		if ix := s.Indices(); len(ix) != 0 {
			t.Errorf("indices left behind the prefix: %v", ix)
		}
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/_index_template", nil)
		req.SetBasicAuth("elastic", "changeme")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var tpls struct {
			IndexTemplates []struct {
				Name string `json:"name"`
			} `json:"index_templates"`
		}
		if err := json.NewDecoder(res.Body).Decode(&tpls); err != nil || len(tpls.IndexTemplates) != 0 {
			t.Errorf("templates left behind the prefix: %+v (%v)", tpls, err)
		}
	})
	raw := strings.Replace(s.URL(), "http://", "http://elastic:changeme@", 1)
	clusterScenario(t, raw)

	// The cleanup itself fails on a wrong path instead of passing on a 404.
	noPrefix := strings.TrimSuffix(raw, "/es")
	if err := deleteRaw(noPrefix, "/jobengine-test-none"); err == nil {
		t.Fatal("deleteRaw without the prefix passed on a 404 that is not Elasticsearch's")
	}
	if err := deleteRaw(raw, "/jobengine-test-none"); err != nil {
		t.Fatalf("deleteRaw of a missing index under the prefix: %v", err)
	}
}
