// Package scheduler is AWX's task manager on ZooKeeper: it decides when
// and where PENDING jobs run, and it reaps the jobs of lost executors.
// Both run on one elected member of the cluster (the controller's leader),
// as services with Start and Stop that take the leader's term: every write
// goes in one transaction with the term's fence (the leader's election
// node), so a deposed leader never places a job.
//
// A pass (Scheduler.Pass) reads the pending jobs in creation order,
// priority first, and the executors with what is placed on them
// (engine/instance), then for each job: fails it when a dependency failed;
// leaves it waiting, with an explanation, when a dependency has not ended
// or an active or older pending job shares one of its concurrency keys;
// else places it in the first of its instance groups with room — on the
// executor with the most remaining capacity that fits, else the largest
// idle one — by queuing it on that executor's direct queue; or says that
// no group has room. Explanations are written only when they change. A
// pass starts at most MaxStarts jobs and stops at its deadline, committing
// what it decided, so no backlog stalls scheduling.
//
// The service runs a pass when something changes — a job becomes pending
// or leaves a direct queue, an executor joins, leaves, changes or is
// disabled, a group's limits change, a job waited on ends — with bursts
// coalesced into one pass, and every Interval whatever happens: either
// trigger alone is enough.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/backoff"
)

// Errors of this package.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("scheduler: bad configuration")
	// ErrNotLeader: the term has ended; nothing more was written.
	ErrNotLeader = errors.New("scheduler: not the leader")
)

// Term is the leader's right to write: *election.Term is one. Check says
// whether leadership still holds; Fence is the operation that makes a
// transaction fail once it does not.
type Term interface {
	Check() error
	Fence() *zk.CheckVersionRequest
}

// Defaults of Config.
const (
	DefaultInterval     = 5 * time.Second
	DefaultMinInterval  = 50 * time.Millisecond
	DefaultMaxStarts    = 1000
	DefaultPassDeadline = 2 * time.Second
	// DefaultBatchBytes keeps a transaction well under ZooKeeper's 1 MB
	// request limit.
	DefaultBatchBytes = 512 << 10
)

// Config configures a Scheduler.
type Config struct {
	// Store is the job store (required).
	Store *jobs.Store
	// Readers are more stores over sessions of their own that share the
	// reads of a pass's new pending jobs with Store. ZooKeeper answers
	// one session's requests one at a time, so the first pass over a
	// large backlog reads faster over two sessions than over one.
	Readers []*jobs.Store
	// Logger receives the scheduler's log lines.
	Logger *zap.Logger
	// Interval is the period of passes when nothing triggers one.
	Interval time.Duration
	// MinInterval is the least time between the starts of two passes
	// triggered by events: a burst of events makes one pass.
	MinInterval time.Duration
	// MaxStarts bounds the jobs one pass places.
	MaxStarts int
	// PassDeadline bounds a pass: at the deadline it stops deciding and
	// writing explanations, and commits its placements.
	PassDeadline time.Duration
	// BatchBytes bounds one transaction of a pass.
	BatchBytes int
	// Term, when set, is the term every write is fenced with; otherwise
	// Start takes the term of its leader context (election.TermOf).
	Term Term
}

// Scheduler is the scheduler service: Start it on the leader, Stop it when
// leadership ends. It may be started again on a later term.
type Scheduler struct {
	cfg   Config
	store *jobs.Store
	log   *zap.Logger
	watch *watcher
	clust *instance.Reader

	passMu  sync.Mutex // one pass at a time
	pending map[string]*pendingJob
	finals  map[string]jobs.State // final states of jobs waited on
	// seenProblems are the bad objects already logged.
	seenProblems map[string]bool

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}
}

// New checks cfg and returns the scheduler. It contacts no server.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: a job store is required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.MaxStarts <= 0 {
		cfg.MaxStarts = DefaultMaxStarts
	}
	if cfg.PassDeadline <= 0 {
		cfg.PassDeadline = DefaultPassDeadline
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	s := &Scheduler{cfg: cfg, store: cfg.Store, log: cfg.Logger.Named("scheduler"),
		pending: map[string]*pendingJob{}, finals: map[string]jobs.State{}, kick: make(chan struct{}, 1)}
	s.watch = newWatcher(cfg.Store.Conn(), s.Trigger, s.log)
	s.clust = instance.NewReader(cfg.Store, s.watch)
	return s, nil
}

// Name names the service.
func (s *Scheduler) Name() string { return "scheduler" }

// Start starts passes on the leader: at once, on events, and every
// Interval, until ctx ends or Stop. ctx is the leader context.
func (s *Scheduler) Start(ctx context.Context) error {
	term := s.cfg.Term
	if term == nil {
		if t := election.TermOf(ctx); t != nil {
			term = t
		}
	}
	if term == nil {
		return fmt.Errorf("%w: no term: start the scheduler with a leader context or Config.Term", ErrConfig)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return fmt.Errorf("%w: already started", ErrConfig)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done = cancel, make(chan struct{})
	// Another leader may have written meanwhile: read every job afresh.
	s.passMu.Lock()
	clear(s.pending)
	clear(s.finals)
	s.passMu.Unlock()
	s.watch.start()
	go s.run(ctx, term, s.done)
	return nil
}

// Stop ends the passes and returns once the current one has ended.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	s.watch.stop()
}

// Trigger asks for a pass soon; triggers that come while one is due make
// no more passes.
func (s *Scheduler) Trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Scheduler) run(ctx context.Context, term Term, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	bo := backoff.New(100*time.Millisecond, s.cfg.Interval)
	var last time.Time
	for ctx.Err() == nil {
		if wait := s.cfg.MinInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		last = time.Now()
		rep, err := s.Pass(ctx, term)
		switch {
		case errors.Is(err, ErrNotLeader) || ctx.Err() != nil:
			if ctx.Err() == nil {
				s.log.Warn("the term has ended: no more passes", zap.Error(err))
			}
			return
		case err != nil:
			s.log.Warn("scheduler pass failed; retrying", zap.Error(err))
			bo.Wait(ctx)
			s.Trigger()
			continue
		}
		bo.Reset()
		if rep.Cut {
			s.Trigger() // the rest in the next pass, at once
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
	}
}
