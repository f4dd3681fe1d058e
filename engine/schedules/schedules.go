// Package schedules keeps the schedules stored in the cluster — named
// cron expressions or iCalendar RRULEs (AWX's format), each launching a
// template or a job — and runs them: Runner is the leader-run service that
// launches each occurrence once.
//
// A schedule is /config/schedules/<name> (JSON, validated on every read
// and write). What its runner has done is /schedule-state/<name>: the last
// occurrence handled, the job it launched, the error of a refused launch.
//
// Once per occurrence, across failovers: the job of an occurrence has a
// deterministic id (JobID: a name-based UUID of the schedule's uid and the
// occurrence's time), created in a transaction with the leader's election
// fence, so a new leader that runs the same occurrence again finds the job
// made and moves on, and a leader that lost its term creates nothing. Missed
// occurrences (no leader ran) follow the schedule's catch-up policy, as
// distributors' ticks do (schedule.Due): "last" (the default, as AWX does)
// launches the latest missed occurrence once, "none" skips them. A disabled
// schedule launches nothing, and enabling it makes up nothing of the time
// it was disabled. A launch refused at its time (the template is gone, a
// launch value is refused, the backlog is full) leaves a FAILED job saying
// why — it notifies failure like any job — and the schedule goes on to its
// next occurrence: it is reported, never retried in a loop.
//
// What is launched is the LaunchFunc's business: JobLauncher creates a
// plain job from the schedule's job spec, as `job add` does; a template
// launcher plugs in the same way.
package schedules

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
)

// Errors of this package.
var (
	// ErrInvalid is wrapped by every error about a schedule that is not
	// valid, as given or as read from ZooKeeper.
	ErrInvalid = errors.New("schedules: invalid schedule")
	// ErrNotFound is returned for a schedule that does not exist.
	ErrNotFound = errors.New("schedules: no such schedule")
	// ErrExists is returned when creating a schedule whose name is taken.
	ErrExists = errors.New("schedules: schedule exists")
	// ErrConflict is returned when a schedule changed since it was read.
	ErrConflict = errors.New("schedules: schedule changed concurrently")
	// ErrRefused is wrapped by a LaunchFunc's error when what a schedule
	// launches cannot be launched at this occurrence (its template is gone,
	// a launch value is refused): the runner records a FAILED job saying
	// why and goes on to the next occurrence.
	ErrRefused = errors.New("launch refused")
)

// Limits of schedules.
const (
	MaxScheduleBytes = 320 << 10 // a job spec's payload may be 256 KB
	MaxValuesBytes   = 64 << 10
	MaxDescription   = 1024
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether s can name a schedule (or a template).
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Schedule is a stored schedule.
type Schedule struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// UID identifies this schedule apart from its name: a schedule deleted
	// and created again under the same name launches new job ids.
	UID     string `json:"uid"`
	Enabled bool   `json:"enabled"`
	// Cron is a cron expression (5 fields, or 6 with seconds), in TimeZone.
	Cron     string `json:"cron,omitempty"`
	TimeZone string `json:"time-zone,omitempty"`
	// RRule is an iCalendar rule with its DTSTART, in AWX's format:
	// "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO".
	RRule string `json:"rrule,omitempty"`
	// CatchUp is what happens to occurrences missed while no leader ran:
	// "last" (the default) or "none".
	CatchUp schedule.CatchUp `json:"catch-up,omitempty"`
	// Launch is what each occurrence launches.
	Launch Launch `json:"launch"`
	// Since is when occurrences start to count: when the schedule was
	// created, last enabled, or given a new rule. Nothing before it is
	// made up.
	Since   time.Time `json:"since"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Launch is what a schedule launches: a template or a job, with launch
// values.
type Launch struct {
	// Template names a job template (engine/template).
	Template string `json:"template,omitempty"`
	// Workflow names a workflow template (engine/workflow).
	Workflow string `json:"workflow,omitempty"`
	// Job is a plain job, as `job add` creates.
	Job *JobSpec `json:"job,omitempty"`
	// Values are the launch values, a JSON object: a template's prompts
	// (its launcher reads them); for a job, keys merged over its payload.
	Values json.RawMessage `json:"values,omitempty"`
}

// JobSpec is a plain job to launch.
type JobSpec struct {
	Action        string             `json:"action"`
	Target        string             `json:"target,omitempty"`
	Priority      *int               `json:"priority,omitempty"`
	Payload       json.RawMessage    `json:"payload,omitempty"`
	Timeout       string             `json:"timeout,omitempty"` // a duration such as 90s; the action's default when empty
	UniqueKey     string             `json:"unique-key,omitempty"`
	Tags          []string           `json:"tags,omitempty"`
	Notifications jobs.Notifications `json:"notifications,omitzero"`
}

// Spec returns the schedule's rule as the schedule package takes it.
func (s *Schedule) Spec() schedule.Spec {
	return schedule.Spec{Cron: s.Cron, TimeZone: s.TimeZone, RRule: s.RRule}
}

// Rule describes the rule, e.g. "cron 0 9 * * 1 (Europe/Paris)".
func (s *Schedule) Rule() string {
	p, err := schedule.Parse(s.Spec())
	if err != nil {
		return "invalid: " + err.Error()
	}
	return p.String()
}

// Parsed returns the schedule's rule, parsed.
func (s *Schedule) Parsed() (schedule.Schedule, error) {
	return schedule.Parse(s.Spec())
}

// Next returns the next n occurrences strictly after after.
func (s *Schedule) Next(after time.Time, n int) []time.Time {
	p, err := s.Parsed()
	if err != nil {
		return nil
	}
	var out []time.Time
	for t := after; len(out) < n; {
		t = p.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Validate reports what is wrong with s, naming the field.
func (s *Schedule) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: schedule %q: %s", ErrInvalid, s.Name, fmt.Sprintf(format, args...))
	}
	if !ValidName(s.Name) {
		return fmt.Errorf("%w: name %q: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, s.Name)
	}
	if len(s.Description) > MaxDescription {
		return bad("description over %d bytes", MaxDescription)
	}
	if _, err := uuid.Parse(s.UID); err != nil {
		return bad("uid %q is not a UUID", s.UID)
	}
	if (s.Cron == "") == (s.RRule == "") {
		return bad("give a cron expression or an rrule, one of the two")
	}
	if _, err := schedule.Parse(s.Spec()); err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), schedule.ErrSpec.Error()+": "))
	}
	if _, err := schedule.ParseCatchUp(string(s.CatchUp)); err != nil {
		return bad("%s", strings.TrimPrefix(err.Error(), schedule.ErrSpec.Error()+": "))
	}
	return s.Launch.validate(bad)
}

func (l *Launch) validate(bad func(string, ...any) error) error {
	switch {
	case l.what() != 1:
		return bad("launch a template, a workflow or a job, one of the three")
	case l.Template != "" && !ValidName(l.Template):
		return bad("template %q is not a template name", l.Template)
	case l.Workflow != "" && !ValidName(l.Workflow):
		return bad("workflow %q is not a workflow name", l.Workflow)
	case l.Workflow != "" && len(l.Values) > 0:
		return bad("a workflow takes no launch values (its nodes carry theirs)")
	}
	if len(l.Values) > 0 {
		if len(l.Values) > MaxValuesBytes {
			return bad("launch values of %d bytes, at most %d", len(l.Values), MaxValuesBytes)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(l.Values, &obj); err != nil || obj == nil {
			return bad("launch values must be a JSON object")
		}
	}
	if l.Job != nil {
		if _, err := l.Job.newJob(l.Values); err != nil {
			return bad("job: %s", strings.TrimPrefix(err.Error(), jobs.ErrInvalid.Error()+": "))
		}
	}
	return nil
}

// what counts what the launch names: one is right.
func (l *Launch) what() int {
	n := 0
	for _, set := range []bool{l.Template != "", l.Workflow != "", l.Job != nil} {
		if set {
			n++
		}
	}
	return n
}

// newJob returns the job spec as a new job, with the launch values merged
// over its payload.
func (j *JobSpec) newJob(values json.RawMessage) (jobs.NewJob, error) {
	n := jobs.NewJob{
		Action: j.Action, Target: j.Target, Priority: queue.DefaultPriority, Payload: j.Payload,
		UniqueKey: j.UniqueKey, Tags: j.Tags, Notifications: j.Notifications,
	}
	if j.Priority != nil {
		n.Priority = *j.Priority
	}
	if j.Timeout != "" {
		d, err := time.ParseDuration(j.Timeout)
		if err != nil {
			return n, fmt.Errorf("%w: timeout %q: give a duration such as 90s", jobs.ErrInvalid, j.Timeout)
		}
		n.Timeout = d
	}
	if len(values) > 0 {
		payload := map[string]json.RawMessage{}
		if len(n.Payload) > 0 {
			if err := json.Unmarshal(n.Payload, &payload); err != nil {
				return n, fmt.Errorf("%w: payload must be a JSON object", jobs.ErrInvalid)
			}
		}
		var vals map[string]json.RawMessage
		if err := json.Unmarshal(values, &vals); err != nil {
			return n, fmt.Errorf("%w: launch values must be a JSON object", jobs.ErrInvalid)
		}
		for k, v := range vals {
			payload[k] = v
		}
		n.Payload, _ = json.Marshal(payload)
	}
	for _, t := range n.Tags {
		if t == "" || len(t) > jobs.MaxIDBytes {
			return n, fmt.Errorf("%w: a tag must be 1–%d bytes", jobs.ErrInvalid, jobs.MaxIDBytes)
		}
	}
	return n, n.Validate()
}

// idSpace is the UUID namespace of the job ids schedules derive.
var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:jobengine:schedule"))

// JobID returns the id of the job a schedule (by its UID) launches at the
// occurrence tick: a version 5 UUID, the same on every instance.
func JobID(uid string, tick schedule.Tick) string {
	return "job/" + uuid.NewSHA1(idSpace, []byte(uid+"\x00"+tick.ID())).String()
}

// CreatedBy returns the created-by of the jobs a schedule launches:
// "schedule:<name>@<identifier of the leader>".
func CreatedBy(name, identifier string) string {
	if identifier == "" {
		return "schedule:" + name
	}
	return "schedule:" + name + "@" + identifier
}
