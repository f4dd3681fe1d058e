package daemon

import (
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// eventAdapter feeds executor events into the Elasticsearch event sink.
type eventAdapter struct{ sink *index.EventSink }

func (a eventAdapter) Event(jobID, kind, level, message string, fields map[string]any) {
	ev := index.Event{Job: jobID, Type: kind, Level: level, Message: message}
	if s, ok := fields["state"].(string); ok {
		ev.State = jobs.State(s)
	}
	if p, ok := fields["progress"].(int); ok {
		ev.Progress = p
	}
	if e, ok := fields["executor"].(string); ok {
		ev.Executor = e
	}
	if at, ok := fields["attempt"].(int); ok {
		ev.Attempt = at
	}
	if kind == "state" {
		return // state events are indexed from the outbox, exactly once
	}
	a.sink.Emit(ev)
}
