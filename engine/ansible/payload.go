package ansible

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Errors of this package.
var (
	// ErrPayload is wrapped by every error about an ansible_playbook payload.
	ErrPayload = errors.New("ansible_playbook payload")
	// ErrNotInstalled means ansible-playbook cannot be found.
	ErrNotInstalled = errors.New("ansible-playbook is not installed")
)

// Limits of a payload.
const (
	// DefaultForks is ansible-playbook's own default.
	DefaultForks = 5
	// MaxForks bounds forks, which also bounds a job's impact.
	MaxForks = 1000
	// MaxVerbosity is -vvvvv.
	MaxVerbosity = 5
)

// Payload is the payload of the ansible_playbook action, as a job carries
// it (JSON, kebab-case like every job field):
//
//	{
//	  "project-dir": "/var/lib/jobengine/projects/site/3f2a…",  // the project's files (a checked-out revision)
//	  "playbook":    "deploy/site.yml",                          // relative to project-dir
//	  "inventory":   {"web": {"hosts": ["a", "b"]}, "_meta": {"hostvars": {…}}},
//	  "limit":       "a",
//	  "extra-vars":  {"version": "1.2"},
//	  "forks":       10,
//	  "verbosity":   1,
//	  "diff":        true,
//	  "check":       false,
//	  "credentials": ["web-ssh", "vault"]
//	}
//
// The inventory is Ansible's JSON inventory, the output of
// `ansible-inventory --list`: the job's inventory or its slice. Credentials
// are names of credential objects; their secrets never appear in a payload.
type Payload struct {
	// ProjectDir is the absolute path of the project's files.
	ProjectDir string `json:"project-dir"`
	// Playbook is the playbook's path relative to ProjectDir; it may not
	// leave ProjectDir, through ".." or a symbolic link.
	Playbook string `json:"playbook"`
	// Inventory is Ansible's JSON inventory (a JSON object).
	Inventory json.RawMessage `json:"inventory,omitempty"`
	// Limit further limits the hosts (ansible-playbook --limit).
	Limit string `json:"limit,omitempty"`
	// ExtraVars are extra variables (a JSON object; --extra-vars).
	ExtraVars json.RawMessage `json:"extra-vars,omitempty"`
	// Forks is the number of hosts run at once (0: DefaultForks).
	Forks int `json:"forks,omitempty"`
	// Verbosity is 0–5, the number of -v.
	Verbosity int `json:"verbosity,omitempty"`
	// Diff shows the changes made (--diff).
	Diff bool `json:"diff,omitempty"`
	// Check makes no change (--check).
	Check bool `json:"check,omitempty"`
	// Credentials names the credential objects the run uses.
	Credentials []string `json:"credentials,omitempty"`
	// Tags and SkipTags are ansible-playbook's --tags and --skip-tags.
	Tags     string `json:"tags,omitempty"`
	SkipTags string `json:"skip-tags,omitempty"`
	// Project, instead of ProjectDir, names the project's files by source
	// and revision (a template launch's payload); the run checks them out
	// (Sources.Resolve).
	Project *ProjectSource `json:"project,omitempty"`
	// InventorySource, instead of Inventory, names the hosts by the
	// inventory snapshot the job pinned; the run writes them as its
	// inventory file (Sources.Resolve).
	InventorySource *InventorySource `json:"inventory-source,omitempty"`
}

// ParsePayload decodes and validates a job's payload. Unknown fields are
// refused, so a misspelt field is not silently ignored.
func ParsePayload(raw json.RawMessage) (Payload, error) {
	var p Payload
	if len(bytes.TrimSpace(raw)) == 0 {
		return p, fmt.Errorf("%w: empty; want a JSON object with at least \"project-dir\", \"playbook\" and \"inventory\"", ErrPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	return p, p.Validate()
}

// EffectiveForks returns Forks, or DefaultForks when unset.
func (p *Payload) EffectiveForks() int {
	if p.Forks <= 0 {
		return DefaultForks
	}
	return p.Forks
}

// Validate reports what is wrong with p, without touching the file system.
func (p *Payload) Validate() error { return p.validate(true) }

func (p *Payload) validate(inventory bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrPayload}, args...)...)
	}
	switch {
	case p.Project != nil && p.ProjectDir != "":
		return bad("give \"project-dir\" or \"project\", not both")
	case p.Project != nil:
		if err := p.Project.validate(); err != nil {
			return err
		}
	case p.ProjectDir == "":
		return bad("\"project-dir\" is missing: give the absolute path of the project's files")
	case !filepath.IsAbs(p.ProjectDir):
		return bad("\"project-dir\" %q is not an absolute path", p.ProjectDir)
	}
	if err := checkPlaybookPath(p.Playbook); err != nil {
		return err
	}
	switch {
	case p.InventorySource != nil && len(bytes.TrimSpace(p.Inventory)) > 0 && string(bytes.TrimSpace(p.Inventory)) != "null":
		return bad("give \"inventory\" or \"inventory-source\", not both")
	case p.InventorySource != nil:
		if err := p.InventorySource.validate(); err != nil {
			return err
		}
	case inventory:
		if _, err := InventoryHosts(p.Inventory); err != nil {
			return err
		}
	}
	for what, v := range map[string]string{"tags": p.Tags, "skip-tags": p.SkipTags} {
		if strings.ContainsAny(v, "\n\r\x00") || strings.HasPrefix(v, "-") {
			return bad("\"%s\" must be one line of comma-separated tags", what)
		}
	}
	if strings.ContainsAny(p.Limit, "\n\r\x00") {
		return bad("\"limit\" must be one line (a host pattern such as \"web:&prod\")")
	}
	if len(p.ExtraVars) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p.ExtraVars, &m); err != nil || m == nil {
			return bad("\"extra-vars\" must be a JSON object such as {\"version\": \"1.2\"}")
		}
	}
	if p.Forks < 0 || p.Forks > MaxForks {
		return bad("\"forks\" %d is out of range: give 1–%d (0 for %d)", p.Forks, MaxForks, DefaultForks)
	}
	if p.Verbosity < 0 || p.Verbosity > MaxVerbosity {
		return bad("\"verbosity\" %d is out of range: give 0–%d", p.Verbosity, MaxVerbosity)
	}
	seen := map[string]bool{}
	for _, c := range p.Credentials {
		if c == "" || strings.ContainsAny(c, "/ \t\n") {
			return bad("credential name %q is not a credential name", c)
		}
		if seen[c] {
			return bad("credential %q is named twice", c)
		}
		seen[c] = true
	}
	return nil
}

// checkPlaybookPath refuses a playbook path that is empty, absolute or
// climbs out of the project directory.
func checkPlaybookPath(pb string) error {
	switch {
	case pb == "":
		return fmt.Errorf("%w: \"playbook\" is missing: give the playbook's path relative to the project, e.g. \"site.yml\"", ErrPayload)
	case filepath.IsAbs(pb):
		return fmt.Errorf("%w: \"playbook\" %q must be relative to the project directory", ErrPayload, pb)
	case strings.ContainsAny(pb, "\n\r\x00"):
		return fmt.Errorf("%w: \"playbook\" %q is not a file name", ErrPayload, pb)
	}
	clean := filepath.Clean(pb)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: \"playbook\" %q leaves the project directory", ErrPayload, pb)
	}
	return nil
}

// ResolvePlaybook returns the playbook's absolute path inside projectDir,
// after following symbolic links, refusing one that leads outside it.
func ResolvePlaybook(projectDir, playbook string) (string, error) {
	if err := checkPlaybookPath(playbook); err != nil {
		return "", err
	}
	root, err := filepath.EvalSymlinks(projectDir)
	if err != nil {
		return "", fmt.Errorf("%w: project directory %s: %v", ErrPayload, projectDir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: project directory %s is not a directory", ErrPayload, projectDir)
	}
	full, err := filepath.EvalSymlinks(filepath.Join(root, playbook))
	if err != nil {
		return "", fmt.Errorf("%w: playbook %q is not in the project (%s): %v", ErrPayload, playbook, projectDir, errors.Unwrap(err))
	}
	rel, err := filepath.Rel(root, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: playbook %q leads outside the project directory %s", ErrPayload, playbook, projectDir)
	}
	if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: playbook %q is not a file", ErrPayload, playbook)
	}
	return full, nil
}

// Impact is what a run of a playbook over hosts hosts with forks forks
// weighs for the scheduler: min(hosts, forks) + 1, the one being
// ansible-playbook itself (AWX's formula). forks ≤ 0 means DefaultForks.
func Impact(hosts, forks int) int {
	if forks <= 0 {
		forks = DefaultForks
	}
	return min(max(hosts, 0), forks) + 1
}

// PayloadImpact is the impact of a payload: its inventory's hosts and
// forks. A payload naming an inventory source counts forks + 1, the most
// its run can weigh.
func PayloadImpact(p *Payload) int {
	if p.InventorySource != nil {
		return Impact(p.EffectiveForks(), p.EffectiveForks())
	}
	hosts, _ := InventoryHosts(p.Inventory)
	return Impact(len(hosts), p.EffectiveForks())
}

// ActionName is the name of the action that runs a Payload.
const ActionName = "ansible_playbook"
