package schedules

import (
	"context"
	"errors"
	"fmt"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
)

// Occurrence is one launch of a schedule, as the runner asks for it.
type Occurrence struct {
	// Schedule is the schedule, as read for this occurrence.
	Schedule *Schedule
	// Tick is the occurrence.
	Tick schedule.Tick
	// JobID is the id the launched job must have (JobID): creating it a
	// second time fails with jobs.ErrDuplicate, which is how a new leader
	// finds an occurrence already launched.
	JobID string
	// CreatedBy is the created-by of the launched jobs.
	CreatedBy string
	// Fence is the leader's election fence: the creating transaction must
	// include it (jobs.Store.CreateFenced), so a leader that lost its term
	// creates nothing.
	Fence interface{}
}

// LaunchFunc launches what a schedule names at one occurrence. It returns
// the job it created (a template launcher returns its top job: a plain
// job, or the container of a sliced one). Its errors tell the runner what
// to do:
//
//   - wrapping ErrRefused (or jobs.ErrInvalid, jobs.ErrBacklogFull): the
//     launch cannot be made at this occurrence; the runner records a FAILED
//     job with the reason and moves on;
//   - wrapping jobs.ErrDuplicate: the job id exists, the occurrence was
//     launched (or a live job holds the unique key): moved on;
//   - a *zkconn.OpError of the fence (an extra operation of the creating
//     transaction): leadership is lost;
//   - anything else: the runner tries the occurrence again after a
//     back-off.
type LaunchFunc func(ctx context.Context, o Occurrence) (*jobs.Job, error)

// JobLauncher returns the LaunchFunc that creates a schedule's job spec as
// `job add` does, with the launch values merged over its payload, and
// refuses a template (a template launcher is given to the runner where
// templates exist).
func JobLauncher(store *jobs.Store) LaunchFunc {
	return func(ctx context.Context, o Occurrence) (*jobs.Job, error) {
		sc := o.Schedule
		if sc.Launch.Job == nil {
			what := "template " + sc.Launch.Template
			if sc.Launch.Workflow != "" {
				what = "workflow " + sc.Launch.Workflow
			}
			return nil, fmt.Errorf("%w: schedule %s launches %s, and this runner launches jobs only (templates and workflows are launched by the maintenance leader's runner)", ErrRefused, sc.Name, what)
		}
		n, err := o.newJob()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		js, err := store.CreateFenced(ctx, []jobs.NewJob{n}, o.Fence)
		if err != nil {
			return nil, err
		}
		return js[0], nil
	}
}

// newJob returns the schedule's job spec as the occurrence's new job.
func (o Occurrence) newJob() (jobs.NewJob, error) {
	n, err := o.Schedule.Launch.Job.newJob(o.Schedule.Launch.Values)
	if err != nil {
		return n, err
	}
	n.ID, n.CreatedBy, n.Tick = o.JobID, o.CreatedBy, o.Tick.ID()
	return n, nil
}

// refusedJob is the FAILED job that records a refused launch: the job
// spec's job, or for a template a job of action "launch" whose target is
// the template.
func (o Occurrence) refusedJob() jobs.NewJob {
	if o.Schedule.Launch.Job != nil {
		if n, err := o.newJob(); err == nil {
			n.UniqueKey = ""
			return n
		}
	}
	target := "template/" + o.Schedule.Launch.Template
	switch {
	case o.Schedule.Launch.Workflow != "":
		target = "workflow/" + o.Schedule.Launch.Workflow
	case o.Schedule.Launch.Template == "":
		target = "schedule/" + o.Schedule.Name
	}
	return jobs.NewJob{ID: o.JobID, Action: RefusedAction, Target: target, Priority: queue.DefaultPriority, CreatedBy: o.CreatedBy, Tick: o.Tick.ID()}
}

// RefusedAction is the action of the FAILED job that records a refused
// template launch (or a job spec that is no longer valid).
const RefusedAction = "launch"

// refused reports whether a launch error means "cannot launch at this
// occurrence" rather than "try again".
func refused(err error) bool {
	return errors.Is(err, ErrRefused) || errors.Is(err, jobs.ErrInvalid) || errors.Is(err, jobs.ErrBacklogFull)
}
