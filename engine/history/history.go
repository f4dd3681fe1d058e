// Package history answers what clients ask about jobs — list them, show
// one, wait for one to end, read its log — from the live documents in
// ZooKeeper merged with the history indexed in Elasticsearch. The command
// line and the HTTP API ask it the same questions.
//
// ZooKeeper is never behind Elasticsearch: a job in both is always shown as
// it is in ZooKeeper. Elasticsearch is only read to show what happened;
// nothing is decided from it, and a history that cannot be read leaves the
// live jobs readable.
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// Errors of this package. Lookups of unknown jobs wrap jobs.ErrNotFound,
// ids that are not job ids wrap jobs.ErrInvalid.
var (
	// ErrUnavailable is wrapped when a job had to be looked up in the
	// history and the history could not be read.
	ErrUnavailable = errors.New("the history could not be read")
	// ErrQuery is wrapped by every error about a malformed Query or Cursor.
	ErrQuery = errors.New("history: bad query")
)

// Source says where a job was read from.
type Source string

// The sources of a job.
const (
	// Live is the job document in ZooKeeper.
	Live Source = "zookeeper"
	// Indexed is the job's newest copy in the Elasticsearch history.
	Indexed Source = "elasticsearch"
)

// Job is a job document with where it was read from. Its JSON form is the
// document's own with a "source" field added.
type Job struct {
	*jobs.Job
	Source Source `json:"source"`
}

// DefaultTimeout bounds each Elasticsearch query when Config.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// Config configures a Reader.
type Config struct {
	// Store is the live job store (required).
	Store *jobs.Store
	// Index is the Elasticsearch history; nil when there is none, and then
	// only live jobs are found.
	Index *index.Client
	// Timeout bounds each Elasticsearch query, so a history that does not
	// answer cannot hold a caller up (DefaultTimeout when 0).
	Timeout time.Duration
	// Logger receives debug lines (nil: none).
	Logger *zap.Logger
}

// Reader answers questions about jobs. It is safe for concurrent use and
// holds nothing of its own: closing the store's connection and the index
// client is up to whoever opened them.
type Reader struct {
	store   *jobs.Store
	es      *index.Client
	timeout time.Duration
	log     *zap.Logger
	// window is the most hits one Elasticsearch request asks for, and
	// unlimited the most jobs from the history on a page without a limit
	// (both index.MaxLimit; smaller in tests).
	window, unlimited int
}

// New returns a Reader.
func New(cfg Config) *Reader {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Reader{store: cfg.Store, es: cfg.Index, timeout: cfg.Timeout, log: cfg.Logger,
		window: index.MaxLimit, unlimited: index.MaxLimit}
}

// Get returns a job ("job/<uuid>" or the bare uuid): the live document, or
// its indexed copy when it is no longer in ZooKeeper. An unknown job's
// error wraps jobs.ErrNotFound; an unreadable history, when it had to be
// read, ErrUnavailable; an invalid document's jobs.ErrBadDocument, and a
// quarantined one's jobs.ErrQuarantined.
func (r *Reader) Get(ctx context.Context, id string) (Job, error) {
	jid, uid, err := jobs.ParseID(id)
	if err != nil {
		return Job{}, err
	}
	return r.get(ctx, jid, uid)
}

func (r *Reader) get(ctx context.Context, id, uid string) (Job, error) {
	j, _, err := r.store.Get(ctx, id)
	if err == nil {
		return Job{r.followContainer(ctx, j), Live}, nil
	}
	if !errors.Is(err, jobs.ErrNotFound) {
		return Job{}, err
	}
	// A document moved aside is no longer the job's: its indexed copy,
	// if any, is older than what ZooKeeper held.
	if q, qerr := r.store.QuarantineOf(ctx, uid); qerr == nil {
		return Job{}, fmt.Errorf("%w: %s: %s (moved to %s/%s by %s)", jobs.ErrQuarantined, id, q.Reason, r.store.QuarantinePath(), q.Name, q.By)
	}
	if r.es == nil {
		return Job{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	hj, herr := r.es.GetJob(qctx, uid)
	switch {
	case errors.Is(herr, index.ErrNotFound):
		return Job{}, err
	case herr != nil:
		return Job{}, fmt.Errorf("%s is not in ZooKeeper and %w: %w", id, ErrUnavailable, herr)
	}
	return Job{hj, Indexed}, nil
}
