package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"
)

// A container (a workflow job holding the slices of a sliced job) runs
// nothing: its state is derived from its slices' states and written with a
// compare-and-set on its own document, by whoever sees a slice change (the
// executor that started or finished a slice, a cancel). The derivation
// reads the container's version before the slices, so a write computed
// from states older than another writer's fails and is computed again; a
// final state is only derived from final slices, which never change. Two
// slices ending at the same moment therefore give the same, exact result.

// maxSyncAttempts bounds the compare-and-set retries of one derivation.
const maxSyncAttempts = 50

// ContainerState derives the state of a container from its slices (a nil
// slice is one whose document is missing: it counts as failed):
//
//   - PENDING until a slice starts, RUNNING once one has;
//   - once every slice has ended: CANCELED if the container's cancel was
//     asked for, else FAILED if any slice failed or was canceled, else
//     SUCCESS.
func ContainerState(cancelRequested bool, slices []*Job) State {
	ended, bad, started := 0, 0, false
	for _, s := range slices {
		switch {
		case s == nil:
			ended++
			bad++
		case s.State.Final():
			ended++
			if s.State != Success {
				bad++
			}
			started = started || s.Started != nil
		case s.State == Running:
			started = true
		}
	}
	switch {
	case len(slices) > 0 && ended == len(slices) && cancelRequested:
		return Canceled
	case len(slices) > 0 && ended == len(slices) && bad > 0:
		return Failed
	case len(slices) > 0 && ended == len(slices):
		return Success
	case started:
		return Running
	}
	return Pending
}

// containerSummary says how far the slices are, for the status message.
func containerSummary(slices []*Job) (msg string, progress int) {
	var ended, ok, failed, canceled, missing int
	for _, s := range slices {
		switch {
		case s == nil:
			ended++
			missing++
		case s.State == Success:
			ended++
			ok++
		case s.State == Failed:
			ended++
			failed++
		case s.State == Canceled:
			ended++
			canceled++
		}
	}
	msg = fmt.Sprintf("%d of %d slices ended: %d succeeded, %d failed, %d canceled", ended, len(slices), ok, failed, canceled)
	if missing > 0 {
		msg += fmt.Sprintf(", %d missing", missing)
	}
	if len(slices) > 0 {
		progress = ended * 100 / len(slices)
	}
	return msg, progress
}

// SyncContainer brings a container's state up to date with its slices and
// returns it as written. A final container is left alone.
func (s *Store) SyncContainer(ctx context.Context, id string) (*Job, error) {
	for attempt := 0; attempt < maxSyncAttempts; attempt++ {
		c, ver, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !c.IsContainer() {
			return nil, fmt.Errorf("%w: %s is not a workflow job", ErrInvalid, c.ID)
		}
		if c.State.Final() || c.IsWorkflow() {
			// A workflow job's state is derived by the workflow service
			// (engine/workflow), from its graph and its node jobs.
			return c, nil
		}
		slices, err := s.getMany(ctx, c.NestedJobs)
		if err != nil {
			return nil, err
		}
		to := ContainerState(c.CancelRequested, slices)
		msg, progress := containerSummary(slices)
		if c.CancelRequested && !to.Final() {
			msg = "cancel requested; " + msg
		}
		if to == c.State && msg == c.StatusMessage && progress == c.Progress {
			return c, nil
		}
		from := c.State
		s.setContainerState(c, to, msg, progress)
		// The write notifies as a whole sliced job: started with its first
		// slice, success or failure with its last.
		if _, err := s.update(ctx, c, ver, from); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		if to.Final() {
			s.log.Info("sliced job ended", zap.String("job", c.ID), zap.String("state", string(to)), zap.String("message", msg))
			s.pokeWorkflows(c) // a workflow's sliced node: the workflow goes on
		}
		return c, nil
	}
	return nil, fmt.Errorf("%w: %s kept changing", ErrConflict, id)
}

func (s *Store) setContainerState(c *Job, to State, msg string, progress int) {
	now := s.now()
	c.StatusMessage = msg
	c.Progress = progress
	if to == c.State {
		return
	}
	c.State, c.TimeOfStatusChange = to, now
	if to != Pending && c.Started == nil {
		c.Started = &now
	}
	if to.Final() {
		c.Progress = 100
		rc := 0
		if to != Success {
			rc = 1
		}
		c.ReturnCode = &rc
		if c.Started != nil {
			d := now.Sub(*c.Started).Seconds()
			c.Duration = &d
		}
	}
}

// getMany reads jobs by id in parallel; a missing one is nil.
func (s *Store) getMany(ctx context.Context, ids []string) ([]*Job, error) {
	out := make([]*Job, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j, _, err := s.Get(ctx, id)
			if errors.Is(err, ErrNotFound) {
				return
			}
			out[i], errs[i] = j, err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Slices reads the slices of a container, in slice order; a missing one
// is nil.
func (s *Store) Slices(ctx context.Context, c *Job) ([]*Job, error) {
	return s.getMany(ctx, c.NestedJobs)
}

// FollowParent updates the container of a slice after the slice's state
// changed. It is a no-op for other jobs. Callers log its error: the next
// change of any slice, or a cancel, brings the container up to date.
func (s *Store) FollowParent(ctx context.Context, j *Job) error {
	if !j.IsSlice() {
		return nil
	}
	if !j.State.Final() {
		// Only the first slice to start changes the container: skip
		// reading every slice when it is already running.
		c, _, err := s.Get(ctx, j.ParentJob)
		if err != nil || c.State != Pending {
			return err
		}
	}
	_, err := s.SyncContainer(ctx, j.ParentJob)
	return err
}

// followParent is FollowParent after a committed change of a slice (and
// tells the workflow service of a node job's end): a failure is logged
// and left, as the next change of any slice of the
// container, a cancel, or a reader of the container derives it again.
func (s *Store) followParent(ctx context.Context, j *Job) {
	s.pokeWorkflows(j)
	if !j.IsSlice() {
		return
	}
	if err := s.FollowParent(ctx, j); err != nil {
		s.log.Warn("container of the slice not updated", zap.String("job", j.ID), zap.String("container", j.ParentJob), zap.Error(err))
	}
}

// CancelJob cancels a job as Cancel does, and knows containers: canceling
// a container marks it, cancels every slice (queued ones at once, running
// ones through their executor), and the container ends CANCELED once every
// slice has ended; canceling a slice cancels only it (its container then
// ends FAILED). A dependency made for the canceled job alone (a project
// update on launch no other pending job waits for) is canceled with it.
func (s *Store) CancelJob(ctx context.Context, id, by string) (*Job, error) {
	j, ver, err := s.Get(ctx, id)
	var bad *BadDocumentError
	if errors.As(err, &bad) || errors.Is(err, ErrNotFound) {
		// Cancel quarantines an invalid document, and names the record of
		// one quarantined before.
		return s.Cancel(ctx, id, by)
	}
	if err != nil {
		return nil, err
	}
	if !j.IsContainer() {
		j, err := s.Cancel(ctx, id, by)
		if err == nil && j.IsSlice() {
			if ferr := s.FollowParent(ctx, j); ferr != nil {
				s.log.Warn("container not updated after a slice was canceled", zap.String("job", j.ID), zap.String("container", j.ParentJob), zap.Error(ferr))
			}
		}
		if err == nil {
			s.cancelOrphanDependencies(ctx, j, by, 0)
		}
		return j, err
	}
	for attempt := 0; !j.CancelRequested || j.State.Final(); attempt++ {
		if j.State.Final() {
			return j, fmt.Errorf("%w: %s is %s", ErrFinal, j.ID, j.State)
		}
		j.CancelRequested = true
		j.StatusMessage = "cancel requested"
		if by != "" {
			j.StatusMessage += " by " + by
		}
		_, err := s.Update(ctx, j, ver)
		if errors.Is(err, ErrConflict) && attempt < maxSyncAttempts {
			if j, ver, err = s.Get(ctx, id); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("cancel requested", zap.String("job", j.ID), zap.String("by", by), zap.Int("slices", len(j.NestedJobs)))
	}
	if j.IsWorkflow() {
		return s.cancelWorkflow(ctx, j, by)
	}
	for _, sid := range j.NestedJobs {
		_, err := s.Cancel(ctx, sid, by)
		if err != nil && !errors.Is(err, ErrFinal) && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("canceling slice %s of %s: %w", sid, j.ID, err)
		}
	}
	s.cancelOrphanDependencies(ctx, j, by, 0)
	return s.SyncContainer(ctx, j.ID)
}

// ErrNotFinal: the operation needs a job in a final state.
var ErrNotFinal = errors.New("job is not final")

// DeleteJob deletes a final job from ZooKeeper (with its log and cancel
// request) and returns the ids deleted: a container goes with its slices
// (a workflow job with its node jobs, and theirs), a slice alone. Each document is deleted only at the version read, so a
// job that changes meanwhile is left.
func (s *Store) DeleteJob(ctx context.Context, id string) ([]string, error) {
	j, ver, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !j.State.Final() {
		return nil, fmt.Errorf("%w: %s is %s; only a final job can be deleted (cancel it first)", ErrNotFinal, j.ID, j.State)
	}
	var deleted []string
	if j.IsContainer() {
		slices, err := s.getMany(ctx, j.NestedJobs)
		if err != nil {
			return nil, err
		}
		for _, sl := range slices {
			if sl != nil && !sl.State.Final() {
				return nil, fmt.Errorf("%w: slice %s of %s is %s", ErrNotFinal, sl.ID, j.ID, sl.State)
			}
		}
		for _, sl := range slices {
			if sl == nil {
				continue
			}
			if sl.IsContainer() {
				// A workflow's node that is a sliced job or a nested
				// workflow goes with its own children.
				sub, err := s.DeleteJob(ctx, sl.ID)
				deleted = append(deleted, sub...)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return deleted, err
				}
				continue
			}
			_, sver, err := s.Get(ctx, sl.ID)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return deleted, err
			}
			if err := s.Delete(ctx, sl.UUID(), sver); err != nil {
				return deleted, err
			}
			deleted = append(deleted, sl.ID)
		}
	}
	if err := s.Delete(ctx, j.UUID(), ver); err != nil {
		return deleted, err
	}
	s.log.Info("job deleted", zap.String("job", j.ID), zap.Int("slices", len(deleted)))
	return append(deleted, j.ID), nil
}
