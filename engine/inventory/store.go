package inventory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Kind is the configstore directory of inventory heads:
// /config/inventories/<name>.
const objectKind = "inventories"

// maxAttempts bounds the retries of a read-modify-write that keeps
// conflicting with other writers.
const maxAttempts = 10

// Config configures a Store.
type Config struct {
	// Logger receives the store's log lines.
	Logger *zap.Logger
	// Live reports whether the job with this uuid still needs the snapshot
	// it pinned (it exists and is not final). Nil: pins are never released.
	Live func(ctx context.Context, uid string) (bool, error)
	// Budget bounds each transaction, in bytes (zkconn.DefaultBudget).
	Budget int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Store reads and writes inventories.
type Store struct {
	conn  *zkconn.Conn
	heads *configstore.Store
	cfg   Config
	log   *zap.Logger
}

// NewStore returns the inventory store on conn.
func NewStore(conn *zkconn.Conn, cfg Config) *Store {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{conn: conn, heads: configstore.New(conn, objectKind, cfg.Logger), cfg: cfg, log: cfg.Logger}
}

func (s *Store) now() time.Time { return s.cfg.Now().UTC() }

// Get reads the head of an inventory and its znode version.
func (s *Store) Get(ctx context.Context, name string) (*Inventory, int32, error) {
	var inv Inventory
	ver, err := s.heads.Get(ctx, name, &inv)
	if err != nil {
		return nil, 0, err
	}
	return &inv, ver, nil
}

// List reads every inventory head; bad ones are returned as errors.
func (s *Store) List(ctx context.Context) ([]*Inventory, []error, error) {
	return configstore.List[Inventory](ctx, s.heads)
}

// Create creates an inventory. A static inventory may come with content
// (nil: empty); a smart one has none of its own.
func (s *Store) Create(ctx context.Context, inv *Inventory, c *Content) error {
	now := s.now()
	inv.Created, inv.Updated, inv.Snapshot = now, now, nil
	if err := inv.Validate(); err != nil {
		return err
	}
	if inv.Kind == Smart && c != nil {
		return fmt.Errorf("%w: smart inventory %s takes its hosts from its filter, not from a file", ErrInvalid, inv.Name)
	}
	if inv.Kind == Smart {
		if err := s.checkSources(ctx, inv.Filter); err != nil {
			return err
		}
	}
	if c == nil || len(c.Hosts) == 0 && len(c.Groups) == 0 && len(c.Variables) == 0 {
		return s.heads.Create(ctx, inv)
	}
	e, err := encode(c, now)
	if err != nil {
		return err
	}
	if _, _, err := s.Get(ctx, inv.Name); err == nil {
		return fmt.Errorf("%w: inventory %s", configstore.ErrExists, inv.Name)
	}
	if err := s.writeGeneration(ctx, inv.Name, e); err != nil {
		return err
	}
	inv.Snapshot = &e.gen
	if err := s.heads.Create(ctx, inv, s.genCheck(inv.Name, e.gen.ID)); err != nil {
		s.dropGeneration(inv.Name, e.gen.ID)
		return err
	}
	return nil
}

// checkSources refuses a smart inventory over inventories that do not
// exist or are smart themselves.
func (s *Store) checkSources(ctx context.Context, f *Filter) error {
	for _, src := range f.Sources {
		inv, _, err := s.Get(ctx, src)
		if errors.Is(err, configstore.ErrNotFound) {
			return fmt.Errorf("%w: source inventory %s does not exist", ErrInvalid, src)
		}
		if err != nil {
			return err
		}
		if inv.Kind != Static {
			return fmt.Errorf("%w: source inventory %s is a smart inventory; a smart inventory draws from static ones", ErrInvalid, src)
		}
	}
	return nil
}

// genCheck is the operation that checks that a generation still exists.
func (s *Store) genCheck(name, id string) *zk.CheckVersionRequest {
	return &zk.CheckVersionRequest{Path: s.dataPath(name, id), Version: -1}
}

// UpdateHead writes the head of an inventory (description, instance
// groups, filter) over version ver; its content does not change.
func (s *Store) UpdateHead(ctx context.Context, inv *Inventory, ver int32) error {
	inv.Updated = s.now()
	if inv.Kind == Smart {
		if err := s.checkSources(ctx, inv.Filter); err != nil {
			return err
		}
	}
	return s.heads.Update(ctx, inv, ver)
}

// replace writes c as the new content of inv (read at version ver): a new
// generation, then the head moved to it by compare-and-set, then the old
// generations nobody pins are removed.
func (s *Store) replace(ctx context.Context, inv *Inventory, ver int32, c *Content) error {
	e, err := encode(c, s.now())
	if err != nil {
		return err
	}
	if err := s.writeGeneration(ctx, inv.Name, e); err != nil {
		return err
	}
	next := *inv
	next.Snapshot = &e.gen
	next.Updated = s.now()
	if err := s.heads.Update(ctx, &next, ver, s.genCheck(inv.Name, e.gen.ID)); err != nil {
		s.dropGeneration(inv.Name, e.gen.ID)
		return err
	}
	*inv = next
	s.log.Info("inventory written", zapInv(inv.Name), zapGen(e.gen.ID), zap.Int("hosts", e.gen.Hosts),
		zap.Int("groups", e.gen.Groups), zap.Int("chunks", e.gen.Chunks), zap.Int64("bytes", e.gen.Bytes))
	s.collect(ctx, inv.Name)
	return nil
}

// Content reads an inventory and its current content as one snapshot. The
// content of a smart inventory is its filter applied to its sources now.
func (s *Store) Content(ctx context.Context, name string) (*Inventory, *Content, error) {
	for attempt := 0; ; attempt++ {
		inv, _, err := s.Get(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		if inv.Kind == Smart {
			c, err := s.evaluate(ctx, inv.Filter)
			return inv, c, err
		}
		if inv.Snapshot == nil {
			return inv, &Content{Hosts: []Host{}, Groups: []Group{}}, nil
		}
		_, c, err := s.ReadGeneration(ctx, name, inv.Snapshot.ID)
		if errors.Is(err, errGenGone) && attempt < maxAttempts {
			continue // rewritten while we read: read the new head
		}
		return inv, c, err
	}
}

// evaluate applies a smart inventory's filter to its sources.
func (s *Store) evaluate(ctx context.Context, f *Filter) (*Content, error) {
	srcs := make([]*Content, 0, len(f.Sources))
	for _, name := range f.Sources {
		inv, c, err := s.Content(ctx, name)
		if errors.Is(err, configstore.ErrNotFound) {
			return nil, fmt.Errorf("source %w", err)
		}
		if err != nil {
			return nil, err
		}
		if inv.Kind != Static {
			return nil, fmt.Errorf("%w: source inventory %s is a smart inventory", ErrInvalid, name)
		}
		srcs = append(srcs, c)
	}
	return f.Apply(srcs), nil
}

// Modify applies fn to the content of a static inventory and writes the
// result, retrying when another writer got there first. fn returning an
// error writes nothing.
func (s *Store) Modify(ctx context.Context, name string, fn func(*Content) error) (*Inventory, error) {
	for attempt := 0; ; attempt++ {
		inv, ver, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if inv.Kind != Static {
			return nil, fmt.Errorf("%w: %s is a smart inventory: its hosts come from its filter", ErrInvalid, name)
		}
		c := &Content{Hosts: []Host{}, Groups: []Group{}}
		if inv.Snapshot != nil {
			_, c, err = s.ReadGeneration(ctx, name, inv.Snapshot.ID)
			if errors.Is(err, errGenGone) && attempt < maxAttempts {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		err = s.replace(ctx, inv, ver, c)
		if (errors.Is(err, configstore.ErrConflict) || errors.Is(err, errGenGone)) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return inv, nil
	}
}

// Import replaces the content of a static inventory with c, creating the
// inventory when it does not exist (created reports that). Hosts that were
// disabled stay disabled.
func (s *Store) Import(ctx context.Context, name string, c *Content) (inv *Inventory, created bool, err error) {
	cur, ver, err := s.Get(ctx, name)
	if errors.Is(err, configstore.ErrNotFound) {
		inv := &Inventory{Name: name, Kind: Static}
		err := s.Create(ctx, inv, c)
		if !errors.Is(err, configstore.ErrExists) {
			return inv, err == nil, err
		}
	}
	if err == nil && cur.Kind == Static && (cur.Snapshot == nil || cur.Snapshot.Enabled == cur.Snapshot.Hosts) {
		// No host is disabled: nothing to carry over, no need to read the
		// old content.
		err := s.replace(ctx, cur, ver, c)
		if !errors.Is(err, configstore.ErrConflict) {
			return cur, false, err
		}
	}
	inv, err = s.Modify(ctx, name, func(old *Content) error {
		disabled := map[string]bool{}
		for _, h := range old.Hosts {
			if !h.Enabled {
				disabled[h.Name] = true
			}
		}
		for i := range c.Hosts {
			if disabled[c.Hosts[i].Name] {
				c.Hosts[i].Enabled = false
			}
		}
		*old = *c
		return nil
	})
	return inv, false, err
}

// SetEnabled enables or disables hosts of a static inventory. Every host
// must exist; nothing is written otherwise.
func (s *Store) SetEnabled(ctx context.Context, name string, hosts []string, enabled bool) (*Inventory, error) {
	return s.Modify(ctx, name, func(c *Content) error {
		for _, h := range hosts {
			i := c.HostIndex(h)
			if i < 0 {
				return fmt.Errorf("%w: inventory %s has no host %s", ErrInvalid, name, h)
			}
			c.Hosts[i].Enabled = enabled
		}
		return nil
	})
}

// Delete removes an inventory, refusing while a live job pins one of its
// snapshots.
func (s *Store) Delete(ctx context.Context, name string) error {
	_, ver, err := s.Get(ctx, name)
	if err != nil && !errors.Is(err, configstore.ErrCorrupt) {
		return err
	}
	if errors.Is(err, configstore.ErrCorrupt) {
		ver = -1 // a bad head can still be removed
	}
	gens, err := s.generations(ctx, name)
	if err != nil {
		return err
	}
	for _, g := range gens {
		if pins, err := s.livePins(ctx, name, g.id); err != nil {
			return err
		} else if len(pins) > 0 {
			return fmt.Errorf("%w: job/%s runs over inventory %s (wait for it to end, or cancel it)", ErrInUse, pins[0], name)
		}
	}
	if err := s.heads.Delete(ctx, name, ver); err != nil {
		return err
	}
	s.collect(ctx, name)
	return nil
}

// collect removes the generations of an inventory that are neither current
// nor pinned by a live job nor newer than the head (a writer may still be
// writing those; it removes its own if it fails). Failures are logged: the
// next write of the inventory tries again.
func (s *Store) collect(ctx context.Context, name string) {
	current, cutoff := "", int64(math.MaxInt64)
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.heads.Path(name))
		return err
	})
	switch {
	case err == nil:
		var inv Inventory
		if configstore.Decode(data, s.heads.Path(name), name, &inv) != nil {
			return // reported by readers; leave everything alone
		}
		if inv.Snapshot != nil {
			current = inv.Snapshot.ID
		}
		cutoff = st.Mzxid
	case !errors.Is(err, zk.ErrNoNode):
		s.log.Warn("old inventory generations not collected", zapInv(name), errField(err))
		return
	}
	gens, err := s.generations(ctx, name)
	if err != nil {
		s.log.Warn("old inventory generations not collected", zapInv(name), errField(err))
		return
	}
	left := 0
	for _, g := range gens {
		if g.id == current || g.czxid > cutoff {
			left++
			continue
		}
		pins, err := s.livePins(ctx, name, g.id)
		if err == nil && len(pins) == 0 {
			err = s.deleteGeneration(ctx, name, g.id)
		}
		switch {
		case err == nil && len(pins) == 0:
			s.log.Debug("old inventory generation removed", zapInv(name), zapGen(g.id))
		case err == nil, errors.Is(err, ErrInUse):
			left++
		default:
			left++
			s.log.Warn("old inventory generation not removed", zapInv(name), zapGen(g.id), errField(err))
		}
	}
	if left == 0 && current == "" {
		_ = zkconn.Do(ctx, func() error { return s.conn.Delete(s.dataPath(name), -1) })
	}
}
