package scheduler

import (
	"context"
	"errors"
	"fmt"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

// ErrNoExecutor: a fan-out found no live, enabled executor in its group.
var ErrNoExecutor = errors.New("scheduler: no executor to fan out to")

// MaxFanout bounds the children of one fan-out: they are created in one
// transaction, within ZooKeeper's request limit.
const MaxFanout = 500

// Fanout runs n on every executor of group: it creates one child of n per
// executor of the group that is live, enabled and not draining, each
// QUEUED on that executor's direct queue, and a parent that runs nothing,
// stays PENDING and ends when every child has (the scheduler ends it:
// FAILED if a child failed, else SUCCESS if one succeeded, else CANCELED).
// Parent and children are created in one transaction. A child whose
// executor is lost before it starts is not run elsewhere: the reaper
// cancels it (AWX's cache flush: an executor that is gone has nothing to
// flush). n's impact applies to each child; a fan-out takes no groups,
// concurrency keys or dependencies. It returns the parent.
func Fanout(ctx context.Context, store *jobs.Store, n jobs.NewJob, group string) (*jobs.Job, error) {
	if group == "" {
		group = jobs.DefaultGroup
	}
	if err := jobs.ValidGroupName(group); err != nil {
		return nil, err
	}
	sc := n.Scheduling
	if len(n.Launch.InstanceGroups) > 0 || len(sc.ConcurrencyKeys) > 0 || len(sc.DependsOn) > 0 || sc.ExecutionNode != "" || sc.FanoutGroup != "" {
		return nil, fmt.Errorf("%w: a fan-out takes no instance groups, concurrency keys or dependencies (only an impact)", jobs.ErrInvalid)
	}
	if n.ParentJob != "" || len(n.NestedJobs) > 0 {
		return nil, fmt.Errorf("%w: a fan-out job has no parent or nested jobs of its own", jobs.ErrInvalid)
	}
	snap, err := instance.NewReader(store, nil).Read(ctx)
	if err != nil {
		return nil, err
	}
	var targets []string
	for _, e := range snap.Members(group) {
		if e.State() == instance.StateLive {
			targets = append(targets, e.Name)
		}
	}
	switch {
	case len(targets) == 0:
		return nil, fmt.Errorf("%w: no live, enabled executor in group %s (see `jobengine cluster status`)", ErrNoExecutor, group)
	case len(targets) > MaxFanout:
		return nil, fmt.Errorf("%w: group %s has %d executors, a fan-out reaches at most %d", jobs.ErrInvalid, group, len(targets), MaxFanout)
	}
	parent := n
	if parent.ID == "" {
		parent.ID, _ = jobs.NewID()
	}
	parent.Scheduling = jobs.Scheduling{FanoutGroup: group}
	batch := []jobs.NewJob{parent}
	for _, name := range targets {
		child := n
		child.ID, _ = jobs.NewID()
		child.ParentJob = parent.ID
		child.UniqueKey = ""
		child.Scheduling = jobs.Scheduling{FanoutGroup: group, ExecutionNode: name, InstanceGroup: group, Impact: sc.Impact}
		batch = append(batch, child)
		parent.NestedJobs = append(parent.NestedJobs, child.ID)
	}
	batch[0] = parent
	created, err := store.CreateMany(ctx, batch)
	if err != nil {
		return nil, err
	}
	return created[0], nil
}
