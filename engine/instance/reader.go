package instance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Source reads what a Reader watches: the directories of executors,
// records, direct queues and groups, and the records' and groups' data.
// The scheduler's source arms a watch with each read, so a change of any
// of them triggers a pass; DirectSource only reads.
type Source interface {
	// Children lists the children of an absolute path.
	Children(path string) ([]string, error)
	// Get reads the data of an absolute path.
	Get(path string) ([]byte, error)
}

// DirectSource reads without watching.
func DirectSource(conn *zkconn.Conn) Source { return direct{conn} }

type direct struct{ conn *zkconn.Conn }

func (d direct) Children(p string) ([]string, error) {
	ch, _, err := d.conn.Children(p)
	return ch, err
}

func (d direct) Get(p string) ([]byte, error) {
	data, _, err := d.conn.Get(p)
	return data, err
}

// jobInfo is what a Reader keeps of a placed job: the fields that do not
// change while it is active.
type jobInfo struct {
	// parent is the container of a slice: its siblings share its keys
	// without blocking one another.
	parent string
	impact int
	keys   []string
	group  string
	fanout bool
}

// Reader reads Cluster snapshots. It keeps what never changes between
// reads (the job ids of direct queue entries, the impact and keys of the
// jobs placed), so a long-lived reader reads only what is new. It is used
// by one goroutine at a time.
type Reader struct {
	conn  *zkconn.Conn
	store *jobs.Store
	src   Source

	mu      sync.Mutex
	entries map[string]string   // entry path → job id
	jobs    map[string]*jobInfo // job id → its fields
}

// NewReader returns a reader of the cluster on store's connection; src
// nil reads directly.
func NewReader(store *jobs.Store, src Source) *Reader {
	if src == nil {
		src = DirectSource(store.Conn())
	}
	return &Reader{conn: store.Conn(), store: store, src: src, entries: map[string]string{}, jobs: map[string]*jobInfo{}}
}

// readParallel bounds the reads of a snapshot in flight at once.
const readParallel = 16

// Read reads a snapshot of the cluster.
func (r *Reader) Read(ctx context.Context) (*Cluster, error) {
	c := &Cluster{Groups: map[string]Group{}, ReadAt: time.Now()}
	var names []string
	err := zkconn.Do(ctx, func() error {
		recs, err := children(r.src, r.conn.Path(RecordsPath))
		if err != nil {
			return err
		}
		beats, err := children(r.src, r.conn.Path(HeartbeatsPath))
		if err != nil {
			return err
		}
		names = union(recs, beats)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("instance: listing executors: %w", err)
	}
	execs := make([]*Executor, len(names))
	errs := make([]error, len(names))
	problems := make([][]error, len(names))
	seenEntries := make([]map[string]string, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, readParallel)
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			execs[i], seenEntries[i], problems[i], errs[i] = r.readExecutor(ctx, name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	live := map[string]string{}
	for i, e := range execs {
		c.Problems = append(c.Problems, problems[i]...)
		for k, v := range seenEntries[i] {
			live[k] = v
		}
		if e != nil {
			c.Executors = append(c.Executors, e)
		}
	}
	r.prune(live)
	if err := r.readGroups(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// readExecutor reads one executor: its record, heartbeat, last heartbeat
// and direct queue. It returns nil for a name with neither record nor
// heartbeat.
func (r *Reader) readExecutor(ctx context.Context, name string) (*Executor, map[string]string, []error, error) {
	e := &Executor{Name: name}
	var problems []error
	seen := map[string]string{}
	err := zkconn.Do(ctx, func() error {
		problems = nil
		data, err := r.src.Get(r.conn.Path(RecordsPath, name))
		switch {
		case errors.Is(err, zk.ErrNoNode):
		case err != nil:
			return err
		case len(data) > 0:
			rec, err := decodeRecord(name, data)
			if err != nil {
				problems = append(problems, err)
			}
			e.Record = rec
		}
		data, _, err = r.conn.Get(r.conn.Path(HeartbeatsPath, name))
		switch {
		case errors.Is(err, zk.ErrNoNode):
		case err != nil:
			return err
		default:
			hb, err := decodeHeartbeat(name, data)
			if err != nil {
				problems = append(problems, err)
			}
			e.Heartbeat = hb
		}
		if e.Heartbeat != nil {
			e.LastSeen = e.Heartbeat.LastSeen
		} else if e.LastSeen, err = readSeen(r.conn, name); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("instance: reading executor %s: %w", name, err)
	}
	if e.Record == nil && e.Heartbeat == nil {
		return nil, nil, problems, nil
	}
	if e.Record != nil {
		if err := r.readPlaced(ctx, e, seen); err != nil {
			return nil, nil, nil, err
		}
	}
	return e, seen, problems, nil
}

// readPlaced reads an executor's direct queue.
func (r *Reader) readPlaced(ctx context.Context, e *Executor, seen map[string]string) error {
	q := queue.New(r.conn, jobs.NodeQueuePath(e.Name))
	var names, taken []string
	err := zkconn.Do(ctx, func() error {
		var err error
		if names, err = children(r.src, q.EntriesPath()); err != nil {
			return err
		}
		taken, _, err = r.conn.Children(q.TakenPath())
		if errors.Is(err, zk.ErrNoNode) {
			err = nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("instance: reading the queue of %s: %w", e.Name, err)
	}
	slices.Sort(names)
	isTaken := make(map[string]bool, len(taken))
	for _, t := range taken {
		isTaken[t] = true
	}
	for _, n := range names {
		p := q.EntriesPath() + "/" + n
		id, err := r.entryJob(ctx, p)
		if errors.Is(err, zk.ErrNoNode) {
			continue // consumed meanwhile
		}
		if err != nil {
			return err
		}
		seen[p] = id
		pl := Placed{Entry: n, Job: id, Taken: isTaken[n]}
		info, err := r.job(ctx, id)
		if err != nil {
			return err
		}
		if info == nil {
			pl.Missing = true
		} else {
			pl.Impact, pl.Keys, pl.Group, pl.Fanout, pl.Parent = info.impact, info.keys, info.group, info.fanout, info.parent
		}
		e.Placed = append(e.Placed, pl)
	}
	return nil
}

// entryJob returns the job id an entry holds, from the cache or
// ZooKeeper.
func (r *Reader) entryJob(ctx context.Context, p string) (string, error) {
	r.mu.Lock()
	id, ok := r.entries[p]
	r.mu.Unlock()
	if ok {
		return id, nil
	}
	var data []byte
	err := zkconn.Do(ctx, func() error {
		var err error
		data, _, err = r.conn.Get(p)
		return err
	})
	if err != nil {
		return "", err
	}
	id = string(data)
	r.mu.Lock()
	r.entries[p] = id
	r.mu.Unlock()
	return id, nil
}

// job returns the fields of a placed job that do not change while it is
// active, or nil when its document is gone or not valid.
func (r *Reader) job(ctx context.Context, id string) (*jobInfo, error) {
	r.mu.Lock()
	info, ok := r.jobs[id]
	r.mu.Unlock()
	if ok {
		return info, nil
	}
	j, _, err := r.store.Get(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrInvalid) {
		return nil, nil // a document gone or not valid: the entry is stale
	}
	if err != nil {
		return nil, err
	}
	info = &jobInfo{impact: j.EffectiveImpact(), keys: j.ConcurrencyKeys, group: j.InstanceGroup, fanout: j.IsFanoutChild()}
	if j.IsSlice() {
		info.parent = j.ParentJob
	}
	r.mu.Lock()
	r.jobs[id] = info
	r.mu.Unlock()
	return info, nil
}

// prune forgets the entries and jobs no longer on any direct queue.
func (r *Reader) prune(live map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make(map[string]bool, len(live))
	for p := range r.entries {
		if _, ok := live[p]; !ok {
			delete(r.entries, p)
		}
	}
	for _, id := range live {
		ids[id] = true
	}
	for id := range r.jobs {
		if !ids[id] {
			delete(r.jobs, id)
		}
	}
}

// readGroups reads the groups' settings through the source.
func (r *Reader) readGroups(ctx context.Context, c *Cluster) error {
	return zkconn.Do(ctx, func() error {
		clear(c.Groups)
		dir := r.conn.Path(GroupsPath)
		names, err := children(r.src, dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			data, err := r.src.Get(dir + "/" + n)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return err
			}
			g, err := decodeGroup(n, data)
			if err != nil {
				c.Problems = append(c.Problems, err)
				continue
			}
			c.Groups[n] = g
		}
		return nil
	})
}

// children lists p's children through src; a missing directory is empty.
func children(src Source, p string) ([]string, error) {
	ch, err := src.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return ch, err
}

func union(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
