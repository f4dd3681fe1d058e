// Package template holds job templates — named, reusable launches: an
// action and its payload defaults, the parameters of an Ansible run, an
// inventory, a limit and a slice count, scheduling hints (priority,
// timeout, instance groups, allow-simultaneous), tags, and which fields a
// launch may override (prompts) — and launches them: a plain job, or a
// sliced job (a workflow container and its slices) over one pinned
// snapshot of the inventory.
package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

// Errors of this package.
var (
	// ErrInvalid: bad input.
	ErrInvalid = configstore.Invalid("template")
	// ErrNotPromptable: a launch gave a value for a field the template does
	// not prompt for. It wraps ErrInvalid.
	ErrNotPromptable = fmt.Errorf("%w: not promptable", configstore.Invalid("launch"))
)

// Limits of a template.
const (
	// MaxPayloadBytes bounds the payload defaults and the extra variables
	// of a template, each; together with a launch's values they must fit
	// one job document.
	MaxPayloadBytes = 128 << 10
	// MaxTimeout bounds a template's timeout.
	MaxTimeout = 7 * 24 * time.Hour
)

// The fields a template may prompt for, named as in the job document.
const (
	PromptPayload        = "payload"
	PromptExtraVars      = "extra-vars"
	PromptInventory      = "inventory"
	PromptLimit          = "limit"
	PromptSliceCount     = "slice-count"
	PromptForks          = "forks"
	PromptVerbosity      = "verbosity"
	PromptDiffMode       = "diff-mode"
	PromptCheckMode      = "check-mode"
	PromptJobTags        = "job-tags"
	PromptSkipTags       = "skip-tags"
	PromptTimeout        = "timeout"
	PromptPriority       = "priority"
	PromptInstanceGroups = "instance-groups"
	PromptTags           = "tags"
)

// Prompts lists every promptable field.
var Prompts = []string{
	PromptPayload, PromptExtraVars, PromptInventory, PromptLimit, PromptSliceCount, PromptForks, PromptVerbosity,
	PromptDiffMode, PromptCheckMode, PromptJobTags, PromptSkipTags, PromptTimeout, PromptPriority,
	PromptInstanceGroups, PromptTags,
}

// Template is a stored job template.
type Template struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Action runs the jobs; Payload is its arguments' defaults (a JSON
	// object).
	Action  string          `json:"action"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// The parameters of an Ansible run (project, playbook, extra-vars,
	// forks, verbosity, diff-mode, check-mode, job-tags, skip-tags).
	jobs.Ansible
	// Inventory and Limit select the hosts; SliceCount > 1 launches a
	// sliced job.
	Inventory  string `json:"inventory,omitempty"`
	Limit      string `json:"limit,omitempty"`
	SliceCount int    `json:"slice-count,omitempty"`
	// AllowSimultaneous lets two launches run at once.
	AllowSimultaneous bool `json:"allow-simultaneous,omitempty"`
	// Timeout of each job in seconds; 0: the action's default.
	Timeout  float64 `json:"timeout,omitempty"`
	Priority int     `json:"priority"`
	// InstanceGroups run the jobs, in preference order.
	InstanceGroups []string `json:"instance-groups,omitempty"`
	// PreventFallback keeps the jobs on their first instance group: they
	// wait for room there rather than run in the next group.
	PreventFallback bool `json:"prevent-fallback,omitempty"`
	// Tags are given to every job.
	Tags []string `json:"tags,omitempty"`
	// Credentials name the credential objects an ansible_playbook run
	// uses (one machine credential, vault credentials, secrets); every
	// slice gets them. Only the names reach a job: the executor opens
	// them for the run.
	Credentials []string `json:"credentials,omitempty"`
	// Prompts are the fields a launch may override.
	Prompts []string `json:"prompts,omitempty"`
	// HostConfigKey, when set, lets a host of the template's inventory
	// launch the template against itself (a provisioning callback) by
	// presenting it. 16–128 letters, digits, '-' and '_'.
	HostConfigKey string    `json:"host-config-key,omitempty"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

// ObjectName implements configstore.Object.
func (t *Template) ObjectName() string { return t.Name }

// Validate implements configstore.Object.
func (t *Template) Validate() error {
	if err := configstore.ValidName("template", t.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(t.Description); err != nil {
		return err
	}
	if err := ValidAction(t.Action); err != nil {
		return err
	}
	if err := jobs.ValidObject("payload", t.Payload, MaxPayloadBytes); err != nil {
		return err
	}
	if err := t.Ansible.Validate(); err != nil {
		return err
	}
	if len(t.ExtraVars) > MaxPayloadBytes {
		return fmt.Errorf("%w: extra-vars of %d bytes is over the %d-byte limit", ErrInvalid, len(t.ExtraVars), MaxPayloadBytes)
	}
	if t.Inventory != "" {
		if err := configstore.ValidName("inventory", t.Inventory); err != nil {
			return err
		}
	}
	if _, err := inventory.ParseLimit(t.Limit); err != nil {
		return err
	}
	if t.SliceCount < 0 || t.SliceCount > inventory.MaxSlices {
		return fmt.Errorf("%w: slice count %d is outside 0–%d", ErrInvalid, t.SliceCount, inventory.MaxSlices)
	}
	if err := validTimeout(t.Timeout); err != nil {
		return err
	}
	if err := validPriority(t.Priority); err != nil {
		return err
	}
	if err := inventory.ValidInstanceGroups(t.InstanceGroups); err != nil {
		return err
	}
	if err := validTags(t.Tags); err != nil {
		return err
	}
	if err := validHostConfigKey(t.HostConfigKey); err != nil {
		return err
	}
	if err := validCredentials(t.Credentials); err != nil {
		return err
	}
	return validPrompts(t.Prompts)
}

// Bounds of a host config key.
const (
	MinHostConfigKey = 16
	MaxHostConfigKey = 128
)

func validHostConfigKey(k string) error {
	if k == "" {
		return nil
	}
	ok := len(k) >= MinHostConfigKey && len(k) <= MaxHostConfigKey
	for _, r := range k {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}
	if !ok {
		return fmt.Errorf("%w: host-config-key must be %d–%d letters, digits, '-' or '_' (it is what a host presents to launch the template against itself)", ErrInvalid, MinHostConfigKey, MaxHostConfigKey)
	}
	return nil
}

// ValidAction checks an action name as job creation does.
func ValidAction(a string) error {
	if a == "" || len(a) > 64 || strings.ContainsAny(a, " /\t\n") {
		return fmt.Errorf("%w: action %q must be 1–64 characters without spaces or slashes", ErrInvalid, a)
	}
	return nil
}

func validTimeout(secs float64) error {
	if secs < 0 || math.IsNaN(secs) || secs > MaxTimeout.Seconds() {
		return fmt.Errorf("%w: timeout %gs is outside 0–%s", ErrInvalid, secs, MaxTimeout)
	}
	return nil
}

func validPriority(p int) error {
	if p < queue.MinPriority || p > queue.MaxPriority {
		return fmt.Errorf("%w: priority %d is outside %d–%d", ErrInvalid, p, queue.MinPriority, queue.MaxPriority)
	}
	return nil
}

func validTags(tags []string) error {
	if len(tags) > jobs.MaxTags {
		return fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(tags), jobs.MaxTags)
	}
	for _, t := range tags {
		if t == "" || len(t) > jobs.MaxIDBytes {
			return fmt.Errorf("%w: a tag must be 1–%d bytes", ErrInvalid, jobs.MaxIDBytes)
		}
	}
	return nil
}

// MaxCredentials bounds the credentials of a template.
const MaxCredentials = 16

func validCredentials(names []string) error {
	if len(names) > MaxCredentials {
		return fmt.Errorf("%w: %d credentials, at most %d", ErrInvalid, len(names), MaxCredentials)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := configstore.ValidName("credential", n); err != nil {
			return err
		}
		if seen[n] {
			return fmt.Errorf("%w: credential %s is listed twice", ErrInvalid, n)
		}
		seen[n] = true
	}
	return nil
}

func validPrompts(ps []string) error {
	seen := map[string]bool{}
	for _, p := range ps {
		if !isPrompt(p) {
			return fmt.Errorf("%w: %q cannot be prompted for (promptable: %s)", ErrInvalid, p, strings.Join(Prompts, ", "))
		}
		if seen[p] {
			return fmt.Errorf("%w: prompt %s is listed twice", ErrInvalid, p)
		}
		seen[p] = true
	}
	return nil
}

func isPrompt(p string) bool {
	for _, q := range Prompts {
		if p == q {
			return true
		}
	}
	return false
}

// Prompts reports whether the template prompts for field.
func (t *Template) PromptsFor(field string) bool {
	for _, p := range t.Prompts {
		if p == field {
			return true
		}
	}
	return false
}

// Resolved is a template with a launch's values applied: what its jobs get.
type Resolved struct {
	Action            string
	Payload           json.RawMessage
	Ansible           *jobs.Ansible
	Inventory         string
	Limit             string
	SliceCount        int
	AllowSimultaneous bool
	Timeout           float64
	Priority          int
	InstanceGroups    []string
	Tags              []string
	Credentials       []string
}

// Resolve applies launch values to the template. A value for a field the
// template does not prompt for is refused (ErrNotPromptable, naming every
// such field); bad values are refused (ErrInvalid). The payload and the
// extra variables given are merged over the template's, key by key.
func (t *Template) Resolve(v *jobs.LaunchValues) (*Resolved, error) {
	var refused []string
	for _, f := range v.Fields() {
		if !t.PromptsFor(f) {
			refused = append(refused, f)
		}
	}
	if len(refused) > 0 {
		noun := "field"
		if len(refused) > 1 {
			noun = "fields"
		}
		return nil, fmt.Errorf("%w: template %s does not prompt for the %s %s (`jobengine template edit %s --prompt %s` allows it)",
			ErrNotPromptable, t.Name, noun, strings.Join(refused, ", "), t.Name, refused[0])
	}
	a := t.Ansible
	r := &Resolved{
		Action: t.Action, Inventory: t.Inventory, Limit: t.Limit, SliceCount: t.SliceCount,
		AllowSimultaneous: t.AllowSimultaneous, Timeout: t.Timeout, Priority: t.Priority,
		InstanceGroups: t.InstanceGroups, Tags: t.Tags, Credentials: t.Credentials,
	}
	var err error
	if v == nil {
		v = &jobs.LaunchValues{}
	}
	if r.Payload, err = merge("payload", t.Payload, v.Payload); err != nil {
		return nil, err
	}
	if a.ExtraVars, err = merge("extra-vars", t.ExtraVars, v.ExtraVars); err != nil {
		return nil, err
	}
	setS := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	setI := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setB := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	setS(&r.Inventory, v.Inventory)
	setS(&r.Limit, v.Limit)
	setI(&r.SliceCount, v.SliceCount)
	setI(&a.Forks, v.Forks)
	setI(&a.Verbosity, v.Verbosity)
	setB(&a.DiffMode, v.DiffMode)
	setB(&a.CheckMode, v.CheckMode)
	setS(&a.JobTags, v.JobTags)
	setS(&a.SkipTags, v.SkipTags)
	setI(&r.Priority, v.Priority)
	if v.Timeout != nil {
		r.Timeout = *v.Timeout
	}
	if len(v.InstanceGroups) > 0 {
		r.InstanceGroups = v.InstanceGroups
	}
	if len(v.Tags) > 0 {
		r.Tags = v.Tags
	}
	if v.SliceCount != nil && (*v.SliceCount < 1 || *v.SliceCount > inventory.MaxSlices) {
		return nil, fmt.Errorf("%w: slice count %d is outside 1–%d", ErrInvalid, *v.SliceCount, inventory.MaxSlices)
	}
	if r.Inventory != "" {
		if err := configstore.ValidName("inventory", r.Inventory); err != nil {
			return nil, err
		}
	}
	if _, err := inventory.ParseLimit(r.Limit); err != nil {
		return nil, err
	}
	for _, check := range []func() error{
		a.Validate,
		func() error { return validTimeout(r.Timeout) },
		func() error { return validPriority(r.Priority) },
		func() error { return inventory.ValidInstanceGroups(r.InstanceGroups) },
		func() error { return validTags(r.Tags) },
	} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	if !a.IsZero() {
		r.Ansible = &a
	}
	return r, nil
}

// merge returns the JSON object over with its keys set over base's.
func merge(what string, base, over json.RawMessage) (json.RawMessage, error) {
	if len(over) == 0 {
		return base, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(over, &o); err != nil || o == nil {
		return nil, fmt.Errorf("%w: %s given at launch must be a JSON object", ErrInvalid, what)
	}
	if len(base) == 0 {
		return over, nil
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(base, &b); err != nil {
		return nil, fmt.Errorf("%w: the template's %s is not a JSON object", ErrInvalid, what)
	}
	for k, v := range o {
		b[k] = v
	}
	out, err := json.Marshal(b)
	if err != nil {
		return nil, errors.Join(ErrInvalid, err)
	}
	return out, nil
}
