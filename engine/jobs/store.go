package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of the job store.
var (
	ErrNotFound     = errors.New("no such job")
	ErrDuplicate    = errors.New("a live job with the same unique key exists")
	ErrBacklogFull  = errors.New("backlog full")
	ErrConflict     = errors.New("job changed concurrently")
	ErrFinal        = errors.New("job is already in a final state")
	ErrIllegalState = errors.New("illegal state transition")
)

// DefaultMaxBacklog is the default cap on queue entries (QUEUED and RUNNING
// jobs); creation over the cap fails with ErrBacklogFull.
const DefaultMaxBacklog = 200_000

// ZooKeeper layout of the store, under the connection's root.
const (
	QueuePath  = "job"    // the locking queue of job ids
	jobsDir    = "jobs"   // /jobs/<2 hex>/<uuid>: live job documents
	uniqDir    = "unique" // /unique/<sha256 of key>: data = job id
	cancelDir  = "cancel" // /cancel/<uuid>: cancel request of a RUNNING job
	logsDir    = "logs"   // /logs/<2 hex>/<uuid>: the tail of the job's log
	shardChars = 2        // 256 shards: 100,000s of live jobs, a few thousand per directory
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// MaxBacklog caps the number of queue entries (default DefaultMaxBacklog).
	MaxBacklog int
	// Outbox, when set, returns the operation that records a document
	// version for indexing; it is added to every write's transaction, so
	// nothing is indexed that was not written and nothing written is lost
	// to the index. Nil when indexing is off.
	Outbox func(j *Job, doc []byte) *zk.CreateRequest
	// Observers are told of the jobs' events this store records: state
	// changes, log lines, progress (see Observer). Optional.
	Observers []Observer
	// Notifications, when set, adds to each job created the notifications
	// attached to it (an action's, say), to those it names itself.
	// Optional: without it a job notifies what it names.
	Notifications NotificationResolver
	// Logger receives the store's log lines.
	Logger *zap.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Store reads and writes live job documents in ZooKeeper.
type Store struct {
	conn *zkconn.Conn
	q    *queue.Queue // the shared queue
	cfg  StoreConfig
	log  *zap.Logger
	// docLimit bounds the documents written (DocumentLimit).
	docLimit atomic.Int64
}

// NewStore returns the store on conn.
func NewStore(conn *zkconn.Conn, cfg StoreConfig) *Store {
	if cfg.MaxBacklog <= 0 {
		cfg.MaxBacklog = DefaultMaxBacklog
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{conn: conn, q: queue.New(conn, QueuePath), cfg: cfg, log: cfg.Logger}
	s.docLimit.Store(MaxDocumentBytes)
	return s
}

// Queue returns the job queue.
func (s *Store) Queue() *queue.Queue { return s.q }

// Conn returns the store's connection.
func (s *Store) Conn() *zkconn.Conn { return s.conn }

func (s *Store) now() time.Time { return s.cfg.Now().UTC() }

// DocPath returns the znode of a job document.
func (s *Store) DocPath(uid string) string { return s.conn.Path(jobsDir, shard(uid), uid) }

// CancelPath returns the znode of a job's cancel request.
func (s *Store) CancelPath(uid string) string { return s.conn.Path(cancelDir, uid) }

// LogPath returns the znode of a job's log tail.
func (s *Store) LogPath(uid string) string { return s.logPath(uid) }

func (s *Store) logPath(uid string) string { return s.conn.Path(logsDir, shard(uid), uid) }

func (s *Store) uniqPath(key string) string {
	sum := sha256.Sum256([]byte(key))
	return s.conn.Path(uniqDir, hex.EncodeToString(sum[:]))
}

func shard(uid string) string {
	if len(uid) < shardChars {
		return "00"
	}
	return uid[:shardChars]
}

// Ensure creates the store's directories (idempotent).
func (s *Store) Ensure(ctx context.Context) error {
	if err := s.q.Ensure(ctx); err != nil {
		return err
	}
	for _, p := range []string{s.conn.Path(uniqDir), s.conn.Path(cancelDir), s.conn.Path(NoticeDir), s.conn.Path(PendingPath), s.QuarantinePath()} {
		if err := s.conn.EnsurePath(ctx, p); err != nil {
			return fmt.Errorf("jobs: creating %s: %w", p, err)
		}
	}
	return nil
}

// NewJob describes a job to create.
type NewJob struct {
	ID        string // optional "job/<uuid>"; a deterministic id makes creation idempotent
	Action    string
	Target    string
	Priority  int
	Payload   json.RawMessage
	Timeout   time.Duration
	UniqueKey string
	Tags      []string
	ParentJob string
	CreatedBy string
	Tick      string
	// NestedJobs are the child jobs of a workflow job (its slices) or of
	// a fan-out parent.
	NestedJobs []string
	// Launch holds the fields of a job launched from a template. A
	// workflow job (Launch.Kind) is created PENDING, without a queue entry.
	Launch Launch
	// Scheduling holds the scheduler's inputs (impact, keys,
	// dependencies, fan-out). A job that sets any of them, or instance
	// groups (Launch.InstanceGroups), is created PENDING for the
	// scheduler.
	Scheduling Scheduling
	// Notifications names the notification templates the job notifies.
	Notifications Notifications
}

// Validate checks a new job and returns a clear error naming what is wrong.
// Names follow the engine's rules (an action is a registrable action name,
// action.ValidName); every text is valid UTF-8 without control characters.
func (n *NewJob) Validate() error {
	if !action.ValidName(n.Action) {
		return fmt.Errorf("%w: action %q is not an action name: 1–64 characters of a-z, 0-9, '_', '-' and '.', other than \".\" and \"..\" (what to type: a name such as deploy_app)", ErrInvalid, clip(n.Action))
	}
	if n.Priority < queue.MinPriority || n.Priority > queue.MaxPriority {
		return fmt.Errorf("%w: priority %d is outside %d–%d", ErrInvalid, n.Priority, queue.MinPriority, queue.MaxPriority)
	}
	if len(n.Payload) > 0 {
		if len(n.Payload) > MaxPayloadBytes {
			return fmt.Errorf("%w: payload of %d bytes is over the %d-byte limit", ErrInvalid, len(n.Payload), MaxPayloadBytes)
		}
		if !utf8.Valid(n.Payload) {
			return fmt.Errorf("%w: payload is not valid UTF-8", ErrInvalid)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(n.Payload, &obj); err != nil {
			return fmt.Errorf("%w: payload must be a JSON object: %v", ErrInvalid, err)
		}
		if obj == nil {
			return fmt.Errorf("%w: payload must be a JSON object, not null (leave it out for none)", ErrInvalid)
		}
	}
	if n.Timeout < 0 {
		return fmt.Errorf("%w: negative timeout %s", ErrInvalid, n.Timeout)
	}
	for _, f := range []struct{ what, v string }{
		{"target", n.Target}, {"unique key", n.UniqueKey}, {"parent job", n.ParentJob}, {"created-by", n.CreatedBy}, {"tick", n.Tick},
	} {
		if err := CheckText(f.what, f.v, 0, MaxIDBytes); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if len(n.Tags) > MaxTags {
		return fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(n.Tags), MaxTags)
	}
	for _, t := range n.Tags {
		if err := CheckText("tag", t, 1, MaxIDBytes); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if n.ID != "" {
		if _, _, err := ParseID(n.ID); err != nil {
			return err
		}
	}
	if err := n.validateLaunch(); err != nil {
		return err
	}
	if err := n.Scheduling.Validate(); err != nil {
		return err
	}
	return n.Notifications.Validate()
}

func (s *Store) build(n NewJob) (*Job, error) {
	systemRules(&n)
	if err := n.Validate(); err != nil {
		return nil, err
	}
	id := n.ID
	if id == "" {
		id, _ = NewID()
	} else {
		id, _, _ = ParseID(id)
	}
	now := s.now()
	j := &Job{
		ID:                 id,
		Action:             n.Action,
		State:              Queued,
		Priority:           n.Priority,
		Payload:            n.Payload,
		Tags:               n.Tags,
		ParentJob:          n.ParentJob,
		Created:            now,
		Updated:            now,
		TimeOfStatusChange: now,
		Timeout:            n.Timeout.Seconds(),
		Version:            1,
		UniqueKey:          n.UniqueKey,
		CreatedBy:          n.CreatedBy,
		Tick:               n.Tick,
		NestedJobs:         n.NestedJobs,
		Launch:             n.Launch,
		Scheduling:         n.Scheduling,
	}
	j.Explanation = "" // the scheduler's to write
	switch {
	case j.IsContainer():
		j.State = Pending // it follows its slices and is never queued
	case needsScheduler(&n):
		// The scheduler queues it once nothing blocks it and an executor
		// of its groups has room; until a pass writes why it waits, it
		// says it waits for one.
		j.State = Pending
		j.Explanation = NotScheduledYet
	}
	if n.Target != "" {
		j.TargetResource = &Resource{Href: n.Target}
	}
	if !n.Notifications.Empty() {
		nt := n.Notifications
		j.Notifications = &nt
	}
	return j, nil
}

// Create writes a job document and its queue entry in one transaction,
// with its unique key when it has one.
func (s *Store) Create(ctx context.Context, n NewJob) (*Job, error) {
	js, err := s.CreateMany(ctx, []NewJob{n})
	if err != nil {
		return nil, err
	}
	return js[0], nil
}

// CreateMany creates jobs in one transaction: all or none.
func (s *Store) CreateMany(ctx context.Context, ns []NewJob) ([]*Job, error) {
	return s.CreateFenced(ctx, ns)
}

// CreateFenced creates jobs in one transaction with extra operations, such
// as a leader's election fence: nothing is created unless every extra
// operation succeeds too. A failing extra operation is reported as a
// *zkconn.OpError indexed among the extra operations.
func (s *Store) CreateFenced(ctx context.Context, ns []NewJob, extra ...interface{}) ([]*Job, error) {
	return s.createFenced(ctx, ns, true, extra...)
}

// createFenced is CreateFenced; resolve says whether the notifications
// attached to each job are still to be resolved.
func (s *Store) createFenced(ctx context.Context, ns []NewJob, resolve bool, extra ...interface{}) ([]*Job, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	// The cap is checked against the entry count before the transaction:
	// concurrent creators may overshoot it by at most their own batches.
	// PENDING jobs count too, but only scheduled jobs pay for that read.
	n, err := s.q.Len(ctx)
	if err == nil && scheduled(ns) {
		var p int
		p, err = s.PendingCount(ctx)
		n += p
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: create: %w", err)
	}
	if n+len(ns) > s.cfg.MaxBacklog {
		return nil, fmt.Errorf("%w: %d jobs queued or running, the cap is %d (raise --max-backlog or wait for executors to catch up)", ErrBacklogFull, n, s.cfg.MaxBacklog)
	}
	if resolve {
		if ns, err = s.resolveNotifications(ctx, ns); err != nil {
			return nil, err
		}
	}
	var ops []interface{}
	out := make([]*Job, 0, len(ns))
	keys := map[string]bool{}
	for i, nj := range ns {
		j, err := s.build(nj)
		if err != nil {
			if len(ns) > 1 {
				return nil, fmt.Errorf("job %d: %w", i, err)
			}
			return nil, err
		}
		data, err := json.Marshal(j)
		if err != nil {
			return nil, err
		}
		if len(data) > MaxDocumentBytes {
			return nil, fmt.Errorf("%w: the document of %s takes %d bytes, over the %d-byte limit of a job document", ErrInvalid, j.ID, len(data), MaxDocumentBytes)
		}
		ops = append(ops, &zk.CreateRequest{Path: s.DocPath(j.UUID()), Data: data, Acl: zkconn.ACL})
		if !j.IsContainer() { // a container has no entry: it follows its slices
			put, err := s.entryOp(j)
			if err != nil {
				return nil, err
			}
			ops = append(ops, put)
		}
		if j.UniqueKey != "" {
			if keys[j.UniqueKey] {
				return nil, fmt.Errorf("%w: unique key %q appears twice in one batch", ErrDuplicate, j.UniqueKey)
			}
			keys[j.UniqueKey] = true
			ops = append(ops, &zk.CreateRequest{Path: s.uniqPath(j.UniqueKey), Data: []byte(j.ID), Acl: zkconn.ACL})
		}
		if s.cfg.Outbox != nil {
			ops = append(ops, s.cfg.Outbox(j, data))
		}
		out = append(out, j)
	}
	nOwn := len(ops)
	ops = append(ops, extra...)
	if err := zkconn.CheckRequest(fmt.Sprintf("creating %d jobs in one transaction", len(ns)), zkconn.RequestSize(ops...)); err != nil {
		return nil, fmt.Errorf("jobs: create: %w: create fewer at once", err)
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		for attempt := 0; ; attempt++ {
			res, err = s.conn.Multi(ops...)
			i, opErr := zkconn.MultiError(res, err)
			if attempt > 0 || i < 0 || !errors.Is(opErr, zk.ErrNoNode) {
				return err
			}
			// A missing directory (a new shard, a fresh root): create the
			// queue's directories and the parents of the jobs' paths, and
			// try once more. A caller's own create gets its directory
			// only where that directory's parent exists: a node whose
			// whole branch is gone (the generation an inventory pin was
			// for) must stay gone, and its create fail.
			if err := s.q.EnsureSync(); err != nil {
				return err
			}
			for k, op := range ops {
				c, ok := op.(*zk.CreateRequest)
				switch {
				case !ok:
				case k < nOwn:
					if err := ensureParent(s.conn, c.Path); err != nil {
						return err
					}
				default:
					if err := ensureDir(s.conn, path.Dir(c.Path)); err != nil {
						return err
					}
				}
			}
		}
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		if i >= nOwn {
			return nil, fmt.Errorf("jobs: create: %w", zkconn.FailedOp(ops, res, err).Shift(nOwn))
		}
		if i >= 0 && errors.Is(opErr, zk.ErrNodeExists) {
			if c, ok := ops[i].(*zk.CreateRequest); ok && strings.HasPrefix(c.Path, s.conn.Path(uniqDir)+"/") {
				holder, _, _ := s.conn.Get(c.Path)
				return nil, fmt.Errorf("%w: %s holds the key", ErrDuplicate, holder)
			}
			return nil, fmt.Errorf("%w: the job id exists already", ErrDuplicate)
		}
		return nil, fmt.Errorf("jobs: create: %w", opErr)
	}
	for _, j := range out {
		s.log.Info("job created", zap.String("job", j.ID), zap.String("action", j.Action), zap.Int("priority", j.Priority),
			zap.String("state", string(j.State)))
	}
	return out, nil
}

// resolveNotifications returns ns with the notifications the store's
// resolver attaches to each job added (ns itself is not modified).
func (s *Store) resolveNotifications(ctx context.Context, ns []NewJob) ([]NewJob, error) {
	if s.cfg.Notifications == nil {
		return ns, nil
	}
	out := slices.Clone(ns)
	for i := range out {
		n := &out[i]
		attached, err := s.cfg.Notifications.NotificationsFor(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("jobs: create: the notifications of %s: %w", n.Action, err)
		}
		n.Notifications = Notifications{
			Started: slices.Clone(n.Notifications.Started),
			Success: slices.Clone(n.Notifications.Success),
			Failure: slices.Clone(n.Notifications.Failure),
		}
		n.Notifications.Merge(attached)
	}
	return out, nil
}

// Get reads a job document and the znode version to compare-and-set with.
// A document that fails validation (Decode) is not returned: its error is a
// *BadDocumentError, with the path and version read, for its quarantine.
func (s *Store) Get(ctx context.Context, id string) (*Job, int32, error) {
	_, uid, err := ParseID(id)
	if err != nil {
		return nil, 0, err
	}
	var data []byte
	var st *zk.Stat
	err = zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.DocPath(uid))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("jobs: reading %s: %w", id, err)
	}
	j, err := Decode(uid, data)
	if err != nil {
		var bad *BadDocumentError
		if errors.As(err, &bad) {
			bad.Path, bad.Version = s.DocPath(uid), st.Version
		}
		return nil, 0, err
	}
	return j, st.Version, nil
}

// Read is one job read by GetMany: its document and version, or the
// error Get would have returned for it.
type Read struct {
	Job     *Job
	Version int32
	Err     error
}

// GetMany reads the documents of the jobs ids together, in one request
// where the server allows (see zkconn.GetMany): each result is what Get
// would have returned. Its own error is the connection's.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]Read, error) {
	out := make([]Read, len(ids))
	uids := make([]string, len(ids))
	var paths []string
	for i, id := range ids {
		_, uid, err := ParseID(id)
		if err != nil {
			out[i].Err = err
			continue
		}
		uids[i] = uid
		paths = append(paths, s.DocPath(uid))
	}
	got, err := s.conn.GetMany(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("jobs: reading %d jobs: %w", len(paths), err)
	}
	k := 0
	for i, id := range ids {
		if out[i].Err != nil {
			continue
		}
		g := got[k]
		k++
		switch {
		case errors.Is(g.Err, zk.ErrNoNode):
			out[i].Err = fmt.Errorf("%w: %s", ErrNotFound, id)
			continue
		case g.Err != nil:
			out[i].Err = fmt.Errorf("jobs: reading %s: %w", id, g.Err)
			continue
		}
		j, err := Decode(uids[i], g.Data)
		if err != nil {
			var bad *BadDocumentError
			if errors.As(err, &bad) {
				bad.Path, bad.Version = s.DocPath(uids[i]), g.Stat.Version
			}
			out[i].Err = err
			continue
		}
		out[i] = Read{Job: j, Version: g.Stat.Version}
	}
	return out, nil
}

// Filter selects jobs in List.
type Filter struct {
	State  State
	Action string
	Limit  int // 0: no limit
	// LaunchFilter selects by template, container, launch type and time.
	LaunchFilter
}

// Match reports whether j passes the filter.
func (f Filter) Match(j *Job) bool {
	return (f.State == "" || j.State == f.State) && (f.Action == "" || j.Action == f.Action) && f.LaunchFilter.Match(j)
}

// List reads the live jobs that match f, newest first.
func (s *Store) List(ctx context.Context, f Filter) ([]*Job, error) {
	var out []*Job
	err := s.Walk(ctx, func(j *Job, _ int32) {
		if f.Match(j) {
			out = append(out, j)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Created.After(out[b].Created) })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Walk calls fn for every valid live job document (serially) with its
// version; invalid documents are left out (see Scan).
func (s *Store) Walk(ctx context.Context, fn func(j *Job, ver int32)) error {
	return s.Scan(ctx, fn, nil)
}

// Scan calls fn for every valid live job document (serially) with its
// version, and bad, when not nil, for every document that fails
// validation (Decode), with its path and version.
func (s *Store) Scan(ctx context.Context, fn func(j *Job, ver int32), bad func(*BadDocumentError)) error {
	var shards []string
	err := zkconn.Do(ctx, func() error {
		var err error
		shards, _, err = s.conn.Children(s.conn.Path(jobsDir))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("jobs: listing: %w", err)
	}
	type doc struct {
		j   *Job
		ver int32
		bad *BadDocumentError
	}
	docs := make(chan doc, 256)
	errc := make(chan error, 1)
	var failed atomic.Bool
	fail := func(err error) {
		failed.Store(true)
		select {
		case errc <- err:
		default:
		}
	}
	go func() {
		defer close(docs)
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		// The readers of the shards listed so far send on docs: wait for
		// them before it is closed, also when a listing fails.
		defer wg.Wait()
		for _, sh := range shards {
			if failed.Load() {
				return
			}
			dir := s.conn.Path(jobsDir, sh)
			var uids []string
			if err := zkconn.Do(ctx, func() error {
				var err error
				uids, _, err = s.conn.Children(dir)
				return err
			}); err != nil && !errors.Is(err, zk.ErrNoNode) {
				fail(err)
				return
			}
			// The documents are read 16 to a request (GetMany), 16
			// requests in flight.
			for lo := 0; lo < len(uids); lo += scanChunk {
				if failed.Load() {
					return
				}
				chunk := uids[lo:min(lo+scanChunk, len(uids))]
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					paths := make([]string, len(chunk))
					for i, uid := range chunk {
						paths[i] = dir + "/" + uid
					}
					got, err := s.conn.GetMany(ctx, paths)
					if err != nil {
						fail(fmt.Errorf("reading %d documents of %s: %w", len(chunk), dir, err))
						return
					}
					for i, uid := range chunk {
						p, data, err := paths[i], got[i].Data, got[i].Err
						if errors.Is(err, zk.ErrNoNode) {
							continue // deleted meanwhile
						}
						if err != nil {
							// A document that could not be read is not
							// absent: a caller that acts on what is
							// missing (Restore) must not see a partial
							// listing as complete.
							fail(fmt.Errorf("reading %s: %w", p, err))
							return
						}
						ver := got[i].Stat.Version
						j, err := Decode(uid, data)
						var b *BadDocumentError
						switch {
						case err == nil && p == s.DocPath(uid):
							docs <- doc{j: j, ver: ver}
						case errors.As(err, &b):
							b.Path, b.Version = p, ver
							docs <- doc{bad: b}
						default: // a document in the wrong shard
							docs <- doc{bad: &BadDocumentError{Kind: KindDocument, UUID: uid, Path: p, Version: ver, Data: data,
								Reason: "it is not in its shard (" + s.DocPath(uid) + ")"}}
						}
					}
				}()
			}
		}
	}()
	for d := range docs {
		switch {
		case d.j != nil:
			fn(d.j, d.ver)
		case bad != nil:
			bad(d.bad)
		}
	}
	select {
	case err := <-errc:
		return fmt.Errorf("jobs: listing: %w", err)
	default:
		return ctx.Err()
	}
}

// scanChunk is the number of documents Scan reads in one request: with
// 16 requests in flight, at most 256 documents (115 MB of the largest)
// are being read at once.
const scanChunk = 16

// Delete removes a job document with its log and cancel request, if the
// document is still at version ver.
func (s *Store) Delete(ctx context.Context, uid string, ver int32) error {
	ops := []interface{}{&zk.DeleteRequest{Path: s.DocPath(uid), Version: ver}}
	return zkconn.Do(ctx, func() error {
		_, err := s.conn.Multi(ops...)
		if err != nil {
			return fmt.Errorf("jobs: deleting %s: %w", uid, zkconn.MultiErrorOnly(nil, err))
		}
		for _, p := range []string{s.logPath(uid), s.CancelPath(uid)} {
			if err := s.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return err
			}
		}
		return nil
	})
}

// RestoreReport says what Restore repaired.
type RestoreReport struct {
	Requeued     []string `json:"requeued"`      // live jobs whose entry was missing
	Removed      []string `json:"removed"`       // entries whose job is gone or final
	SkippedTaken []string `json:"skipped-taken"` // such entries held by a consumer, left alone
	// SkippedInvalid are documents that fail validation: left alone (an
	// executor that takes their entry quarantines them).
	SkippedInvalid []InvalidDocument `json:"skipped-invalid"`
}

// located is an entry of a job: in a queue, or in the index of PENDING
// jobs.
type located struct {
	name   string // as the report names it
	item   string // the job id
	remove func(ctx context.Context) error
}

// allEntries lists the entries of every queue of jobs — the shared queue
// and each executor's direct queue — and the index of PENDING jobs.
func (s *Store) allEntries(ctx context.Context) ([]located, error) {
	var nodes []string
	err := zkconn.Do(ctx, func() error {
		var err error
		nodes, _, err = s.conn.Children(s.conn.Path(NodesPath))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: listing executors: %w", err)
	}
	queues := []*queue.Queue{s.q}
	labels := []string{""}
	for _, n := range nodes {
		queues = append(queues, s.NodeQueue(n))
		labels = append(labels, NodeQueuePath(n)+"/")
	}
	var out []located
	for i, q := range queues {
		es, err := q.Entries(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			q, name := q, e.Name
			out = append(out, located{name: labels[i] + name, item: e.Item, remove: func(ctx context.Context) error { return q.Remove(ctx, name) }})
		}
	}
	ids, err := s.PendingIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		p := s.conn.Path(PendingPath, strings.TrimPrefix(id, "job/"))
		out = append(out, located{name: PendingPath + "/" + strings.TrimPrefix(id, "job/"), item: id, remove: func(ctx context.Context) error {
			return zkconn.Do(ctx, func() error {
				if err := s.conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return err
				}
				return nil
			})
		}})
	}
	return out, nil
}

// Restore re-queues live jobs whose queue entry is missing — where their
// state calls for: the index of PENDING jobs, the direct queue of the
// executor a job was placed on, else the shared queue — and removes
// entries whose job is gone or final. It is idempotent and safe to
// run at any time: every repair is conditional on what it read. An
// invalid document is skipped and reported, never a reason to stop, and
// its entries are left for an executor to quarantine it.
func (s *Store) Restore(ctx context.Context) (RestoreReport, error) {
	var rep RestoreReport
	entries, err := s.allEntries(ctx)
	if err != nil {
		return rep, err
	}
	queued := map[string]bool{}
	for _, l := range entries {
		queued[l.item] = true
	}
	type live struct {
		j   *Job
		ver int32
	}
	var lives []live
	isLive := map[string]bool{}
	err = s.Scan(ctx, func(j *Job, ver int32) { lives = append(lives, live{j, ver}) }, func(b *BadDocumentError) {
		isLive[b.ID()] = true // its entries stay: an executor quarantines it
		rep.SkippedInvalid = append(rep.SkippedInvalid, b.Summary())
		s.log.Warn("restore: invalid job document skipped", zap.String("job", b.ID()), zap.String("path", b.Path), zap.String("reason", b.Reason))
	})
	if err != nil {
		return rep, err
	}
	sort.Slice(rep.SkippedInvalid, func(a, b int) bool { return rep.SkippedInvalid[a].Path < rep.SkippedInvalid[b].Path })
	for _, l := range lives {
		if !l.j.State.Final() {
			isLive[l.j.ID] = true
		}
	}
	for _, l := range lives {
		if l.j.IsWorkflow() && !l.j.State.Final() {
			// A workflow job's entry is its node in the index of open
			// workflows: without it, no workflow service would run it.
			if ok, err := s.reindexWorkflow(ctx, l.j); err != nil {
				return rep, err
			} else if ok {
				rep.Requeued = append(rep.Requeued, l.j.ID)
			}
			continue
		}
		if l.j.State.Final() || queued[l.j.ID] || l.j.IsContainer() {
			continue
		}
		put, err := s.entryOp(l.j)
		if err != nil { // not for a valid document
			rep.SkippedInvalid = append(rep.SkippedInvalid, InvalidDocument{Kind: KindDocument, Job: l.j.ID, Path: s.DocPath(l.j.UUID()), Reason: err.Error()})
			continue
		}
		// Only if the document did not change since it was read.
		err = zkconn.Do(ctx, func() error {
			_, err := s.conn.Multi(&zk.CheckVersionRequest{Path: s.DocPath(l.j.UUID()), Version: l.ver}, put)
			if errors.Is(zkconn.MultiErrorOnly(nil, err), zk.ErrNoNode) {
				// A direct queue nobody created yet.
				if err := ensureParent(s.conn, put.Path); err != nil {
					return err
				}
				_, err = s.conn.Multi(&zk.CheckVersionRequest{Path: s.DocPath(l.j.UUID()), Version: l.ver}, put)
			}
			return err
		})
		if err != nil {
			s.log.Warn("restore: not re-queued, it changed meanwhile", zap.String("job", l.j.ID), zap.Error(err))
			continue
		}
		s.log.Info("restore: job re-queued", zap.String("job", l.j.ID), zap.String("action", l.j.Action), zap.String("state", string(l.j.State)))
		rep.Requeued = append(rep.Requeued, l.j.ID)
	}
	for _, l := range entries {
		if isLive[l.item] {
			continue
		}
		err := l.remove(ctx)
		switch {
		case errors.Is(err, queue.ErrLockLost):
			rep.SkippedTaken = append(rep.SkippedTaken, l.name)
		case err != nil:
			return rep, err
		default:
			s.log.Info("restore: entry removed", zap.String("entry", l.name), zap.String("job", l.item))
			rep.Removed = append(rep.Removed, l.name)
		}
	}
	return rep, nil
}
