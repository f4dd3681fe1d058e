package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrCannotRelaunch: a job cannot be relaunched (no template, the template
// is gone or changed its slice count, the slice no longer exists).
var ErrCannotRelaunch = errors.New("cannot relaunch")

// maxLaunchAttempts bounds the retries of a launch whose inventory
// snapshot was replaced between reading and pinning it.
const maxLaunchAttempts = 5

// Launcher creates the jobs of template launches.
type Launcher struct {
	Jobs        *jobs.Store
	Templates   *Store
	Inventories *inventory.Store
	// Projects reads the projects of ansible_playbook templates (default:
	// a store on the job store's connection).
	Projects *project.Store
	// Budget bounds each creating transaction (zkconn.DefaultBudget).
	Budget int
	Logger *zap.Logger
}

// Request asks for a launch.
type Request struct {
	Template string
	// Values are the prompts given; nil for none.
	Values *jobs.LaunchValues
	// LaunchType defaults to manual.
	LaunchType jobs.LaunchType
	CreatedBy  string
	// RelaunchOf names the job a relaunch repeats.
	RelaunchOf string
	// Host, for a provisioning callback, is the inventory host the launch
	// runs against: its limit is that host and it is never sliced,
	// whatever the template's prompts.
	Host string
	// ID, when set, is the id of the launch's top job (a plain job, or the
	// container of a sliced one): a deterministic id makes the launch
	// create-if-absent (jobs.ErrDuplicate when it was made). Workflows and
	// schedules set it.
	ID string
	// ParentJob and WorkflowNode place the launch in a workflow job.
	ParentJob, WorkflowNode string
	// Tick is the schedule occurrence that launches the top job.
	Tick string
	// Extra operations join every creating transaction (a leader's
	// election fence), after the inventory pin.
	Extra []interface{}
}

// Result is what a launch created: a plain job, or a container and its
// slices.
type Result struct {
	Job    *jobs.Job
	Slices []*jobs.Job
	// Dependencies are the jobs created for the launch to wait for (a
	// project update on launch).
	Dependencies []*jobs.Job
}

func (l *Launcher) log() *zap.Logger {
	if l.Logger == nil {
		return zap.NewNop()
	}
	return l.Logger
}

// Launch launches a template: with at most one slice to make (the
// template's or the prompted slice count, at most one per enabled host
// within the limit), a plain job; otherwise a container job and its
// slices, all over one pinned snapshot of the inventory. A prompted slice
// count the inventory cannot support is refused; the template's own count
// is reduced silently.
func (l *Launcher) Launch(ctx context.Context, req Request) (*Result, error) {
	t, _, err := l.Templates.Get(ctx, req.Template)
	if err != nil {
		return nil, err
	}
	r, err := t.Resolve(req.Values)
	if err != nil {
		return nil, err
	}
	if req.LaunchType == "" {
		req.LaunchType = jobs.LaunchManual
	}
	if req.Host != "" {
		if err := inventory.ValidHostName(req.Host); err != nil {
			return nil, err
		}
		r.Limit, r.SliceCount, req.LaunchType = req.Host, 1, jobs.LaunchCallback
	}
	seen := &updatesSeen{}
	for attempt := 1; ; attempt++ {
		res, err := l.launch(ctx, t, r, req, seen)
		if (errors.Is(err, errPinGone) || errors.Is(err, errProjectChanged)) && attempt < maxLaunchAttempts {
			continue // the inventory was rewritten between reading and pinning
		}
		return res, err
	}
}

var errPinGone = errors.New("inventory snapshot replaced while launching")

// scheduling returns what the scheduler weighs of a job of a launch over
// hosts hosts. Every job of a launch is scheduled (created PENDING) in the
// launch's instance groups, the default group when none is named: its
// jobs hold the template's key unless the template allows simultaneous
// runs (the slices of one launch share it without blocking one another),
// and an ansible_playbook job weighs min(hosts, forks) + 1.
func scheduling(name string, r *Resolved, hosts int, deps []string) jobs.Scheduling {
	s := jobs.Scheduling{DependsOn: deps}
	if !r.AllowSimultaneous {
		s.ConcurrencyKeys = []string{jobs.TemplateKey(name)}
	}
	if r.Action == ansible.ActionName {
		forks := 0
		if r.Ansible != nil {
			forks = r.Ansible.Forks
		}
		s.Impact = ansible.Impact(hosts, forks)
	}
	return s
}

// plan is the jobs of one launch and the snapshot they pin.
type plan struct {
	top    jobs.NewJob
	slices []jobs.NewJob
	pin    *zk.CreateRequest
	// deps are jobs created first, in the first transaction (a project
	// update the launch waits for), with record (its record on the
	// project).
	deps   []jobs.NewJob
	record interface{}
	extra  []interface{}
	// invRecord records an inventory update among deps on the
	// inventory's source (compare-and-set).
	invRecord interface{}
}

// updatesSeen is what a launch saw of its dependencies' last updates at
// its first attempt, kept across its attempts.
type updatesSeen struct {
	project, inventory invsource.UpdateSeen
}

func (l *Launcher) launch(ctx context.Context, t *Template, r *Resolved, req Request, seen *updatesSeen) (*Result, error) {
	var snap *inventory.Snapshot
	var hosts []string
	if r.Inventory != "" {
		var err error
		snap, err = l.Inventories.Snapshot(ctx, r.Inventory)
		if errors.Is(err, configstore.ErrNotFound) {
			return nil, fmt.Errorf("template %s: inventory %s does not exist: %w", t.Name, r.Inventory, err)
		}
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", t.Name, err)
		}
		limit, err := inventory.ParseLimit(r.Limit)
		if err != nil {
			return nil, err
		}
		hosts = snap.Content.Select(limit)
	}
	if req.Values != nil && req.Values.SliceCount != nil {
		if r.Inventory == "" && *req.Values.SliceCount > 1 {
			return nil, fmt.Errorf("%w: template %s has no inventory; cannot make %d slices", ErrInvalid, t.Name, *req.Values.SliceCount)
		}
		if err := inventory.CheckSlices(len(hosts), *req.Values.SliceCount); err != nil {
			return nil, err
		}
	}
	n := inventory.EffectiveSlices(r.SliceCount, len(hosts))
	groups := r.InstanceGroups
	if len(groups) == 0 && snap != nil && snap.Inventory != nil {
		groups = snap.Inventory.InstanceGroups
	}
	if t.PreventFallback && len(groups) > 1 {
		groups = groups[:1]
	}
	if len(groups) == 0 {
		// Every launch is scheduled: one that names no group runs in the
		// default group, and says so in its document.
		groups = []string{jobs.DefaultGroup}
	}
	base := jobs.NewJob{
		Action: r.Action, Payload: r.Payload, Priority: r.Priority, Tags: r.Tags, CreatedBy: req.CreatedBy,
		Timeout: time.Duration(r.Timeout * float64(time.Second)),
		Launch: jobs.Launch{
			Kind: jobs.KindJob, Template: t.Name, LaunchType: req.LaunchType, Inventory: r.Inventory, Limit: r.Limit,
			Hosts: len(hosts), TemplateSliceCount: t.SliceCount, InstanceGroups: groups,
			AllowSimultaneous: r.AllowSimultaneous, Ansible: r.Ansible, RelaunchOf: req.RelaunchOf,
		},
	}
	if req.ID != "" {
		id, _, err := jobs.ParseID(req.ID)
		if err != nil {
			return nil, err
		}
		req.ID = id
	}
	if snap != nil && snap.Generation != nil {
		base.Launch.InventorySnapshot = snap.Generation.ID
	}
	if v := req.Values; v != nil && len(v.Fields()) > 0 {
		base.Launch.LaunchValues = v
	}
	payloadOf := func(k, n int) (json.RawMessage, error) { return r.Payload, nil }
	var dep *dependency
	currentInventory := false
	if fillsPlaybook(r) {
		proj, d, err := l.projectSource(ctx, t.Name, r.Ansible.Project, req.CreatedBy, &seen.project)
		if err != nil {
			return nil, err
		}
		dep = d
		payloadOf = func(k, n int) (json.RawMessage, error) {
			var inv *ansible.InventorySource
			if r.Inventory != "" {
				inv = &ansible.InventorySource{Inventory: r.Inventory, Snapshot: base.Launch.InventorySnapshot, Limit: r.Limit, SliceNumber: k, SliceCount: n,
					Current: currentInventory}
			}
			return playbookPayload(t.Name, r, proj, inv)
		}
	}
	var p plan
	if r.Inventory != "" {
		// An inventory whose source updates on launch: the launch waits
		// for the update and its runs read the content the update
		// imported, not the snapshot of now.
		idep, err := l.inventoryDependency(ctx, t.Name, r.Inventory, req.CreatedBy, &seen.inventory)
		if err != nil {
			return nil, err
		}
		if idep != nil {
			base.Scheduling.DependsOn = append(base.Scheduling.DependsOn, idep.ID)
			base.Launch.InventorySnapshot, currentInventory = "", true
			if idep.Create != nil {
				p.deps, p.invRecord = append(p.deps, *idep.Create), idep.Record
			}
		}
	}
	if dep != nil {
		// Every job of the launch waits for the update: the slices too,
		// since a container is never scheduled itself.
		base.Scheduling.DependsOn = append(base.Scheduling.DependsOn, dep.id)
		if dep.create != nil {
			p.deps, p.record = append(p.deps, *dep.create), dep.record
		}
	}
	p.top = base
	p.top.ID = req.ID
	if p.top.ID == "" {
		p.top.ID, _ = jobs.NewID()
	}
	p.top.ParentJob, p.top.Launch.WorkflowNode, p.top.Tick = req.ParentJob, req.WorkflowNode, req.Tick
	var err error
	if p.top.Payload, err = payloadOf(0, 0); err != nil {
		return nil, err
	}
	if n <= 1 {
		p.top.Scheduling = scheduling(t.Name, r, len(hosts), base.Scheduling.DependsOn)
	} else {
		p.top.Launch.Kind, p.top.Launch.Sliced, p.top.Launch.SliceCount = jobs.KindWorkflow, true, n
		for k := 1; k <= n; k++ {
			s := base
			s.ID, _ = jobs.NewID()
			s.ParentJob = p.top.ID
			s.Launch.SliceNumber, s.Launch.SliceCount = k, n
			s.Launch.Hosts = inventory.SliceSize(len(hosts), k, n)
			s.Scheduling = scheduling(t.Name, r, s.Launch.Hosts, base.Scheduling.DependsOn)
			s.Launch.LaunchValues = nil // kept once, on the container
			s.Launch.WorkflowNode = ""
			if s.Payload, err = payloadOf(k, n); err != nil {
				return nil, err
			}
			p.top.NestedJobs = append(p.top.NestedJobs, s.ID)
			p.slices = append(p.slices, s)
		}
	}
	if base.Launch.InventorySnapshot != "" {
		_, uid, _ := jobs.ParseID(p.top.ID)
		pin, err := l.Inventories.PinOp(r.Inventory, base.Launch.InventorySnapshot, uid)
		if err != nil {
			return nil, err
		}
		p.pin = pin
	}
	p.extra = req.Extra
	return l.create(ctx, p)
}

// create writes the jobs of a plan in as few transactions as the byte
// budget allows: the top job and the pin first, then the slices. Each
// transaction is all or nothing; a launch that fails after its first
// leaves a container whose missing slices count as failed.
func (l *Launcher) create(ctx context.Context, p plan) (*Result, error) {
	budget := l.Budget
	if budget <= 0 {
		budget = zkconn.DefaultBudget
	}
	all := append(append(append([]jobs.NewJob{}, p.deps...), p.top), p.slices...)
	var batches [][]jobs.NewJob
	var cur []jobs.NewJob
	size := 0
	if p.pin != nil {
		size = zkconn.OpBytes(p.pin)
	}
	for _, n := range all {
		doc, err := l.Jobs.DocBytes(n)
		if err != nil {
			return nil, err
		}
		// The document, its outbox copy, its queue entry and paths.
		est := 2*doc + 512
		if est > budget {
			return nil, fmt.Errorf("%w: a job of this launch takes about %d bytes, over the %d-byte budget of one ZooKeeper request", ErrInvalid, est, budget)
		}
		if size+est > budget && len(cur) > 0 {
			batches = append(batches, cur)
			cur, size = nil, 0
		}
		cur = append(cur, n)
		size += est
	}
	batches = append(batches, cur)
	res := &Result{}
	skip := len(p.deps)
	for i, b := range batches {
		var extra []interface{}
		if i == 0 && p.pin != nil {
			extra = append(extra, p.pin)
		}
		// The launch's own checks before the project's record, which a
		// refusal below finds last.
		extra = append(extra, p.extra...)
		invAt := -1
		if i == 0 && p.invRecord != nil {
			extra, invAt = append(extra, p.invRecord), len(extra)
		}
		if i == 0 && p.record != nil {
			extra = append(extra, p.record)
		}
		created, err := l.Jobs.CreateFenced(ctx, b, extra...)
		var oe *zkconn.OpError
		if i == 0 && errors.As(err, &oe) && oe.Index == 0 && p.pin != nil && inventory.IsPinGone(oe.Err) {
			return nil, errPinGone
		}
		if invAt >= 0 && errors.As(err, &oe) && oe.Index == invAt {
			// Another launch or update changed the inventory meanwhile.
			return nil, errProjectChanged
		}
		if i == 0 && p.record != nil && (errors.As(err, &oe) && oe.Index == len(extra)-1 || errors.Is(err, jobs.ErrDuplicate)) {
			// Another launch made the project's update meanwhile: share it.
			return nil, errProjectChanged
		}
		if err != nil {
			if i > 0 {
				return res, fmt.Errorf("%s was created with %d of its %d slices (cancel it with `jobengine job cancel %s`): %w",
					res.Job.ID, len(res.Slices), len(p.slices), res.Job.ID, err)
			}
			return nil, err
		}
		for _, j := range created {
			if skip > 0 {
				skip--
				res.Dependencies = append(res.Dependencies, j)
				continue
			}
			if res.Job == nil {
				res.Job = j
			} else {
				res.Slices = append(res.Slices, j)
			}
		}
	}
	l.log().Info("template launched", zap.String("template", p.top.Launch.Template), zap.String("job", res.Job.ID),
		zap.Int("slices", len(res.Slices)), zap.Int("hosts", p.top.Launch.Hosts), zap.Int("transactions", len(batches)))
	return res, nil
}

// Relaunch launches a job again. A container or a plain job launched from
// a template: a new launch of the template with the same launch values
// (refused when the template is gone, or its slice count changed since and
// the count was not prompted). A slice: a plain job over the same slice
// number and count of the inventory as it is now, with the slice's values.
func (l *Launcher) Relaunch(ctx context.Context, id, by string) (*Result, error) {
	j, _, err := l.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.IsWorkflow() {
		return nil, fmt.Errorf("%w: %s is a workflow job (relaunch it with `jobengine workflow relaunch %s`)", ErrCannotRelaunch, j.ID, j.ID)
	}
	if j.Template == "" {
		return nil, fmt.Errorf("%w: %s was not launched from a template (add a new job with `jobengine job add`)", ErrCannotRelaunch, j.ID)
	}
	if j.SliceNumber > 0 && !j.IsContainer() {
		return l.relaunchSlice(ctx, j, by)
	}
	t, _, err := l.Templates.Get(ctx, j.Template)
	if errors.Is(err, configstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: template %s of %s no longer exists", ErrCannotRelaunch, j.Template, j.ID)
	}
	if err != nil {
		return nil, err
	}
	prompted := j.LaunchValues != nil && j.LaunchValues.SliceCount != nil
	if j.IsContainer() && !prompted && t.SliceCount != j.TemplateSliceCount {
		return nil, fmt.Errorf("%w: the slice count of template %s changed from %d to %d since %s was launched (launch the template instead)",
			ErrCannotRelaunch, t.Name, j.TemplateSliceCount, t.SliceCount, j.ID)
	}
	return l.Launch(ctx, Request{Template: j.Template, Values: j.LaunchValues, LaunchType: jobs.LaunchRelaunch, CreatedBy: by, RelaunchOf: j.ID})
}

// relaunchSlice creates a plain job over slice k of n, as the slice was
// launched, over a new snapshot of its inventory.
func (l *Launcher) relaunchSlice(ctx context.Context, j *jobs.Job, by string) (*Result, error) {
	for attempt := 1; ; attempt++ {
		n := jobs.NewJob{
			Action: j.Action, Target: j.Target(), Priority: j.Priority, Payload: j.Payload, Tags: j.Tags,
			Timeout: j.TimeoutDuration(), CreatedBy: by, Launch: j.Launch,
			Scheduling: jobs.Scheduling{Impact: j.Impact, ConcurrencyKeys: j.ConcurrencyKeys},
		}
		n.ID, _ = jobs.NewID()
		n.Launch.LaunchType, n.Launch.RelaunchOf, n.Launch.CancelRequested = jobs.LaunchRelaunch, j.ID, false
		n.Launch.InventorySnapshot, n.Launch.Hosts = "", 0
		var pin *zk.CreateRequest
		if j.Inventory != "" {
			snap, err := l.Inventories.Snapshot(ctx, j.Inventory)
			if errors.Is(err, configstore.ErrNotFound) {
				return nil, fmt.Errorf("%w: inventory %s of %s no longer exists", ErrCannotRelaunch, j.Inventory, j.ID)
			}
			if err != nil {
				return nil, err
			}
			limit, err := inventory.ParseLimit(j.Limit)
			if err != nil {
				return nil, err
			}
			hosts := snap.Content.Select(limit)
			if len(hosts) < j.SliceCount {
				return nil, fmt.Errorf("%w: inventory %s now has %d hosts (enabled, within the limit); slice %d of %d would be empty",
					ErrCannotRelaunch, j.Inventory, len(hosts), j.SliceNumber, j.SliceCount)
			}
			n.Launch.Hosts = inventory.SliceSize(len(hosts), j.SliceNumber, j.SliceCount)
			if snap.Generation != nil {
				n.Launch.InventorySnapshot = snap.Generation.ID
				if n.Payload, err = repin(n.Payload, snap.Generation.ID); err != nil {
					return nil, err
				}
				_, uid, _ := jobs.ParseID(n.ID)
				if pin, err = l.Inventories.PinOp(j.Inventory, snap.Generation.ID, uid); err != nil {
					return nil, err
				}
			}
		}
		res, err := l.create(ctx, plan{top: n, pin: pin})
		if errors.Is(err, errPinGone) && attempt < maxLaunchAttempts {
			continue
		}
		return res, err
	}
}
