package history

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func line(i int) jobs.LogLine {
	return jobs.LogLine{Time: t0.Add(time.Duration(i) * time.Second), Level: "info", Message: fmt.Sprintf("line %d", i)}
}

// collector gathers what Logs emits.
type collector struct {
	mu      sync.Mutex
	batches []LogBatch
}

func (c *collector) emit(b LogBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, b)
	return nil
}

// lines returns every line emitted so far, as "message" strings.
func (c *collector) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.batches {
		for _, l := range b.Lines {
			out = append(out, l.Message)
		}
	}
	return out
}

func TestLogsFromTheTailAndTheHistory(t *testing.T) {
	e := newEnv(t, true)
	ctx := ctxT(t)
	j := e.live("a", t0)
	if err := e.store.AppendLog(ctx, j.UUID(), []jobs.LogLine{line(2), line(4)}); err != nil {
		t.Fatal(err)
	}
	// The history has older lines, one line also in the tail, and events
	// that are not log lines.
	if _, err := e.ix.IndexEvents(ctx,
		index.Event{Job: j.ID, Time: line(1).Time, Type: index.EventState, State: jobs.Running, Executor: "x1", Attempt: 1},
		index.Event{Job: j.ID, Time: line(2).Time, Type: index.EventLog, Level: "info", Message: "line 2"},
		index.Event{Job: j.ID, Time: line(3).Time, Type: index.EventProgress, Progress: 40},
	); err != nil {
		t.Fatal(err)
	}
	if err := e.ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := e.reader().Logs(ctx, j.ID, false, c.emit); err != nil {
		t.Fatal(err)
	}
	want := "[state RUNNING (executor x1, attempt 1) line 2 progress 40% line 4]"
	if got := fmt.Sprint(c.lines()); got != want || len(c.batches) != 1 {
		t.Fatalf("Logs = %s in %d batches, want %s in one", got, len(c.batches), want)
	}

	// Without the history: the tail.
	c = collector{}
	if err := New(Config{Store: e.store}).Logs(ctx, j.ID, false, c.emit); err != nil || fmt.Sprint(c.lines()) != "[line 2 line 4]" {
		t.Fatalf("Logs without history = %v, %v", c.lines(), err)
	}
	// With the history down: the tail, and the history's error.
	e.es.Down()
	c = collector{}
	if err := e.reader().Logs(ctx, j.ID, false, c.emit); err != nil || fmt.Sprint(c.lines()) != "[line 2 line 4]" ||
		!errors.Is(c.batches[0].HistoryErr, index.ErrUnavailable) {
		t.Fatalf("Logs with the history down = %v, %v, %+v", c.lines(), err, c.batches)
	}
	// A job that is nowhere.
	unknown, _ := jobs.NewID()
	if err := New(Config{Store: e.store}).Logs(ctx, unknown, false, c.emit); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Logs(unknown) = %v, want ErrNotFound", err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	j := e.live("a", t0)
	if err := e.store.AppendLog(ctx, j.UUID(), []jobs.LogLine{line(1)}); err != nil {
		t.Fatal(err)
	}
	var c collector
	done := make(chan error, 1)
	go func() { done <- e.reader().Logs(ctx, j.ID, true, c.emit) }()
	for i := 2; i <= 4; i++ {
		poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
			if n := len(c.lines()); n != i-1 {
				return fmt.Errorf("%d lines emitted, want %d", n, i-1)
			}
			return nil
		})
		if err := e.store.AppendLog(ctx, j.UUID(), []jobs.LogLine{line(i)}); err != nil {
			t.Fatal(err)
		}
	}
	poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := len(c.lines()); n != 4 {
			return fmt.Errorf("%d lines emitted, want 4", n)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("Logs(follow) ended (%v) while the job is live", err)
	default:
	}
	e.advance(j.ID, jobs.Running)
	e.advance(j.ID, jobs.Success)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Logs(follow) did not end when the job became final")
	}
	if got := fmt.Sprint(c.lines()); got != "[line 1 line 2 line 3 line 4]" {
		t.Fatalf("followed lines: %s", got)
	}

	// An error of emit ends it.
	stop := errors.New("stop")
	if err := e.reader().Logs(ctx, j.ID, true, func(LogBatch) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Logs with a failing emit = %v", err)
	}
	// So does the context, while following a live job.
	k := e.live("a", t0)
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(stop)
	if err := e.reader().Logs(cctx, k.ID, true, c.emit); !errors.Is(err, stop) {
		t.Fatalf("Logs with an ended context = %v", err)
	}
}

func TestEventLine(t *testing.T) {
	for _, tc := range []struct {
		ev   index.Event
		want string
	}{
		{index.Event{Type: index.EventLog, Level: "warn", Message: "disk"}, "warn disk"},
		{index.Event{Type: index.EventState, State: jobs.Failed, Message: "boom"}, "info state FAILED: boom"},
		{index.Event{Type: index.EventState, State: jobs.Running, Executor: "x", Attempt: 2}, "info state RUNNING (executor x, attempt 2)"},
		{index.Event{Type: index.EventProgress, Progress: 40}, "info progress 40%"},
		{index.Event{Type: index.EventStatus, Message: "half way"}, "info status: half way"},
		{index.Event{Type: "other", Message: "m"}, "info other: m"},
	} {
		l := EventLine(tc.ev)
		if got := l.Level + " " + l.Message; got != tc.want {
			t.Errorf("EventLine(%+v) = %q, want %q", tc.ev, got, tc.want)
		}
	}
}

func TestMergeLines(t *testing.T) {
	got := mergeLines([]jobs.LogLine{line(1), line(3)}, []jobs.LogLine{line(2), line(3), line(4)})
	if fmt.Sprint(got) != fmt.Sprint([]jobs.LogLine{line(1), line(2), line(3), line(4)}) {
		t.Fatalf("mergeLines = %v", got)
	}
}

func TestNewLinesAfterTheTailMoves(t *testing.T) {
	l := func(s string) jobs.LogLine { return jobs.LogLine{Level: "info", Message: s} }
	ls := func(ss ...string) []jobs.LogLine {
		out := []jobs.LogLine{}
		for _, s := range ss {
			out = append(out, l(s))
		}
		return out
	}
	for _, tc := range []struct {
		name            string
		prev, cur, want []jobs.LogLine
	}{
		{"first read", nil, ls("a", "b"), ls("a", "b")},
		{"appended", ls("a", "b"), ls("a", "b", "c"), ls("c")},
		{"unchanged", ls("a", "b"), ls("a", "b"), ls()},
		{"oldest dropped", ls("a", "b", "c"), ls("b", "c", "d", "e"), ls("d", "e")},
		{"repeated lines", ls("x", "x"), ls("x", "x", "x"), ls("x")},
		{"all replaced", ls("a", "b"), ls("c", "d"), ls("c", "d")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newLines(tc.prev, tc.cur)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("newLines = %v, want %v", got, tc.want)
			}
		})
	}
}
