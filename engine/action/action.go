// Package action defines what an action is to the engine: a name, its
// defaults, and a Run method. Built-in actions (package actions) and plugin
// actions (package pluginhost) are registered through the same Registry, so
// the executor never needs to know where an action comes from.
package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Errors returned by this package and by action runners.
var (
	// ErrDuplicate is returned when an action name is registered twice.
	ErrDuplicate = errors.New("action: duplicate action name")
	// ErrInvalid is returned for a definition that cannot be registered.
	ErrInvalid = errors.New("action: invalid definition")
	// ErrPluginKilled is wrapped by runners whose plugin process had to be
	// killed because it ignored cancellation past its grace period.
	ErrPluginKilled = errors.New("plugin killed")
	// ErrLost is wrapped by runners whose run was lost with the machine or
	// connection it ran over (a remote node): the executor applies the
	// action's lost-job policy, as for a job whose executor died.
	ErrLost = errors.New("run lost")
)

// LostPolicy says what the executor does with a job of this action that it
// finds RUNNING although no executor holds it (its executor died).
type LostPolicy string

const (
	// Rerun runs the job again, counting attempts, up to MaxAttempts.
	Rerun LostPolicy = "rerun"
	// Fail marks the job FAILED "executor lost" at once.
	Fail LostPolicy = "fail"
)

// DefaultMaxAttempts is the number of attempts of a Rerun action when its
// definition does not say.
const DefaultMaxAttempts = 3

// DefaultTimeout is the timeout of an action whose definition does not say.
const DefaultTimeout = 10 * time.Minute

// Job is what an action sees of the job it runs.
type Job struct {
	ID       string          // "job/<uuid>"
	Action   string          // the action name
	Target   string          // href of the target resource, may be empty
	Payload  json.RawMessage // the action's arguments (a JSON object), may be empty
	Priority int
	Attempt  int // 1 for the first run
	Tags     []string
	Parent   string        // href of the parent job, may be empty
	Timeout  time.Duration // the effective timeout the executor enforces
}

// Reporter lets a running action tell the engine what it is doing. Every
// method is safe for concurrent use and never blocks on I/O: updates are
// coalesced and written by the engine at a bounded rate.
type Reporter interface {
	// Progress sets the job's progress, 0–100 (values outside are clamped).
	Progress(percent int)
	// Status sets the job's status message (truncated to the documented length).
	Status(message string)
	// Affected adds hrefs to the job's affected resources.
	Affected(hrefs ...string)
	// Log records one log line of the action ("debug", "info", "warn", "error").
	Log(level, message string)
}

// Result is the outcome of an action that ran to completion.
type Result struct {
	// ReturnCode 0 means SUCCESS, anything else FAILED.
	ReturnCode int
	// Message, when not empty, becomes the job's final status message.
	Message string
	// Hosts, when set, is the run's outcome per host (Ansible's play
	// recap); it is kept on the job's document.
	Hosts *HostSummary
	// Artifacts, when set, is what the run returned for others to use (a
	// JSON object, such as the data of Ansible's set_stats); it is kept on
	// the job's document when it is at most MaxArtifactBytes long.
	Artifacts json.RawMessage
}

// MaxArtifactBytes bounds Result.Artifacts: larger artifacts are left out
// of the job's document, with a note, since it lives in ZooKeeper.
const MaxArtifactBytes = 16 << 10

// Runner runs one job. Run must return soon after ctx is done; an error means
// the job FAILED with the error's text as its status message.
type Runner interface {
	Run(ctx context.Context, job *Job, r Reporter) (Result, error)
}

// RunnerFunc adapts a function to a Runner.
type RunnerFunc func(ctx context.Context, job *Job, r Reporter) (Result, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, job *Job, r Reporter) (Result, error) {
	return f(ctx, job, r)
}

// Definition is an action as registered: what it is and how to run it.
type Definition struct {
	Name           string
	DefaultTimeout time.Duration // 0 means DefaultTimeout
	LostPolicy     LostPolicy    // "" means Rerun
	MaxAttempts    int           // 0 means DefaultMaxAttempts
	Description    string
	Source         string // "builtin" or "plugin:<path>"
	Version        string // plugin version, empty for built-ins
	// Test marks a built-in action that exists to try and test the engine
	// (sleep, fail, echo, dummy_test_action). It is compiled into every
	// binary but offered only by registries that ask for test actions, so
	// a production executor never runs a job just because someone queued
	// one of them.
	Test   bool
	Runner Runner
}

// Normalized returns d with its defaults filled in.
func (d Definition) Normalized() Definition {
	if d.DefaultTimeout <= 0 {
		d.DefaultTimeout = DefaultTimeout
	}
	if d.LostPolicy == "" {
		d.LostPolicy = Rerun
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	if d.Source == "" {
		d.Source = "builtin"
	}
	return d
}

// Validate reports what is wrong with d, if anything.
func (d Definition) Validate() error {
	if !ValidName(d.Name) {
		return fmt.Errorf(`%w: name %q must be 1-64 characters of [a-z0-9_.-] and not "." or ".."`, ErrInvalid, d.Name)
	}
	if d.Runner == nil {
		return fmt.Errorf("%w: action %q has no runner", ErrInvalid, d.Name)
	}
	if d.LostPolicy != "" && d.LostPolicy != Rerun && d.LostPolicy != Fail {
		return fmt.Errorf("%w: action %q: lost-job policy %q is not %q or %q", ErrInvalid, d.Name, d.LostPolicy, Rerun, Fail)
	}
	return nil
}

// ValidName reports whether s can name an action: 1–64 characters of
// a-z, 0-9, '_', '-' and '.', other than "." and "..". The same rule
// applies to the action of every job.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// Registry maps action names to definitions. The zero value is ready to use.
type Registry struct {
	mu   sync.RWMutex
	defs map[string]Definition
}

// Add registers d, normalized. It fails on an invalid or duplicate name.
func (r *Registry) Add(d Definition) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d = d.Normalized()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.defs == nil {
		r.defs = make(map[string]Definition)
	}
	if old, ok := r.defs[d.Name]; ok {
		return fmt.Errorf("%w: %q from %s is already provided by %s", ErrDuplicate, d.Name, d.Source, old.Source)
	}
	r.defs[d.Name] = d
	return nil
}

// Replace registers d, normalized, in place of the definition of the same
// name: a built-in action configured by the process that runs it (the
// Ansible action given the credential store of an executor). It fails on an
// invalid definition or a name that is not registered.
func (r *Registry) Replace(d Definition) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d = d.Normalized()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.defs[d.Name]; !ok {
		return fmt.Errorf("%w: cannot replace %q, which is not registered", ErrInvalid, d.Name)
	}
	r.defs[d.Name] = d
	return nil
}

// Lookup returns the definition registered under name.
func (r *Registry) Lookup(name string) (Definition, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.defs[name]
	return d, ok
}

// List returns every definition, sorted by name.
func (r *Registry) List() []Definition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Definition, 0, len(r.defs))
	for _, d := range r.defs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	defs := r.List()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return names
}

var builtins Registry

// Register adds a built-in action. It is meant for init functions and panics
// on an invalid or duplicate definition, which is a programming error.
func Register(d Definition) {
	if d.Source == "" {
		d.Source = "builtin"
	}
	if err := builtins.Add(d); err != nil {
		panic(err)
	}
}

// Builtins returns a new registry holding the built-in actions registered so
// far, test actions excluded: what a production executor offers before it
// adds its plugin actions.
func Builtins() *Registry { return builtinRegistry(false) }

// BuiltinsWithTests returns a new registry holding every built-in action
// registered so far, test actions included (`jobengine dev`, an executor
// started with --enable-test-actions, tests).
func BuiltinsWithTests() *Registry { return builtinRegistry(true) }

func builtinRegistry(withTests bool) *Registry {
	r := &Registry{}
	for _, d := range builtins.List() {
		if d.Test && !withTests {
			continue
		}
		_ = r.Add(d) // already validated and unique
	}
	return r
}

// IsTest reports whether name is a built-in test action, so that a job of
// one that an executor does not offer can say how to enable it.
func IsTest(name string) bool {
	d, ok := builtins.Lookup(name)
	return ok && d.Test
}
