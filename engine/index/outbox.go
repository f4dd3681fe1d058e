package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ZooKeeper layout of the indexer, under the connection's root:
//
//	/index/outbox/<uuid>-<version %010d>  persistent; data = the job document (JSON) at that version
//	/index/failed/<uuid>-<version %010d>  persistent; an entry Elasticsearch refused for good
//	/index/failed/<…>/reason              persistent; why (FailedReason, JSON)
//
// The pump has no lock of its own: engine/maintenance runs it on the one
// elected member of the cluster.
const (
	indexDir  = "index"
	outboxDir = "outbox"
	failedDir = "failed"
	// reasonNode is the child of a failed entry that says why it failed.
	reasonNode = "reason"
)

// FailedReason is why an outbox entry was moved to failed/.
type FailedReason struct {
	// Error is the refusal, or why the pump gave up.
	Error string `json:"error"`
	// Answer is the start of Elasticsearch's answer, when it tells more
	// (a bulk answer that held no item for the entry).
	Answer string    `json:"answer,omitempty"`
	Pump   string    `json:"pump"`
	Time   time.Time `json:"time"`
}

// FailedReasonOf returns why the failed entry name failed; an entry moved
// there by a version that recorded no reason has a zero one.
func FailedReasonOf(ctx context.Context, c *zkconn.Conn, name string) (FailedReason, error) {
	var r FailedReason
	var data []byte
	err := zkconn.Do(ctx, func() error {
		var err error
		data, _, err = c.Get(c.Path(indexDir, failedDir, name, reasonNode))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("index: reading why %s failed: %w", name, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("index: why %s failed: %s is not a record: %v", name, reasonNode, err)
	}
	return r, nil
}

// OutboxStats counts the entries of the outbox and of failed/.
type OutboxStats struct {
	// Entries are waiting to be indexed.
	Entries int `json:"entries"`
	// Failed were refused for good (see Failed and FailedReasonOf).
	Failed int `json:"failed"`
	// Oldest is when the oldest waiting entry was written (zero when
	// there is none): an outbox whose oldest entry keeps ageing is stuck.
	Oldest time.Time `json:"oldest,omitzero"`
}

// maxStatted bounds the entries Stats looks at for the oldest.
const maxStatted = 2000

// Stats counts the outbox and failed/ of c; the oldest entry is looked for
// among the first 2,000 entries by name (a hint, not a census, past that).
func Stats(ctx context.Context, c *zkconn.Conn) (OutboxStats, error) {
	var st OutboxStats
	names, err := children(ctx, c, OutboxPath(c))
	if err != nil {
		return st, err
	}
	failed, err := children(ctx, c, FailedPath(c))
	if err != nil {
		return st, err
	}
	st.Entries, st.Failed = len(names), len(failed)
	sort.Strings(names)
	for _, n := range names[:min(len(names), maxStatted)] {
		var stat *zk.Stat
		err := zkconn.Do(ctx, func() error {
			var err error
			_, stat, err = c.Exists(c.Path(indexDir, outboxDir, n))
			return err
		})
		if err != nil {
			return st, fmt.Errorf("index: reading outbox entry %s: %w", n, err)
		}
		if stat == nil || stat.Ctime == 0 {
			continue
		}
		if t := time.UnixMilli(stat.Ctime).UTC(); st.Oldest.IsZero() || t.Before(st.Oldest) {
			st.Oldest = t
		}
	}
	return st, nil
}

// OutboxPath returns the outbox directory.
func OutboxPath(c *zkconn.Conn) string { return c.Path(indexDir, outboxDir) }

// FailedPath returns the directory of entries Elasticsearch refused.
func FailedPath(c *zkconn.Conn) string { return c.Path(indexDir, failedDir) }

// EntryName returns the outbox entry name of a job document version.
func EntryName(uid string, version int64) string {
	return fmt.Sprintf("%s-%010d", uid, version)
}

// ParseEntryName splits an outbox entry name into the job uuid and the
// document version.
func ParseEntryName(name string) (uid string, version int64, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false
	}
	v, err := strconv.ParseInt(name[i+1:], 10, 64)
	if err != nil || v < 0 {
		return "", 0, false
	}
	if _, _, err := jobs.ParseID(name[:i]); err != nil {
		return "", 0, false
	}
	return name[:i], v, true
}

// OutboxCreate returns the operation that records version j.Version of job
// j for indexing; the job store appends it to the multi that writes the
// document, so the record exists exactly when the write happened. doc is the
// encoded job as written. The outbox directory must exist (EnsurePaths).
func OutboxCreate(c *zkconn.Conn, j *jobs.Job, doc []byte) *zk.CreateRequest {
	return &zk.CreateRequest{
		Path: c.Path(indexDir, outboxDir, EntryName(j.UUID(), j.Version)),
		Data: doc,
		Acl:  zkconn.ACL,
	}
}

// Outbox returns the job store's hook (jobs.StoreConfig.Outbox) that
// records every document version in the outbox of c, in the multi that
// writes it. Every writer of jobs with indexing on uses it: the daemons and
// the command line alike.
func Outbox(c *zkconn.Conn) func(j *jobs.Job, doc []byte) *zk.CreateRequest {
	return func(j *jobs.Job, doc []byte) *zk.CreateRequest { return OutboxCreate(c, j, doc) }
}

// EnsurePaths creates the outbox and failed directories (idempotent). Run it
// before writing jobs with outbox entries.
func EnsurePaths(ctx context.Context, c *zkconn.Conn) error {
	for _, p := range []string{OutboxPath(c), FailedPath(c)} {
		if err := c.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("index: creating %s: %w", p, err)
		}
	}
	return nil
}

// Pending returns the uuids of the jobs that still have outbox entries, that
// is versions not yet acknowledged by Elasticsearch. The cleanup of finished
// jobs keeps these in ZooKeeper. Entries moved to failed/ are not pending:
// they keep their own copy of the document.
func Pending(ctx context.Context, c *zkconn.Conn) (map[string]bool, error) {
	names, err := children(ctx, c, OutboxPath(c))
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		if uid, _, ok := ParseEntryName(n); ok {
			out[uid] = true
		}
	}
	return out, nil
}

// Failed returns the names of the entries Elasticsearch refused, sorted.
func Failed(ctx context.Context, c *zkconn.Conn) ([]string, error) {
	names, err := children(ctx, c, FailedPath(c))
	sort.Strings(names)
	return names, err
}

// RetryFailed moves every failed entry back to the outbox (after the cause
// was fixed, e.g. a mapping) and returns how many it moved.
func RetryFailed(ctx context.Context, c *zkconn.Conn) (int, error) {
	names, err := Failed(ctx, c)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, n := range names {
		err := zkconn.Do(ctx, func() error {
			data, stat, err := c.Get(c.Path(indexDir, failedDir, n))
			if err != nil {
				return err
			}
			kids, _, err := c.Children(c.Path(indexDir, failedDir, n))
			if err != nil {
				return err
			}
			ops := []any{&zk.CreateRequest{Path: c.Path(indexDir, outboxDir, n), Data: data, Acl: zkconn.ACL}}
			for _, k := range kids {
				ops = append(ops, &zk.DeleteRequest{Path: c.Path(indexDir, failedDir, n, k), Version: -1})
			}
			ops = append(ops, &zk.DeleteRequest{Path: c.Path(indexDir, failedDir, n), Version: stat.Version})
			return zkconn.MultiErrorOnly(c.Multi(ops...))
		})
		switch {
		case err == nil:
			moved++
		case errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrNodeExists) || errors.Is(err, zk.ErrBadVersion):
			// Moved or changed meanwhile: leave it.
		default:
			return moved, fmt.Errorf("index: moving %s back to the outbox: %w", n, err)
		}
	}
	return moved, nil
}

func children(ctx context.Context, c *zkconn.Conn, p string) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = c.Children(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index: listing %s: %w", p, err)
	}
	return names, nil
}
