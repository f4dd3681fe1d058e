package distributor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/jobengine/jobengine/internal/backoff"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// errFenced reports a write refused because this instance's election node
// is gone: another instance may lead.
var errFenced = fmt.Errorf("%w: the election fence failed", election.ErrNotLeader)

// Default back-off bounds after a failed tick, a crashed generator or an
// election that stopped.
const (
	DefaultRetryMin = time.Second
	DefaultRetryMax = time.Minute
)

// Config is what distributors run with.
type Config struct {
	// Conn is the ZooKeeper session.
	Conn *zkconn.Conn
	// Store creates the jobs (on Conn).
	Store *jobs.Store
	// SessionTimeout is the session timeout Conn was dialled with; the
	// leader lease is derived from it (election.WithSessionTimeout).
	SessionTimeout time.Duration
	// Identifier names this instance in the elections and in the jobs'
	// created-by; hostname/pid when empty.
	Identifier string
	// Logger receives the distributors' log lines.
	Logger *zap.Logger
	// Clock is the schedule's clock; schedule.System when nil.
	Clock schedule.Clock
	// RetryMin and RetryMax bound the back-off after a failure
	// (DefaultRetryMin, DefaultRetryMax when zero).
	RetryMin, RetryMax time.Duration
}

func (c Config) normalized() Config {
	if c.Identifier == "" {
		c.Identifier = DefaultIdentifier()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Clock == nil {
		c.Clock = schedule.System
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = zkconn.DefaultSessionTimeout
	}
	if c.RetryMin <= 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(DefaultRetryMax, c.RetryMin)
	}
	return c
}

// DefaultIdentifier returns hostname/pid.
func DefaultIdentifier() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Distributor is one distributor ready to run.
type Distributor struct {
	cfg   Config
	def   Definition
	sched schedule.Schedule
	env   *Env
	log   *zap.Logger
}

// New checks d and returns it ready to run with cfg.
func New(cfg Config, d Definition) (*Distributor, error) {
	if cfg.Conn == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: a distributor needs a ZooKeeper connection and a job store", ErrConfig)
	}
	cfg = cfg.normalized()
	d = d.Normalized()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("distributor %s: %w", d.Name, err)
	}
	log := cfg.Logger.Named("distributor").With(zap.String("distributor", d.Name))
	return &Distributor{
		cfg:   cfg,
		def:   d,
		sched: d.parsedSchedule(),
		log:   log,
		env: &Env{
			Name: d.Name, Identifier: cfg.Identifier, Store: cfg.Store, Conn: cfg.Conn,
			Log: log, Clock: cfg.Clock, Options: d.Options,
		},
	}, nil
}

// Definition returns the distributor's definition, normalized.
func (x *Distributor) Definition() Definition { return x.def }

// Run contends for leadership of the distributor until ctx ends, creating
// jobs while it leads, and returns nil once it has given up its election
// node. An election that stops on its own (it should not) is started again
// after a back-off, and so is one that panicked.
func (x *Distributor) Run(ctx context.Context) error {
	x.log.Info("starting", zap.String("schedule", x.sched.String()), zap.String("catch-up", string(x.def.CatchUp)),
		zap.String("source", x.def.Source), zap.String("identifier", x.cfg.Identifier))
	bo := x.backoff()
	for ctx.Err() == nil {
		err := x.runElection(ctx)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, election.ErrConfig) {
			return fmt.Errorf("distributor %s: %w", x.def.Name, err)
		}
		x.log.Error("election stopped; contending again after a back-off", zap.Error(err))
		bo.Wait(ctx)
	}
	x.log.Info("stopped")
	return nil
}

// runElection runs one election, turning a panic into an error.
func (x *Distributor) runElection(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
			x.log.Error("election panicked", zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
		}
	}()
	e := election.New(x.cfg.Conn, x.def.Name, x.cfg.Identifier, x.cfg.Logger, election.WithSessionTimeout(x.cfg.SessionTimeout))
	err = e.Run(ctx, x.lead)
	if err == nil && ctx.Err() == nil {
		err = errors.New("the election ended while the distributor still runs")
	}
	return err
}

// lead is the leader function: it creates each due tick's jobs until the
// leader context ends. It never returns on its own; failures are retried
// after a back-off (real time, not the schedule's clock) while it leads.
func (x *Distributor) lead(ctx context.Context) (err error) {
	defer func() {
		// A panic here would end the process (the election runs the leader
		// function in its own goroutine): give leadership up instead, and
		// Run contends again after a back-off.
		if r := recover(); r != nil {
			x.log.Error("leader function panicked", zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
			err = fmt.Errorf("distributor %s: panic: %v", x.def.Name, r)
		}
	}()
	term := election.TermOf(ctx)
	log := x.log.With(zap.String("identifier", x.cfg.Identifier))
	log.Info(MsgLeading)
	defer log.Info("no longer leading")
	bo := x.backoff()
	var (
		st        State
		ver       int32
		stateRead bool
		dropped   time.Time // the first missed tick last logged
		since     time.Time // when this term first read the state
	)
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// A process that was frozen wakes up here before its timers have
		// told it that the term is over.
		if err := term.Check(); err != nil {
			log.Info("leadership lost", zap.Error(err))
			return x.stepDown(ctx, err)
		}
		if !stateRead {
			var err error
			st, ver, err = ReadState(ctx, x.cfg.Conn, x.def.Name)
			if err != nil {
				log.Warn("cannot read the distributor state; retrying", zap.Error(err))
				bo.Wait(ctx)
				continue
			}
			stateRead = true
			if since.IsZero() {
				since = x.cfg.Clock.Now()
			}
		}
		// With no tick ever completed, ticks count from when this term
		// found that out: the first tick after it runs.
		last := since
		if st.Tick != "" {
			if t, err := schedule.ParseTickID(st.Tick); err == nil {
				last = t.At
			}
		}
		d := schedule.Due(x.sched, last, x.cfg.Clock.Now(), x.def.CatchUp)
		if !d.FirstMissed.IsZero() && !d.FirstMissed.Equal(dropped) {
			dropped = d.FirstMissed
			fields := []zap.Field{zap.String("first-missed", schedule.Tick{At: d.FirstMissed}.ID()), zap.String("catch-up", string(x.def.CatchUp))}
			if d.Run {
				fields = append(fields, zap.String("running", d.Tick.ID()))
			}
			log.Warn("ticks missed while no leader ran were dropped by the catch-up policy", fields...)
		}
		if d.Run {
			res, err := x.runTick(ctx, term, d.Tick)
			if err == nil {
				next := State{Tick: d.Tick.ID(), Done: x.cfg.Clock.Now().UTC(), By: x.cfg.Identifier,
					Created: res.created, Existing: res.existing, Skipped: res.skipped}
				var nv int32
				nv, err = writeState(ctx, x.cfg.Conn, x.def.Name, next, ver, term.Fence())
				if err == nil {
					st, ver = next, nv
					bo.Reset()
					log.Debug("tick done", zap.String("tick", next.Tick), zap.Int("created", res.created),
						zap.Int("existing", res.existing), zap.Int("skipped", res.skipped))
					continue
				}
				if errors.Is(err, errStateChanged) {
					stateRead = false
				}
			}
			if ctx.Err() != nil || errors.Is(err, election.ErrNotLeader) {
				log.Info("leadership lost during a tick", zap.String("tick", d.Tick.ID()), zap.Error(err))
				return x.stepDown(ctx, err)
			}
			log.Warn("tick failed; retrying after a back-off", zap.String("tick", d.Tick.ID()), zap.Error(err))
			bo.Wait(ctx)
			continue
		}
		if d.Wake.IsZero() { // the schedule never fires again
			log.Warn("the schedule has no further tick")
			<-ctx.Done()
			return context.Cause(ctx)
		}
		if err := schedule.SleepUntil(ctx, x.cfg.Clock, d.Wake); err != nil {
			return context.Cause(ctx)
		}
	}
}

// stepDown waits for the election to end the term after err showed that
// leadership is lost; should it not, returning gives leadership up.
func (x *Distributor) stepDown(ctx context.Context, err error) error {
	t := time.NewTimer(x.cfg.SessionTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return err
	}
}

type tickResult struct{ created, existing, skipped int }

// runTick creates the jobs of one tick. Each job is created in its own
// multi with the election fence, so a job whose unique key is held by a
// live job does not hold up the others. A failure leaves the tick to be
// run again: the jobs already created are found by their ids.
func (x *Distributor) runTick(ctx context.Context, term *election.Term, tick schedule.Tick) (tickResult, error) {
	var res tickResult
	if err := term.Check(); err != nil {
		return res, err
	}
	var list []jobs.NewJob
	if x.def.Generator != nil {
		var err error
		if list, err = x.generate(ctx, tick); err != nil {
			return res, err
		}
	}
	list, err := TickJobs(x.def, tick, x.cfg.Identifier, list)
	if err != nil {
		return res, err
	}
	for _, nj := range list {
		if err := term.Check(); err != nil {
			return res, err
		}
		_, err := x.cfg.Store.CreateFenced(ctx, []jobs.NewJob{nj}, term.Fence())
		var extra *zkconn.OpError // only an extra operation (the fence) fails with one
		fields := []zap.Field{zap.String("job", nj.ID), zap.String("action", nj.Action), zap.String("tick", nj.Tick)}
		if nj.Target != "" {
			fields = append(fields, zap.String("target", nj.Target))
		}
		switch {
		case err == nil:
			res.created++
		case errors.As(err, &extra):
			return res, fmt.Errorf("%w: %v", errFenced, extra.Err)
		case errors.Is(err, jobs.ErrDuplicate):
			if x.exists(ctx, nj.ID) {
				res.existing++
				x.log.Info(MsgTickJobExists, fields...)
			} else {
				res.skipped++
				x.log.Debug("job skipped: a live job holds its unique key", append(fields, zap.String("unique-key", nj.UniqueKey), zap.Error(err))...)
			}
		case errors.Is(err, jobs.ErrBacklogFull):
			res.skipped++
			x.log.Warn("job skipped: the backlog is full", append(fields, zap.Error(err))...)
		case errors.Is(err, jobs.ErrInvalid):
			res.skipped++
			x.log.Error("job skipped: invalid", append(fields, zap.Error(err))...)
		default:
			return res, err
		}
	}
	return res, nil
}

// exists reports whether the job document id exists.
func (x *Distributor) exists(ctx context.Context, id string) bool {
	_, uid, err := jobs.ParseID(id)
	if err != nil {
		return false
	}
	var ok bool
	_ = zkconn.Do(ctx, func() error {
		var err error
		ok, _, err = x.cfg.Conn.Exists(x.cfg.Store.DocPath(uid))
		return err
	})
	return ok
}

// generate calls the generator, turning a panic into an error.
func (x *Distributor) generate(ctx context.Context, tick schedule.Tick) (list []jobs.NewJob, err error) {
	defer func() {
		if r := recover(); r != nil {
			x.log.Error("generator panicked", zap.String("tick", tick.ID()), zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
			list, err = nil, fmt.Errorf("distributor %s: generator panicked: %v", x.def.Name, r)
		}
	}()
	list, err = x.def.Generator(ctx, tick, x.env)
	if err != nil {
		return nil, fmt.Errorf("distributor %s: generator: %w", x.def.Name, err)
	}
	return list, nil
}

func (x *Distributor) backoff() *backoff.Backoff {
	return backoff.New(x.cfg.RetryMin, x.cfg.RetryMax)
}

// RunAll runs every definition in one process, each with its own election,
// until ctx ends, and returns once all have given up leadership. A
// definition that cannot run is reported at once, before any starts.
func RunAll(ctx context.Context, cfg Config, defs []Definition) error {
	var ds []*Distributor
	for _, d := range defs {
		x, err := New(cfg, d)
		if err != nil {
			return err
		}
		ds = append(ds, x)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, x := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = x.Run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
