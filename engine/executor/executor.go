// Package executor runs jobs: one ZooKeeper session, N workers sharing one
// queue consumer, each taking a job, running its action with a timeout and
// recording its outcome.
//
// An executor takes from two queues: its own direct queue,
// /nodes/<name>/job, where the scheduler places jobs that fit its capacity
// (it has precedence), and the shared queue /job. It keeps an ephemeral
// heartbeat and a persistent instance record (engine/instance) with its
// instance groups and capacity.
//
// The executor runs jobs; it does not decide what a job's state becomes.
// It asks the job store for each transition (jobs.Store.StartAttempt,
// ApplyLostPolicy, RecordProgress, Requeue, Finish) and commits the change
// under its hold of the job's queue entry (jobs.Hold): a compare-and-set of
// the document in one transaction with the consumer's session fence, so a
// worker whose session expired can never overwrite a newer state written by
// the executor that took the job after it. The events of the jobs it runs
// reach the store's observers (jobs.Observer).
package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jobengine/jobengine/internal/backoff"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of the executor.
var (
	ErrConfig    = errors.New("executor: bad configuration")
	ErrNameInUse = errors.New("executor: name in use")
)

// Causes of an action's context ending, besides its deadline.
var (
	errCanceled    = errors.New("canceled")
	errSessionLost = errors.New("zookeeper session lost")
	errShutdown    = errors.New("executor shutting down")
)

// Config configures an executor.
type Config struct {
	// Name identifies the executor (default hostname-pid); it names its
	// membership node and is written into the jobs it runs.
	Name string
	// Threads is the number of workers (default: number of CPUs).
	Threads int
	// Registry holds the actions this executor runs.
	Registry *action.Registry
	// ActionTimeouts override actions' default timeouts (a job's own
	// timeout still wins).
	ActionTimeouts map[string]time.Duration
	// ShutdownGrace is how long running jobs may finish after a stop
	// request before they are canceled and requeued (default 2m).
	ShutdownGrace time.Duration
	// Heartbeat is the interval of membership updates (default 3s).
	Heartbeat time.Duration
	// ReportInterval bounds how often an action's progress reports are
	// written to its job document (default 1s).
	ReportInterval time.Duration
	// MaxBackoff caps the back-off after ZooKeeper failures (default 10s).
	MaxBackoff time.Duration
	// Store is the job store (required). Its observers are told of the
	// events of the jobs this executor runs.
	Store *jobs.Store
	// Metrics, when set, is updated as jobs run.
	Metrics *Metrics
	// Logger receives the executor's log.
	Logger *zap.Logger
	// Version is reported in the membership node.
	Version string
	// SessionTimeout is the ZooKeeper session timeout, used to stop actions
	// when the connection has been lost long enough for the session to
	// expire on the server (default: the store connection's).
	SessionTimeout time.Duration
	// Groups are the instance groups the executor joins (default:
	// jobs.DefaultGroup).
	Groups []string
	// Capacity says how its capacity is derived (zero value: AWX's
	// defaults with the smaller of CPU and memory capacity; start from
	// instance.DefaultCapacitySettings).
	Capacity instance.CapacitySettings
	// Resources, when set, replace what the machine is detected to have
	// (tests).
	Resources *instance.Resources
}

// RunningJob describes a job a worker runs now.
type RunningJob = instance.RunningJob

// Executor is a running executor.
type Executor struct {
	cfg      Config
	conn     *zkconn.Conn
	store    *jobs.Store
	consumer *queue.Consumer // the shared queue
	direct   *queue.Consumer // this executor's direct queue
	record   *instance.Record
	log      *zap.Logger
	started  time.Time
	host     string

	takeCtx    context.Context // ends when the executor stops taking jobs
	stopTaking context.CancelFunc
	jobsCtx    context.Context // ends when running jobs must stop
	stopJobs   context.CancelCauseFunc

	mu      sync.Mutex
	running map[string]*run // by job uuid
	lostGen int             // bumped on each session loss
	// cancels is the last listing of the cancel directory, kept by
	// cancelWatchLoop, so a worker checks for a request without a read.
	cancels map[string]bool

	// kick asks the heartbeat loop to publish the membership node now:
	// a job started or ended.
	kick chan struct{}

	// ready has a token for each worker waiting for an entry; work hands
	// the entries taken for them out (batch.go).
	ready     chan struct{}
	work      chan taken
	committer *committer
	// finishing hands the outcomes to write after their worker moved on
	// to the finishers (batch.go); finishes counts them for Shutdown.
	finishing chan func()
	finishes  sync.WaitGroup
	finishers sync.WaitGroup

	wg       sync.WaitGroup // workers
	bg       sync.WaitGroup // heartbeat, cancel watcher, session watcher
	bgCancel context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// run is one job being run by a worker.
type run struct {
	job     *jobs.Job
	started time.Time
	worker  int
	cancel  context.CancelCauseFunc
}

// Start registers the executor (its membership node) and starts its
// workers. Stop it with Shutdown or Stop.
func Start(ctx context.Context, conn *zkconn.Conn, cfg Config) (*Executor, error) {
	if cfg.Store == nil || cfg.Registry == nil {
		return nil, fmt.Errorf("%w: a store and an action registry are required", ErrConfig)
	}
	host, _ := os.Hostname()
	if cfg.Name == "" {
		cfg.Name = DefaultName(host)
	}
	if !ValidName(cfg.Name) {
		return nil, fmt.Errorf("%w: name %q: use 1–%d letters, digits, '.', '_' or '-', other than . and .. (it names a node in ZooKeeper)", ErrConfig, cfg.Name, maxNameBytes)
	}
	if cfg.Threads <= 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Threads > MaxThreads {
		return nil, fmt.Errorf("%w: %d threads, at most %d", ErrConfig, cfg.Threads, MaxThreads)
	}
	if cfg.ShutdownGrace < 0 {
		return nil, fmt.Errorf("%w: negative shutdown grace", ErrConfig)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 2 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 3 * time.Second
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = zkconn.DefaultSessionTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if len(cfg.Groups) == 0 {
		cfg.Groups = []string{jobs.DefaultGroup}
	}
	for _, g := range cfg.Groups {
		if err := jobs.ValidGroupName(g); err != nil {
			return nil, fmt.Errorf("%w: --groups: %v", ErrConfig, err)
		}
	}
	if err := cfg.Capacity.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := instance.ValidName(cfg.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	cfg.Metrics.labelActionsOf(cfg.Registry)
	for name := range cfg.ActionTimeouts {
		if _, ok := cfg.Registry.Lookup(name); !ok {
			return nil, fmt.Errorf("%w: --action-timeout names %q, which is not an action of this executor (have: %s)", ErrConfig, name, strings.Join(cfg.Registry.Names(), ", "))
		}
	}
	e := &Executor{
		cfg:     cfg,
		conn:    conn,
		store:   cfg.Store,
		log:     cfg.Logger.Named("executor").With(zap.String("executor", cfg.Name)),
		started: time.Now().UTC(),
		host:    host,
		running: make(map[string]*run),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if err := e.store.Ensure(ctx); err != nil {
		return nil, err
	}
	if err := e.register(ctx); err != nil {
		return nil, err
	}
	rec, err := instance.Register(ctx, conn, e.instanceRecord())
	if err != nil {
		_ = zkconn.Do(ctx, func() error { return e.conn.Delete(e.memberPath(), -1) })
		return nil, err
	}
	e.record = rec
	e.consumer = e.store.Queue().NewConsumer(queue.ConsumerOptions{Name: cfg.Name, Logger: e.log})
	e.direct = e.store.NodeQueue(cfg.Name).NewConsumer(queue.ConsumerOptions{Name: cfg.Name, Logger: e.log})
	e.takeCtx, e.stopTaking = context.WithCancel(context.Background())
	e.jobsCtx, e.stopJobs = context.WithCancelCause(context.Background())
	bgCtx, bgCancel := context.WithCancel(context.Background())
	e.bgCancel = bgCancel
	e.bg.Add(3)
	go e.heartbeatLoop(bgCtx)
	go e.cancelWatchLoop(bgCtx)
	go e.sessionLoop(bgCtx)
	e.ready = make(chan struct{}, cfg.Threads)
	e.work = make(chan taken, cfg.Threads+max(cfg.Threads/2, 1)) // the idle workers' and those taken ahead
	e.committer = newCommitter(e)
	e.startFinishers()
	e.startTakers()
	e.wg.Add(cfg.Threads)
	for i := 0; i < cfg.Threads; i++ {
		go e.worker(i)
	}
	e.log.Info("executor started", zap.Int("threads", cfg.Threads), zap.Strings("actions", cfg.Registry.Names()),
		zap.Strings("groups", cfg.Groups), zap.Int("capacity", rec.Capacity), zap.Bool("enabled", rec.Enabled))
	return e, nil
}

// Name returns the executor's name.
func (e *Executor) Name() string { return e.cfg.Name }

// Done is closed when the executor has stopped.
func (e *Executor) Done() <-chan struct{} { return e.done }

// Running lists the jobs being run now, oldest first.
func (e *Executor) Running() []RunningJob {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RunningJob, 0, len(e.running))
	for _, r := range e.running {
		out = append(out, RunningJob{Job: r.job.ID, Action: r.job.Action, Attempt: r.job.Attempt, Started: r.started, Worker: r.worker})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Shutdown stops taking jobs, lets running jobs finish within the shutdown
// grace, then cancels and requeues what is left, and returns when every
// worker has stopped. A ctx that ends early cuts the grace short.
func (e *Executor) Shutdown(ctx context.Context) {
	e.stopOnce.Do(func() {
		e.log.Info("executor stopping: no new jobs", zap.Int("running", len(e.Running())), zap.Duration("grace", e.cfg.ShutdownGrace))
		// The scheduler places nothing more here; what is placed and not
		// started yet stays on the direct queue for a restart, or for the
		// reaper once the executor is gone.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		if _, err := instance.SetDraining(dctx, e.conn, e.cfg.Name, true); err != nil {
			e.log.Warn("could not mark the executor as draining", zap.Error(err))
		}
		dcancel()
		e.stopTaking()
		idle := make(chan struct{})
		go func() { e.wg.Wait(); close(idle) }()
		grace := time.NewTimer(e.cfg.ShutdownGrace)
		defer grace.Stop()
		select {
		case <-idle:
		case <-grace.C:
			e.log.Warn("shutdown grace over: canceling and requeuing running jobs", zap.Int("running", len(e.Running())))
		case <-ctx.Done():
			e.log.Warn("stopping at once: canceling and requeuing running jobs", zap.Int("running", len(e.Running())))
		}
		e.stopJobs(errShutdown)
		<-idle
		e.stopFinishers()
		e.committer.close()
		e.consumer.Close()
		e.direct.Close()
		e.bgCancel()
		e.bg.Wait()
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = zkconn.Do(dctx, func() error { return e.conn.Delete(e.memberPath(), -1) })
		e.log.Info("executor stopped")
		close(e.done)
	})
	<-e.done
}

// Stop stops at once: running jobs are canceled and requeued.
func (e *Executor) Stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.Shutdown(ctx)
}

// worker runs the jobs of the entries takeLoop hands it, one at a time,
// until the executor stops taking.
func (e *Executor) worker(id int) {
	defer e.wg.Done()
	bo := backoff.New(100*time.Millisecond, e.cfg.MaxBackoff)
	for {
		e.ready <- struct{}{} // never blocks: one token per worker at most
		t, ok := <-e.work
		if !ok {
			return
		}
		if e.takeCtx.Err() != nil {
			// Taken ahead, and the executor stops taking: not started.
			e.release(e.log.With(zap.String(FieldJob, string(t.it.Data))), jobs.Hold{Consumer: t.from, Item: t.it})
			continue
		}
		if e.handle(id, t.from, t.it, t.doc) {
			bo.Reset()
		} else {
			bo.Wait(e.takeCtx)
		}
	}
}

// handle processes one taken entry, starting from its document when the
// take loop read it ahead (doc.ok). It returns false when the worker
// should back off (ZooKeeper trouble).
func (e *Executor) handle(worker int, from *queue.Consumer, it *queue.Item, doc fetched) bool {
	ctx := context.Background()
	h := jobs.Hold{Consumer: from, Item: it}
	id := string(it.Data)
	log := e.log.With(zap.String(FieldJob, id), zap.Int("worker", worker))
	for attempt := 0; attempt < 5; attempt++ {
		j, ver, err := doc.j, doc.ver, doc.err
		if !doc.ok || attempt > 0 {
			rctx, cancel := context.WithTimeout(ctx, e.cfg.SessionTimeout)
			j, ver, err = e.store.Get(rctx, id)
			cancel()
		}
		var bad *jobs.BadDocumentError
		var st step
		switch {
		case errors.As(err, &bad):
			st = e.quarantine(log, h, bad)
		case errors.Is(err, jobs.ErrInvalid):
			// The entry's item is not a job id: nothing to look up.
			st = e.quarantine(log, h, &jobs.BadDocumentError{Kind: jobs.KindEntry, Path: e.entriesPath(from) + "/" + it.Name,
				Data: it.Data, Reason: "its item is not a job id (job/<uuid>)"})
		case errors.Is(err, jobs.ErrNotFound):
			log.Warn("queue entry without a job document; entry consumed", zap.String("entry", it.Name))
			e.consume(log, h)
			return true
		case err != nil:
			log.Warn("reading the job failed; entry released", zap.Error(err))
			e.release(log, h)
			return false
		default:
			st = e.prepare(log.With(zap.String("action", j.Action)), worker, h, j, ver)
		}
		switch st {
		case stepDone:
			return true
		case stepRetry:
			continue
		case stepBackoff:
			return false
		}
	}
	log.Warn("the job kept changing under the executor; entry released")
	e.release(log, h)
	return true
}

type step int

const (
	stepDone step = iota
	stepRetry
	stepBackoff
)

// prepare decides what to do with a loaded job and does it.
func (e *Executor) prepare(log *zap.Logger, worker int, h jobs.Hold, j *jobs.Job, ver int32) step {
	if j.State.Final() {
		log.Debug("job already final; entry consumed", zap.String("state", string(j.State)))
		e.consume(log, h)
		return stepDone
	}
	if j.State == jobs.Pending {
		log.Warn("a PENDING job was queued; entry consumed, the scheduler will queue it again")
		e.consume(log, h)
		return stepDone
	}
	def, ok := e.cfg.Registry.Lookup(j.Action)
	if !ok {
		msg := "no such action: " + j.Action
		if action.IsTest(j.Action) {
			msg += " (a test action: this executor runs without --enable-test-actions)"
		}
		e.finish(log, h, j, ver, jobs.Outcome{State: jobs.Failed, Message: msg})
		return stepDone
	}
	var start *jobs.Change
	var err error
	if j.State == jobs.Running {
		// Its taken node vanished with its executor's session, or we would
		// not hold the entry: the executor that ran it is gone.
		start, err = e.store.ApplyLostPolicy(j, ver, e.cfg.Name, jobs.Lost{
			Policy: def.LostPolicy, MaxAttempts: def.MaxAttempts, CancelRequested: e.cancelRequested(j.UUID()),
		})
		if err == nil && start.Job().State.Final() {
			e.settle(log, h, j, ver, func() (*jobs.Change, error) {
				return e.store.ApplyLostPolicy(j, ver, e.cfg.Name, jobs.Lost{
					Policy: def.LostPolicy, MaxAttempts: def.MaxAttempts, CancelRequested: e.cancelRequested(j.UUID()),
				})
			})
			return stepDone
		}
		if err == nil {
			log.Warn("job lost by a dead executor; running it again", zap.String("lost-executor", j.Executor), zap.Int("attempt", start.Job().Attempt))
		}
	} else {
		start, err = e.store.StartAttempt(j, ver, e.cfg.Name)
	}
	if err != nil {
		// A document the store cannot write even trimmed (the only error
		// left once it passed validation): it is not looped on.
		e.quarantineJob(log, h, j, ver, err)
		return stepDone
	}
	err = e.commit(log, h, start, "writing RUNNING")
	switch {
	case err == nil:
	case errors.Is(err, queue.ErrLockLost):
		log.Warn("lost the entry before starting the job (session ended)")
		return stepDone
	case errors.Is(err, jobs.ErrConflict), errors.Is(err, errRefused):
		log.Debug("job changed, or its write was refused, before it started; reloading", zap.Error(err))
		return stepRetry
	case errors.Is(err, zkconn.ErrTooLarge):
		e.quarantineJob(log, h, j, ver, err)
		return stepDone
	default:
		log.Warn("writing RUNNING failed; entry released", zap.Error(err))
		e.release(log, h)
		return stepBackoff
	}
	e.execute(log, worker, h, start.Job(), start.Ver(), def)
	return stepDone
}

// execute runs the action and writes the outcome.
func (e *Executor) execute(log *zap.Logger, worker int, h jobs.Hold, j *jobs.Job, ver int32, def action.Definition) {
	timeout := def.DefaultTimeout
	if d, ok := e.cfg.ActionTimeouts[def.Name]; ok {
		timeout = d
	}
	if d := j.TimeoutDuration(); d > 0 {
		timeout = d
	}
	runCtx, cancel := context.WithCancelCause(e.jobsCtx)
	defer cancel(nil)
	runCtx, cancelTimeout := context.WithTimeout(runCtx, timeout)
	defer cancelTimeout()

	r := &run{job: j, started: time.Now(), worker: worker, cancel: cancel}
	e.mu.Lock()
	e.running[j.UUID()] = r
	gen := e.lostGen
	e.mu.Unlock()
	e.publishMember()
	defer func() {
		e.mu.Lock()
		delete(e.running, j.UUID())
		e.mu.Unlock()
		e.publishMember()
	}()
	// A cancel request listed before we registered the run (one listed
	// after it cancels the run from cancelWatchLoop).
	if e.cancelRequested(j.UUID()) {
		cancel(errCanceled)
	}
	e.cfg.Metrics.started(j)
	log.Info("job started", zap.Int("attempt", j.Attempt), zap.Duration("timeout", timeout))

	// Reports stop waiting for ZooKeeper once the session is lost.
	repCtx, repCancel := context.WithCancel(context.Background())
	defer repCancel()
	stopWatch := context.AfterFunc(runCtx, func() {
		if errors.Is(context.Cause(runCtx), errSessionLost) {
			repCancel()
		}
	})
	defer stopWatch()
	rep := newReporter(repCtx, e, log, h, j, ver)
	stopReports := rep.start()
	ajob := &action.Job{
		ID: j.ID, Action: j.Action, Target: j.Target(), Payload: j.Payload, Priority: j.Priority,
		Attempt: j.Attempt, Tags: j.Tags, Parent: j.ParentJob, Timeout: timeout,
	}
	res, runErr := safeRun(runCtx, def.Runner, ajob, rep)
	j, ver = stopReports()
	var pe *panicError
	if errors.As(runErr, &pe) {
		log.Error("action panicked; the job fails and the worker goes on", zap.Any("panic", pe.value), zap.ByteString("stack", pe.stack))
	}

	cause := context.Cause(runCtx)
	e.mu.Lock()
	sessionLost := e.lostGen != gen
	e.mu.Unlock()
	var out jobs.Outcome
	switch {
	case errors.Is(cause, errSessionLost) || sessionLost:
		log.Warn("ZooKeeper session lost or in doubt while the job ran: action canceled, its outcome discarded")
		// The action has stopped: the job leaves the running table (and the
		// heartbeat) while the worker finds out whether it still holds it.
		e.mu.Lock()
		delete(e.running, j.UUID())
		e.mu.Unlock()
		e.requeueHeld(log, h, j, ver)
		return
	case errors.Is(cause, errShutdown):
		e.requeue(log, h, j, ver)
		return
	case errors.Is(cause, errCanceled):
		out = jobs.Outcome{State: jobs.Canceled, Message: "canceled"}
	case errors.Is(cause, context.DeadlineExceeded) && errors.Is(runCtx.Err(), context.DeadlineExceeded):
		out = jobs.Outcome{State: jobs.Failed, Message: fmt.Sprintf("timed out after %s", timeout)}
		if errors.Is(runErr, action.ErrPluginKilled) {
			out.Message += ", plugin killed"
		}
	case errors.Is(runErr, action.ErrLost) && def.LostPolicy == action.Rerun && j.Attempt < def.MaxAttempts:
		log.Warn("the run was lost with its remote node or connection; running the job again", zap.Error(runErr), zap.Int("attempt", j.Attempt))
		e.requeueLost(log, h, j, ver, runErr)
		return
	case runErr != nil:
		out = jobs.Outcome{State: jobs.Failed, Message: runErr.Error()}
	default:
		code := res.ReturnCode
		out = jobs.Outcome{State: jobs.Success, ReturnCode: &code, Message: res.Message, HostSummary: res.Hosts, Artifacts: res.Artifacts}
		if code != 0 {
			out.State = jobs.Failed
			if out.Message == "" {
				out.Message = fmt.Sprintf("return code %d", code)
			}
		}
	}
	// The worker does not wait for the outcome to be written: it takes
	// its next job while the outcome goes out with others (finishLater).
	e.finishLater(log, h, j, ver, out)
}

// panicError is a panic of an action, with its stack for the log.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("action panicked: %v", p.value) }

// safeRun runs the action, turning a panic into an error.
func safeRun(ctx context.Context, r action.Runner, j *action.Job, rep action.Reporter) (res action.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			buf := make([]byte, 64<<10)
			err = &panicError{value: p, stack: buf[:runtime.Stack(buf, false)]}
		}
	}()
	return r.Run(ctx, j, rep)
}

// finish records an outcome: the final state, written with the consume of
// the entry in one transaction (see settle).
func (e *Executor) finish(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, out jobs.Outcome) {
	out.CancelRequested = e.cancelRequested(j.UUID())
	e.settle(log, h, j, ver, func() (*jobs.Change, error) { return e.store.Finish(j, ver, e.cfg.Name, out) })
}

// requeue gives a job back to the queue on shutdown: RUNNING → QUEUED and
// the entry released, in one transaction; the attempt is not counted.
func (e *Executor) requeue(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32) {
	c, err := e.store.Requeue(j, ver, "executor "+e.cfg.Name+" stopped")
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.Commit(ctx, h)
		cancel()
	}
	if err != nil {
		log.Warn("requeuing the job failed; it will be rerun as lost", zap.Error(err))
		e.release(log, h)
		return
	}
	log.Info("job requeued: executor stopping")
}

// requeueLost gives back a job whose run was lost (action.ErrLost) under a
// rerun policy: RUNNING → QUEUED with the entry released, the attempt
// counted, so the lost-job policy bounds the reruns.
func (e *Executor) requeueLost(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, cause error) {
	c, err := e.store.RequeueLost(j, ver, cause)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
		err = c.Commit(ctx, h)
		cancel()
	}
	if err != nil {
		log.Warn("requeuing the lost run failed; it will be rerun as lost", zap.Error(err))
		e.release(log, h)
	}
}

// requeueHeld requeues a job whose action was canceled because the session
// was in doubt. If the session survived, this executor still holds the
// entry and must give it back, or the job would stay RUNNING forever; if it
// expired, the fence refuses the write and the job is someone else's. It
// retries until one of the two is known (or the executor stops).
func (e *Executor) requeueHeld(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32) {
	c, err := e.store.Requeue(j, ver, "executor "+e.cfg.Name+" lost its ZooKeeper session")
	if err != nil {
		e.release(log, h)
		return
	}
	b := backoff.New(100*time.Millisecond, e.cfg.MaxBackoff)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
		err := c.Commit(ctx, h)
		cancel()
		var opErr *zkconn.OpError
		switch {
		case err == nil:
			log.Info("job requeued: the session survived")
			return
		case errors.Is(err, queue.ErrLockLost):
			log.Info("the job's entry was lost with the session; another executor runs it")
			return
		case errors.Is(err, jobs.ErrConflict) || errors.As(err, &opErr):
			log.Warn("requeuing failed: the job changed meanwhile; entry released", zap.Error(err))
			e.release(log, h)
			return
		}
		if e.jobsCtx.Err() != nil {
			return // stopping at once: the entry is freed when the session ends
		}
		b.Wait(e.jobsCtx)
	}
}

// cancelRequested reports whether the last listing of the cancel directory
// holds a request for the job.
func (e *Executor) cancelRequested(uid string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cancels[uid]
}

func (e *Executor) consume(log *zap.Logger, h jobs.Hold) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
	defer cancel()
	if err := h.Consumer.Consume(ctx, h.Item); err != nil && !errors.Is(err, queue.ErrLockLost) {
		log.Warn("consuming the entry failed", zap.Error(err))
	}
}

// release gives an entry back. A connection failure is retried until the
// release goes through or the hold is known lost: the session may well
// survive the outage (ZooKeeper keeps sessions across a restart), and an
// entry held by a live session that nobody releases is never run.
func (e *Executor) release(log *zap.Logger, h jobs.Hold) {
	bo := backoff.New(100*time.Millisecond, e.cfg.MaxBackoff)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
		err := h.Consumer.Release(ctx, h.Item)
		cancel()
		switch {
		case err == nil || errors.Is(err, queue.ErrLockLost):
			return
		case !zkconn.Transient(err) || e.jobsCtx.Err() != nil:
			log.Warn("releasing the entry failed; it is freed when this session ends", zap.Error(err))
			return
		}
		log.Warn("releasing the entry failed; retrying", zap.Error(err))
		bo.Wait(e.jobsCtx)
	}
}

// cancelWatchLoop watches the cancel directory (one child watch for the
// whole executor) and cancels the running jobs that have a request.
func (e *Executor) cancelWatchLoop(ctx context.Context) {
	defer e.bg.Done()
	dir := e.conn.Path("cancel")
	bo := backoff.New(100*time.Millisecond, 2*time.Second)
	// A watch re-registered by go-zookeeper after a reconnect can be lost
	// without a word; list and arm a new one on every new connection.
	events, unsubscribe := e.conn.Subscribe()
	defer unsubscribe()
	for ctx.Err() == nil {
		names, _, ch, err := e.conn.ChildrenW(dir)
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				_ = e.conn.EnsurePath(ctx, dir)
			}
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		e.mu.Lock()
		e.cancels = make(map[string]bool, len(names))
		for _, uid := range names {
			e.cancels[uid] = true
			if r, ok := e.running[uid]; ok {
				e.log.Info("cancel request received", zap.String("job", r.job.ID), zap.String("action", r.job.Action))
				r.cancel(errCanceled)
			}
		}
		e.mu.Unlock()
		for waiting := true; waiting; {
			select {
			case <-ch:
				waiting = false
			case <-ctx.Done():
				waiting = false
			case ev := <-events:
				waiting = ev.Type != zk.EventSession || ev.State != zk.StateHasSession
			}
		}
	}
}

// sessionLoop cancels every running action when the session is lost or in
// doubt: their jobs may be taken elsewhere by now. Doubt is a lease: the
// executor counts from the send time of its last answered round trip, and
// when two thirds of the session timeout pass without one, the server may
// soon expire the session, so the actions stop before another executor can
// take their jobs. (go-zookeeper itself notices a silent server only after
// two thirds of the session timeout, too late to start a timer then.)
func (e *Executor) sessionLoop(ctx context.Context) {
	defer e.bg.Done()
	events, unsub := e.conn.Subscribe()
	defer unsub()
	session := e.conn.SessionID()
	lease := e.cfg.SessionTimeout * 2 / 3
	renew := max(e.cfg.SessionTimeout/8, 20*time.Millisecond)
	var mu sync.Mutex
	lastOK := time.Now()
	go func() { // the pinger: one cheap round trip per renew interval
		t := time.NewTicker(renew)
		defer t.Stop()
		for {
			start := time.Now()
			pctx, cancel := context.WithTimeout(ctx, lease)
			err := zkconn.Do(pctx, func() error { _, _, err := e.conn.Exists(e.memberPath()); return err })
			cancel()
			if err == nil {
				mu.Lock()
				lastOK = start
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	check := time.NewTicker(max(renew/2, 10*time.Millisecond))
	defer check.Stop()
	inDoubt := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			mu.Lock()
			since := time.Since(lastOK)
			mu.Unlock()
			if since > lease && !inDoubt {
				inDoubt = true
				e.loseSession(fmt.Sprintf("no answer from ZooKeeper for %s", since.Round(time.Millisecond)))
			} else if since <= lease {
				inDoubt = false
			}
		case ev := <-events:
			switch ev.State {
			case zk.StateExpired:
				e.loseSession("session expired")
			case zk.StateHasSession:
				if id := e.conn.SessionID(); id != session {
					if session != 0 {
						e.loseSession("new session")
					}
					session = id
				}
			}
		}
	}
}

func (e *Executor) loseSession(why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lostGen++
	if len(e.running) > 0 {
		e.log.Warn("ZooKeeper session lost: canceling running actions, their jobs may run elsewhere", zap.String("reason", why), zap.Int("running", len(e.running)))
	}
	for _, r := range e.running {
		r.cancel(errSessionLost)
	}
}

// entriesPath returns the entries directory of the queue a consumer takes
// from: this executor's direct queue, or the shared queue.
func (e *Executor) entriesPath(from *queue.Consumer) string {
	if from == e.direct {
		return e.store.NodeQueue(e.cfg.Name).EntriesPath()
	}
	return e.store.Queue().EntriesPath()
}
