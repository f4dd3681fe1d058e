package index_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

func TestEventSinkBatchesAndFlushesOnClose(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, _ := logs(t)
	c := newClient(t, s, log)
	sink := index.NewEventSink(c, log, index.SinkOptions{BatchSize: 100, FlushInterval: time.Hour})
	j := newJob("deploy", 0)
	for i := 0; i < 250; i++ {
		sink.Emit(index.Event{Job: j.ID, Type: index.EventLog, Level: "info", Message: fmt.Sprint("line ", i)})
	}
	// Two full batches go at once; the rest waits for the (long) interval
	// and goes at Close.
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		return errorIf(s.Count(c.EventsIndex()) != 200, "%d events indexed, want 200", s.Count(c.EventsIndex()))
	})
	if err := sink.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := s.Count(c.EventsIndex()); n != 250 {
		t.Fatalf("after Close: %d events indexed, want 250", n)
	}
	st := sink.Stats()
	if st.Sent != 250 || st.Dropped != 0 || st.Buffered != 0 {
		t.Fatalf("stats: %+v", st)
	}
	for _, d := range s.Docs(c.EventsIndex())[:3] {
		if !strings.HasPrefix(d.ID, j.UUID()+"-log-") || !strings.Contains(string(d.Source), `"job":"`+j.ID+`"`) {
			t.Fatalf("event document: %s %s", d.ID, d.Source)
		}
	}
	sink.Emit(index.Event{Job: j.ID, Type: index.EventLog})
	if sink.Stats().Dropped != 1 {
		t.Fatal("an event emitted after Close was not counted as dropped")
	}
}

func TestEventSinkDropsOldestWhileDown(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	c := newClient(t, s, log)
	s.Down()
	sink := index.NewEventSink(c, log, index.SinkOptions{
		MaxBuffered: 50, BatchSize: 20, FlushInterval: 10 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	j := newJob("deploy", 0)
	for i := 0; i < 200; i++ {
		sink.Emit(index.Event{ID: fmt.Sprintf("ev-%03d", i), Job: j.ID, Type: index.EventProgress, Progress: i % 101})
	}
	// At most MaxBuffered events wait, plus one batch in flight.
	st := sink.Stats()
	if st.Buffered > 50 || st.Dropped < 130 {
		t.Fatalf("memory not bounded while down: %+v", st)
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		return errorIf(obs.FilterMessageSnippet("cannot index job events").Len() == 0, "no warning logged")
	})
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		return errorIf(s.Count(c.EventsIndex()) != 50, "%d events indexed, want 50", s.Count(c.EventsIndex()))
	})
	if err := sink.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The newest survived, the oldest were dropped.
	if _, ok := s.Doc(c.EventsIndex(), "ev-199"); !ok {
		t.Error("the newest event is missing")
	}
	if _, ok := s.Doc(c.EventsIndex(), "ev-000"); ok {
		t.Error("the oldest event survived a full buffer")
	}
	st = sink.Stats()
	if st.Sent != 50 || st.Dropped != 150 {
		t.Fatalf("stats: %+v", st)
	}
	// The drops are not silent: one error line for the series.
	if n := obs.FilterLevelExact(zap.ErrorLevel).FilterFieldKey("max_buffered").Len(); n != 1 {
		t.Fatalf("%d error lines about dropped events, want 1", n)
	}
}

func TestEventSinkCloseGivesUpWhenDown(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	c := newClient(t, s, nil)
	s.Down()
	sink := index.NewEventSink(c, nil, index.SinkOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	sink.Emit(index.StateEvent(next(newJob("a", 0), jobs.Running)))
	err := sink.Close(ctxT(t, 300*time.Millisecond))
	if !index.Retryable(err) || !strings.Contains(err.Error(), "1 job events not indexed") {
		t.Fatalf("Close while down: %v", err)
	}
	if st := sink.Stats(); st.Dropped != 1 || st.Buffered != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// The sink is a job store's observer: the lines a store records are indexed
// at the time they were logged, progress at the time it was written, and
// state changes are left to the outbox.
func TestEventSinkObservesAJobStore(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	c := newClient(t, s, nil)
	sink := index.NewEventSink(c, nil, index.SinkOptions{FlushInterval: 10 * time.Millisecond})
	store := jobs.NewStore(dial(t, "", root(t), 0), jobs.StoreConfig{Observers: []jobs.Observer{sink}})
	j := newJob("deploy", 0)
	t1, t2 := epoch.Add(time.Millisecond), epoch.Add(3*time.Second)
	if err := store.AppendLog(ctxT(t, 10*time.Second), j.UUID(), []jobs.LogLine{
		{Time: t1, Level: "info", Message: "first", Fields: []action.Field{{Key: "name", Value: "Alice"}}}, {Time: t2, Level: "error", Message: "second"},
	}); err != nil {
		t.Fatal(err)
	}
	running := next(j, jobs.Running)
	sink.OnState(jobs.StateEvent{Job: running, From: jobs.Queued})
	progress := *running
	progress.Progress, progress.StatusMessage, progress.Updated = 40, "halfway", epoch.Add(time.Minute)
	sink.OnProgress(jobs.ProgressEvent{Job: &progress})
	if err := sink.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []index.Event
	for _, d := range s.Docs(c.EventsIndex()) {
		var ev index.Event
		if err := json.Unmarshal(d.Source, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	sort.Slice(got, func(a, b int) bool { return got[a].Time.Before(got[b].Time) })
	if len(got) != 3 {
		t.Fatalf("%d events indexed, want 2 log lines and 1 progress report: %+v", len(got), got)
	}
	for i, want := range []index.Event{
		{Job: j.ID, Time: t1, Type: index.EventLog, Level: "info", Message: "first", Fields: []action.Field{{Key: "name", Value: "Alice"}}},
		{Job: j.ID, Time: t2, Type: index.EventLog, Level: "error", Message: "second"},
		{Job: j.ID, Time: progress.Updated, Type: index.EventProgress, Level: "info", Message: "halfway", Progress: 40, Executor: "exec-1", Attempt: 1},
	} {
		g := got[i]
		if want.Type == index.EventLog && (g.Line == "" || g.ID != g.Line) {
			t.Fatalf("event %d: %+v, want it under the identity of its line", i, g)
		}
		g.ID, g.Line = "", ""
		if !g.Time.Equal(want.Time) {
			t.Fatalf("event %d at %s, want %s", i, g.Time, want.Time)
		}
		g.Time = want.Time
		if !reflect.DeepEqual(g, want) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, want)
		}
	}
}

// Elasticsearch refusing the index templates loses no live event: they
// wait in memory, an error says why, and they go once the templates do.
func TestEventSinkKeepsEventsWhileTemplatesAreRefused(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	c := newClient(t, s, log)
	s.RefuseTemplates(http.StatusBadRequest, "illegal_argument_exception", "composable template [jobengine-jobs] is invalid")
	sink := index.NewEventSink(c, log, index.SinkOptions{
		BatchSize: 20, FlushInterval: 10 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	j := newJob("deploy", 0)
	for i := range 50 {
		sink.Emit(index.Event{ID: fmt.Sprintf("ev-%03d", i), Job: j.ID, Type: index.EventLog, Level: "info", Message: fmt.Sprint("line ", i)})
	}
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		return errorIf(s.Stats().TemplatesRefused < 3, "templates refused %d times, want a few retries", s.Stats().TemplatesRefused)
	})
	if n := obs.FilterLevelExact(zap.ErrorLevel).Len(); n != 1 {
		t.Fatalf("%d error lines about the refused templates, want one: %v", n, obs.All())
	}
	if st := sink.Stats(); st.Dropped != 0 || st.Rejected != 0 || st.Sent != 0 || st.Buffered != 50 {
		t.Fatalf("events not kept while the templates are refused: %+v", st)
	}
	s.AcceptTemplates()
	poll.For(t, 10*time.Second, 10*time.Millisecond, func() error {
		return errorIf(s.Count(c.EventsIndex()) != 50, "%d events indexed, want 50", s.Count(c.EventsIndex()))
	})
	if err := sink.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := sink.Stats(); st.Sent != 50 || st.Dropped != 0 {
		t.Fatalf("stats: %+v", st)
	}
}
