package action

import (
	"sort"
	"time"
)

// Event is a structured job event: one step of what an action did, such as
// a play or a task starting or one host's result of a task. The Ansible
// action reports one per ansible-playbook callback, named as ansible-runner
// names them ("runner_on_ok", "playbook_on_task_start", …).
type Event struct {
	// Counter numbers the action's events 1, 2, … in the order they
	// happened; gaps are allowed.
	Counter int
	// Name is the event's name, e.g. "runner_on_failed".
	Name string
	// UUID identifies the event; ParentUUID the task, play or playbook it
	// belongs to (may be empty).
	UUID, ParentUUID string
	Time             time.Time
	// Level is the log level of the event's text ("debug", "info", "warn",
	// "error").
	Level string
	// Message is the event's text, as the action's output shows it.
	Message string
	// Where the event happened; empty when it does not apply.
	Playbook, Play, Task, TaskAction, Host string
	// Duration is how long a host took for a task (host results only).
	Duration time.Duration
	// Changed reports a host result that changed something.
	Changed bool
}

// EventReporter is implemented by reporters that record structured events.
// An action checks for it and falls back to Reporter.Log with the event's
// message when the reporter does not have it:
//
//	if er, ok := r.(action.EventReporter); ok { er.Event(ev) } else { r.Log(ev.Level, ev.Message) }
//
// A reporter that records an event also writes its message to the job's
// log, so an action never reports the same text both ways.
type EventReporter interface {
	Event(ev Event)
}

// ReportEvent reports ev to r: as a structured event when r records them,
// else as a log line (an event without text is then dropped).
func ReportEvent(r Reporter, ev Event) {
	if er, ok := r.(EventReporter); ok {
		er.Event(ev)
		return
	}
	if ev.Message != "" {
		r.Log(ev.Level, ev.Message)
	}
}

// MaxSummaryHosts bounds the hosts listed one by one in a HostSummary; the
// counts always cover every host.
const MaxSummaryHosts = 500

// HostCounts is one host's line of a play recap.
type HostCounts struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// HostSummary is the outcome of a run per host (Ansible's play recap), kept
// on the job's document. Each host is counted once in the top-level counts,
// by its worst outcome: unreachable, then failed, changed, ok, skipped.
type HostSummary struct {
	Hosts       int `json:"hosts"`
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Skipped     int `json:"skipped"`
	// FailedHosts and UnreachableHosts name those hosts, sorted, at most
	// MaxSummaryHosts of each.
	FailedHosts      []string `json:"failed-hosts,omitempty"`
	UnreachableHosts []string `json:"unreachable-hosts,omitempty"`
	// PerHost holds the recap line of at most MaxSummaryHosts hosts (the
	// failed and unreachable ones first); Truncated says some were left out.
	PerHost   map[string]HostCounts `json:"per-host,omitempty"`
	Truncated bool                  `json:"truncated,omitempty"`
}

// SummarizeHosts builds a HostSummary from every host's recap line.
func SummarizeHosts(recap map[string]HostCounts) *HostSummary {
	s := &HostSummary{Hosts: len(recap)}
	names := make([]string, 0, len(recap))
	for h := range recap {
		names = append(names, h)
	}
	sort.Strings(names)
	var bad, good []string
	for _, h := range names {
		c := recap[h]
		switch {
		case c.Unreachable > 0:
			s.Unreachable++
			if len(s.UnreachableHosts) < MaxSummaryHosts {
				s.UnreachableHosts = append(s.UnreachableHosts, h)
			}
		case c.Failed > 0:
			s.Failed++
			if len(s.FailedHosts) < MaxSummaryHosts {
				s.FailedHosts = append(s.FailedHosts, h)
			}
		case c.Changed > 0:
			s.Changed++
		case c.OK > 0:
			s.OK++
		default:
			s.Skipped++
		}
		if c.Unreachable > 0 || c.Failed > 0 {
			bad = append(bad, h)
		} else {
			good = append(good, h)
		}
	}
	s.PerHost = make(map[string]HostCounts, min(len(recap), MaxSummaryHosts))
	for _, h := range append(bad, good...) {
		if len(s.PerHost) == MaxSummaryHosts {
			s.Truncated = true
			break
		}
		s.PerHost[h] = recap[h]
	}
	return s
}
