package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// State is the state of a job.
type State string

// The job states. PENDING is a job held back by the scheduler
// (engine/scheduler) until nothing blocks it and an executor has room: jobs
// with scheduling needs start there (see Scheduling); others start QUEUED.
const (
	Pending  State = "PENDING"
	Queued   State = "QUEUED"
	Running  State = "RUNNING"
	Success  State = "SUCCESS"
	Failed   State = "FAILED"
	Canceled State = "CANCELED"
)

// States lists every state in lifecycle order.
var States = []State{Pending, Queued, Running, Success, Failed, Canceled}

// Final reports whether s is a final state, one that never changes again.
func (s State) Final() bool { return s == Success || s == Failed || s == Canceled }

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// ParseState parses a state name, case-insensitively.
func ParseState(s string) (State, error) {
	st := State(strings.ToUpper(strings.TrimSpace(s)))
	if !st.Valid() {
		return "", fmt.Errorf("%w: unknown state %q (want one of PENDING, QUEUED, RUNNING, SUCCESS, FAILED, CANCELED)", ErrInvalid, s)
	}
	return st, nil
}

var transitions = map[State][]State{
	// PENDING → QUEUED: placed by the scheduler; → FAILED: a dependency
	// failed; → SUCCESS | FAILED | CANCELED: a fan-out parent ends with
	// its children.
	Pending: {Queued, Canceled, Failed, Success},
	// QUEUED → PENDING: a job placed on an executor that was lost before
	// it started goes back to the scheduler.
	Queued: {Running, Canceled, Pending},
	// RUNNING → QUEUED is a requeue: an executor that stops gives back the
	// jobs it could not finish within its shutdown grace (a placed job goes
	// back to PENDING instead, as does one rerun after its executor was
	// lost, to be placed again).
	Running: {Success, Failed, Canceled, Queued, Pending},
}

// CanTransition reports whether a job may go from one state to another.
// RUNNING → RUNNING is allowed: it is a new attempt of a job whose executor
// was lost.
func CanTransition(from, to State) bool {
	if from == Running && to == Running {
		return true
	}
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// Limits on job documents.
const (
	// MaxPayloadBytes bounds the encoded payload of a job.
	MaxPayloadBytes = 256 << 10
	// MaxStatusMessage bounds the status message, in bytes; longer messages
	// are truncated on a UTF-8 boundary and end with "…".
	MaxStatusMessage = 4096
	// MaxIDBytes bounds hrefs, actions, tags and unique keys.
	MaxIDBytes = 1024
	// MaxTags bounds the number of tags of a job.
	MaxTags = 64
	// MaxAffected bounds the number of affected resources kept on a job.
	MaxAffected = 1000
	// MaxActionBytes bounds an action name.
	MaxActionBytes = 64
	// MaxDocumentBytes bounds an encoded job document. A write carries the
	// document twice when indexing is on (the document and its outbox
	// copy), and the whole transaction must stay within the budget of a
	// ZooKeeper request (zkconn.RequestBudget). A document that would be
	// larger is trimmed (see Job.Trimmed); one read larger is invalid.
	MaxDocumentBytes = 448 << 10
)

// Resource is a reference to a resource, as Nuvla writes it.
type Resource struct {
	Href string `json:"href"`
}

// Job is the live job document, stored as JSON in ZooKeeper and indexed into
// Elasticsearch. Field names follow the Nuvla job resource.
type Job struct {
	ID                 string          `json:"id"` // "job/<uuid>"
	Action             string          `json:"action"`
	State              State           `json:"state"`
	Priority           int             `json:"priority"`
	Progress           int             `json:"progress"`
	ReturnCode         *int            `json:"return-code,omitempty"`
	StatusMessage      string          `json:"status-message,omitempty"`
	TargetResource     *Resource       `json:"target-resource,omitempty"`
	AffectedResources  []Resource      `json:"affected-resources,omitempty"`
	ParentJob          string          `json:"parent-job,omitempty"`
	NestedJobs         []string        `json:"nested-jobs,omitempty"`
	Payload            json.RawMessage `json:"payload,omitempty"`
	Tags               []string        `json:"tags,omitempty"`
	Created            time.Time       `json:"created"`
	Updated            time.Time       `json:"updated"`
	Started            *time.Time      `json:"started,omitempty"`
	TimeOfStatusChange time.Time       `json:"time-of-status-change"`
	// Duration is the run time of the last attempt in seconds, set when final.
	Duration *float64 `json:"duration,omitempty"`
	// Executor is the name of the executor that ran (or runs) the job.
	Executor string `json:"executor,omitempty"`
	// Attempt counts the runs of the job: 1 for the first.
	Attempt int `json:"attempt"`
	// Timeout in seconds; 0 means the action's default.
	Timeout float64 `json:"timeout,omitempty"`
	// Version counts the writes of the document, starting at 1; the
	// Elasticsearch indexer uses it as the external version.
	Version int64 `json:"version"`

	// UniqueKey, when set, forbids a second live job with the same key.
	UniqueKey string `json:"unique-key,omitempty"`
	// CreatedBy names who created the job (a distributor, "cli", …).
	CreatedBy string `json:"created-by,omitempty"`
	// Tick is the schedule tick that created the job, for distributor jobs.
	Tick string `json:"tick,omitempty"`
	// Trimmed says what the last write left out so that the document fits
	// MaxDocumentBytes (affected resources, the end of the status
	// message); empty when nothing was.
	Trimmed string `json:"trimmed,omitempty"`
	// HostSummary is the outcome per host of a job whose action reports
	// one (Ansible's play recap); see hosts.go.
	HostSummary *HostSummary `json:"host-summary,omitempty"`
	// Artifacts is what the action returned for others to use (a JSON
	// object, such as Ansible's set_stats data), at most
	// action.MaxArtifactBytes; see Outcome.Artifacts.
	Artifacts json.RawMessage `json:"artifacts,omitempty"`

	// Launch holds the fields of jobs launched from templates (kind,
	// template, inventory, slices, …: see launch.go).
	Launch
	// Scheduling holds the fields the scheduler reads and writes (impact,
	// concurrency keys, dependencies, explanation, placement: see
	// scheduling.go); the instance groups are Launch's.
	Scheduling

	// Notifications names the notification templates the job notifies
	// when it starts, succeeds or fails (see notices.go).
	Notifications *Notifications `json:"notifications,omitempty"`
}

// UUID returns the uuid part of the job id.
func (j *Job) UUID() string { return strings.TrimPrefix(j.ID, "job/") }

// Target returns the href of the target resource, or "".
func (j *Job) Target() string {
	if j.TargetResource == nil {
		return ""
	}
	return j.TargetResource.Href
}

// TimeoutDuration returns the job's own timeout, 0 if it has none.
func (j *Job) TimeoutDuration() time.Duration {
	return time.Duration(j.Timeout * float64(time.Second))
}

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid job")

// ParseID accepts "job/<uuid>" or a bare uuid and returns the canonical
// "job/<uuid>" and the uuid.
func ParseID(s string) (id, uid string, err error) {
	u := strings.TrimPrefix(strings.TrimSpace(s), "job/")
	parsed, perr := uuid.Parse(u)
	if perr != nil || len(u) != 36 {
		return "", "", fmt.Errorf("%w: %q is not a job id (want job/<uuid> or a bare uuid)", ErrInvalid, s)
	}
	u = parsed.String()
	return "job/" + u, u, nil
}

// NewID returns a new random job id and its uuid.
func NewID() (id, uid string) {
	u := uuid.NewString()
	return "job/" + u, u
}

// TruncateStatus bounds a status message to MaxStatusMessage bytes.
func TruncateStatus(s string) string { return truncate(s, MaxStatusMessage) }

// ClampProgress bounds p to 0–100.
func ClampProgress(p int) int {
	if p < 0 {
		return 0
	}
	if p > 100 {
		return 100
	}
	return p
}
