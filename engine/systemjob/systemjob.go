// Package systemjob holds the cluster's system jobs: its own housekeeping
// (deleting finished jobs older than a number of days, expired API tokens
// and login sessions) launched as jobs, as AWX's system job templates are.
// A system job is a job of action jobs.SystemAction whose payload names a
// kind; it holds the concurrency key jobs.SystemKey and weighs
// jobs.SystemImpact, so the scheduler runs one at a time cluster-wide and
// counts it against its executor's capacity. An executor runs it with the
// Definition built over its ZooKeeper session (daemon.StartExecutor).
package systemjob

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

// Action is the action of system jobs.
const Action = jobs.SystemAction

// ErrInvalid: a system job that cannot be made or run (an unknown kind, a
// bad number of days).
var ErrInvalid = errors.New("system job: invalid")

// Kind names what a system job does.
type Kind string

// The kinds of system jobs.
const (
	// CleanupJobs deletes the finished jobs whose final state is older
	// than Days days and that Elasticsearch has (no outbox entry left),
	// as the cleanup service does with its retention.
	CleanupJobs Kind = "cleanup_jobs"
	// CleanupTokens deletes the expired API tokens and login sessions.
	CleanupTokens Kind = "cleanup_tokens"
)

// MaxDays bounds Payload.Days (a hundred years).
const MaxDays = 36500

// KindInfo describes a kind: what it does and the days it takes.
type KindInfo struct {
	Kind        Kind   `json:"kind"`
	Description string `json:"description"`
	// TakesDays says whether the kind takes a number of days, and
	// DefaultDays is the number used when none is given.
	TakesDays   bool `json:"takes-days"`
	DefaultDays int  `json:"default-days,omitempty"`
}

// Kinds lists every kind of system job, in the order the command line
// shows them.
var Kinds = []KindInfo{
	{Kind: CleanupJobs, TakesDays: true, DefaultDays: 7,
		Description: "delete finished jobs whose final state is older than the given days (0: every finished job) and that are indexed"},
	{Kind: CleanupTokens,
		Description: "delete expired API tokens and login sessions"},
}

// Info returns the description of kind k.
func Info(k Kind) (KindInfo, error) {
	for _, ki := range Kinds {
		if ki.Kind == k {
			return ki, nil
		}
	}
	names := make([]string, len(Kinds))
	for i, ki := range Kinds {
		names[i] = string(ki.Kind)
	}
	return KindInfo{}, fmt.Errorf("%w: no system job kind %q (have: %s; see `jobengine system-job list`)", ErrInvalid, k, strings.Join(names, ", "))
}

// Payload is the payload of a system job.
type Payload struct {
	Kind Kind `json:"kind"`
	// Days is how old what is deleted must be, for a kind that takes
	// days; nil is the kind's default.
	Days *int `json:"days,omitempty"`
}

// Validate checks a payload.
func (p *Payload) Validate() error {
	ki, err := Info(p.Kind)
	if err != nil {
		return err
	}
	if p.Days == nil {
		return nil
	}
	if !ki.TakesDays {
		return fmt.Errorf("%w: %s takes no days (leave --days out)", ErrInvalid, p.Kind)
	}
	if *p.Days < 0 || *p.Days > MaxDays {
		return fmt.Errorf("%w: %s: %d days: give a whole number 0–%d", ErrInvalid, p.Kind, *p.Days, MaxDays)
	}
	return nil
}

// days returns the days of the payload, or the kind's default.
func (p *Payload) days() int {
	if p.Days != nil {
		return *p.Days
	}
	ki, _ := Info(p.Kind)
	return ki.DefaultDays
}

// DecodePayload reads and checks a system job's payload.
func DecodePayload(raw json.RawMessage) (*Payload, error) {
	var p Payload
	if err := configstore.DecodeStrict(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v (want {\"kind\": \"cleanup_jobs\", \"days\": 7})", ErrInvalid, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// NewJob returns the system job of kind k (days nil: the kind's default),
// created by `by`. Creating it (jobs.Store.Create) gives it the system
// key and impact: it starts PENDING, for the scheduler.
func NewJob(k Kind, days *int, by string) (jobs.NewJob, error) {
	p := Payload{Kind: k, Days: days}
	if err := p.Validate(); err != nil {
		return jobs.NewJob{}, err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return jobs.NewJob{}, err
	}
	return jobs.NewJob{
		Action: Action, Payload: data, CreatedBy: by, Priority: queue.DefaultPriority,
		Scheduling: jobs.Scheduling{Impact: jobs.SystemImpact, ConcurrencyKeys: []string{jobs.SystemKey}},
	}, nil
}
