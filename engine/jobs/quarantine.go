package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// A bad object — a job document or a queue entry that fails validation
// (Decode) — is never acted on and never looped on: it is moved aside to
// a quarantine record, <root>/job/quarantine/<key>-NNNNNNNNNN, which keeps
// what the node held, where, and why it was refused. The key is the uuid
// of the document's path, or the name of the entry. Records stay until an
// operator deletes them; `job list`, `queue stats` and `queue inspect`
// show them.

// ErrQuarantined is wrapped by the error of an operation on a job whose
// document was quarantined.
var ErrQuarantined = errors.New("job quarantined")

// quarantineDir is the directory of quarantine records, under the queue.
const quarantineDir = "quarantine"

// MaxQuarantinedBytes bounds what a record keeps of the node it replaces;
// a larger node is kept truncated (Quarantined.Truncated).
const MaxQuarantinedBytes = 64 << 10

// Quarantined is a quarantine record.
type Quarantined struct {
	// Name is the record's node name (set when read).
	Name string `json:"name,omitempty"`
	// Kind is KindDocument or KindEntry.
	Kind string `json:"kind"`
	// Job is the job id of the document's path ("" for an entry whose item
	// is not a job id).
	Job string `json:"job,omitempty"`
	// Path is the znode the object was read from.
	Path string `json:"path"`
	// Entry is the queue entry consumed with it, if any.
	Entry string `json:"entry,omitempty"`
	// Reason says what was wrong with it.
	Reason string `json:"reason"`
	// By names who quarantined it: an executor, or the command line.
	By string `json:"by"`
	// Time is when it was quarantined.
	Time time.Time `json:"time"`
	// Size is the length of the node's data, in bytes.
	Size int `json:"size"`
	// Text is the node's data when it is valid UTF-8, Data (base64 in
	// JSON) otherwise; at most MaxQuarantinedBytes of it.
	Text string `json:"text,omitempty"`
	Data []byte `json:"data,omitempty"`
	// Truncated says Text or Data holds only the start of the node's data.
	Truncated bool `json:"truncated,omitempty"`
}

// QuarantinePath returns the directory of quarantine records.
func (s *Store) QuarantinePath() string { return s.q.Path() + "/" + quarantineDir }

// record encodes the quarantine record of bad.
func (s *Store) record(bad *BadDocumentError, by string) ([]byte, error) {
	r := Quarantined{Kind: bad.Kind, Job: bad.ID(), Path: bad.Path, Entry: bad.Entry, Reason: bad.Reason,
		By: by, Time: s.now(), Size: len(bad.Data)}
	data := bad.Data
	if len(data) > MaxQuarantinedBytes {
		data, r.Truncated = data[:MaxQuarantinedBytes], true
	}
	if utf8.Valid(data) {
		r.Text = string(data)
	} else {
		r.Data = data
	}
	return json.Marshal(r)
}

// docPath is the znode of a bad document: where it was read.
func (s *Store) docPath(bad *BadDocumentError) string {
	if bad.Path != "" {
		return bad.Path
	}
	return s.DocPath(bad.UUID)
}

// key is the prefix of the record's node name.
func (bad *BadDocumentError) key() string {
	if bad.Kind == KindEntry {
		return bad.Entry
	}
	return bad.UUID
}

// Quarantine plans moving a bad object aside under the writer's hold of its
// queue entry: its record is created, the document (at the version read)
// removed, and the entry consumed, in one transaction. Commit it as any
// change: ErrConflict means the document changed since it was read (read
// it again). Observers are not told: there is no valid job to tell of.
func (s *Store) Quarantine(bad *BadDocumentError, by string) (*Change, error) {
	if bad.Kind == KindDocument && bad.UUID == "" {
		return nil, fmt.Errorf("%w: a document to quarantine needs its uuid", ErrInvalid)
	}
	rec, err := s.record(bad, by)
	if err != nil {
		return nil, err
	}
	var ops []interface{}
	if bad.Kind == KindDocument {
		ops = append(ops, &zk.DeleteRequest{Path: s.docPath(bad), Version: bad.Version})
	}
	ops = append(ops, &zk.CreateRequest{Path: s.QuarantinePath() + "/" + bad.key() + "-", Data: rec, Flags: zk.FlagSequence, Acl: zkconn.ACL})
	return &Change{s: s, job: &Job{ID: bad.ID()}, ops: ops, entry: consumeEntry, event: quarantineEvent, bad: bad, fenceAt: -1}, nil
}

// QuarantineUnheld moves a bad document aside without holding its entry
// (the command line's `job cancel` of such a job): its record is created
// and the document removed in one transaction, if the document is still
// the one read; then its queue entries are removed, except one a consumer
// holds (which finds no document and consumes its entry).
func (s *Store) QuarantineUnheld(ctx context.Context, bad *BadDocumentError, by string) (*Quarantined, error) {
	if bad.Kind != KindDocument {
		return nil, fmt.Errorf("%w: only a document is quarantined without a hold", ErrInvalid)
	}
	rec, err := s.record(bad, by)
	if err != nil {
		return nil, err
	}
	if err := s.conn.EnsurePath(ctx, s.QuarantinePath()); err != nil {
		return nil, fmt.Errorf("jobs: quarantine: %w", err)
	}
	ops := []interface{}{
		&zk.DeleteRequest{Path: s.docPath(bad), Version: bad.Version},
		&zk.CreateRequest{Path: s.QuarantinePath() + "/" + bad.key() + "-", Data: rec, Flags: zk.FlagSequence, Acl: zkconn.ACL},
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		res, err = s.conn.Multi(ops...)
		return err
	})
	if err != nil {
		if f := zkconn.FailedOp(ops, res, err); f != nil && f.Index == 0 {
			return nil, fmt.Errorf("%w: %s: %w", ErrConflict, bad.ID(), f)
		}
		return nil, fmt.Errorf("jobs: quarantine of %s: %w", bad.ID(), zkconn.MultiErrorOnly(res, err))
	}
	q := &Quarantined{Kind: bad.Kind, Job: bad.ID(), Path: bad.Path, Reason: bad.Reason, By: by, Size: len(bad.Data)}
	if len(res) == 2 {
		q.Name = res[1].String[strings.LastIndexByte(res[1].String, '/')+1:]
	}
	s.log.Info("invalid job document quarantined", zap.String("job", bad.ID()), zap.String("path", bad.Path),
		zap.String("reason", bad.Reason), zap.String("record", q.Name), zap.String("by", by))
	s.DropTraces(ctx, bad)
	// The entry is in the shared queue, or in the direct queue of the
	// executor the document names (main's entryQueue), if the name is one.
	queues := []*queue.Queue{s.q}
	if node := looseExecutionNode(bad.Data); node != "" {
		queues = append(queues, s.entryQueue(&Job{Scheduling: Scheduling{ExecutionNode: node}}))
	}
	for _, eq := range queues {
		names, err := findEntries(ctx, eq, bad.ID(), "")
		if err != nil {
			continue // the entries lead an executor to no document: it consumes them
		}
		for _, n := range names {
			if err := eq.Remove(ctx, n); err != nil && !errors.Is(err, queue.ErrLockLost) {
				s.log.Warn("the quarantined job's queue entry was not removed", zap.String("entry", n), zap.Error(err))
			}
		}
	}
	return q, nil
}

// looseExecutionNode returns the executor an invalid document names as the
// holder of its entry, when that is a name a direct queue can have ("" if
// not).
func looseExecutionNode(data []byte) string {
	var loose struct {
		ExecutionNode string `json:"execution-node"`
	}
	if json.Unmarshal(data, &loose) != nil {
		return ""
	}
	n := loose.ExecutionNode
	if n == "" || len(n) > MaxIDBytes || n == "." || n == ".." || strings.ContainsAny(n, "/ \t\n") {
		return ""
	}
	return n
}

// DropTraces removes, best effort, what a quarantined document leaves
// behind: its log tail, its cancel request, its index node of PENDING
// jobs, and its unique key when the
// key is still held by it. The document itself is gone, so nothing else
// refers to them.
func (s *Store) DropTraces(ctx context.Context, bad *BadDocumentError) {
	if bad.Kind != KindDocument || bad.UUID == "" {
		return
	}
	var loose struct {
		UniqueKey string `json:"unique-key"`
	}
	_ = json.Unmarshal(bad.Data, &loose)
	_ = zkconn.Do(ctx, func() error {
		// The index node of a PENDING job has no document to lead to.
		for _, p := range []string{s.logPath(bad.UUID), s.CancelPath(bad.UUID), s.pendingNode(bad.UUID)} {
			_ = s.conn.Delete(p, -1)
		}
		if loose.UniqueKey != "" {
			p := s.uniqPath(loose.UniqueKey)
			if holder, st, err := s.conn.Get(p); err == nil && string(holder) == bad.ID() {
				_ = s.conn.Delete(p, st.Version)
			}
		}
		return nil
	})
}

// quarantineLanded reports whether bad is quarantined: an earlier commit
// with an unknown outcome went through.
func (s *Store) quarantineLanded(ctx context.Context, bad *BadDocumentError) bool {
	if bad.Kind == KindDocument {
		var gone bool
		err := zkconn.Do(ctx, func() error {
			ok, st, err := s.conn.Exists(s.docPath(bad))
			gone = !ok || st.Version != bad.Version
			return err
		})
		if err != nil || !gone {
			return false
		}
	}
	names, err := s.quarantineNames(ctx)
	if err != nil {
		return false
	}
	for _, n := range names {
		if strings.HasPrefix(n, bad.key()+"-") {
			return true
		}
	}
	return false
}

func (s *Store) quarantineNames(ctx context.Context) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.QuarantinePath())
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	return names, err
}

// QuarantineCount returns the number of quarantine records.
func (s *Store) QuarantineCount(ctx context.Context) (int, error) {
	var n int
	err := zkconn.Do(ctx, func() error {
		ok, st, err := s.conn.Exists(s.QuarantinePath())
		if ok {
			n = int(st.NumChildren)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("jobs: counting quarantine records: %w", err)
	}
	return n, nil
}

// QuarantineList reads every quarantine record, oldest first. A record
// that cannot be read as one is listed with its name and a reason.
func (s *Store) QuarantineList(ctx context.Context) ([]Quarantined, error) {
	return s.readQuarantine(ctx, "")
}

// QuarantineOf returns the newest quarantine record of the job with uuid
// uid; ErrNotFound when it has none.
func (s *Store) QuarantineOf(ctx context.Context, uid string) (*Quarantined, error) {
	rs, err := s.readQuarantine(ctx, uid+"-")
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: job/%s has no quarantine record", ErrNotFound, uid)
	}
	return &rs[len(rs)-1], nil
}

func (s *Store) readQuarantine(ctx context.Context, prefix string) ([]Quarantined, error) {
	names, err := s.quarantineNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs: listing quarantine records: %w", err)
	}
	out := []Quarantined{}
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		var data []byte
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, err = s.conn.Get(s.QuarantinePath() + "/" + n)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("jobs: reading quarantine record %s: %w", n, err)
		}
		var r Quarantined
		if json.Unmarshal(data, &r) != nil {
			r = Quarantined{Reason: "not a quarantine record", Size: len(data)}
		}
		r.Name = n
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// findEntries returns the names of the entries of q whose item is id,
// among those whose name starts with prefix ("" for all), reading them in
// parallel.
func findEntries(ctx context.Context, q *queue.Queue, id, prefix string) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = q.Conn().Children(q.EntriesPath())
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var found []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(n string) {
			defer func() { <-sem; wg.Done() }()
			data, _, err := q.Conn().Get(q.EntriesPath() + "/" + n)
			if err == nil && string(data) == id {
				mu.Lock()
				found = append(found, n)
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	sort.Strings(found)
	return found, ctx.Err()
}
