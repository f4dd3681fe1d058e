package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// The reaper gives back what lost executors leave on their direct queues.
// An executor is lost when its heartbeat node is gone (its session ended);
// once it has been lost for the grace period, each entry of its queue that
// nobody holds is taken — proof, in ZooKeeper's exact terms, that no
// executor runs its job — and its job goes on:
//
//   - placed and not started (QUEUED): back to PENDING, to be placed
//     again (AWX fails these; here they run elsewhere);
//   - RUNNING: the action's lost-job policy, as the executor recorded it
//     in its instance record — a rerun goes back to PENDING, the lost
//     attempt counted; otherwise FAILED "executor lost";
//   - a fan-out child: it runs on its own executor or not at all, so it is
//     CANCELED (not started) or FAILED (started);
//   - a job canceled while it ran: CANCELED;
//   - already final, gone or PENDING: the entry is stale and goes.
//
// An entry that is held is never touched: its job runs, or is about to.

// Defaults of ReaperConfig.
const (
	DefaultReapInterval = 5 * time.Second
	DefaultReapGrace    = 10 * time.Second
)

// ReaperConfig configures a Reaper.
type ReaperConfig struct {
	// Store is the job store (required).
	Store *jobs.Store
	// Logger receives the reaper's log lines.
	Logger *zap.Logger
	// Interval is the period of reaping when no executor leaves.
	Interval time.Duration
	// Grace is how long this leader must have seen an executor lost
	// before it reaps its queue, so that an executor that restarts takes
	// its own jobs back. Negative: no grace (tests).
	Grace time.Duration
	// Term, when set, fences every write; otherwise Start takes the term
	// of its leader context.
	Term Term
}

// ReapReport says what a reap did.
type ReapReport struct {
	// Requeued counts jobs placed on a lost executor and not started,
	// back to PENDING.
	Requeued int
	// Rerun counts RUNNING jobs back to PENDING by their lost-job policy.
	Rerun int
	// Failed counts jobs ended FAILED (by their policy, or fan-out
	// children that had started); Canceled those ended CANCELED.
	Failed, Canceled int
	// Stale counts entries removed whose job had ended or was gone.
	Stale int
	// Held counts entries left alone because a consumer holds them.
	Held int
	// Waiting counts lost executors still within the grace period.
	Waiting int
}

// Reaper is the reaper service: Start it on the leader, Stop it when
// leadership ends.
type Reaper struct {
	cfg   ReaperConfig
	store *jobs.Store
	log   *zap.Logger
	watch *watcher
	clust *instance.Reader

	reapMu sync.Mutex
	lost   map[string]time.Time // executor → when this leader first saw it lost

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}
}

// NewReaper checks cfg and returns the reaper. It contacts no server.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: a job store is required", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReapInterval
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultReapGrace
	}
	r := &Reaper{cfg: cfg, store: cfg.Store, log: cfg.Logger.Named("reaper"), lost: map[string]time.Time{}, kick: make(chan struct{}, 1)}
	// The reaper watches the heartbeats only: an executor that leaves or
	// comes back.
	r.watch = newWatcher(cfg.Store.Conn(), r.trigger, r.log)
	beats := cfg.Store.Conn().Path(instance.HeartbeatsPath)
	r.clust = instance.NewReader(cfg.Store, partial{r.watch, instance.DirectSource(cfg.Store.Conn()), func(p string) bool { return p == beats }})
	return r, nil
}

// Name names the service.
func (r *Reaper) Name() string { return "reaper" }

// Start starts reaping on the leader, until ctx ends or Stop.
func (r *Reaper) Start(ctx context.Context) error {
	term := r.cfg.Term
	if term == nil {
		if t := election.TermOf(ctx); t != nil {
			term = t
		}
	}
	if term == nil {
		return fmt.Errorf("%w: no term: start the reaper with a leader context or ReaperConfig.Term", ErrConfig)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return fmt.Errorf("%w: already started", ErrConfig)
	}
	ctx, cancel := context.WithCancel(ctx)
	r.cancel, r.done = cancel, make(chan struct{})
	r.reapMu.Lock()
	r.lost = map[string]time.Time{} // a new term counts its grace afresh
	r.reapMu.Unlock()
	r.watch.start()
	go r.run(ctx, term, r.done)
	return nil
}

// Stop ends the reaping and returns once the current reap has ended.
func (r *Reaper) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	r.watch.stop()
}

func (r *Reaper) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Reaper) run(ctx context.Context, term Term, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	bo := backoff.New(100*time.Millisecond, r.cfg.Interval)
	for ctx.Err() == nil {
		rep, err := r.Reap(ctx, term)
		switch {
		case errors.Is(err, ErrNotLeader) || ctx.Err() != nil:
			return
		case err != nil:
			r.log.Warn("reaping failed; retrying", zap.Error(err))
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		var graceEnds <-chan time.Time
		var grace *time.Timer
		if rep.Waiting > 0 {
			// Look again when a grace period may have ended.
			grace = time.NewTimer(min(r.cfg.Grace, r.cfg.Interval))
			graceEnds = grace.C
		}
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-tick.C:
		case <-graceEnds:
		}
		if grace != nil {
			grace.Stop()
		}
	}
}

// Reap gives back the jobs of lost executors once, under term.
func (r *Reaper) Reap(ctx context.Context, term Term) (ReapReport, error) {
	r.reapMu.Lock()
	defer r.reapMu.Unlock()
	var rep ReapReport
	if err := term.Check(); err != nil {
		return rep, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	snap, err := r.clust.Read(ctx)
	if err != nil {
		return rep, err
	}
	now := time.Now()
	seen := map[string]bool{}
	for _, e := range snap.Executors {
		if e.Live() || e.Record == nil {
			continue
		}
		seen[e.Name] = true
		since, ok := r.lost[e.Name]
		if !ok {
			since = now
			r.lost[e.Name] = now
		}
		if len(e.Placed) == 0 {
			continue
		}
		if r.cfg.Grace > 0 && now.Sub(since) < r.cfg.Grace {
			rep.Waiting++
			continue
		}
		if err := r.reapExecutor(ctx, term, e, &rep); err != nil {
			return rep, err
		}
	}
	for name := range r.lost {
		if !seen[name] {
			delete(r.lost, name) // back, or removed
		}
	}
	return rep, nil
}

// reapExecutor gives back the jobs on a lost executor's queue that nobody
// holds.
func (r *Reaper) reapExecutor(ctx context.Context, term Term, e *instance.Executor, rep *ReapReport) error {
	holder := r.store.NodeQueue(e.Name).NewHolder(queue.ConsumerOptions{Name: "reaper", Logger: r.log})
	defer holder.Close()
	log := r.log.With(zap.String("lost-executor", e.Name))
	for _, p := range e.Placed {
		if p.Taken {
			rep.Held++
			continue
		}
		it, err := holder.TakeEntry(ctx, p.Entry)
		if err != nil {
			return fmt.Errorf("scheduler: taking %s from the queue of %s: %w", p.Entry, e.Name, err)
		}
		if it == nil {
			rep.Held++ // taken meanwhile (the executor is back), or consumed
			continue
		}
		h := jobs.Hold{Consumer: holder, Item: it}
		if err := r.reapOne(ctx, term, log, e, h, rep); err != nil {
			r.release(log, h)
			return err
		}
	}
	return nil
}

// reapOne decides and commits what becomes of the job of one held entry.
func (r *Reaper) reapOne(ctx context.Context, term Term, log *zap.Logger, e *instance.Executor, h jobs.Hold, rep *ReapReport) error {
	id := string(h.Item.Data)
	j, ver, err := r.store.Get(ctx, id)
	stale := errors.Is(err, jobs.ErrNotFound) || errors.Is(err, jobs.ErrInvalid)
	if err != nil && !stale {
		return err
	}
	if stale || j.State.Final() || j.State == jobs.Pending {
		err := h.Consumer.Consume(ctx, h.Item, term.Fence())
		if fenceLost(err) {
			return fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		if err == nil {
			rep.Stale++
		}
		return err
	}
	log = log.With(zap.String("job", j.ID), zap.String("action", j.Action), zap.String("state", string(j.State)))
	canceled, _, err := r.store.CancelRequested(j.UUID())
	if err != nil {
		return err
	}
	var c *jobs.Change
	var counter *int
	switch {
	case j.State == jobs.Running && canceled:
		c, err = r.store.Finish(j, ver, j.Executor, jobs.Outcome{State: jobs.Canceled, CancelRequested: true,
			Message: fmt.Sprintf("canceled; executor %s was lost while the job ran", e.Name)})
		counter = &rep.Canceled
	case j.IsFanoutChild() && j.State == jobs.Queued:
		c, err = r.store.Finish(j, ver, "", jobs.Outcome{State: jobs.Canceled,
			Message: fmt.Sprintf("not run: executor %s was lost before it started the job", e.Name)})
		counter = &rep.Canceled
	case j.IsFanoutChild():
		c, err = r.store.Finish(j, ver, j.Executor, jobs.Outcome{State: jobs.Failed,
			Message: fmt.Sprintf("executor %s lost while the job ran; a fan-out job runs on its own executor only", e.Name)})
		counter = &rep.Failed
	case j.State == jobs.Queued:
		c, err = r.store.Unplace(j, ver, fmt.Sprintf("executor %s was lost before the job started; waiting to be placed again", e.Name))
		counter = &rep.Requeued
	default:
		c, err = r.store.ApplyLostPolicy(j, ver, "", lostPolicy(e, j.Action))
		if err == nil && c.Job().State == jobs.Pending {
			counter = &rep.Rerun
		} else {
			counter = &rep.Failed
		}
	}
	if err != nil {
		log.Warn("cannot plan the lost job's next state; entry released", zap.Error(err))
		r.release(log, h)
		return nil
	}
	err = c.Fenced(term.Fence()).Commit(ctx, h)
	switch {
	case err == nil:
		*counter++
		log.Info("job of a lost executor given back", zap.String("now", string(c.Job().State)), zap.String("reason", c.Job().Explanation+c.Job().StatusMessage))
		return nil
	case errors.Is(err, jobs.ErrFenceLost):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, jobs.ErrConflict):
		log.Debug("job changed meanwhile; the next reap looks again", zap.Error(err))
		r.release(log, h)
		return nil
	}
	return err
}

// lostPolicy returns what the lost executor recorded of an action's
// lost-job policy (the default, rerun, for an action it did not list),
// for a writer that will not run the job itself.
func lostPolicy(e *instance.Executor, name string) jobs.Lost {
	l := jobs.Lost{Policy: action.Rerun, Reschedule: true}
	if e.Record != nil {
		for _, a := range e.Record.Actions {
			if a.Name == name {
				l.Policy, l.MaxAttempts = a.LostPolicy, a.MaxAttempts
			}
		}
	}
	return l
}

// release gives an entry back after a failed reap of it.
func (r *Reaper) release(log *zap.Logger, h jobs.Hold) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Consumer.Release(ctx, h.Item); err != nil && !errors.Is(err, queue.ErrLockLost) {
		log.Warn("could not release the entry; it is freed when this session ends", zap.Error(err))
	}
}

// fenceLost reports whether a consume failed on the caller's fence (its
// first extra operation).
func fenceLost(err error) bool {
	var opErr *zkconn.OpError
	return errors.As(err, &opErr) && opErr.Index == 0
}

// partial is a source that watches only the paths watched says so of.
type partial struct {
	w       *watcher
	direct  instance.Source
	watched func(path string) bool
}

func (p partial) Children(path string) ([]string, error) {
	if p.watched(path) {
		return p.w.Children(path)
	}
	return p.direct.Children(path)
}

func (p partial) Get(path string) ([]byte, error) {
	if p.watched(path) {
		return p.w.Get(path)
	}
	return p.direct.Get(path)
}
