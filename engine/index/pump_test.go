package index_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

const wait = 30 * time.Second

// indexedAt waits until job j is indexed at version v.
func indexedAt(t *testing.T, s *estest.Server, es *index.Client, j *jobs.Job) {
	t.Helper()
	poll.For(t, wait, 20*time.Millisecond, func() error {
		d, ok := s.Doc(es.JobsIndex(), j.UUID())
		return errorIf(!ok || d.Version != j.Version, "%s: indexed %v at version %d, want %d", j.ID, ok, d.Version, j.Version)
	})
}

func outboxEmpty(t *testing.T, c *zkconn.Conn) {
	t.Helper()
	poll.For(t, wait, 20*time.Millisecond, func() error {
		n := len(childrenOf(t, c, index.OutboxPath(c)))
		return errorIf(n != 0, "%d outbox entries left", n)
	})
}

func TestPumpOutageThenCatchUp(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 0)
	p, _ := runPump(t, c, es, log, "p1")
	ready(t, s, p)

	s.Down()
	var final []*jobs.Job
	for i := 0; i < 20; i++ {
		j := newJob("deploy", i)
		write(t, c, j)
		j = next(j, jobs.Running)
		write(t, c, j)
		j = next(j, jobs.Success)
		write(t, c, j)
		final = append(final, j)
	}
	// Elasticsearch is down: nothing can leave the outbox.
	if n := len(childrenOf(t, c, index.OutboxPath(c))); n != 60 {
		t.Fatalf("outbox has %d entries during the outage, want 60", n)
	}
	pending, err := index.Pending(ctxT(t, wait), c)
	if err != nil || len(pending) != 20 || !pending[final[7].UUID()] {
		t.Fatalf("Pending = %d uuids, %v", len(pending), err)
	}
	// Wait for an attempt that saw every entry: earlier ones may have
	// run while the jobs were still being written.
	poll.For(t, wait, 10*time.Millisecond, func() error {
		seen := obs.FilterMessageSnippet("cannot index the outbox").FilterField(fieldInt("outbox_entries", 60)).Len()
		return errorIf(p.Stats().Retries < 2 || seen == 0, "the pump has not retried over the whole outbox yet")
	})
	if n := len(childrenOf(t, c, index.OutboxPath(c))); n != 60 {
		t.Fatalf("outbox lost entries during the outage: %d left, want 60", n)
	}

	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	outboxEmpty(t, c)
	for _, j := range final {
		d, ok := s.Doc(es.JobsIndex(), j.UUID())
		if !ok || d.Version != 3 || !strings.Contains(string(d.Source), `"state":"SUCCESS"`) {
			t.Fatalf("%s: indexed %v %+v", j.ID, ok, d)
		}
		for v := int64(1); v <= 3; v++ {
			ev, ok := s.Doc(es.EventsIndex(), index.StateEventID(j.UUID(), v))
			if !ok || ev.Writes != 1 {
				t.Fatalf("%s: state event of version %d: present %v, written %d times (want once)", j.ID, v, ok, ev.Writes)
			}
		}
	}
	if n := s.Count(es.JobsIndex()); n != 20 {
		t.Fatalf("%d job documents, want 20", n)
	}
	if n := s.Count(es.EventsIndex()); n != 60 {
		t.Fatalf("%d state events, want 60", n)
	}
	if pending, _ := index.Pending(ctxT(t, wait), c); len(pending) != 0 {
		t.Fatalf("Pending after the catch-up: %v", pending)
	}
	if obs.FilterMessageSnippet("cannot index the outbox").FilterField(fieldInt("outbox_entries", 60)).Len() == 0 {
		t.Error("the outage was not logged with the outbox size")
	}
	if obs.FilterMessage("indexing works again").Len() == 0 {
		t.Error("the recovery was not logged")
	}
	if st := p.Stats(); st.Indexed != 60 || st.Failed != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestPumpMovesPoisonDocumentsAside(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 0)

	var good []*jobs.Job
	for i := 0; i < 30; i++ {
		j := newJob("backup", i)
		write(t, c, j)
		good = append(good, j)
	}
	// A date Elasticsearch cannot parse: 400 mapper_parsing_exception.
	badDate := newJob("backup", 99)
	badDateName := index.EntryName(badDate.UUID(), 1)
	putEntry(t, c, badDateName, []byte(fmt.Sprintf(`{"id":%q,"action":"backup","state":"QUEUED","version":1,"created":"yesterday"}`, badDate.ID)))
	// Not JSON at all, and a name that is not <uuid>-<version>.
	notJSON := newJob("backup", 98)
	putEntry(t, c, index.EntryName(notJSON.UUID(), 1), []byte("{not json"))
	putEntry(t, c, "garbage", []byte(`{}`))
	// Refused by Elasticsearch for a reason the test server injects.
	refused := newJob("backup", 97)
	s.Reject(refused.UUID(), 400, "illegal_argument_exception", "injected refusal")
	write(t, c, refused)

	p, _ := runPump(t, c, es, log, "p1")
	outboxEmpty(t, c)
	for _, j := range good {
		indexedAt(t, s, es, j)
	}
	failed, err := index.Failed(ctxT(t, wait), c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{badDateName, index.EntryName(notJSON.UUID(), 1), index.EntryName(refused.UUID(), 1), "garbage"}
	slices.Sort(want)
	if !slices.Equal(failed, want) {
		t.Fatalf("failed entries = %v, want %v", failed, want)
	}
	data, _, err := c.Get(index.FailedPath(c) + "/" + badDateName)
	if err != nil || !strings.Contains(string(data), `"created":"yesterday"`) {
		t.Fatalf("the failed entry lost its document: %s %v", data, err)
	}
	lines := obs.FilterMessageSnippet("cannot be indexed").FilterFieldKey("job")
	if lines.FilterField(fieldStr("job", badDate.ID)).Len() != 1 {
		t.Fatalf("no error line names the poison job; lines: %v", lines.All())
	}
	line := lines.FilterField(fieldStr("job", badDate.ID)).All()[0]
	if errText := fmt.Sprint(line.ContextMap()["error"]); !strings.Contains(errText, "mapper_parsing_exception") || !strings.Contains(errText, "created") {
		t.Fatalf("the log line does not say why: %s", errText)
	}
	if line.ContextMap()["action"] != "backup" {
		t.Fatalf("the log line has no action: %v", line.ContextMap())
	}
	if st := p.Stats(); st.Failed != 4 || st.Indexed != 30 {
		t.Fatalf("stats: %+v", st)
	}
	// Failed entries do not hold back the cleanup: the document is kept in failed/.
	if pending, _ := index.Pending(ctxT(t, wait), c); len(pending) != 0 {
		t.Fatalf("Pending = %v", pending)
	}

	// Once the cause is fixed, the entries can go through again.
	s.Allow(refused.UUID())
	n, err := index.RetryFailed(ctxT(t, wait), c)
	if err != nil || n != 4 {
		t.Fatalf("RetryFailed = %d, %v", n, err)
	}
	indexedAt(t, s, es, refused)
	poll.For(t, wait, 20*time.Millisecond, func() error {
		f, _ := index.Failed(ctxT(t, wait), c)
		return errorIf(len(f) != 3, "%d failed entries, want the 3 that are still bad", len(f))
	})
	outboxEmpty(t, c)
}

func TestPumpBacksOffOn429(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, _ := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 0)
	p, _ := runPump(t, c, es, log, "p1")
	ready(t, s, p)

	s.FailNext(4, 429)
	j := newJob("deploy", 0)
	write(t, c, j)
	indexedAt(t, s, es, j)
	outboxEmpty(t, c)
	if st := p.Stats(); st.Retries < 1 || st.Indexed != 1 {
		t.Fatalf("stats: %+v (want retries after the 429s)", st)
	}
	if inj := s.Stats().Injected; inj != 4 {
		t.Fatalf("%d requests answered 429, want 4", inj)
	}
}

// ready waits until p is active and has installed the templates and created
// the indices.
func ready(t *testing.T, s *estest.Server, p *index.Pump) {
	t.Helper()
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(!p.Active() || len(s.Indices()) != 2, "pump not active with its indices yet (%v)", s.Indices())
	})
}

func TestPumpSurvivesZooKeeperRestart(t *testing.T) {
	zks := zookeeper(t)
	s := estest.Start(t, estest.Options{})
	log, _ := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 10*time.Second)
	p, _ := runPump(t, c, es, log, "p1")
	poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!p.Active(), "not active") })
	a := newJob("deploy", 0)
	write(t, c, a)
	indexedAt(t, s, es, a)

	if err := zks.Servers[0].Restart(wait); err != nil {
		t.Fatal(err)
	}
	poll.For(t, wait, 20*time.Millisecond, func() error { return errorIf(!c.Connected(), "not reconnected") })
	b := next(a, jobs.Running)
	write(t, c, b)
	indexedAt(t, s, es, b)
	outboxEmpty(t, c)
	poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!p.Active(), "not active after the restart") })
}
