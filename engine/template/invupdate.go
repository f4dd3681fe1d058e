package template

import (
	"context"
	"fmt"

	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/project"
)

// inventoryDependency decides what a launch over inventory name waits for
// when the inventory's source updates on launch (invsource.Stores.OnLaunch):
// nothing, the update pending or running, or a new update job created in
// the launch's first transaction and recorded on the source.
func (l *Launcher) inventoryDependency(ctx context.Context, tmpl, name, by string, seen *invsource.UpdateSeen) (*invsource.Dependency, error) {
	ps := l.Projects
	if ps == nil {
		ps = project.NewStore(l.Jobs.Conn(), l.log())
	}
	d, err := invsource.Stores{Inventories: l.Inventories, Projects: ps, Jobs: l.Jobs}.OnLaunch(ctx, name, by, seen)
	if err != nil {
		return nil, fmt.Errorf("template %s: inventory %s: %w", tmpl, name, err)
	}
	return d, nil
}
