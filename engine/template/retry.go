package template

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrCannotRetry: a job cannot be retried (it did not fail, it is a
// workflow or fan-out job, or what it ran over is gone).
var ErrCannotRetry = errors.New("cannot retry")

// A retry runs a FAILED job again with the inputs it had — its action,
// payload, target, priority, tags, timeout, unique key, notifications,
// instance groups, impact and concurrency keys, and for a launch its
// template's resolved values, limit, slice and the very inventory
// snapshot it ran over — unlike a relaunch, which launches the template as
// it is now. The new job is created by the caller (launch type retry,
// retry-of the failed job) and stands alone: it leaves the failed job, its
// container or workflow, and their states as they are.
//
//   - A plain job, a slice or a job of a workflow node: one new job.
//   - The container of a sliced job: a new container holding a retry of
//     each slice that did not succeed (FAILED or CANCELED), each with its
//     slice number and count; the slices that succeeded are not run again.
//
// Refused: a job that is not FAILED; a workflow job (relaunch it from its
// failed node instead); a fan-out, whose children are per executor; an
// update run for a launch (relaunch the job that needed it); a job whose
// dependency did not succeed, or whose inventory snapshot is gone (both
// mean the inputs cannot be had again: relaunch it).

// Retry creates the retry of the FAILED job id, by by.
func (l *Launcher) Retry(ctx context.Context, id, by string) (*Result, error) {
	j, _, err := l.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := retryable(j); err != nil {
		return nil, err
	}
	var failed []*jobs.Job
	if j.IsContainer() {
		slices, err := l.Jobs.Slices(ctx, j)
		if err != nil {
			return nil, err
		}
		for i, s := range slices {
			if s == nil {
				return nil, fmt.Errorf("%w: slice %s of %s is missing (its launch did not finish): relaunch it with `jobengine job relaunch %s`",
					ErrCannotRetry, j.NestedJobs[i], j.ID, j.ID)
			}
			if s.State != jobs.Success {
				failed = append(failed, s)
			}
		}
		if len(failed) == 0 {
			return nil, fmt.Errorf("%w: every slice of %s succeeded; relaunch it to run them again", ErrCannotRetry, j.ID)
		}
	}
	for _, d := range append([]*jobs.Job{j}, failed...) {
		if err := l.checkDependencies(ctx, d); err != nil {
			return nil, err
		}
	}
	p := plan{top: retryOf(j, by)}
	for i, s := range failed {
		n := retryOf(s, by)
		n.ParentJob = p.top.ID
		p.top.NestedJobs = append(p.top.NestedJobs, n.ID)
		p.slices = append(p.slices, n)
		if i == 0 {
			p.top.Launch.Hosts = 0 // the container covers its new slices' hosts only
		}
		p.top.Launch.Hosts += s.Hosts
	}
	if j.InventorySnapshot != "" {
		// The same snapshot, pinned by the new top job as a launch pins
		// it: every new slice reads it through the container.
		_, uid, _ := jobs.ParseID(p.top.ID)
		if p.pin, err = l.Inventories.PinOp(j.Inventory, j.InventorySnapshot, uid); err != nil {
			return nil, err
		}
		// Look first: the job store creates the missing parents of a
		// transaction's nodes, which would bring back the directory of a
		// removed snapshot for the pin. (A removal between here and the
		// transaction is the race a launch has too.)
		var ok bool
		err := zkconn.Do(ctx, func() error {
			var err error
			ok, _, err = l.Jobs.Conn().Exists(path.Dir(p.pin.Path))
			return err
		})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, snapshotGone(j)
		}
	}
	res, err := l.create(ctx, p)
	if errors.Is(err, errPinGone) {
		return nil, snapshotGone(j)
	}
	return res, err
}

func snapshotGone(j *jobs.Job) error {
	return fmt.Errorf("%w: snapshot %s of inventory %s, which %s ran over, is gone (the inventory was written since): relaunch it to run over the inventory as it is now",
		ErrCannotRetry, j.InventorySnapshot, j.Inventory, j.ID)
}

// retryable refuses the jobs that cannot be retried, saying what to do
// instead.
func retryable(j *jobs.Job) error {
	switch {
	case j.IsWorkflow():
		return fmt.Errorf("%w: %s is a workflow job; run its failed part again with `jobengine workflow relaunch %s --from NODE`", ErrCannotRetry, j.ID, j.ID)
	case j.FanoutGroup != "":
		return fmt.Errorf("%w: %s is part of a fan-out over instance group %s; add a new fan-out with `jobengine job add --fanout`", ErrCannotRetry, j.ID, j.FanoutGroup)
	case j.LaunchType == jobs.LaunchDependency:
		return fmt.Errorf("%w: %s is an update run for a launch; relaunch the job that waited for it, which runs a new update", ErrCannotRetry, j.ID)
	case !j.State.Final():
		return fmt.Errorf("%w: %s is %s; only a FAILED job is retried (wait for it to end)", ErrCannotRetry, j.ID, j.State)
	case j.State != jobs.Failed:
		return fmt.Errorf("%w: %s ended %s; only a FAILED job is retried (run it again with `jobengine job relaunch %s`)", ErrCannotRetry, j.ID, j.State, j.ID)
	}
	return nil
}

// checkDependencies refuses a job whose dependency did not succeed: a
// retry waiting for it would fail at once. A dependency that succeeded,
// or is gone from ZooKeeper, was met; the retry does not wait for it.
func (l *Launcher) checkDependencies(ctx context.Context, j *jobs.Job) error {
	for _, id := range j.DependsOn {
		d, _, err := l.Jobs.Get(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if d.State != jobs.Success {
			return fmt.Errorf("%w: %s waited for %s, which is %s: relaunch it with `jobengine job relaunch %s`, which runs a new update",
				ErrCannotRetry, j.ID, d.ID, d.State, j.ID)
		}
	}
	return nil
}

// retryOf is a new job with j's inputs: what j was created with, without
// what its runs, its scheduler or its workflow wrote.
func retryOf(j *jobs.Job, by string) jobs.NewJob {
	n := jobs.NewJob{
		Action: j.Action, Target: j.Target(), Priority: j.Priority, Payload: j.Payload, Tags: j.Tags,
		Timeout: j.TimeoutDuration(), UniqueKey: j.UniqueKey, CreatedBy: by, Launch: j.Launch,
		Scheduling: jobs.Scheduling{Impact: j.Impact, ConcurrencyKeys: j.ConcurrencyKeys},
	}
	n.ID, _ = jobs.NewID()
	if j.Notifications != nil {
		n.Notifications = *j.Notifications
	}
	n.Launch.LaunchType, n.Launch.RetryOf, n.Launch.RelaunchOf = jobs.LaunchRetry, j.ID, ""
	n.Launch.CancelRequested, n.Launch.WorkflowNode = false, ""
	return n
}
