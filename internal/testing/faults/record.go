package faults

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Environment variables the harness sets on every executor process; the
// executor passes them to the recorder plugin (--plugin-env: plugins get an
// allow-listed environment, never a JOBENGINE_ variable).
const (
	// EnvLog names the shared file the recorder appends its lines to.
	EnvLog = "FAULTS_RECORDER_LOG"
	// EnvExecutor names the executor process (its incarnation, "x1#2"):
	// actions are not told which executor runs them.
	EnvExecutor = "FAULTS_RECORDER_EXECUTOR"
)

// RecordAction is the name of the recorder plugin's action.
const RecordAction = "faults_record"

// Events of a recorder line.
const (
	EventStart = "start"
	EventEnd   = "end"
)

// Outcomes of a run, on its end line.
const (
	OutcomeDone     = "done"     // slept its full time and returned success
	OutcomeCanceled = "canceled" // its context ended first (session lost, timeout, cancel)
)

// Payload is the argument of a recorder job.
type Payload struct {
	// SleepMS is how long the action runs, in milliseconds.
	SleepMS int `json:"sleep_ms"`
}

// Record is one line of the recorder log. A run writes a start line when
// it begins and an end line when it returns, so a run whose process was
// killed still leaves its start.
type Record struct {
	Event    string `json:"ev"`
	Run      string `json:"run"` // random id shared by the start and end lines of one run
	Job      string `json:"job"`
	Attempt  int    `json:"attempt"`
	Executor string `json:"executor"` // EnvExecutor of the executor process
	PID      int    `json:"pid"`      // the plugin process
	Time     int64  `json:"t"`        // unix nanoseconds
	Outcome  string `json:"outcome,omitempty"`
}

// Run is one execution of an action: a start line and, unless its process
// died first, an end line.
type Run struct {
	ID       string
	Job      string
	Attempt  int
	Executor string
	Start    int64 // unix nanoseconds
	End      int64 // unix nanoseconds; 0 when the run left no end line
	Outcome  string
}

// Finished reports whether the run wrote its end line.
func (r Run) Finished() bool { return r.End != 0 }

// ErrRecord is wrapped by the errors of reading a recorder log.
var ErrRecord = errors.New("faults: bad recorder log")

// ReadRecords reads a recorder log. A torn last line (a process killed in
// the middle of its write) is skipped; any other bad line is an error.
func ReadRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var pending error
	for n := 1; sc.Scan(); n++ {
		if pending != nil {
			return nil, pending
		}
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Run == "" || r.Job == "" {
			pending = fmt.Errorf("%w: %s line %d: %q", ErrRecord, path, n, sc.Text())
			continue
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Runs pairs start and end lines into runs, ordered by start time. An end
// line without its start is an error: the log is not what the recorder
// writes.
func Runs(recs []Record) ([]Run, error) {
	byID := map[string]*Run{}
	var order []*Run
	for _, r := range recs {
		switch r.Event {
		case EventStart:
			if _, dup := byID[r.Run]; dup {
				return nil, fmt.Errorf("%w: run %s started twice", ErrRecord, r.Run)
			}
			run := &Run{ID: r.Run, Job: r.Job, Attempt: r.Attempt, Executor: r.Executor, Start: r.Time}
			byID[r.Run] = run
			order = append(order, run)
		case EventEnd:
			run, ok := byID[r.Run]
			if !ok {
				return nil, fmt.Errorf("%w: run %s ended without a start line", ErrRecord, r.Run)
			}
			run.End, run.Outcome = r.Time, r.Outcome
		default:
			return nil, fmt.Errorf("%w: unknown event %q", ErrRecord, r.Event)
		}
	}
	out := make([]Run, len(order))
	for i, r := range order {
		out[i] = *r
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Start < out[b].Start })
	return out, nil
}
