package jobs

import (
	"fmt"
	"time"

	"github.com/jobengine/jobengine/engine/action"
)

// The rules of a job's life, as edits of a document in memory. They write
// nothing: the Store's lifecycle operations (lifecycle.go) apply them to a
// copy of a document and plan its write.

// Transition moves j to state to, setting the fields that go with it. It
// does not write. Writers use the lifecycle operations of the Store, which
// apply it with the rest of each transition's rules; Transition itself is
// for repairs and tests, with Update.
func (j *Job) Transition(to State, now time.Time) error {
	if j.State.Final() {
		return fmt.Errorf("%w: %s is %s", ErrFinal, j.ID, j.State)
	}
	if !CanTransition(j.State, to) {
		return fmt.Errorf("%w: %s → %s", ErrIllegalState, j.State, to)
	}
	now = now.UTC()
	j.State = to
	j.TimeOfStatusChange = now
	switch {
	case to == Queued || to == Pending:
		j.Started = nil
		j.Progress = 0
	case to == Running:
		j.Started = &now
		j.Progress = 0
		j.ReturnCode = nil
	case to.Final():
		j.Progress = 100
		if j.Started != nil {
			d := now.Sub(*j.Started).Seconds()
			j.Duration = &d
		}
	}
	return nil
}

// startAttempt starts a new attempt by executor: RUNNING, the attempt
// counted, the status of an earlier attempt cleared.
func (j *Job) startAttempt(executor string, now time.Time) error {
	if err := j.Transition(Running, now); err != nil {
		return err
	}
	j.Attempt++
	j.Executor = executor
	j.StatusMessage = ""
	return nil
}

// requeue gives a RUNNING job back: QUEUED (or PENDING, for a placed job),
// its attempt not counted (it did not fail), no executor.
func (j *Job) requeue(reason string, to State, now time.Time) error {
	if j.State != Running {
		return fmt.Errorf("%w: %s is %s; only a RUNNING job is requeued", ErrIllegalState, j.ID, j.State)
	}
	if err := j.Transition(to, now); err != nil {
		return err
	}
	if j.Attempt > 0 {
		j.Attempt--
	}
	j.Executor = ""
	j.StatusMessage = "requeued: " + reason
	return nil
}

// finish records an outcome. A QUEUED job that cannot start (its action is
// unknown) still passes through RUNNING, as an attempt of executor: the
// state machine has no QUEUED → FAILED.
func (j *Job) finish(executor string, out Outcome, now time.Time) error {
	if !out.State.Final() {
		return fmt.Errorf("%w: %s is not a final state", ErrIllegalState, out.State)
	}
	if j.State == Queued && out.State == Failed {
		if err := j.startAttempt(executor, now); err != nil {
			return err
		}
	}
	if err := j.Transition(out.State, now); err != nil {
		return err
	}
	j.ReturnCode = nil
	switch {
	case out.ReturnCode != nil:
		rc := *out.ReturnCode
		j.ReturnCode = &rc
	case out.State == Failed:
		one := 1
		j.ReturnCode = &one
	}
	j.StatusMessage = out.Message
	if out.HostSummary != nil {
		j.HostSummary = out.HostSummary
	}
	j.setArtifacts(out.Artifacts)
	return nil
}

// lostOutcome says whether a RUNNING job whose executor was lost runs
// again under the action's policy, or the outcome that ends it.
func (j *Job) lostOutcome(l Lost) (rerun bool, out Outcome) {
	policy, max := l.Policy, l.MaxAttempts
	if policy == "" {
		policy = action.Rerun
	}
	if max <= 0 {
		max = action.DefaultMaxAttempts
	}
	switch {
	case policy == action.Fail:
		return false, Outcome{State: Failed, Message: fmt.Sprintf("executor lost (%s); action %s does not rerun lost jobs", j.Executor, j.Action)}
	case j.Attempt >= max:
		return false, Outcome{State: Failed, Message: fmt.Sprintf("executor lost (%s, attempt %d of %d)", j.Executor, j.Attempt, max)}
	}
	return true, Outcome{}
}

// recordProgress applies a progress report to a RUNNING job.
func (j *Job) recordProgress(p Progress) error {
	if j.State != Running {
		return fmt.Errorf("%w: %s is %s; only a RUNNING job reports progress", ErrIllegalState, j.ID, j.State)
	}
	j.Progress = ClampProgress(p.Percent)
	if p.Status != "" {
		j.StatusMessage = p.Status
	}
	seen := make(map[string]bool, len(j.AffectedResources))
	for _, a := range j.AffectedResources {
		seen[a.Href] = true
	}
	for _, h := range p.Affected {
		if !seen[h] && len(j.AffectedResources) < MaxAffected {
			j.AffectedResources = append(j.AffectedResources, Resource{Href: h})
			seen[h] = true
		}
	}
	return nil
}
