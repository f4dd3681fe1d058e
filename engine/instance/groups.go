package instance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// GroupsPath is the directory of the instance groups' settings, one JSON
// document per group: /config/instance-groups/<name>. A group exists as
// soon as an executor joins it; a document is only needed for limits.
const GroupsPath = "config/instance-groups"

// MaxGroupLimit bounds a group's limits.
const MaxGroupLimit = 1_000_000

// Group is an instance group's settings.
type Group struct {
	// Name is the group's name (its znode's name).
	Name string `json:"name"`
	// MaxJobs bounds the jobs active at once on the group's executors;
	// 0 is no limit.
	MaxJobs int `json:"max-concurrent-jobs"`
	// MaxForks bounds the impact of the jobs active at once on the
	// group's executors; 0 is no limit.
	MaxForks int `json:"max-forks"`
}

// Validate checks the settings.
func (g *Group) Validate() error {
	if err := jobs.ValidGroupName(g.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if g.MaxJobs < 0 || g.MaxJobs > MaxGroupLimit || g.MaxForks < 0 || g.MaxForks > MaxGroupLimit {
		return fmt.Errorf("%w: group %s: limits must be 0 (none) to %d", ErrInvalid, g.Name, MaxGroupLimit)
	}
	return nil
}

func groupPath(conn *zkconn.Conn, name string) string { return conn.Path(GroupsPath, name) }

// decodeGroup decodes strictly and validates the group stored under name.
func decodeGroup(name string, data []byte) (Group, error) {
	var g Group
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return Group{}, fmt.Errorf("%w: group %s: %v", ErrInvalid, name, err)
	}
	if g.Name != name {
		return Group{}, fmt.Errorf("%w: group at %s names %q", ErrInvalid, name, g.Name)
	}
	return g, g.Validate()
}

// SetGroup creates or replaces a group's settings.
func SetGroup(ctx context.Context, conn *zkconn.Conn, g Group) error {
	if err := g.Validate(); err != nil {
		return err
	}
	data, _ := json.Marshal(&g)
	p := groupPath(conn, g.Name)
	return zkconn.Do(ctx, func() error {
		_, err := conn.Set(p, data, -1)
		if errors.Is(err, zk.ErrNoNode) {
			if err := zkconn.EnsureSync(conn.Conn, conn.Path(GroupsPath)); err != nil {
				return err
			}
			_, err = conn.Create(p, data, 0, zkconn.ACL)
		}
		return err
	})
}

// DeleteGroup deletes a group's settings (its executors stay in it).
func DeleteGroup(ctx context.Context, conn *zkconn.Conn, name string) error {
	if err := jobs.ValidGroupName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	err := zkconn.Do(ctx, func() error { return conn.Delete(groupPath(conn, name), -1) })
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%w: no settings for group %s", ErrNotFound, name)
	}
	return err
}

// ReadGroups reads every group's settings, sorted by name. A bad document
// is left out and reported in problems.
func ReadGroups(ctx context.Context, conn *zkconn.Conn) (groups []Group, problems []error, err error) {
	err = zkconn.Do(ctx, func() error {
		groups, problems = nil, nil
		names, _, err := conn.Children(conn.Path(GroupsPath))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			data, _, err := conn.Get(groupPath(conn, n))
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			g, err := decodeGroup(n, data)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			groups = append(groups, g)
		}
		return nil
	})
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	return groups, problems, err
}
