package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jobengine/jobengine/internal/backoff"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// PumpOptions configure a Pump. Zero values take the defaults.
type PumpOptions struct {
	// Name identifies this pump in log lines (default "<hostname>-<pid>").
	Name string
	// BatchSize is the number of outbox entries per bulk request (default
	// 200). A request Elasticsearch (or a proxy) finds too large (413) is
	// retried with smaller batches.
	BatchSize int
	// MinBackoff and MaxBackoff bound the wait between failed attempts
	// (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// Resync re-reads the outbox even when no watch fired (default 1
	// minute); a safety net, never the main path.
	Resync time.Duration
	// OpTimeout bounds each ZooKeeper call (default 15s).
	OpTimeout time.Duration
	// MaxMissing is how many bulk answers in a row may leave an entry out
	// (a 2xx answer with fewer items than were sent) before the entry is
	// moved to failed/ with the answer (default 5), so one such entry
	// cannot hold the outbox up.
	MaxMissing int
}

// PumpStats counts what a pump did.
type PumpStats struct {
	Indexed    uint64 // outbox entries acknowledged by Elasticsearch and deleted
	Superseded uint64 // of those, entries whose version was older than the indexed one
	Failed     uint64 // entries refused for good and moved to failed/
	Retries    uint64 // attempts that failed and were retried after a back-off
	// Missing counts the entries Elasticsearch's answers left out (each
	// time); Stuck is the number of entries being retried for it now.
	Missing uint64
	Stuck   int
}

// Pump copies the outbox to Elasticsearch while Run runs. It rides out
// ZooKeeper disconnections and Elasticsearch outages with a back-off;
// deciding where it runs is engine/maintenance's job.
type Pump struct {
	c    *zkconn.Conn
	es   *Client
	log  *zap.Logger
	opts PumpOptions

	active atomic.Bool
	batch  atomic.Int64

	mu    sync.Mutex
	stats PumpStats
	// missing counts, per outbox entry, the answers in a row that left it
	// out; only the goroutine of Run uses it.
	missing map[string]int
}

// NewPump returns a pump that moves the outbox of c to es.
func NewPump(c *zkconn.Conn, es *Client, log *zap.Logger, opts PumpOptions) *Pump {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.Name == "" {
		host, _ := os.Hostname()
		opts.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 200
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 15 * time.Second
	}
	if opts.MaxMissing <= 0 {
		opts.MaxMissing = 5
	}
	p := &Pump{c: c, es: es, log: log.Named("pump").With(zap.String("pump", opts.Name)), opts: opts, missing: map[string]int{}}
	p.batch.Store(int64(opts.BatchSize))
	return p
}

// Active reports whether Run is indexing (its directories exist and it has
// not returned).
func (p *Pump) Active() bool { return p.active.Load() }

// Stats returns the pump's counters.
func (p *Pump) Stats() PumpStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Pump) count(f func(*PumpStats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// do runs a ZooKeeper call bounded by OpTimeout.
func (p *Pump) do(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	return zkconn.Do(ctx, fn)
}

// Run indexes the outbox until ctx ends, and returns nil then. It takes no
// lock: run it on one member of the cluster at a time, as
// engine/maintenance does on its elected member. Two pumps at once are
// harmless (delivery is at least once, and external versions make a repeat
// a no-op) but do the work twice.
func (p *Pump) Run(ctx context.Context) error {
	bo := backoff.New(p.opts.MinBackoff, p.opts.MaxBackoff)
	for {
		ectx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
		err := EnsurePaths(ectx, p.c)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("cannot create the outbox directories; retrying", zap.Error(err))
		bo.Wait(ctx)
	}
	p.active.Store(true)
	defer p.active.Store(false)
	p.log.Info("indexing the outbox",
		zap.String("outbox", OutboxPath(p.c)), zap.String("elasticsearch", p.es.Hosts()))
	p.pump(ctx)
	p.log.Info("stopped indexing the outbox")
	return nil
}

// pump installs the templates, then moves outbox entries to Elasticsearch
// until ctx ends.
func (p *Pump) pump(ctx context.Context) {
	bo := backoff.New(p.opts.MinBackoff, p.opts.MaxBackoff)
	for {
		err := p.es.EnsureTemplates(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		p.count(func(s *PumpStats) { s.Retries++ })
		if bo.Failures() == 0 && !Retryable(err) {
			// Refused, not unreachable: an operator must act.
			p.log.Error("elasticsearch refused the index templates; the outbox keeps every entry and indexing waits for them (fix the cause)",
				zap.Error(err))
		} else {
			p.outage(bo, "cannot install the Elasticsearch index templates; indexing waits for them", err, -1)
		}
		if !bo.Wait(ctx) {
			return
		}
	}
	p.recovered(bo)
	outbox := OutboxPath(p.c)
	var watch <-chan zk.Event
	for ctx.Err() == nil {
		if watch != nil {
			select {
			case <-watch:
				watch = nil
			default:
			}
		}
		// Results go to variables of this iteration only (see acquire).
		var names []string
		var w <-chan zk.Event
		armed := watch != nil
		err := p.do(ctx, func() error {
			var err error
			if !armed {
				names, _, w, err = p.c.ChildrenW(outbox)
			} else {
				names, _, err = p.c.Children(outbox)
			}
			return err
		})
		if err == nil && !armed {
			watch = w
		}
		if err != nil {
			if ctx.Err() == nil {
				p.log.Debug("cannot list the outbox; retrying", zap.Error(err))
				bo.Wait(ctx)
			}
			continue
		}
		if len(names) == 0 {
			resync := time.NewTimer(p.opts.Resync)
			select {
			case <-ctx.Done():
			case <-watch:
				watch = nil
			case <-resync.C:
			}
			resync.Stop()
			continue
		}
		if err := p.drain(ctx, names); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.count(func(s *PumpStats) { s.Retries++ })
			p.outage(bo, "cannot index the outbox; keeping the entries and retrying", err, len(names))
			bo.Wait(ctx)
			continue
		}
		p.recovered(bo)
	}
}

// outage logs a failed attempt: the first of a series at Warn, the rest at
// Debug, so an outage of hours does not flood the log.
func (p *Pump) outage(bo *backoff.Backoff, msg string, err error, pending int) {
	fields := []zap.Field{zap.Error(err), zap.Int("failed_attempts", bo.Failures()+1)}
	if pending >= 0 {
		fields = append(fields, zap.Int("outbox_entries", pending))
	}
	if bo.Failures() == 0 {
		p.log.Warn(msg, fields...)
	} else {
		p.log.Debug(msg, fields...)
	}
}

func (p *Pump) recovered(bo *backoff.Backoff) {
	if bo.Failures() > 0 {
		p.log.Info("indexing works again", zap.Int("failed_attempts", bo.Failures()))
	}
	bo.Reset()
}

// entry is one outbox entry read from ZooKeeper.
type entry struct {
	name    string
	uid     string
	version int64
	data    []byte
	body    []byte // data on one line, for the bulk request
	mtime   time.Time
	hdr     header
	// bad says why the entry cannot be indexed at all, detected locally.
	bad error
}

// header is what the pump reads from a job document; it is read leniently
// so that a malformed document still yields a useful log line.
type header struct {
	id, action, state, statusMessage, executor string
	progress, attempt                          int
	version                                    int64
	time                                       time.Time
}

func parseHeader(data []byte) (header, error) {
	var h header
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return h, fmt.Errorf("the entry is not a JSON object")
	}
	str := func(k string) string { var s string; _ = json.Unmarshal(m[k], &s); return s }
	num := func(k string) int64 { var n float64; _ = json.Unmarshal(m[k], &n); return int64(n) }
	h.id, h.action, h.state = str("id"), str("action"), str("state")
	h.statusMessage, h.executor = str("status-message"), str("executor")
	h.progress, h.attempt, h.version = int(num("progress")), int(num("attempt")), num("version")
	for _, k := range []string{"time-of-status-change", "updated"} {
		if t, err := time.Parse(time.RFC3339Nano, str(k)); err == nil && t.Unix() > 0 {
			h.time = t
			break
		}
	}
	return h, nil
}

// load reads the entries named, in one request per 64 where the server
// allows (zkconn.GetMany); entries gone meanwhile are skipped.
func (p *Pump) load(ctx context.Context, names []string) ([]*entry, error) {
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = p.c.Path(indexDir, outboxDir, n)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.OpTimeout)
	defer cancel()
	got, err := p.c.GetMany(ctx, paths)
	if err != nil {
		return nil, fmt.Errorf("index: reading %d outbox entries: %w", len(names), err)
	}
	var entries []*entry
	for i, n := range names {
		switch g := got[i]; {
		case errors.Is(g.Err, zk.ErrNoNode):
		case g.Err != nil:
			return nil, fmt.Errorf("index: reading outbox entry %s: %w", n, g.Err)
		default:
			entries = append(entries, newEntry(n, g.Data, time.UnixMilli(g.Stat.Mtime)))
		}
	}
	return entries, nil
}

func newEntry(name string, data []byte, mtime time.Time) *entry {
	e := &entry{name: name, data: data, mtime: mtime}
	uid, version, ok := ParseEntryName(name)
	if !ok {
		e.bad = fmt.Errorf("the entry name is not <job uuid>-<version>")
		return e
	}
	e.uid, e.version = uid, version
	h, err := parseHeader(data)
	e.hdr = h
	var compact bytes.Buffer
	switch {
	case err != nil:
		e.bad = err
	case json.Compact(&compact, data) != nil:
		e.bad = fmt.Errorf("the entry is not valid JSON")
	case h.id != "job/"+uid:
		e.bad = fmt.Errorf("the entry holds job %q, its name says job/%s", h.id, uid)
	case h.version != version:
		e.bad = fmt.Errorf("the entry holds version %d, its name says %d", h.version, version)
	default:
		// One line, as the bulk API's NDJSON needs, whatever the writer did.
		e.body = compact.Bytes()
	}
	return e
}

// stateEvent is the state event of an entry's version.
func (e *entry) stateEvent() Event {
	t := e.hdr.time
	if t.IsZero() {
		t = e.mtime // a document without a usable time: when it was written
	}
	return Event{
		ID: StateEventID(e.uid, e.version), Job: "job/" + e.uid, Time: t.UTC(), Type: EventState,
		Level: "info", Message: e.hdr.statusMessage, State: jobs.State(e.hdr.state), Progress: e.hdr.progress,
		Executor: e.hdr.executor, Attempt: e.hdr.attempt,
	}
}

// drain indexes the listed entries in batches; it stops at the first batch
// that needs a retry and returns why.
func (p *Pump) drain(ctx context.Context, names []string) error {
	sort.Strings(names)
	// Forget the counts of entries gone meanwhile.
	for n := range p.missing {
		if _, found := slices.BinarySearch(names, n); !found {
			delete(p.missing, n)
		}
	}
	for start := 0; start < len(names); {
		size := int(p.batch.Load())
		end := min(start+size, len(names))
		entries, err := p.load(ctx, names[start:end])
		if err != nil {
			return err
		}
		acked, failed, err := p.index(ctx, entries)
		if err != nil && errors.Is(err, errTooLarge) && size > 1 {
			p.batch.Store(int64(max(size/2, 1)))
			p.log.Warn("elasticsearch refused a bulk request as too large; using smaller batches",
				zap.Int("batch_size", max(size/2, 1)))
			continue
		}
		if derr := p.remove(ctx, acked); derr != nil {
			return derr
		}
		if ferr := p.fail(ctx, failed); ferr != nil {
			return ferr
		}
		if err != nil {
			return err
		}
		start = end
	}
	return nil
}

var errTooLarge = errors.New("index: bulk request too large")

type failure struct {
	e   *entry
	err error
	// answer is the start of Elasticsearch's answer, when it matters.
	answer string
}

// index sends a batch; it returns the entries Elasticsearch acknowledged,
// those refused for good, and an error when some must be retried.
func (p *Pump) index(ctx context.Context, entries []*entry) (acked []*entry, failed []failure, retry error) {
	var ops []bulkOp
	var sent []*entry
	for _, e := range entries {
		if e.bad != nil {
			failed = append(failed, failure{e: e, err: e.bad})
			continue
		}
		ev, _ := json.Marshal(e.stateEvent())
		ops = append(ops,
			bulkOp{index: p.es.JobsIndex(), id: e.uid, body: e.body, external: true, version: e.version},
			bulkOp{index: p.es.EventsIndex(), id: StateEventID(e.uid, e.version), body: ev})
		sent = append(sent, e)
	}
	if len(ops) == 0 {
		return nil, failed, nil
	}
	results, _ := p.es.bulk(ctx, ops)
	superseded := 0
	for i, e := range sent {
		doc, ev := results[2*i], results[2*i+1]
		if doc.Err == nil && ev.Err == nil || permanent(doc.Err) || permanent(ev.Err) {
			delete(p.missing, e.name)
		}
		switch {
		case (doc.Missing || ev.Missing) && !permanent(doc.Err) && !permanent(ev.Err):
			n := p.missing[e.name] + 1
			p.missing[e.name] = n
			p.count(func(s *PumpStats) { s.Missing++ })
			answer := doc.Answer
			if !doc.Missing {
				answer = ev.Answer
			}
			if n >= p.opts.MaxMissing {
				delete(p.missing, e.name)
				failed = append(failed, failure{e, fmt.Errorf("%w: %d answers in a row held no item for it: %w", ErrRejected, n, firstErr(doc.Err, ev.Err)), answer})
				continue
			}
			if n == 1 {
				p.log.Warn("elasticsearch answered without an item for an outbox entry; retrying it",
					zap.String("job", "job/"+e.uid), zap.Int64("version", e.version), zap.String("entry", e.name),
					zap.Int("max_attempts", p.opts.MaxMissing), zap.String("answer", answer))
			}
			if retry == nil {
				retry = firstErr(doc.Err, ev.Err)
			}
		case doc.Err == nil && ev.Err == nil:
			acked = append(acked, e)
			if doc.Superseded {
				superseded++
			}
		case permanent(doc.Err) && !retryLater(ev.Err):
			failed = append(failed, failure{e: e, err: doc.Err})
		case doc.Err == nil && permanent(ev.Err):
			// The document, the record that matters, is indexed; a state
			// event Elasticsearch refuses cannot be fixed by retrying.
			p.log.Warn("elasticsearch refused the state event of a job version; the job document is indexed",
				zap.String("job", "job/"+e.uid), zap.String("action", e.hdr.action),
				zap.Int64("version", e.version), zap.Error(ev.Err))
			acked = append(acked, e)
		case doc.Status == http.StatusRequestEntityTooLarge && len(sent) == 1:
			// Alone and still too large for the server (or a proxy in
			// front of it): this document can never be indexed.
			failed = append(failed, failure{e: e, err: doc.Err})
		default:
			if retry == nil {
				retry = firstErr(doc.Err, ev.Err)
				if doc.Status == http.StatusRequestEntityTooLarge || ev.Status == http.StatusRequestEntityTooLarge {
					retry = fmt.Errorf("%w: %w", errTooLarge, retry)
				}
			}
		}
	}
	p.count(func(s *PumpStats) {
		s.Indexed += uint64(len(acked))
		s.Superseded += uint64(superseded)
		s.Stuck = len(p.missing)
	})
	return acked, failed, retry
}

func permanent(err error) bool  { return errors.Is(err, ErrRejected) }
func retryLater(err error) bool { return err != nil && !permanent(err) }

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// deleteChunk bounds the operations of one multi.
const deleteChunk = 200

// remove deletes acknowledged entries.
func (p *Pump) remove(ctx context.Context, acked []*entry) error {
	for start := 0; start < len(acked); start += deleteChunk {
		chunk := acked[start:min(start+deleteChunk, len(acked))]
		ops := make([]interface{}, len(chunk))
		for i, e := range chunk {
			ops[i] = &zk.DeleteRequest{Path: p.c.Path(indexDir, outboxDir, e.name), Version: -1}
		}
		err := p.do(ctx, func() error { return zkconn.MultiErrorOnly(p.c.Multi(ops...)) })
		if errors.Is(err, zk.ErrNoNode) {
			// Some were removed meanwhile (a previous pump's late delete):
			// delete the rest one by one.
			for _, e := range chunk {
				err = p.do(ctx, func() error { return p.c.Delete(p.c.Path(indexDir, outboxDir, e.name), -1) })
				if err != nil && !errors.Is(err, zk.ErrNoNode) {
					break
				}
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("index: deleting indexed outbox entries: %w", err)
		}
	}
	if len(acked) > 0 {
		p.log.Debug("indexed outbox entries", zap.Int("count", len(acked)))
	}
	return nil
}

// fail moves entries refused for good to failed/, each with a record of
// why (FailedReason) and a log line, so that one bad document never blocks
// the others.
func (p *Pump) fail(ctx context.Context, failed []failure) error {
	for _, f := range failed {
		src := p.c.Path(indexDir, outboxDir, f.e.name)
		dst := p.c.Path(indexDir, failedDir, f.e.name)
		why, _ := json.Marshal(FailedReason{Error: f.err.Error(), Answer: f.answer, Pump: p.opts.Name, Time: time.Now().UTC()})
		err := p.do(ctx, func() error {
			err := zkconn.MultiErrorOnly(p.c.Multi(
				&zk.CreateRequest{Path: dst, Data: f.e.data, Acl: zkconn.ACL},
				&zk.CreateRequest{Path: dst + "/" + reasonNode, Data: why, Acl: zkconn.ACL},
				&zk.DeleteRequest{Path: src, Version: -1},
			))
			if !errors.Is(err, zk.ErrNodeExists) {
				return err
			}
			// Failed before: the document and the reason are replaced.
			if err := zkconn.MultiErrorOnly(p.c.Multi(
				&zk.SetDataRequest{Path: dst, Data: f.e.data, Version: -1},
				&zk.DeleteRequest{Path: src, Version: -1},
			)); err != nil {
				return err
			}
			_, err = p.c.Set(dst+"/"+reasonNode, why, -1)
			if errors.Is(err, zk.ErrNoNode) {
				_, err = p.c.Create(dst+"/"+reasonNode, why, 0, zkconn.ACL)
			}
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue // already moved or deleted
		}
		if err != nil {
			return fmt.Errorf("index: moving outbox entry %s to %s: %w", f.e.name, FailedPath(p.c), err)
		}
		p.count(func(s *PumpStats) { s.Failed++ })
		jobID := "job/" + f.e.uid
		if f.e.uid == "" {
			jobID = f.e.hdr.id
		}
		fields := []zap.Field{zap.String("job", jobID), zap.String("action", f.e.hdr.action), zap.Int64("version", f.e.version),
			zap.String("entry", dst), zap.Error(f.err)}
		if f.answer != "" {
			fields = append(fields, zap.String("answer", f.answer))
		}
		p.log.Error("a job document cannot be indexed; moved it out of the outbox (fix the cause, then move it back with RetryFailed)", fields...)
	}
	return nil
}
