package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// A job's lines, recorded as an executor records them (buffered with their
// own times, written later, told to the event sink), are read back once
// each while the job is still in ZooKeeper: from the history and the tail
// both, with their own times and in their order.
func TestLogsOfALiveJobOnceWithTheirTimes(t *testing.T) {
	e := newEnv(t, true)
	ctx := ctxT(t)
	sink := index.NewEventSink(e.ix, nil, index.SinkOptions{FlushInterval: 10 * time.Millisecond})
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	e.store = jobs.NewStore(e.conn, jobs.StoreConfig{Now: e.clock, Observers: []jobs.Observer{sink}})
	j := e.live("a", t0)

	// Lines logged a second before they are written, some within one
	// millisecond, and an action event with a message among them.
	logged := time.Now().UTC().Add(-time.Second)
	var entries []jobs.LogEntry
	var want []string
	for i := range 6 {
		at := logged.Add(time.Duration(i) * 300 * time.Microsecond)
		msg := fmt.Sprintf("line %d", i)
		entries = append(entries, jobs.LogEntry{Line: jobs.LogLine{Time: at, Level: "info", Message: msg}})
		want = append(want, at.Format(time.RFC3339Nano)+" "+msg)
	}
	if err := e.store.AppendEntries(ctx, j.UUID(), 1, entries); err != nil {
		t.Fatal(err)
	}
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if st := sink.Stats(); st.Sent != 6 {
			return fmt.Errorf("sink stats %+v, want 6 sent", st)
		}
		return nil
	})
	if err := e.ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := e.ix.JobEvents(ctx, j.ID, time.Time{}, 100)
	if err != nil || len(evs) != 6 {
		t.Fatalf("indexed events: %+v, %v", evs, err)
	}
	for i, ev := range evs {
		if !ev.Time.Equal(entries[i].Line.Time) || ev.Line == "" || ev.ID != ev.Line {
			t.Fatalf("indexed event %d: %+v, want the time %s and the line's identity", i, ev, entries[i].Line.Time)
		}
	}

	read := func() []string {
		t.Helper()
		var c collector
		if err := e.reader().Logs(ctx, j.ID, false, c.emit); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range c.batches {
			if b.HistoryErr != nil {
				t.Fatal(b.HistoryErr)
			}
			for _, l := range b.Lines {
				out = append(out, l.Time.Format(time.RFC3339Nano)+" "+l.Message)
			}
		}
		return out
	}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Logs of a live job:\n%v\nwant each line once:\n%v", got, want)
	}

	// A history that keeps times to the millisecond (or a version that
	// stamped lines when it sent them) still shows each line once: lines
	// are the same by identity, not by time.
	tail, err := e.store.Logs(ctx, j.UUID())
	if err != nil || len(tail) != 6 {
		t.Fatalf("tail: %v, %v", tail, err)
	}
	for i, l := range tail {
		if _, err := e.ix.IndexEvents(ctx, index.Event{ID: l.ID, Line: l.ID, Job: j.ID, Type: index.EventLog,
			Time: l.Time.Add(time.Duration(i) * time.Second).Truncate(time.Millisecond), Level: l.Level, Message: l.Message}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Logs with the history's times off:\n%v\nwant each line once, at its own time:\n%v", got, want)
	}
}
