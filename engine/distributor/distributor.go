// Package distributor runs distributors: daemons that create jobs on a
// schedule. Every instance of a distributor contends in a leader election
// (engine/election) under <root>/election/<name>; only the leader creates
// jobs, each tick's jobs in ZooKeeper transactions fenced by the leader's
// election node, so an instance that has lost leadership (a frozen process,
// a lost session) can never create one.
//
// A distributor is either declared in a YAML file (action, schedule,
// targets, payload, …; see LoadDir) or written in Go and registered by name
// from an init function, like built-in actions: Register(Definition{…,
// Generator: fn}). A YAML file named after a registered distributor
// overrides its settings.
//
// Job creation per tick is idempotent. A tick's job has a deterministic id
// (JobID: a name-based UUID of the distributor, the tick and the target), so
// a leader that takes over in the middle of a tick finds the jobs already
// created and treats them as done. The last completed tick is kept in
// <root>/distributors/<name>/state; a new leader reads it and runs missed
// ticks by the distributor's catch-up policy (schedule.Due): at most one.
package distributor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of this package.
var (
	// ErrConfig is wrapped by every error about a distributor's definition
	// or configuration file.
	ErrConfig = errors.New("distributor: bad configuration")
	// ErrDuplicate is returned when a distributor name is registered twice.
	ErrDuplicate = errors.New("distributor: duplicate distributor name")
	// ErrUnknown is returned for a name that is neither registered nor
	// declared in the configuration directory.
	ErrUnknown = errors.New("distributor: no such distributor")
)

// Dedup is a distributor's de-duplication policy.
type Dedup string

const (
	// DedupSkip creates no job for a target while a live (not final) job
	// with the same unique key exists; the tick is done for that target.
	// The default.
	DedupSkip Dedup = "skip"
	// DedupAlways creates a job every tick, whatever is still live.
	DedupAlways Dedup = "always"
)

// ParseDedup parses a de-duplication policy; empty means DedupSkip.
func ParseDedup(s string) (Dedup, error) {
	switch Dedup(s) {
	case "", DedupSkip:
		return DedupSkip, nil
	case DedupAlways:
		return DedupAlways, nil
	}
	return "", fmt.Errorf("%w: dedup %q: use %q (no new job while one with the same unique key is live) or %q", ErrConfig, s, DedupSkip, DedupAlways)
}

// DefaultUniqueKey is the unique-key template of DedupSkip distributors that
// do not set one: one live job per action and target.
const DefaultUniqueKey = "{action}|{target}"

// Env is what a Generator works with.
type Env struct {
	// Name is the distributor's name.
	Name string
	// Identifier names this instance (host/pid by default).
	Identifier string
	// Store is the job store; a generator that writes to it itself must
	// guard each write with election.TermOf(ctx) (Check, or Fence in the
	// same multi).
	Store *jobs.Store
	// Conn is the ZooKeeper connection.
	Conn *zkconn.Conn
	// Log is the distributor's logger.
	Log *zap.Logger
	// Clock is the distributor's clock.
	Clock schedule.Clock
	// Options are the distributor's settings: the definition's defaults,
	// overridden by the `options` of its YAML file and by command-line
	// flags.
	Options map[string]string
}

// Generator computes the jobs of one tick at run time. ctx is the leader
// context: it ends the moment leadership is in doubt, and
// election.TermOf(ctx) guards side effects the generator performs itself.
// The distributor fills in what a returned job leaves empty: Action,
// Priority, Timeout, Payload from the definition, the deterministic ID, the
// unique key (by the dedup policy), CreatedBy and Tick. A generator that
// returns several jobs should give each a different target or unique key
// (or its own ID), so each keeps its identity across failovers. A panic is
// recovered, logged, and the tick retried after a back-off.
type Generator func(ctx context.Context, tick schedule.Tick, env *Env) ([]jobs.NewJob, error)

// Definition is a distributor.
type Definition struct {
	// Name names the distributor, its election and its state node: 1–64 of
	// letters, digits, '.', '_' and '-'.
	Name string
	// Description says what it does, for `distributor list`.
	Description string
	// Enabled says whether `jobengine distributor --all` runs it. A
	// distributor named on the command line runs whatever this says.
	Enabled bool
	// Schedule is when it ticks.
	Schedule schedule.Spec
	// CatchUp is what happens to ticks missed while no leader ran; empty
	// means schedule.CatchUpLast.
	CatchUp schedule.CatchUp
	// Action is the action of the jobs it creates. Required unless a
	// Generator sets the action of every job.
	Action string
	// Targets are the hrefs the jobs act on: one job per target per tick.
	// None: one job without a target.
	Targets []string
	// Payload is the action's arguments, a JSON object, for every job.
	Payload json.RawMessage
	// Priority is the jobs' queue priority, 0–999, lower runs first. It
	// counts only with PrioritySet.
	Priority int
	// PrioritySet marks Priority as given. Without it the jobs get
	// queue.DefaultPriority, so a definition that leaves Priority at zero
	// does not silently get the highest priority.
	PrioritySet bool
	// Timeout is the jobs' run-time limit; 0 means the action's default.
	Timeout time.Duration
	// Dedup is the de-duplication policy; empty means DedupSkip.
	Dedup Dedup
	// UniqueKey is the unique-key template of DedupSkip jobs: {action},
	// {target} and {name} are replaced. Empty means DefaultUniqueKey.
	UniqueKey string
	// Generator, when set, computes each tick's jobs at run time.
	Generator Generator
	// Options are default settings for the Generator (see Env.Options).
	Options map[string]string
	// CheckOptions validates the options after overrides; its error is
	// reported like any configuration error.
	CheckOptions func(opts map[string]string) error
	// Source says where the definition comes from: "builtin", or the file
	// that declares or overrides it.
	Source string
}

// namePattern is the election package's rule for names, with a length cap.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// reserved names cannot name a distributor, and why.
var reserved = map[string]string{
	"list":     "a subcommand of `jobengine distributor`",
	"validate": "a subcommand of `jobengine distributor`",
	"help":     "a subcommand of `jobengine distributor`",
	"h":        "a subcommand of `jobengine distributor`",
	// engine/maintenance.ElectionName: a distributor of that name would
	// share the maintenance services' election.
	"maintenance": "the election of the maintenance services",
}

// ValidName reports whether s can name a distributor.
func ValidName(s string) bool {
	return namePattern.MatchString(s) && s != "." && s != ".." && reserved[s] == ""
}

// Normalized returns d with its defaults filled in.
func (d Definition) Normalized() Definition {
	if d.CatchUp == "" {
		d.CatchUp = schedule.CatchUpLast
	}
	if d.Dedup == "" {
		d.Dedup = DedupSkip
	}
	if !d.PrioritySet {
		d.Priority, d.PrioritySet = queue.DefaultPriority, true
	}
	if d.Source == "" {
		d.Source = "builtin"
	}
	opts := make(map[string]string, len(d.Options))
	for k, v := range d.Options {
		opts[k] = v
	}
	d.Options = opts
	d.Targets = append([]string(nil), d.Targets...)
	return d
}

// Validate reports what is wrong with d, if anything.
func (d Definition) Validate() error {
	_, err := d.check()
	return err
}

// check validates d and names the field at fault ("schedule" for the
// interval, cron and time-zone fields), so a configuration file can point
// at its line.
func (d Definition) check() (field string, err error) {
	bad := func(field, format string, args ...any) (string, error) {
		return field, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if !ValidName(d.Name) {
		if why := reserved[d.Name]; why != "" {
			return bad("name", "name %q is reserved (%s)", d.Name, why)
		}
		return bad("name", "name %q: use 1–64 letters, digits, '.', '_' or '-'", d.Name)
	}
	if _, err := schedule.Parse(d.Schedule); err != nil {
		return bad("schedule", "%v", err)
	}
	if _, err := schedule.ParseCatchUp(string(d.CatchUp)); err != nil {
		return bad("catch-up", "%v", err)
	}
	if _, err := ParseDedup(string(d.Dedup)); err != nil {
		return "dedup", err
	}
	if d.Generator == nil && d.Action == "" {
		return bad("action", "no action: say which action the jobs run (action: NAME)")
	}
	if d.Action != "" && !action.ValidName(d.Action) {
		return bad("action", "action %q: use 1–64 characters of a-z, 0-9, '_', '-' and '.'", d.Action)
	}
	if d.PrioritySet && (d.Priority < queue.MinPriority || d.Priority > queue.MaxPriority) {
		return bad("priority", "priority %d is outside %d–%d", d.Priority, queue.MinPriority, queue.MaxPriority)
	}
	if d.Timeout < 0 {
		return bad("timeout", "negative timeout %s", d.Timeout)
	}
	if len(d.Payload) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(d.Payload, &obj); err != nil || obj == nil {
			return bad("payload", "payload must be a JSON object (a YAML mapping)")
		}
		if len(d.Payload) > jobs.MaxPayloadBytes {
			return bad("payload", "payload of %d bytes is over the %d-byte limit", len(d.Payload), jobs.MaxPayloadBytes)
		}
	}
	if d.Generator != nil && len(d.Targets) > 0 {
		return bad("targets", "%s computes its jobs in Go; targets cannot be set", d.Name)
	}
	seen := map[string]bool{}
	for _, t := range d.Targets {
		if err := jobs.CheckText("target", t, 1, jobs.MaxIDBytes); err != nil {
			return bad("targets", "%v", err)
		}
		if seen[t] {
			return bad("targets", "target %q is listed twice", t)
		}
		seen[t] = true
	}
	if d.Dedup == DedupAlways && d.UniqueKey != "" {
		return bad("unique-key", "unique-key %q has no effect with dedup %q: remove one of them", d.UniqueKey, DedupAlways)
	}
	if len(d.Targets) > 1 && d.UniqueKey != "" && !strings.Contains(d.UniqueKey, "{target}") {
		return bad("unique-key", "unique-key %q is the same for every target: include {target}", d.UniqueKey)
	}
	if d.CheckOptions != nil {
		opts := d.Options
		if opts == nil {
			opts = map[string]string{}
		}
		if err := d.CheckOptions(opts); err != nil {
			return bad("options", "options: %v", err)
		}
	} else if d.Generator == nil && len(d.Options) > 0 {
		return bad("options", "options are settings of Go distributors; %s has none", d.Name)
	}
	return "", nil
}

// parsedSchedule returns the definition's schedule; Validate has checked it.
func (d Definition) parsedSchedule() schedule.Schedule {
	s, err := schedule.Parse(d.Schedule)
	if err != nil {
		panic(err) // unreachable after Validate
	}
	return s
}

// ScheduleString describes the schedule, e.g. "every 15s".
func (d Definition) ScheduleString() string {
	s, err := schedule.Parse(d.Schedule)
	if err != nil {
		return "invalid: " + err.Error()
	}
	return s.String()
}

var (
	regMu    sync.RWMutex
	registry = map[string]Definition{}
)

// Register adds a Go distributor. It is meant for init functions (built-in
// distributors live in package distributors) and panics on an invalid or
// duplicate definition, which is a programming error.
func Register(d Definition) {
	if d.Source == "" {
		d.Source = "builtin"
	}
	d = d.Normalized()
	if err := d.Validate(); err != nil {
		panic(err)
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, ok := registry[d.Name]; ok {
		panic(fmt.Errorf("%w: %q", ErrDuplicate, d.Name))
	}
	registry[d.Name] = d
}

// Registered returns every registered distributor, sorted by name.
func Registered() []Definition {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Definition, 0, len(registry))
	for _, d := range registry {
		out = append(out, d.Normalized())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the registered distributor called name.
func Lookup(name string) (Definition, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := registry[name]
	if !ok {
		return Definition{}, false
	}
	return d.Normalized(), true
}
