package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
)

// ContainersName names the repair of sliced containers (its log lines).
const ContainersName = "containers"

// Defaults of the container repair.
const (
	// DefaultContainersInterval is how often the jobs are walked for
	// containers left behind.
	DefaultContainersInterval = time.Minute
	// containersBatch is how many containers are repaired between two
	// leadership checks.
	containersBatch = 100
)

// ErrContainers is wrapped by the errors of a container repair pass.
var ErrContainers = errors.New("maintenance: container repair")

// ContainersConfig configures the repair of sliced containers. Zero values
// take the defaults.
type ContainersConfig struct {
	// Disabled turns the repair off: a container whose last follow-up
	// write was lost waits for `job show` or `job wait` of it.
	Disabled bool
	// Interval is how often a pass runs (default
	// DefaultContainersInterval), a whole number of seconds.
	Interval time.Duration
}

func init() {
	register(ContainersName, newContainers)
}

// newContainers builds the container repair: a periodic pass over the
// jobs that brings every open sliced container up to date with its
// slices. The state of a container is written by whoever changes one of
// its slices; a writer that dies between a slice's final write and the
// container's leaves the container behind (RUNNING while every slice has
// ended), and a slice whose document is gone never writes it at all. The
// pass finds both: the first gets the state its slices give, the second
// ends FAILED with the missing slices counted in its status message.
func newContainers(cfg Config) (Service, error) {
	c := cfg.Containers
	if c.Disabled {
		return nil, nil
	}
	if c.Interval == 0 {
		c.Interval = DefaultContainersInterval
	}
	if c.Interval < time.Second || c.Interval%time.Second != 0 {
		return nil, fmt.Errorf("%w: container repair interval %s: give a whole number of seconds, at least 1s", ErrConfig, c.Interval)
	}
	r := &containerRepair{store: cfg.Store}
	p, err := newPeriodic(cfg, periodicSpec{name: ContainersName, schedule: schedule.Spec{Interval: c.Interval},
		catchUp: schedule.CatchUpLast, pass: r.pass})
	if err != nil {
		return nil, err
	}
	r.log = p.log
	return p, nil
}

// containerRepair is the pass of the container repair.
type containerRepair struct {
	store *jobs.Store
	log   *zap.Logger
}

// pass walks the jobs for open sliced containers and syncs each one with
// its slices. A sync is a compare-and-set on the container's version from
// states read after it, the same write every writer of a slice makes, so
// it never races them into a wrong state; the leadership check before each
// batch keeps a deposed leader from going on.
func (r *containerRepair) pass(ctx context.Context, tick schedule.Tick) error {
	term := election.TermOf(ctx)
	type open struct {
		id    string
		state jobs.State
	}
	var found []open
	err := r.store.Walk(ctx, func(j *jobs.Job, _ int32) {
		// Only sliced containers follow their slices; other workflow
		// jobs have their own rules.
		if j.IsContainer() && j.Sliced && !j.State.Final() {
			found = append(found, open{j.ID, j.State})
		}
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrContainers, err)
	}
	repaired := 0
	for i, c := range found {
		if i%containersBatch == 0 {
			if err := term.Check(); err != nil {
				return err
			}
		}
		after, err := r.store.SyncContainer(ctx, c.id)
		if errors.Is(err, jobs.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrContainers, c.id, err)
		}
		if after.State != c.state {
			repaired++
			r.log.Info("container brought up to date with its slices", zap.String("job", c.id),
				zap.String("from", string(c.state)), zap.String("to", string(after.State)), zap.String("message", after.StatusMessage))
		}
	}
	r.log.Debug("containers checked", zap.String("tick", tick.ID()), zap.Int("open", len(found)), zap.Int("repaired", repaired))
	return nil
}
