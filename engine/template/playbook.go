package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/project"
)

// fillsPlaybook reports whether a launch fills its jobs' payloads for the
// ansible_playbook action: the template runs that action and names a
// project. A template without a project gives the payload as it is.
func fillsPlaybook(r *Resolved) bool {
	return r.Action == ansible.ActionName && r.Ansible != nil && r.Ansible.Project != ""
}

// projectSource reads the project a launch runs from, with the revision
// of its last successful update, so that every slice runs the same files,
// and what the launch waits for when the project updates on launch (its
// runs then take the commit that update fetched). A
// project never updated runs the head of its branch as each run finds it.
func (l *Launcher) projectSource(ctx context.Context, tmpl, name, by string, seen *invsource.UpdateSeen) (*ansible.ProjectSource, *dependency, error) {
	ps := l.Projects
	if ps == nil {
		ps = project.NewStore(l.Jobs.Conn(), l.log())
	}
	_, err := ps.RecordRevision(ctx, l.Jobs, name)
	var p *project.Project
	var ver int32
	if err == nil {
		p, ver, err = ps.Get(ctx, name)
	}
	if errors.Is(err, configstore.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: template %s: project %s does not exist (create it with `jobengine project create %s`)", ErrInvalid, tmpl, name, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("template %s: %w", tmpl, err)
	}
	dep, err := l.projectDependency(ctx, ps, p, ver, by, seen)
	if err != nil {
		return nil, nil, fmt.Errorf("template %s: %w", tmpl, err)
	}
	src := &ansible.ProjectSource{
		Name: p.Name, Kind: string(p.Kind), URL: p.URL, Branch: p.Branch, Directory: p.Directory, Revision: p.Revision,
	}
	if dep != nil {
		// The runs take the commit the update fetches.
		src.Revision, src.RevisionOf = "", dep.id
	}
	return src, dep, nil
}

// playbookPayload returns the payload of one ansible_playbook job of a
// launch: the project at its revision, the playbook, the hosts (inv, a
// slice of the pinned snapshot), the run's parameters and the credentials'
// names, with the template's and the launch's payload keys set over them.
// It is refused as the executor would refuse it.
func playbookPayload(tmpl string, r *Resolved, proj *ansible.ProjectSource, inv *ansible.InventorySource) (json.RawMessage, error) {
	a := r.Ansible
	p := ansible.Payload{
		Project: proj, Playbook: a.Playbook, InventorySource: inv, ExtraVars: a.ExtraVars, Forks: a.Forks,
		Verbosity: a.Verbosity, Diff: a.DiffMode, Check: a.CheckMode, Tags: a.JobTags, SkipTags: a.SkipTags,
		Credentials: r.Credentials,
	}
	base, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	out, err := merge("payload", base, r.Payload)
	if err != nil {
		return nil, err
	}
	if _, err := ansible.ParsePayload(out); err != nil {
		return nil, fmt.Errorf("%w: template %s: %w", ErrInvalid, tmpl, err)
	}
	return out, nil
}

// repin returns an ansible_playbook payload with its inventory source
// moved to snapshot snap: a relaunched slice runs over the inventory as it
// is now, the snapshot it pins. Other payloads are returned as they are.
func repin(payload json.RawMessage, snap string) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if len(payload) == 0 || json.Unmarshal(payload, &m) != nil || m["inventory-source"] == nil {
		return payload, nil
	}
	var src ansible.InventorySource
	if err := json.Unmarshal(m["inventory-source"], &src); err != nil {
		return nil, fmt.Errorf("%w: the payload's inventory-source: %w", ErrCannotRelaunch, err)
	}
	src.Snapshot = snap
	raw, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	m["inventory-source"] = raw
	return json.Marshal(m)
}
