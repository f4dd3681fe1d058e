package jobs

import (
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
)

// eventRecorder is a recorder that is also an ActionEventObserver.
type eventRecorder struct {
	recorder
	emu    sync.Mutex
	events []ActionEvent
}

func (r *eventRecorder) OnActionEvent(ev ActionEvent) {
	r.emu.Lock()
	defer r.emu.Unlock()
	r.events = append(r.events, ev)
}

// Structured events reach the observers of action events as events, the
// others as log lines of their text; the log tail holds the lines and the
// events' text, in order, and no line for an event without text. A host
// summary given with the outcome is kept on the document.
func TestAppendEntriesAndHostSummary(t *testing.T) {
	plain, structured := &recorder{}, &eventRecorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{plain, structured}})
	ctx := ctxT(t)
	created, err := s.Create(ctx, NewJob{Action: "ansible_playbook"})
	if err != nil {
		t.Fatal(err)
	}
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)

	at := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	ok := action.Event{Counter: 2, Name: "runner_on_ok", Host: "web1", Time: at, Level: "info", Message: "ok: [web1]"}
	quiet := action.Event{Counter: 1, Name: "runner_on_start", Host: "web1", Time: at, Level: "info"}
	entries := []LogEntry{
		{Line: LogLine{Time: at, Level: "info", Message: "starting"}},
		{Event: &quiet},
		{Line: LogLine{Time: at, Level: "info", Message: ok.Message}, Event: &ok},
	}
	if err := s.AppendEntries(ctx, j.UUID(), start.Job().Attempt, entries); err != nil {
		t.Fatal(err)
	}
	if len(plain.logs) != 2 || plain.logs[0].Line.Message != "starting" || plain.logs[1].Line.Message != "ok: [web1]" {
		t.Fatalf("an observer without action events was told %+v", plain.logs)
	}
	if len(structured.logs) != 1 || len(structured.events) != 2 ||
		structured.events[1].Event.Name != "runner_on_ok" || structured.events[1].Attempt != 1 || structured.events[1].Job != j.ID {
		t.Fatalf("an observer of action events was told lines %+v, events %+v", structured.logs, structured.events)
	}
	tail, err := s.Logs(ctx, j.UUID())
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != 2 || tail[0].Message != "starting" || tail[1].Message != "ok: [web1]" {
		t.Fatalf("log tail %+v", tail)
	}

	rc := 0
	sum := &HostSummary{Hosts: 1, OK: 1}
	c, err = s.Finish(start.Job(), start.Ver(), "x1", Outcome{State: Success, ReturnCode: &rc, HostSummary: sum})
	commit(t, c, err, h)
	got, _, _ := s.Get(ctx, j.ID)
	if got.HostSummary == nil || got.HostSummary.Hosts != 1 || got.HostSummary.OK != 1 {
		t.Fatalf("host summary not kept: %+v", got.HostSummary)
	}
}
