package jobs

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Kind says what a job is.
type Kind string

// Kinds of jobs. A document without a kind is a plain job.
const (
	// KindJob runs an action on an executor.
	KindJob Kind = "job"
	// KindWorkflow runs nothing itself: its state follows its child jobs
	// (the slices of a sliced job). It is never queued and takes no
	// capacity.
	KindWorkflow Kind = "workflow"
)

// LaunchType says how a job came to be.
type LaunchType string

// Launch types.
const (
	LaunchManual      LaunchType = "manual"
	LaunchRelaunch    LaunchType = "relaunch"
	LaunchScheduled   LaunchType = "scheduled"
	LaunchDependency  LaunchType = "dependency"
	LaunchWorkflow    LaunchType = "workflow"
	LaunchDistributor LaunchType = "distributor"
	LaunchFanout      LaunchType = "fanout"
	// LaunchCallback is a provisioning callback: a host asked for a
	// template to run against itself.
	LaunchCallback LaunchType = "callback"
	// LaunchRetry is a retry of a failed job with the inputs it had.
	LaunchRetry LaunchType = "retry"
)

// LaunchTypes lists every launch type.
var LaunchTypes = []LaunchType{LaunchManual, LaunchRelaunch, LaunchScheduled, LaunchDependency, LaunchWorkflow, LaunchDistributor, LaunchFanout, LaunchCallback, LaunchRetry}

// Limits of launch fields.
const (
	// MaxSlices bounds the slice count of a sliced job.
	MaxSlices = 1000
	// MaxForks bounds the forks of an Ansible run.
	MaxForks = 10000
	// MaxVerbosity is Ansible's -vvvvv.
	MaxVerbosity = 5
	// MaxLimitBytes bounds a limit pattern.
	MaxLimitBytes = 4096
	// MaxInstanceGroups bounds the instance groups of a job or template.
	MaxInstanceGroups = 32
	// MaxExtraVarsBytes bounds the extra variables of an Ansible run.
	MaxExtraVarsBytes = 128 << 10
)

// Ansible holds the parameters of an Ansible run, for the Ansible action:
// what a template gives and a launch may override.
type Ansible struct {
	// Project names the project holding the playbook.
	Project string `json:"project,omitempty"`
	// Playbook is the playbook's path within the project.
	Playbook string `json:"playbook,omitempty"`
	// ExtraVars is a JSON object passed as extra variables (-e).
	ExtraVars json.RawMessage `json:"extra-vars,omitempty"`
	// Forks is the parallelism (-f); 0: Ansible's default.
	Forks int `json:"forks,omitempty"`
	// Verbosity is 0–5 (-v…-vvvvv).
	Verbosity int `json:"verbosity,omitempty"`
	// DiffMode shows changes (--diff); CheckMode changes nothing (--check).
	DiffMode  bool `json:"diff-mode,omitempty"`
	CheckMode bool `json:"check-mode,omitempty"`
	// JobTags and SkipTags are Ansible's --tags and --skip-tags.
	JobTags  string `json:"job-tags,omitempty"`
	SkipTags string `json:"skip-tags,omitempty"`
}

// IsZero reports whether no parameter is set.
func (a *Ansible) IsZero() bool {
	return a == nil || a.Project == "" && a.Playbook == "" && len(a.ExtraVars) == 0 && a.Forks == 0 &&
		a.Verbosity == 0 && !a.DiffMode && !a.CheckMode && a.JobTags == "" && a.SkipTags == ""
}

// Validate checks the parameters.
func (a *Ansible) Validate() error {
	if a == nil {
		return nil
	}
	if a.Project != "" {
		if err := configstore.ValidName("project", a.Project); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if err := ValidPlaybook(a.Playbook); err != nil {
		return err
	}
	if err := ValidObject("extra-vars", a.ExtraVars, MaxExtraVarsBytes); err != nil {
		return err
	}
	if a.Forks < 0 || a.Forks > MaxForks {
		return fmt.Errorf("%w: forks %d is outside 0–%d", ErrInvalid, a.Forks, MaxForks)
	}
	if a.Verbosity < 0 || a.Verbosity > MaxVerbosity {
		return fmt.Errorf("%w: verbosity %d is outside 0–%d", ErrInvalid, a.Verbosity, MaxVerbosity)
	}
	for what, v := range map[string]string{"job-tags": a.JobTags, "skip-tags": a.SkipTags} {
		if len(v) > MaxIDBytes || strings.ContainsAny(v, "\n\r\t") {
			return fmt.Errorf("%w: %s must be one line of at most %d bytes", ErrInvalid, what, MaxIDBytes)
		}
	}
	return nil
}

// ValidPlaybook checks a playbook path: relative, within its project.
func ValidPlaybook(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > MaxIDBytes || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") ||
		strings.ContainsAny(p, "\x00\n\r\t") {
		return fmt.Errorf("%w: playbook %q must be a clean relative path within the project (such as site.yml or playbooks/deploy.yml)", ErrInvalid, p)
	}
	return nil
}

// ValidObject checks that raw, when set, is a JSON object of at most max
// bytes.
func ValidObject(what string, raw json.RawMessage, max int) error {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) > max {
		return fmt.Errorf("%w: %s of %d bytes is over the %d-byte limit", ErrInvalid, what, len(raw), max)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: %s must be a JSON object", ErrInvalid, what)
	}
	return nil
}

// LaunchValues are the values given at launch for a template's promptable
// fields; a nil (or empty) field was not given. They are kept on the job
// so that a relaunch uses them again.
type LaunchValues struct {
	Payload        json.RawMessage `json:"payload,omitempty"`
	ExtraVars      json.RawMessage `json:"extra-vars,omitempty"`
	Inventory      *string         `json:"inventory,omitempty"`
	Limit          *string         `json:"limit,omitempty"`
	SliceCount     *int            `json:"slice-count,omitempty"`
	Forks          *int            `json:"forks,omitempty"`
	Verbosity      *int            `json:"verbosity,omitempty"`
	DiffMode       *bool           `json:"diff-mode,omitempty"`
	CheckMode      *bool           `json:"check-mode,omitempty"`
	JobTags        *string         `json:"job-tags,omitempty"`
	SkipTags       *string         `json:"skip-tags,omitempty"`
	Timeout        *float64        `json:"timeout,omitempty"`
	Priority       *int            `json:"priority,omitempty"`
	InstanceGroups []string        `json:"instance-groups,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
}

// Fields returns the names of the fields given, in a fixed order.
func (v *LaunchValues) Fields() []string {
	if v == nil {
		return nil
	}
	var out []string
	add := func(name string, set bool) {
		if set {
			out = append(out, name)
		}
	}
	add("payload", len(v.Payload) > 0)
	add("extra-vars", len(v.ExtraVars) > 0)
	add("inventory", v.Inventory != nil)
	add("limit", v.Limit != nil)
	add("slice-count", v.SliceCount != nil)
	add("forks", v.Forks != nil)
	add("verbosity", v.Verbosity != nil)
	add("diff-mode", v.DiffMode != nil)
	add("check-mode", v.CheckMode != nil)
	add("job-tags", v.JobTags != nil)
	add("skip-tags", v.SkipTags != nil)
	add("timeout", v.Timeout != nil)
	add("priority", v.Priority != nil)
	add("instance-groups", len(v.InstanceGroups) > 0)
	add("tags", len(v.Tags) > 0)
	return out
}

var snapshotRe = regexp.MustCompile(`^g-[0-9a-f]{16}$`)

// Launch holds the fields of a job launched from a template. It is part of
// the job document (its fields are top-level fields of the JSON).
type Launch struct {
	// Kind is KindJob or KindWorkflow; "" is a plain job.
	Kind Kind `json:"kind,omitempty"`
	// Sliced marks the container of a sliced job.
	Sliced bool `json:"sliced,omitempty"`
	// Template names the template launched.
	Template   string     `json:"template,omitempty"`
	LaunchType LaunchType `json:"launch-type,omitempty"`
	// Inventory, InventorySnapshot and Limit say which hosts the job runs
	// over: the limit applied to the pinned snapshot of the inventory.
	Inventory         string `json:"inventory,omitempty"`
	InventorySnapshot string `json:"inventory-snapshot,omitempty"`
	Limit             string `json:"limit,omitempty"`
	// Hosts counts the hosts the job runs over (its slice's share for a
	// slice, every selected host for a container).
	Hosts int `json:"hosts,omitempty"`
	// SliceNumber (1-based) and SliceCount place a slice among its
	// siblings; a container has the slice count only.
	SliceNumber int `json:"slice-number,omitempty"`
	SliceCount  int `json:"slice-count,omitempty"`
	// TemplateSliceCount is the template's slice count at launch; a
	// relaunch is refused when it changed since.
	TemplateSliceCount int `json:"template-slice-count,omitempty"`
	// InstanceGroups are the groups of executors that may run the job, in
	// preference order.
	InstanceGroups    []string `json:"instance-groups,omitempty"`
	AllowSimultaneous bool     `json:"allow-simultaneous,omitempty"`
	// Ansible holds the parameters of the Ansible action.
	Ansible *Ansible `json:"ansible,omitempty"`
	// LaunchValues are the prompts given at launch.
	LaunchValues *LaunchValues `json:"launch-values,omitempty"`
	// RelaunchOf is the job this one relaunches.
	RelaunchOf string `json:"relaunch-of,omitempty"`
	// RetryOf is the failed job this one retries with the same inputs.
	RetryOf string `json:"retry-of,omitempty"`
	// CancelRequested marks a container whose cancel was asked for: it
	// ends CANCELED once every slice has ended.
	CancelRequested bool `json:"cancel-requested,omitempty"`
	// WorkflowTemplate names the workflow template a workflow job runs;
	// Workflow is its graph as launched (see workflow.go).
	WorkflowTemplate string    `json:"workflow-template,omitempty"`
	Workflow         *Workflow `json:"workflow,omitempty"`
	// WorkflowNode names the node of its workflow job (ParentJob) a node
	// job was launched for.
	WorkflowNode string `json:"workflow-node,omitempty"`
}

// IsContainer reports whether the job is a workflow job: it runs nothing
// and is never queued.
func (l *Launch) IsContainer() bool { return l.Kind == KindWorkflow }

// IsSlice reports whether the job is a slice of a sliced job (a relaunched
// slice carries its number and count but has no parent).
func (j *Job) IsSlice() bool { return j.ParentJob != "" && j.SliceNumber > 0 }

// Validate checks the launch fields of a job.
func (l *Launch) Validate() error {
	switch l.Kind {
	case "", KindJob, KindWorkflow:
	default:
		return fmt.Errorf("%w: kind %q (want job or workflow)", ErrInvalid, l.Kind)
	}
	if l.LaunchType != "" {
		ok := false
		for _, t := range LaunchTypes {
			ok = ok || t == l.LaunchType
		}
		if !ok {
			return fmt.Errorf("%w: launch type %q", ErrInvalid, l.LaunchType)
		}
	}
	for what, name := range map[string]string{"template": l.Template, "inventory": l.Inventory, "workflow": l.WorkflowTemplate, "workflow node": l.WorkflowNode} {
		if name != "" {
			if err := configstore.ValidName(what, name); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, err)
			}
		}
	}
	if l.InventorySnapshot != "" && (l.Inventory == "" || !snapshotRe.MatchString(l.InventorySnapshot)) {
		return fmt.Errorf("%w: inventory snapshot %q", ErrInvalid, l.InventorySnapshot)
	}
	if len(l.Limit) > MaxLimitBytes {
		return fmt.Errorf("%w: limit of %d bytes is over %d", ErrInvalid, len(l.Limit), MaxLimitBytes)
	}
	if l.Hosts < 0 || l.SliceNumber < 0 || l.SliceCount < 0 || l.SliceCount > MaxSlices || l.SliceNumber > l.SliceCount ||
		l.SliceNumber == 0 && l.SliceCount > 0 && !l.Sliced || l.TemplateSliceCount < 0 || l.TemplateSliceCount > MaxSlices {
		return fmt.Errorf("%w: slice %d of %d (want 1 ≤ number ≤ count ≤ %d)", ErrInvalid, l.SliceNumber, l.SliceCount, MaxSlices)
	}
	if l.Sliced && l.Kind != KindWorkflow {
		return fmt.Errorf("%w: only a workflow job is sliced", ErrInvalid)
	}
	if err := l.validateWorkflow(); err != nil {
		return err
	}
	if err := validInstanceGroups(l.InstanceGroups); err != nil {
		return err
	}
	if err := l.Ansible.Validate(); err != nil {
		return err
	}
	if len(l.RelaunchOf) > MaxIDBytes {
		return fmt.Errorf("%w: relaunch-of is over %d bytes", ErrInvalid, MaxIDBytes)
	}
	if len(l.RetryOf) > MaxIDBytes {
		return fmt.Errorf("%w: retry-of is over %d bytes", ErrInvalid, MaxIDBytes)
	}
	if v := l.LaunchValues; v != nil {
		if err := ValidObject("launch payload", v.Payload, MaxPayloadBytes); err != nil {
			return err
		}
		if err := ValidObject("launch extra-vars", v.ExtraVars, MaxExtraVarsBytes); err != nil {
			return err
		}
		if err := validInstanceGroups(v.InstanceGroups); err != nil {
			return err
		}
		if len(v.Tags) > MaxTags {
			return fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(v.Tags), MaxTags)
		}
	}
	return nil
}

func validInstanceGroups(gs []string) error {
	if len(gs) > MaxInstanceGroups {
		return fmt.Errorf("%w: %d instance groups, at most %d", ErrInvalid, len(gs), MaxInstanceGroups)
	}
	for _, g := range gs {
		if err := configstore.ValidName("instance group", g); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return nil
}

// launchBytes bounds what a launch adds to a document: the payload, the
// extra variables and the launch values together stay within one payload,
// so that a document and its outbox copy fit one ZooKeeper request.
func (n *NewJob) launchBytes() int {
	size := len(n.Payload)
	if n.Launch.Ansible != nil {
		size += len(n.Launch.Ansible.ExtraVars)
	}
	if v := n.Launch.LaunchValues; v != nil {
		size += len(v.Payload) + len(v.ExtraVars)
	}
	return size
}

// validateLaunch checks the launch fields of a new job.
func (n *NewJob) validateLaunch() error {
	if err := n.Launch.Validate(); err != nil {
		return err
	}
	if size := n.launchBytes(); size > MaxPayloadBytes {
		return fmt.Errorf("%w: payload, extra-vars and launch values take %d bytes together, over the %d-byte limit", ErrInvalid, size, MaxPayloadBytes)
	}
	if len(n.NestedJobs) > MaxSlices {
		return fmt.Errorf("%w: %d nested jobs, at most %d", ErrInvalid, len(n.NestedJobs), MaxSlices)
	}
	for _, id := range n.NestedJobs {
		if _, _, err := ParseID(id); err != nil {
			return err
		}
	}
	if n.Launch.IsContainer() && n.UniqueKey != "" {
		return fmt.Errorf("%w: a workflow job has no unique key", ErrInvalid)
	}
	return nil
}

// DocBytes returns the size of the document that creating n would write,
// so that a caller can pack creations into transactions within a budget.
func (s *Store) DocBytes(n NewJob) (int, error) {
	j, err := s.build(n)
	if err != nil {
		return 0, err
	}
	data, err := json.Marshal(j)
	if err != nil {
		return 0, err
	}
	return len(data), nil
}

// LaunchFilter selects jobs by their launch fields, in List and in the
// history. Empty fields match everything.
type LaunchFilter struct {
	// Template keeps jobs launched from this template.
	Template string
	// Workflow keeps the workflow jobs of this workflow template.
	Workflow string
	// SlicesOf keeps the slices of this container ("job/<uuid>").
	SlicesOf string
	// Sliced keeps containers of sliced jobs only; Slices keeps slices only.
	Sliced bool
	Slices bool
	// LaunchType keeps jobs launched this way.
	LaunchType LaunchType
	// Since and Until keep jobs created within [Since, Until].
	Since, Until time.Time
	// Within, when set, keeps only the jobs a user may see (see Scope).
	Within *Scope
}

// Scope is what a user may see of the jobs: those launched from one of
// Templates, the workflow jobs of one of Workflows, and those created by
// one of CreatedBy. An empty scope sees nothing.
type Scope struct {
	Templates []string
	CreatedBy []string
	// Workflows are workflow templates whose workflow jobs are seen.
	Workflows []string
}

// Match reports whether j is within the scope.
func (s *Scope) Match(j *Job) bool {
	return j.Template != "" && slices.Contains(s.Templates, j.Template) || j.CreatedBy != "" && slices.Contains(s.CreatedBy, j.CreatedBy) ||
		j.WorkflowTemplate != "" && slices.Contains(s.Workflows, j.WorkflowTemplate)
}

// Match reports whether j passes the filter.
func (f LaunchFilter) Match(j *Job) bool {
	switch {
	case f.Template != "" && j.Template != f.Template,
		f.Workflow != "" && j.WorkflowTemplate != f.Workflow,
		f.SlicesOf != "" && j.ParentJob != f.SlicesOf,
		f.Sliced && !j.Sliced,
		f.Slices && !j.IsSlice(),
		f.LaunchType != "" && j.LaunchType != f.LaunchType,
		!f.Since.IsZero() && j.Created.Before(f.Since),
		!f.Until.IsZero() && j.Created.After(f.Until),
		f.Within != nil && !f.Within.Match(j):
		return false
	}
	return true
}

// ParseLaunchType parses a launch type name.
func ParseLaunchType(s string) (LaunchType, error) {
	for _, t := range LaunchTypes {
		if string(t) == strings.ToLower(strings.TrimSpace(s)) {
			return t, nil
		}
	}
	names := make([]string, len(LaunchTypes))
	for i, t := range LaunchTypes {
		names[i] = string(t)
	}
	return "", fmt.Errorf("%w: unknown launch type %q (want one of %s)", ErrInvalid, s, strings.Join(names, ", "))
}
