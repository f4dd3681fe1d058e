package ansible

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/action"
)

// Event names, as ansible-runner's callback names them.
const (
	EventPlaybookStart = "playbook_on_start"
	EventPlayStart     = "playbook_on_play_start"
	EventTaskStart     = "playbook_on_task_start"
	EventStats         = "playbook_on_stats"
	EventRunnerStart   = "runner_on_start"
	EventOK            = "runner_on_ok"
	EventFailed        = "runner_on_failed"
	EventUnreachable   = "runner_on_unreachable"
	EventSkipped       = "runner_on_skipped"
	EventVerbose       = "verbose"
	EventWarning       = "warning"
	EventError         = "error"
)

// Event is one job event in ansible-runner's format: what ansible-runner
// writes to artifacts/<ident>/job_events/<counter>-<uuid>.json and streams
// from a worker. EventData is kept as it came, so an event read from another
// implementation is passed on whole; Data is its typed view.
type Event struct {
	Event       string          `json:"event"`
	UUID        string          `json:"uuid"`
	ParentUUID  string          `json:"parent_uuid,omitempty"`
	Counter     int             `json:"counter"`
	Stdout      string          `json:"stdout"`
	StartLine   int             `json:"start_line"`
	EndLine     int             `json:"end_line"`
	RunnerIdent string          `json:"runner_ident,omitempty"`
	Created     string          `json:"created,omitempty"`
	PID         int             `json:"pid,omitempty"`
	EventData   json.RawMessage `json:"event_data"`

	Data EventData `json:"-"`
}

// EventData is what this package reads of an event's event_data.
type EventData struct {
	Playbook     string          `json:"playbook,omitempty"`
	PlaybookUUID string          `json:"playbook_uuid,omitempty"`
	Play         string          `json:"play,omitempty"`
	PlayUUID     string          `json:"play_uuid,omitempty"`
	PlayPattern  string          `json:"play_pattern,omitempty"`
	Task         string          `json:"task,omitempty"`
	TaskUUID     string          `json:"task_uuid,omitempty"`
	TaskAction   string          `json:"task_action,omitempty"`
	TaskPath     string          `json:"task_path,omitempty"`
	Host         string          `json:"host,omitempty"`
	RemoteAddr   string          `json:"remote_addr,omitempty"`
	Name         string          `json:"name,omitempty"`
	Start        string          `json:"start,omitempty"`
	End          string          `json:"end,omitempty"`
	Duration     float64         `json:"duration,omitempty"`
	IgnoreErrors bool            `json:"ignore_errors,omitempty"`
	Res          json.RawMessage `json:"res,omitempty"`
}

// Stats is the event data of playbook_on_stats: per category, the count
// per host.
type Stats struct {
	OK        map[string]int `json:"ok"`
	Changed   map[string]int `json:"changed"`
	Failures  map[string]int `json:"failures"`
	Dark      map[string]int `json:"dark"`
	Skipped   map[string]int `json:"skipped"`
	Rescued   map[string]int `json:"rescued"`
	Ignored   map[string]int `json:"ignored"`
	Processed map[string]int `json:"processed"`
	// ArtifactData is what set_stats recorded for the run (its "_run"
	// data): the run's artifacts.
	ArtifactData json.RawMessage `json:"artifact_data,omitempty"`
}

// DecodeEvent parses an event line (ansible-runner's format). It needs
// "event"; "event_data", when present, must be an object.
func DecodeEvent(line []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, fmt.Errorf("not a JSON event: %w", err)
	}
	if ev.Event == "" {
		return ev, fmt.Errorf("not an event: no \"event\" name")
	}
	if len(ev.EventData) > 0 && string(ev.EventData) != "null" {
		if err := json.Unmarshal(ev.EventData, &ev.Data); err != nil {
			return ev, fmt.Errorf("event %s: event_data: %w", ev.Event, err)
		}
	}
	return ev, nil
}

// Recap returns the per-host counts of a playbook_on_stats event.
func (e *Event) Recap() (map[string]action.HostCounts, error) {
	var s Stats
	if err := json.Unmarshal(e.EventData, &s); err != nil {
		return nil, fmt.Errorf("playbook_on_stats: %w", err)
	}
	out := map[string]action.HostCounts{}
	get := func(h string) action.HostCounts { return out[h] }
	for _, m := range []map[string]int{s.Processed, s.OK, s.Changed, s.Failures, s.Dark, s.Skipped, s.Rescued, s.Ignored} {
		for h := range m {
			out[h] = get(h)
		}
	}
	for h := range out {
		out[h] = action.HostCounts{
			OK: s.OK[h], Changed: s.Changed[h], Failed: s.Failures[h], Unreachable: s.Dark[h],
			Skipped: s.Skipped[h], Rescued: s.Rescued[h], Ignored: s.Ignored[h],
		}
	}
	return out, nil
}

// Artifacts returns the artifacts of a playbook_on_stats event (what
// set_stats recorded for the run); nil when there are none.
func (e *Event) Artifacts() json.RawMessage {
	var s Stats
	if json.Unmarshal(e.EventData, &s) != nil {
		return nil
	}
	a := bytes.TrimSpace(s.ArtifactData)
	if len(a) == 0 || a[0] != '{' || bytes.Equal(a, []byte("{}")) {
		return nil
	}
	return a
}

// Changed reports whether a host result changed something.
func (e *Event) Changed() bool {
	if len(e.Data.Res) == 0 {
		return false
	}
	var r struct {
		Changed bool `json:"changed"`
	}
	_ = json.Unmarshal(e.Data.Res, &r)
	return r.Changed
}

// Level is the log level of the event's text.
func (e *Event) Level() string {
	switch e.Event {
	case EventFailed, "runner_item_on_failed", "runner_on_async_failed":
		if e.Data.IgnoreErrors {
			return "warn"
		}
		return "error"
	case EventUnreachable, EventError:
		return "error"
	case EventWarning, "deprecated":
		return "warn"
	case "debug":
		return "debug"
	}
	return "info"
}

// Time returns when the event happened (its "created" time), or zero.
func (e *Event) Time() time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999"} {
		if t, err := time.Parse(layout, e.Created); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// ansiEscape matches the terminal colour codes of output made for a
// terminal (ansible-runner's workers keep them).
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// Message is the event's text: its stdout without terminal colour codes, or
// for an event without text a short description ("playbook_on_start
// site.yml").
func (e *Event) Message() string {
	if e.Stdout != "" {
		return ansiEscape.ReplaceAllString(e.Stdout, "")
	}
	parts := []string{e.Event}
	switch {
	case e.Data.Host != "":
		parts = append(parts, "["+e.Data.Host+"]", e.Data.Task)
	case e.Event == EventPlaybookStart:
		parts = append(parts, e.Data.Playbook)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// ActionEvent turns e into the engine's structured event. Events without
// text that only mark a host starting a task have an empty message, so
// they are recorded but make no log line.
func (e *Event) ActionEvent() action.Event {
	msg := e.Message()
	if e.Stdout == "" && e.Event == EventRunnerStart {
		msg = ""
	}
	return action.Event{
		Counter: e.Counter, Name: e.Event, UUID: e.UUID, ParentUUID: e.ParentUUID, Time: e.Time(),
		Level: e.Level(), Message: msg,
		Playbook: e.Data.Playbook, Play: e.Data.Play, Task: e.Data.Task, TaskAction: e.Data.TaskAction,
		Host: e.Data.Host, Duration: time.Duration(e.Data.Duration * float64(time.Second)), Changed: e.Changed(),
	}
}
