// Package instance holds what the cluster knows of its executors: their
// persistent instance records, their heartbeats, their capacity (AWX's
// formula), the instance groups they join and those groups' limits, and a
// reader that puts all of it together with the jobs placed on each
// executor's direct queue (Cluster), for the scheduler, the reaper and
// `jobengine cluster status`.
//
// ZooKeeper layout, under the connection's root:
//
//	/nodes/<name>                 persistent: the instance record (JSON)
//	/nodes/<name>/seen            persistent: the time of its last heartbeat
//	/nodes/<name>/job/…           its direct queue (kazoo layout)
//	/executors/<name>             ephemeral: its heartbeat (JSON)
//	/config/instance-groups/<g>   persistent: a group's limits (JSON)
//
// The record outlives the executor's session, so an executor that is gone
// shows as lost, with its last heartbeat, until it comes back or is
// removed; the heartbeat node says it is live. The record changes rarely
// (start, stop, enable, disable), so the scheduler can watch it; the time
// of the last heartbeat is kept in its own node, rewritten at every
// heartbeat and never watched.
package instance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of this package.
var (
	// ErrInvalid is wrapped by errors about bad input or a bad object read
	// from ZooKeeper.
	ErrInvalid = errors.New("instance: invalid")
	// ErrNotFound: no record of that executor (or no such group).
	ErrNotFound = errors.New("instance: not found")
	// ErrLive: the operation needs an executor that is not running.
	ErrLive = errors.New("instance: executor is running")
	// ErrBusy: the executor still has jobs on its direct queue.
	ErrBusy = errors.New("instance: executor has jobs placed on it")
	// ErrConflict: the object changed under every retry.
	ErrConflict = errors.New("instance: changed concurrently")
)

// Paths under the connection's root.
const (
	// HeartbeatsPath is the directory of the executors' ephemeral
	// heartbeat nodes.
	HeartbeatsPath = "executors"
	// RecordsPath is the directory of the instance records.
	RecordsPath = jobs.NodesPath
	seenNode    = "seen"
)

// ActionPolicy is what an executor says of one of its actions: what
// becomes of a job of it whose executor is lost (the reaper applies it).
type ActionPolicy struct {
	Name        string            `json:"name"`
	LostPolicy  action.LostPolicy `json:"lost-policy"`
	MaxAttempts int               `json:"max-attempts"`
}

// Record is an executor's persistent instance record.
type Record struct {
	// Name is the executor's name (its znode's name).
	Name string `json:"name"`
	// Host is the machine it runs on.
	Host string `json:"host,omitempty"`
	// Groups are the instance groups it joins.
	Groups []string `json:"groups"`
	// Capacity is its capacity as computed at its start (see Capacity);
	// the scheduler uses 0 while it is lost, disabled or draining.
	Capacity int `json:"capacity"`
	// CapacityDetail says how Capacity was reached.
	CapacityDetail Capacity `json:"capacity-detail"`
	// Settings and Resources are what the capacity was computed from.
	Settings  CapacitySettings `json:"capacity-settings"`
	Resources Resources        `json:"resources"`
	// Threads is the number of jobs it runs at once.
	Threads int `json:"threads"`
	// Enabled is false after `cluster disable`: it keeps running what it
	// has but gets nothing new. Kept across restarts.
	Enabled bool `json:"enabled"`
	// Draining is set while it stops: it gets nothing new.
	Draining bool `json:"draining,omitempty"`
	// Version is the engine version it runs.
	Version string `json:"version,omitempty"`
	// Actions are the actions it runs, with their lost-job policies.
	Actions []ActionPolicy `json:"actions,omitempty"`
	// Registered is when the record was first written; Started when the
	// executor last started.
	Registered time.Time `json:"registered"`
	Started    time.Time `json:"started"`
}

// ValidName checks an executor name: a plain znode name.
func ValidName(name string) error {
	if name == "" || len(name) > jobs.MaxIDBytes || strings.ContainsAny(name, "/ \t\n\r") || name == "." || name == ".." || name == "zookeeper" {
		return fmt.Errorf("%w: executor name %q: one word without slashes or spaces", ErrInvalid, name)
	}
	return nil
}

// Validate checks a record (one read from ZooKeeper is input).
func (r *Record) Validate() error {
	if err := ValidName(r.Name); err != nil {
		return err
	}
	if len(r.Groups) == 0 || len(r.Groups) > jobs.MaxInstanceGroups {
		return fmt.Errorf("%w: executor %s: 1–%d groups, not %d", ErrInvalid, r.Name, jobs.MaxInstanceGroups, len(r.Groups))
	}
	for _, g := range r.Groups {
		if err := jobs.ValidGroupName(g); err != nil {
			return fmt.Errorf("%w: executor %s: %v", ErrInvalid, r.Name, err)
		}
	}
	if r.Capacity < 0 || r.Capacity > MaxCapacity || r.Threads < 0 || r.Threads > 100_000 {
		return fmt.Errorf("%w: executor %s: capacity %d, threads %d", ErrInvalid, r.Name, r.Capacity, r.Threads)
	}
	return nil
}

func recordPath(conn *zkconn.Conn, name string) string { return conn.Path(RecordsPath, name) }

// ReadRecord reads an executor's record and its znode version.
func ReadRecord(ctx context.Context, conn *zkconn.Conn, name string) (*Record, int32, error) {
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = conn.Get(recordPath(conn, name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, fmt.Errorf("%w: no executor %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("instance: reading %s: %w", name, err)
	}
	r, err := decodeRecord(name, data)
	return r, st.Version, err
}

// decodeRecord decodes and validates the record stored under name.
func decodeRecord(name string, data []byte) (*Record, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: executor %s has an empty record", ErrInvalid, name)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: record of executor %s is not valid JSON: %v", ErrInvalid, name, err)
	}
	if r.Name != name {
		return nil, fmt.Errorf("%w: record at %s names executor %q", ErrInvalid, name, r.Name)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Register writes an executor's record as it starts: r as given, except
// that Enabled and Registered are kept from an existing record (an
// executor disabled stays disabled across restarts). It also creates its
// direct queue and its seen node. It returns the record as written.
func Register(ctx context.Context, conn *zkconn.Conn, r Record) (*Record, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := queue.New(conn, jobs.NodeQueuePath(r.Name)).Ensure(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	r.Started = now
	for attempt := 0; attempt < 20; attempt++ {
		old, ver, err := ReadRecord(ctx, conn, r.Name)
		exists := true
		switch {
		case errors.Is(err, ErrNotFound):
			exists = false
			r.Enabled, r.Registered = true, now
		case errors.Is(err, ErrInvalid):
			// A bad record is replaced by a good one.
			r.Enabled, r.Registered = true, now
		case err != nil:
			return nil, err
		default:
			r.Enabled, r.Registered = old.Enabled, old.Registered
		}
		data, _ := json.Marshal(&r)
		p := recordPath(conn, r.Name)
		err = zkconn.Do(ctx, func() error {
			var err error
			if exists {
				_, err = conn.Set(p, data, ver)
			} else {
				_, err = conn.Create(p, data, 0, zkconn.ACL)
			}
			return err
		})
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("instance: registering %s: %w", r.Name, err)
		}
		if err := Touch(ctx, conn, r.Name, now); err != nil {
			return nil, err
		}
		return &r, nil
	}
	return nil, fmt.Errorf("%w: record of %s", ErrConflict, r.Name)
}

// Update applies edit to an executor's record with compare-and-set,
// retrying when it changed meanwhile, and returns it as written.
func Update(ctx context.Context, conn *zkconn.Conn, name string, edit func(r *Record) error) (*Record, error) {
	for attempt := 0; attempt < 20; attempt++ {
		r, ver, err := ReadRecord(ctx, conn, name)
		if err != nil {
			return nil, err
		}
		if err := edit(r); err != nil {
			return nil, err
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		data, _ := json.Marshal(r)
		err = zkconn.Do(ctx, func() error {
			_, err := conn.Set(recordPath(conn, name), data, ver)
			return err
		})
		switch {
		case errors.Is(err, zk.ErrBadVersion):
			continue
		case errors.Is(err, zk.ErrNoNode):
			return nil, fmt.Errorf("%w: no executor %s", ErrNotFound, name)
		case err != nil:
			return nil, fmt.Errorf("instance: writing %s: %w", name, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: record of %s", ErrConflict, name)
}

// SetEnabled enables or disables an executor. A disabled executor keeps
// its heartbeat and runs what it has, but its capacity is 0: the scheduler
// places nothing new on it.
func SetEnabled(ctx context.Context, conn *zkconn.Conn, name string, enabled bool) (*Record, error) {
	return Update(ctx, conn, name, func(r *Record) error { r.Enabled = enabled; return nil })
}

// SetDraining marks an executor as stopping (or not).
func SetDraining(ctx context.Context, conn *zkconn.Conn, name string, draining bool) (*Record, error) {
	return Update(ctx, conn, name, func(r *Record) error { r.Draining = draining; return nil })
}

// Touch records a heartbeat of an executor at t.
func Touch(ctx context.Context, conn *zkconn.Conn, name string, t time.Time) error {
	p := conn.Path(RecordsPath, name, seenNode)
	data := []byte(t.UTC().Format(time.RFC3339Nano))
	return zkconn.Do(ctx, func() error {
		_, err := conn.Set(p, data, -1)
		if errors.Is(err, zk.ErrNoNode) {
			_, err = conn.Create(p, data, 0, zkconn.ACL)
		}
		return err
	})
}

// readSeen reads the time of an executor's last heartbeat (zero if none).
func readSeen(conn *zkconn.Conn, name string) (time.Time, error) {
	data, _, err := conn.Get(conn.Path(RecordsPath, name, seenNode))
	if errors.Is(err, zk.ErrNoNode) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, _ := time.Parse(time.RFC3339Nano, string(data))
	return t, nil
}

// Remove deletes the record of an executor that is not running and has no
// job on its direct queue: its record, its seen node and its queue.
func Remove(ctx context.Context, conn *zkconn.Conn, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	return zkconn.Do(ctx, func() error {
		live, _, err := conn.Exists(conn.Path(HeartbeatsPath, name))
		if err != nil {
			return err
		}
		if live {
			return fmt.Errorf("%w: %s has a heartbeat; stop it first", ErrLive, name)
		}
		base := conn.Path(RecordsPath, name)
		if ok, _, err := conn.Exists(base); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: no executor %s", ErrNotFound, name)
		}
		q := queue.New(conn, jobs.NodeQueuePath(name))
		entries, _, err := conn.Children(q.EntriesPath())
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("%w: %d jobs are still on %s's queue; the controller's reaper gives them back to the scheduler once the executor has been lost for its grace period", ErrBusy, len(entries), name)
		}
		return deleteTree(conn, base)
	})
}

// deleteTree deletes p and everything under it, deepest first.
func deleteTree(conn *zkconn.Conn, p string) error {
	children, _, err := conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return err
	}
	slices.Sort(children)
	for _, c := range children {
		if err := deleteTree(conn, p+"/"+c); err != nil {
			return err
		}
	}
	if err := conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	return nil
}
