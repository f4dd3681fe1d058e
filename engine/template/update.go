package template

import (
	"context"
	"errors"
	"time"

	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// errProjectChanged means the project (or the inventory, for an
// inventory update) changed between reading it and recording its new
// update job: the launch reads it again.
var errProjectChanged = errors.New("the project or the inventory kept changing while launching (launch again)")

// dependency is the project update a launch's jobs wait for.
type dependency struct {
	// id is the update job's id.
	id string
	// create, when set, is a new update job to create in the launch's
	// first transaction, with record (the project recording it as its
	// last update, compare-and-set).
	create *jobs.NewJob
	record interface{}
}

// projectDependency decides what a launch over project p (read at version
// ver) waits for, when the project updates on launch: nothing when its
// last update succeeded within its cache timeout; the update that is
// pending or running, which launches share; else a new update job
// (launch type dependency, holding the project's key, so that one runs
// at a time), created with the launch and recorded on the project.
// An update recorded since the launch's first attempt (seen) is shared
// whatever its state (invsource.UpdateSeen).
func (l *Launcher) projectDependency(ctx context.Context, ps *project.Store, p *project.Project, ver int32, by string, seen *invsource.UpdateSeen) (*dependency, error) {
	if !p.UpdateOnLaunch || p.Kind != project.Git {
		return nil, nil
	}
	newer := seen.Newer(p.LastUpdateJob)
	if p.LastUpdateJob != "" {
		j, _, err := l.Jobs.Get(ctx, p.LastUpdateJob)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
		case err != nil:
			return nil, err
		case !j.State.Final(), newer:
			return &dependency{id: j.ID}, nil
		case j.State == jobs.Success && time.Since(j.TimeOfStatusChange) <= time.Duration(p.CacheTimeout*float64(time.Second)):
			return nil, nil
		}
	}
	n, err := project.UpdateJob(p, by)
	if err != nil {
		return nil, err
	}
	n.Launch.LaunchType = jobs.LaunchDependency
	n.Scheduling.ConcurrencyKeys = []string{jobs.ProjectKey(p.Name)}
	q := *p
	q.LastUpdateJob = n.ID
	q.Updated = time.Now().UTC()
	op, err := ps.Objects().UpdateOp(&q, ver)
	if err != nil {
		return nil, err
	}
	return &dependency{id: n.ID, create: &n, record: op}, nil
}
