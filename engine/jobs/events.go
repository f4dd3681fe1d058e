package jobs

import "github.com/jobengine/jobengine/engine/action"

// Observer is told of the events of jobs' lives as the store records them:
// a new state (or a new attempt), a line an action logged, a progress
// report. The job-events index is one observer. (Notifications are not:
// they are recorded in the transaction of the state change, see
// notices.go.)
// Attach any number with StoreConfig.Observers: each is told of every event
// of the store, in the order of the slice.
//
// The store calls observers synchronously, from the goroutine that made the
// write and after it went through, so an observer must return at once (an
// observer that does real work buffers, and drops under pressure, as the
// job-events index does). An observer is told of the writes of its own
// process only, at most once: a crash between a write and its event loses
// the event. The exactly-once record of every document version is the
// outbox (see engine/index).
type Observer interface {
	// OnState is told of a job's new state, or of a new attempt of a
	// RUNNING job (From equals the job's state then).
	OnState(StateEvent)
	// OnLog is told of each line an action logged, with the line's own time.
	OnLog(LogEvent)
	// OnProgress is told of a progress report written to the document.
	OnProgress(ProgressEvent)
}

// StateEvent is a job document written in a new state or for a new attempt.
type StateEvent struct {
	// Job is the document as written (its Version, State, Attempt,
	// Executor, StatusMessage, TimeOfStatusChange). Observers share it and
	// must not modify it.
	Job *Job
	// From is the state the job left.
	From State
}

// LogEvent is one line an action logged.
type LogEvent struct {
	// Job is the job id, "job/<uuid>".
	Job string
	// Line is the line with the time the action logged it.
	Line LogLine
}

// ProgressEvent is a progress report written to a job's document.
type ProgressEvent struct {
	// Job is the document as written: Progress, StatusMessage and
	// AffectedResources as reported, Updated the time of the write.
	// Observers share it and must not modify it.
	Job *Job
}

// ActionEventObserver is an Observer that is also told of the structured
// events of actions (action.Event: a play, a task, one host's result), as
// the store records them with the job's log (Store.AppendEntries). An
// observer without it is told of an event's message as a log line (OnLog);
// one with it is told of the event only, its message included.
type ActionEventObserver interface {
	Observer
	// OnActionEvent is told of each structured event an action reported,
	// with the event's own time.
	OnActionEvent(ActionEvent)
}

// ActionEvent is one structured event an action reported.
type ActionEvent struct {
	// Job is the job id, "job/<uuid>".
	Job string
	// Attempt is the attempt of the job that reported it.
	Attempt int
	// Event is the event; its Time and Level are set.
	Event action.Event
	// Line is the identity of the log line the event's message is in the
	// job's log tail (LogLine.ID).
	Line string
}

// observerList fans an event out to every observer.
type observerList []Observer

func (s *Store) observers() observerList { return s.cfg.Observers }

func (l observerList) stateChanged(j *Job, from State) {
	if len(l) == 0 {
		return
	}
	cp := *j // the caller goes on with its own copy
	ev := StateEvent{Job: &cp, From: from}
	for _, o := range l {
		o.OnState(ev)
	}
}

func (l observerList) logged(job string, line LogLine) {
	for _, o := range l {
		o.OnLog(LogEvent{Job: job, Line: line})
	}
}

// recorded tells each observer of a log entry: a structured event to the
// observers of action events, its message (when it has one) to the others;
// a plain line to all.
func (l observerList) recorded(job string, attempt int, e LogEntry) {
	for _, o := range l {
		if e.Event == nil {
			o.OnLog(LogEvent{Job: job, Line: e.Line})
			continue
		}
		if ao, ok := o.(ActionEventObserver); ok {
			ao.OnActionEvent(ActionEvent{Job: job, Attempt: attempt, Event: *e.Event, Line: e.Line.ID})
		} else if e.Line.Message != "" {
			o.OnLog(LogEvent{Job: job, Line: e.Line})
		}
	}
}

func (l observerList) progressed(j *Job) {
	if len(l) == 0 {
		return
	}
	cp := *j
	ev := ProgressEvent{Job: &cp}
	for _, o := range l {
		o.OnProgress(ev)
	}
}
