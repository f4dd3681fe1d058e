package inventory

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// A job launched over an inventory pins the generation it saw, by a node
// named after the job under the generation's pins directory, created in the
// transaction that creates the job. Every slice of a sliced job reads that
// one generation, whatever happens to the inventory while they wait; the
// generation stays until the job has ended and the inventory is written
// again (or deleted).

// Snapshot is the content of an inventory as a launch sees it.
type Snapshot struct {
	Inventory *Inventory
	// Generation is the pinned generation; nil for an empty inventory
	// (there is nothing to pin).
	Generation *Generation
	Content    *Content
}

// Snapshot returns the current content of an inventory as a generation
// that a launch can pin. A smart inventory's filter is applied now and the
// result stored as a generation of its own when it differs from the last
// one, so its slices too see one consistent set of hosts.
func (s *Store) Snapshot(ctx context.Context, name string) (*Snapshot, error) {
	for attempt := 0; ; attempt++ {
		inv, ver, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if inv.Kind == Static {
			if inv.Snapshot == nil {
				return &Snapshot{Inventory: inv, Content: &Content{Hosts: []Host{}, Groups: []Group{}}}, nil
			}
			gen, c, err := s.ReadGeneration(ctx, name, inv.Snapshot.ID)
			if errors.Is(err, errGenGone) && attempt < maxAttempts {
				continue
			}
			if err != nil {
				return nil, err
			}
			return &Snapshot{Inventory: inv, Generation: gen, Content: c}, nil
		}
		c, err := s.evaluate(ctx, inv.Filter)
		if err != nil {
			return nil, err
		}
		c.Normalize()
		hash, err := contentHash(c)
		if err != nil {
			return nil, err
		}
		if inv.Snapshot != nil && inv.Snapshot.SHA256 == hash {
			return &Snapshot{Inventory: inv, Generation: inv.Snapshot, Content: c}, nil
		}
		if len(c.Hosts) == 0 {
			return &Snapshot{Inventory: inv, Content: c}, nil
		}
		err = s.replace(ctx, inv, ver, c)
		if errors.Is(err, configstore.ErrConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Snapshot{Inventory: inv, Generation: inv.Snapshot, Content: c}, nil
	}
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// PinOp returns the operation that pins generation id of the inventory
// name for the job with uuid uid. It fails with ErrNoNode when the
// generation was removed meanwhile: take a new snapshot and try again.
func (s *Store) PinOp(name, id, uid string) (*zk.CreateRequest, error) {
	if !genIDRe.MatchString(id) || !uuidRe.MatchString(uid) {
		return nil, fmt.Errorf("%w: pin %s/%s for %s", ErrInvalid, name, id, uid)
	}
	return &zk.CreateRequest{Path: s.dataPath(name, id, pinsDir, uid), Acl: zkconn.ACL}, nil
}

// IsPinGone reports whether a transaction failed on a PinOp because its
// generation is gone.
func IsPinGone(err error) bool { return errors.Is(err, zk.ErrNoNode) }

// livePins lists the jobs pinning a generation that still need it and
// removes the pins of the others.
func (s *Store) livePins(ctx context.Context, name, id string) ([]string, error) {
	dir := s.dataPath(name, id, pinsDir)
	var uids []string
	err := zkconn.Do(ctx, func() error {
		var err error
		uids, _, err = s.conn.Children(dir)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var live []string
	for _, uid := range uids {
		if s.cfg.Live == nil {
			live = append(live, uid)
			continue
		}
		ok, err := s.cfg.Live(ctx, uid)
		if err != nil {
			return nil, err
		}
		if ok {
			live = append(live, uid)
			continue
		}
		err = zkconn.Do(ctx, func() error { return s.conn.Delete(dir+"/"+uid, -1) })
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return nil, err
		}
	}
	return live, nil
}

// Pins lists the jobs (uuids) pinning a generation, live or not.
func (s *Store) Pins(ctx context.Context, name, id string) ([]string, error) {
	var uids []string
	err := zkconn.Do(ctx, func() error {
		var err error
		uids, _, err = s.conn.Children(s.dataPath(name, id, pinsDir))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return uids, err
}

func zapInv(name string) zap.Field { return zap.String("inventory", name) }
func zapGen(id string) zap.Field   { return zap.String("generation", id) }
func pathField(p string) zap.Field { return zap.String("path", p) }
func errField(err error) zap.Field { return zap.Error(err) }
