package schedules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"

	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ZooKeeper layout, under the connection's root:
//
//	/config/schedules            data: a change counter, bumped by every write of a schedule (one watch sees them all)
//	/config/schedules/<name>     a schedule (JSON)
//	/schedule-state/<name>       what the runner did (JSON), written under the leader's fence
const (
	configDir = "config/schedules"
	stateDir  = "schedule-state"
)

// Store reads and writes schedules in ZooKeeper. Everything it reads is
// validated.
type Store struct {
	conn *zkconn.Conn
	now  func() time.Time
}

// NewStore returns the store on conn.
func NewStore(conn *zkconn.Conn) *Store { return &Store{conn: conn, now: time.Now} }

// Conn returns the store's connection.
func (s *Store) Conn() *zkconn.Conn { return s.conn }

// Dir returns the directory of the schedules; its data changes with every
// write of a schedule.
func (s *Store) Dir() string { return s.conn.Path(configDir) }

func (s *Store) path(name string) string      { return s.conn.Path(configDir, name) }
func (s *Store) statePath(name string) string { return s.conn.Path(stateDir, name) }

// Ensure creates the store's directories (idempotent).
func (s *Store) Ensure(ctx context.Context) error {
	for _, p := range []string{configDir, stateDir} {
		if err := s.conn.EnsurePath(ctx, s.conn.Path(p)); err != nil {
			return fmt.Errorf("schedules: creating %s: %w", p, err)
		}
	}
	return nil
}

// bump is the operation that marks a change of the schedules: it rewrites
// the directory's data, so a watch on the directory fires.
func (s *Store) bump() *zk.SetDataRequest {
	return &zk.SetDataRequest{Path: s.Dir(), Data: []byte(s.now().UTC().Format(time.RFC3339Nano)), Version: -1}
}

func (s *Store) encode(sc *Schedule) ([]byte, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxScheduleBytes {
		return nil, fmt.Errorf("%w: schedule %q is %d bytes encoded, at most %d", ErrInvalid, sc.Name, len(data), MaxScheduleBytes)
	}
	return data, nil
}

// Create stores a new schedule, giving it a UID and its times.
func (s *Store) Create(ctx context.Context, sc *Schedule) error {
	now := s.now().UTC()
	sc.UID = uuid.NewString()
	sc.Created, sc.Updated, sc.Since = now, now, now
	data, err := s.encode(sc)
	if err != nil {
		return err
	}
	if err := s.Ensure(ctx); err != nil {
		return err
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		// A state left by an earlier schedule of this name has another
		// UID: the runner ignores it.
		res, err = s.conn.Multi(&zk.CreateRequest{Path: s.path(sc.Name), Data: data, Acl: zkconn.ACL}, s.bump())
		return err
	})
	i, opErr := zkconn.MultiError(res, err)
	switch {
	case err == nil:
		return nil
	case i == 0 && errors.Is(opErr, zk.ErrNodeExists):
		return fmt.Errorf("%w: %s (edit it, or delete it first)", ErrExists, sc.Name)
	}
	return fmt.Errorf("schedules: creating %s: %w", sc.Name, opErr)
}

// Get reads a schedule and its znode version.
func (s *Store) Get(ctx context.Context, name string) (*Schedule, int32, error) {
	if !ValidName(name) {
		return nil, 0, fmt.Errorf("%w: %q is not a schedule name", ErrNotFound, name)
	}
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.path(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("schedules: reading %s: %w", name, err)
	}
	sc, err := decode(name, data)
	if err != nil {
		return nil, 0, err
	}
	return sc, st.Version, nil
}

// decode parses and validates a schedule read from ZooKeeper.
func decode(name string, data []byte) (*Schedule, error) {
	if len(data) > MaxScheduleBytes {
		return nil, fmt.Errorf("%w: stored schedule %s is %d bytes, over %d", ErrInvalid, name, len(data), MaxScheduleBytes)
	}
	var sc Schedule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%w: stored schedule %s is not valid JSON: %v", ErrInvalid, name, err)
	}
	if sc.Name != name {
		return nil, fmt.Errorf("%w: stored schedule %s names itself %q", ErrInvalid, name, sc.Name)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Problem is a stored schedule that is not valid.
type Problem struct {
	Name string `json:"name"`
	Err  string `json:"error"`
}

// List reads every schedule, sorted by name, and the stored ones that are
// not valid.
func (s *Store) List(ctx context.Context) ([]*Schedule, []Problem, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.Dir())
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("schedules: listing: %w", err)
	}
	sort.Strings(names)
	var out []*Schedule
	var bad []Problem
	for _, n := range names {
		sc, _, err := s.Get(ctx, n)
		switch {
		case errors.Is(err, ErrNotFound) && ValidName(n):
			continue // deleted meanwhile
		case errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound):
			bad = append(bad, Problem{Name: n, Err: err.Error()})
		case err != nil:
			return nil, nil, err
		default:
			out = append(out, sc)
		}
	}
	return out, bad, nil
}

// Update writes sc over znode version ver (from Get). Its Since moves to
// now when it is enabled again or its rule changed, so nothing is made up
// for the time before; Updated moves always. It fails with ErrConflict
// when the schedule changed since it was read.
func (s *Store) Update(ctx context.Context, sc *Schedule, ver int32) error {
	old, oldVer, err := s.Get(ctx, sc.Name)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return err
	}
	if err == nil && oldVer != ver {
		return fmt.Errorf("%w: %s", ErrConflict, sc.Name)
	}
	now := s.now().UTC()
	sc.Updated = now
	if old == nil || old.UID != sc.UID {
		return fmt.Errorf("%w: schedule %s: the uid cannot change", ErrInvalid, sc.Name)
	}
	sc.Created = old.Created
	if (sc.Enabled && !old.Enabled) || old.Cron != sc.Cron || old.TimeZone != sc.TimeZone || old.RRule != sc.RRule {
		sc.Since = now
	}
	data, err := s.encode(sc)
	if err != nil {
		return err
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		res, err = s.conn.Multi(&zk.SetDataRequest{Path: s.path(sc.Name), Data: data, Version: ver}, s.bump())
		return err
	})
	i, opErr := zkconn.MultiError(res, err)
	switch {
	case err == nil:
		return nil
	case i == 0 && errors.Is(opErr, zk.ErrBadVersion):
		return fmt.Errorf("%w: %s", ErrConflict, sc.Name)
	case i == 0 && errors.Is(opErr, zk.ErrNoNode):
		return fmt.Errorf("%w: %s", ErrNotFound, sc.Name)
	}
	return fmt.Errorf("schedules: writing %s: %w", sc.Name, opErr)
}

// Delete removes a schedule and its state.
func (s *Store) Delete(ctx context.Context, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q is not a schedule name", ErrNotFound, name)
	}
	err := zkconn.Do(ctx, func() error {
		_, err := s.conn.Multi(&zk.DeleteRequest{Path: s.path(name), Version: -1}, s.bump())
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("schedules: deleting %s: %w", name, err)
	}
	_ = zkconn.Do(ctx, func() error { return s.conn.Delete(s.statePath(name), -1) })
	return nil
}

// State is what the runner did for a schedule: the last occurrence it
// handled.
type State struct {
	// UID is the schedule's UID: a state of an earlier schedule of the
	// same name is ignored.
	UID string `json:"uid"`
	// Tick is the last occurrence handled (launched, found launched, or
	// refused), its time in UTC.
	Tick string `json:"tick"`
	// Done is when it was handled, and By by which leader.
	Done time.Time `json:"done"`
	By   string    `json:"by"`
	// Job is the job of that occurrence.
	Job string `json:"job,omitempty"`
	// Error says why that occurrence's launch was refused (its job is
	// FAILED saying the same), or that it was skipped.
	Error string `json:"error,omitempty"`
}

// LastTick returns the time of the state's occurrence, zero if none.
func (st State) LastTick() time.Time {
	t, err := schedule.ParseTickID(st.Tick)
	if err != nil {
		return time.Time{}
	}
	return t.At
}

// ReadState reads a schedule's state and its znode version (-1: none). A
// damaged state reads as none, so the schedule goes on from its Since.
func (s *Store) ReadState(ctx context.Context, name string) (State, int32, error) {
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.statePath(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return State{}, -1, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("schedules: reading the state of %s: %w", name, err)
	}
	var state State
	if json.Unmarshal(data, &state) != nil || (state.Tick != "" && state.LastTick().IsZero()) {
		return State{}, st.Version, nil
	}
	return state, st.Version, nil
}

// errStateChanged means the state changed since it was read.
var errStateChanged = errors.New("schedules: state changed concurrently")

// writeState writes a state over version ver (-1: create) with the
// leader's fence first in the multi.
func (s *Store) writeState(ctx context.Context, name string, state State, ver int32, fence interface{}) error {
	data, _ := json.Marshal(state)
	var op interface{} = &zk.SetDataRequest{Path: s.statePath(name), Data: data, Version: ver}
	if ver < 0 {
		op = &zk.CreateRequest{Path: s.statePath(name), Data: data, Acl: zkconn.ACL}
	}
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = s.conn.Multi(fence, op)
		return err
	})
	i, opErr := zkconn.MultiError(res, err)
	switch {
	case err == nil:
		return nil
	case i == 0:
		return fmt.Errorf("%w: %v", errFenced, opErr)
	case i == 1 && (errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNodeExists) || errors.Is(opErr, zk.ErrNoNode)):
		return errStateChanged
	}
	return fmt.Errorf("schedules: writing the state of %s: %w", name, opErr)
}
