package command

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// TestHistoryFromElasticsearch checks that list, show, wait and logs merge
// the live jobs in ZooKeeper with the history in Elasticsearch, the live
// copy winning.
func TestHistoryFromElasticsearch(t *testing.T) {
	es := estest.Start(t, estest.Options{})
	const prefix = "t-history-"
	e := newJobEnv(t)
	e.extra = []string{"--es-hosts", es.URL(), "--es-index-prefix", prefix}
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.ctx()
	indexJobs := func(js ...*jobs.Job) {
		t.Helper()
		if _, err := ix.IndexJobs(ctx, js...); err != nil {
			t.Fatal(err)
		}
		if err := ix.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A live job: its creation is recorded in the outbox for the indexer,
	// and its indexed copy falls behind.
	live := e.add("a")
	liveUID := strings.TrimPrefix(live, "job/")
	if !e.exists("index/outbox/" + index.EntryName(liveUID, 1)) {
		t.Fatal("job add with --es-hosts wrote no outbox entry")
	}
	j, _, err := e.store.Get(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	indexJobs(j)
	e.advance(live, jobs.Running)

	// Two jobs that left ZooKeeper and live on in the history.
	old := func(st jobs.State, age time.Duration) *jobs.Job {
		id, _ := jobs.NewID()
		created := time.Now().UTC().Add(-age).Truncate(time.Millisecond)
		rc := 0
		if st == jobs.Failed {
			rc = 1
		}
		return &jobs.Job{ID: id, Action: "a", State: st, Priority: 100, Progress: 100, ReturnCode: &rc, StatusMessage: "was " + string(st),
			Created: created, Updated: created.Add(time.Minute), TimeOfStatusChange: created.Add(time.Minute), Attempt: 1, Version: 3}
	}
	succeeded, failed := old(jobs.Success, time.Hour), old(jobs.Failed, 2*time.Hour)
	indexJobs(succeeded, failed)
	t0 := succeeded.Created
	if _, err := ix.IndexEvents(ctx,
		index.Event{Job: succeeded.ID, Time: t0.Add(2 * time.Second), Type: index.EventLog, Level: "info", Message: "from the index"},
		index.Event{Job: succeeded.ID, Time: t0.Add(time.Second), Type: index.EventState, State: jobs.Running, Executor: "x1", Attempt: 1},
		index.Event{Job: live, Time: time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond), Type: index.EventLog, Level: "warn", Message: "indexed and in the tail"},
	); err != nil {
		t.Fatal(err)
	}
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	list := decode[[]map[string]any](t, e.ok("job", "list", "--json"))
	if len(list) != 3 || list[0]["id"] != live || list[0]["source"] != "zookeeper" || list[0]["state"] != "RUNNING" ||
		list[1]["id"] != succeeded.ID || list[1]["source"] != "elasticsearch" || list[2]["id"] != failed.ID {
		t.Fatalf("job list --json: want the live job from ZooKeeper, then the two from the history; got %v", list)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--state", "QUEUED", "--json")); len(l) != 0 {
		t.Fatalf("the stale indexed copy of a live job was listed: %v", l)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--state", "success", "--json")); len(l) != 1 || l[0]["id"] != succeeded.ID {
		t.Fatalf("job list --state success: %v", l)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--limit", "2", "--json")); len(l) != 2 || l[1]["id"] != succeeded.ID {
		t.Fatalf("job list --limit 2: %v", l)
	}
	if table := e.ok("job", "list"); strings.Count(table, "elasticsearch") != 2 || strings.Count(table, "zookeeper") != 1 {
		t.Fatalf("job list table:\n%s", table)
	}
	if v := decode[map[string]any](t, e.ok("job", "show", succeeded.ID, "--json")); v["source"] != "elasticsearch" || v["state"] != "SUCCESS" {
		t.Fatalf("show of a job in the history: %v", v)
	}
	if v := decode[map[string]any](t, e.ok("job", "show", live, "--json")); v["source"] != "zookeeper" || v["state"] != "RUNNING" {
		t.Fatalf("show of a live job: %v", v)
	}

	if out, _, code := e.run("job", "wait", succeeded.ID); code != 0 || !strings.HasPrefix(out, succeeded.ID+" SUCCESS") {
		t.Fatalf("wait for a job in the history that succeeded: exit %d, %q", code, out)
	}
	if out, _, code := e.run("job", "wait", failed.ID); code != 1 || !strings.HasPrefix(out, failed.ID+" FAILED") {
		t.Fatalf("wait for a job in the history that failed: exit %d, %q", code, out)
	}

	want := t0.Add(time.Second).Format("2006-01-02T15:04:05.000Z07:00") + " INFO  state RUNNING (executor x1, attempt 1)\n" +
		t0.Add(2*time.Second).Format("2006-01-02T15:04:05.000Z07:00") + " INFO  from the index\n"
	if out := e.ok("job", "logs", succeeded.ID); out != want {
		t.Fatalf("logs from the job-events index:\n%s\nwant:\n%s", out, want)
	}
	// A line both indexed and in the ZooKeeper tail is printed once.
	evs, err := ix.JobEvents(ctx, live, time.Time{}, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events of the live job: %v, %v", evs, err)
	}
	if err := e.store.AppendLog(ctx, liveUID, []jobs.LogLine{{Time: evs[0].Time, Level: "warn", Message: "indexed and in the tail"},
		{Time: time.Now().UTC(), Level: "info", Message: "only in the tail"}}); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("job", "logs", live); strings.Count(out, "indexed and in the tail") != 1 || !strings.HasSuffix(out, "only in the tail\n") {
		t.Fatalf("logs merged from the index and the tail:\n%s", out)
	}

	// The document is removed while a wait watches it (cleaned up after it
	// was indexed as final): the wait finds the final state in the history.
	logFile := filepath.Join(t.TempDir(), "wait.log")
	done := make(chan [2]string, 1)
	go func() {
		out, errOut, code := e.run("--log-level", "debug", "--log-file", logFile, "job", "wait", live, "--timeout", "60s")
		done <- [2]string{fmt.Sprint(code), out + errOut}
	}()
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), history.LogWatching) {
			return fmt.Errorf("not watching yet")
		}
		return nil
	})
	e.advance(live, jobs.Success)
	j, ver, err := e.store.Get(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	indexJobs(j)
	if err := e.store.Delete(ctx, liveUID, ver); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r[0] != "0" || !strings.HasPrefix(r[1], live+" SUCCESS") {
			t.Fatalf("wait for a job removed after indexing: exit %s, output %q", r[0], r[1])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("job wait did not return")
	}

	// Elasticsearch down: live jobs are still listed, with a warning.
	es.Down()
	live2 := e.add("b")
	out, errOut, code := e.run("job", "list", "--json")
	if l := decode[[]map[string]any](t, out); code != 0 || len(l) != 1 || l[0]["id"] != live2 || !strings.Contains(errOut, "history left out") {
		t.Fatalf("job list with Elasticsearch down: exit %d, %v, stderr %q", code, l, errOut)
	}
	if _, errOut, code := e.run("job", "show", succeeded.ID); code != 1 || !strings.Contains(errOut, "history could not be read") {
		t.Fatalf("show of a job in the history with Elasticsearch down: exit %d, stderr %q", code, errOut)
	}
}
