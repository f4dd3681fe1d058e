package maintenance

import (
	"fmt"

	"github.com/jobengine/jobengine/engine/scheduler"
)

// Names of the scheduler's services (engine/scheduler).
const (
	// SchedulerName names the scheduler: it queues PENDING jobs on
	// executors with room.
	SchedulerName = "scheduler"
	// ReaperName names the reaper: it gives back the jobs of lost
	// executors.
	ReaperName = "reaper"
)

func init() {
	register(SchedulerName, newScheduler)
	register(ReaperName, newReaper)
}

// newScheduler builds the scheduler; it takes the term of the leader
// context it is started with, and fences every write with it.
func newScheduler(cfg Config) (Service, error) {
	sc := cfg.Scheduler
	sc.Store = cfg.Store
	if sc.Logger == nil {
		sc.Logger = cfg.Logger
	}
	s, err := scheduler.New(sc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return s, nil
}

// newReaper builds the reaper, like the scheduler.
func newReaper(cfg Config) (Service, error) {
	rc := cfg.Reaper
	rc.Store = cfg.Store
	if rc.Logger == nil {
		rc.Logger = cfg.Logger
	}
	r, err := scheduler.NewReaper(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return r, nil
}
