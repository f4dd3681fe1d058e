// Package invsource refreshes inventories from their sources: an
// inventory update is a job (action inventory_update) that checks out a
// file of a project, runs it (an executable script) or `ansible-inventory
// --list` over it, and imports the hosts and groups printed as a new
// snapshot of the inventory. This package makes those jobs — started by
// hand, or as the dependency of a template launch when the source updates
// on launch — and checks their payload; actions/inventory_update.go runs
// them.
package invsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// UpdateAction is the action of inventory update jobs.
const UpdateAction = "inventory_update"

// ErrInvalid: bad input (a payload, an inventory without a source).
var ErrInvalid = configstore.Invalid("inventory source")

// Payload is the payload of an inventory update job: the inventory to
// import into, and the project file its hosts come from.
type Payload struct {
	Inventory string `json:"inventory"`
	// Path is the source file's path in the project.
	Path string `json:"path"`
	// Project is where the file comes from (a git repository checked out
	// through the executor's project cache, or a directory).
	Project project.UpdatePayload `json:"project"`
}

// Validate checks a payload as the inventory and project are checked.
func (p *Payload) Validate() error {
	if err := configstore.ValidName("inventory", p.Inventory); err != nil {
		return err
	}
	if err := inventory.ValidSourcePath(p.Path); err != nil {
		return err
	}
	return p.Project.Validate()
}

// UpdateJob returns the job that refreshes inventory inv from its source
// (of project p), created by `by`: it holds the source's concurrency key,
// so updates of one inventory run one at a time.
func UpdateJob(inv *inventory.Inventory, p *project.Project, by string) (jobs.NewJob, error) {
	if inv.Source == nil {
		return jobs.NewJob{}, fmt.Errorf("%w: inventory %s has no source (set one with `jobengine inventory source set %s --project P --path FILE`)",
			ErrInvalid, inv.Name, inv.Name)
	}
	pl := Payload{Inventory: inv.Name, Path: inv.Source.Path,
		Project: project.UpdatePayload{Project: p.Name, Kind: p.Kind, URL: p.URL, Branch: p.Branch, Directory: p.Directory}}
	if err := pl.Validate(); err != nil {
		return jobs.NewJob{}, err
	}
	data, err := json.Marshal(pl)
	if err != nil {
		return jobs.NewJob{}, err
	}
	id, _ := jobs.NewID()
	return jobs.NewJob{
		ID: id, Action: UpdateAction, Payload: data, CreatedBy: by,
		Launch:     jobs.Launch{Kind: jobs.KindJob, LaunchType: jobs.LaunchManual, Inventory: inv.Name},
		Scheduling: jobs.Scheduling{ConcurrencyKeys: []string{jobs.InventorySourceKey(inv.Name)}},
	}, nil
}

// Stores are what an update is made from.
type Stores struct {
	Inventories *inventory.Store
	Projects    *project.Store
	Jobs        *jobs.Store
}

// source reads an inventory with a source and the source's project.
func (s Stores) source(ctx context.Context, name string) (*inventory.Inventory, int32, *project.Project, error) {
	inv, ver, err := s.Inventories.Get(ctx, name)
	if err != nil {
		return nil, 0, nil, err
	}
	if inv.Source == nil {
		return nil, 0, nil, fmt.Errorf("%w: inventory %s has no source (set one with `jobengine inventory source set %s --project P --path FILE`)",
			ErrInvalid, name, name)
	}
	p, _, err := s.Projects.Get(ctx, inv.Source.Project)
	if errors.Is(err, configstore.ErrNotFound) {
		return nil, 0, nil, fmt.Errorf("%w: the source of inventory %s names project %s, which does not exist", ErrInvalid, name, inv.Source.Project)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	return inv, ver, p, nil
}

// StartUpdate creates an update job of inventory name and records it on
// the inventory's source, in one transaction.
func (s Stores) StartUpdate(ctx context.Context, name, by string) (*jobs.Job, error) {
	return s.StartUpdateWith(ctx, name, by, nil)
}

// StartUpdateWith is StartUpdate with set, when not nil, applied to the
// new job (a workflow gives it its node's id and parent), and extra
// operations (a leader's fence) joining the transaction after the
// inventory's.
func (s Stores) StartUpdateWith(ctx context.Context, name, by string, set func(*jobs.NewJob), extra ...interface{}) (*jobs.Job, error) {
	for attempt := 0; ; attempt++ {
		inv, ver, p, err := s.source(ctx, name)
		if err != nil {
			return nil, err
		}
		n, err := UpdateJob(inv, p, by)
		if err != nil {
			return nil, err
		}
		if set != nil {
			set(&n)
		}
		op, err := s.Inventories.RecordUpdateOp(inv, ver, n.ID)
		if err != nil {
			return nil, err
		}
		created, err := s.Jobs.CreateFenced(ctx, []jobs.NewJob{n}, append([]interface{}{op}, extra...)...)
		var oe *zkconn.OpError
		if errors.As(err, &oe) && oe.Index == 0 && attempt < 5 {
			continue // the inventory changed meanwhile: read it again
		}
		if err != nil {
			return nil, err
		}
		return created[0], nil
	}
}

// Dependency is what a launch over an inventory waits for.
type Dependency struct {
	// ID is the update job's id.
	ID string
	// Create, when set, is a new update job for the launch to create in
	// its first transaction, with Record (the source recording it as its
	// last update, compare-and-set).
	Create *jobs.NewJob
	Record *zk.SetDataRequest
}

// OnLaunch decides what a launch over inventory name waits for: nothing
// when the inventory has no source or its source does not update on
// launch, or the last update succeeded within the cache timeout; the
// update pending or running, which launches share; else a new update job
// (launch type dependency).
//
// seen, when not nil, is what the launch saw at its first attempt: an
// update recorded since (by a launch that won the race to record one) is
// shared whatever its state, so that racing launches converge on it even
// when it ends before they read it again.
func (s Stores) OnLaunch(ctx context.Context, name, by string, seen *UpdateSeen) (*Dependency, error) {
	inv, ver, err := s.Inventories.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if inv.Source == nil || !inv.Source.UpdateOnLaunch {
		return nil, nil
	}
	newer := seen.Newer(inv.Source.LastUpdateJob)
	if id := inv.Source.LastUpdateJob; id != "" {
		j, _, err := s.Jobs.Get(ctx, id)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
		case err != nil:
			return nil, err
		case !j.State.Final(), newer:
			return &Dependency{ID: j.ID}, nil
		case j.State == jobs.Success && time.Since(j.TimeOfStatusChange) <= time.Duration(inv.Source.CacheTimeout*float64(time.Second)):
			return nil, nil
		}
	}
	_, _, p, err := s.source(ctx, name)
	if err != nil {
		return nil, err
	}
	n, err := UpdateJob(inv, p, by)
	if err != nil {
		return nil, err
	}
	n.Launch.LaunchType = jobs.LaunchDependency
	op, err := s.Inventories.RecordUpdateOp(inv, ver, n.ID)
	if err != nil {
		return nil, err
	}
	return &Dependency{ID: n.ID, Create: &n, Record: op}, nil
}

// UpdateSeen is what a launch saw of an object's last update (a project's
// or an inventory source's) at its first attempt. A launch that loses the
// race to record a new update tries again; the update recorded meanwhile
// was made for the launches of that race, so it is shared even if it has
// already ended — else, with updates that end fast, each round of retries
// lets one launch through and the others run out of attempts.
type UpdateSeen struct {
	read bool
	last string
}

// Newer reports whether last, the update recorded now, was recorded after
// the first call (which records it and reports false). A nil UpdateSeen
// never reports one.
func (u *UpdateSeen) Newer(last string) bool {
	switch {
	case u == nil:
		return false
	case !u.read:
		u.read, u.last = true, last
		return false
	}
	return last != "" && last != u.last
}
