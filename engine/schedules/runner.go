package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
	"github.com/jobengine/jobengine/internal/loop"
)

// RunnerName names the runner among leader-run services.
const RunnerName = "schedules"

// DefaultResync is how often the runner reads the schedules when no watch
// fired: a safety net for changes made by hand.
const DefaultResync = time.Minute

// MsgOccurrencesDropped is the message of the line that says occurrences
// missed while no leader ran were dropped by the catch-up policy; its
// fields FieldFirstMissed and FieldRunning are the first occurrence
// dropped and the one run instead (absent with catch-up "none"). Checkers
// read these constants, never the wording.
const (
	MsgOccurrencesDropped = "occurrences missed while no leader ran were dropped by the catch-up policy"
	FieldFirstMissed      = "first-missed"
	FieldRunning          = "running"
)

// errFenced: a write refused because this member's election node is gone.
var errFenced = fmt.Errorf("%w: the election fence failed", election.ErrNotLeader)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Store is the schedule store (required).
	Store *Store
	// Jobs is the job store: refused launches are recorded there
	// (required).
	Jobs *jobs.Store
	// Launch launches an occurrence (required): JobLauncher, or a
	// template launcher.
	Launch LaunchFunc
	// Identifier names this member in the jobs' created-by.
	Identifier string
	// Clock is the schedules' clock (schedule.System when nil).
	Clock schedule.Clock
	// Logger receives the runner's log lines.
	Logger *zap.Logger
	// Resync re-reads the schedules even when no watch fired
	// (DefaultResync when 0).
	Resync time.Duration
}

// Runner is the leader-run service that launches the occurrences of the
// enabled schedules, each once (see the package comment). It is a service
// with Start and Stop, run by whichever member leads.
type Runner struct {
	cfg RunnerConfig
	log *zap.Logger

	loop loop.Loop
}

// NewRunner returns a runner; it contacts no server.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Store == nil || cfg.Jobs == nil || cfg.Launch == nil {
		return nil, fmt.Errorf("%w: the runner needs a schedule store, a job store and a launcher", ErrInvalid)
	}
	if cfg.Clock == nil {
		cfg.Clock = schedule.System
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	return &Runner{cfg: cfg, log: cfg.Logger.Named("schedules")}, nil
}

// Name names the service.
func (r *Runner) Name() string { return RunnerName }

// Start starts launching under the leader context ctx (its term fences
// every write) and returns.
func (r *Runner) Start(ctx context.Context) error {
	term := election.TermOf(ctx)
	if term == nil {
		return fmt.Errorf("%w: the runner runs under a leader's term", ErrInvalid)
	}
	if err := r.cfg.Store.Ensure(ctx); err != nil {
		return err
	}
	if !r.loop.Start(ctx, func(ctx context.Context) { r.run(ctx, term) }) {
		return fmt.Errorf("%w: the runner is running", ErrInvalid)
	}
	return nil
}

// Stop ends the work and returns once the runner's goroutine has.
func (r *Runner) Stop() {
	r.loop.Stop()
}

// run is the runner's loop: one pass over the schedules, then sleep until
// the earliest next occurrence, a change of the schedules, or the resync.
func (r *Runner) run(ctx context.Context, term *election.Term) {
	r.log.Info("launching schedules")
	defer r.log.Info("no longer launching schedules")
	bo := backoff.New(time.Second, time.Minute)
	var changed <-chan zk.Event     // kept until it fires: one watch at a time
	reported := map[string]string{} // schedule → the last problem logged
	for ctx.Err() == nil {
		if err := term.Check(); err != nil {
			return
		}
		if changed == nil {
			err := zkconn.Do(ctx, func() error {
				var err error
				_, _, changed, err = r.cfg.Store.Conn().GetW(r.cfg.Store.Dir())
				return err
			})
			if err != nil {
				changed = nil
				if ctx.Err() == nil {
					r.log.Warn("cannot watch the schedules; retrying", zap.Error(err))
					bo.Wait(ctx)
				}
				continue
			}
		}
		wake, err := r.pass(ctx, term, reported)
		if errors.Is(err, election.ErrNotLeader) || ctx.Err() != nil {
			return
		}
		if err != nil {
			r.log.Warn("a schedule pass failed; retrying after a back-off", zap.Error(err))
			wake = r.cfg.Clock.Now().Add(bo.Next())
		} else {
			bo.Reset()
		}
		resync := r.cfg.Clock.Now().Add(r.cfg.Resync)
		if wake.IsZero() || wake.After(resync) {
			wake = resync
		}
		timer := r.cfg.Clock.NewTimer(wake.Sub(r.cfg.Clock.Now()))
		select {
		case <-ctx.Done():
		case <-changed:
			changed = nil
		case <-timer.C():
		}
		timer.Stop()
	}
}

// pass handles every enabled schedule once: launches what is due, and
// returns the earliest next occurrence.
func (r *Runner) pass(ctx context.Context, term *election.Term, reported map[string]string) (time.Time, error) {
	list, problems, err := r.cfg.Store.List(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, p := range problems {
		if reported[p.Name] != p.Err {
			reported[p.Name] = p.Err
			r.log.Error("a stored schedule is not valid: skipped", zap.String("schedule", p.Name), zap.String("problem", p.Err))
		}
	}
	var wake time.Time
	var failed error
	for _, sc := range list {
		if !sc.Enabled {
			continue
		}
		w, err := r.handle(ctx, term, sc)
		if errors.Is(err, election.ErrNotLeader) {
			return time.Time{}, err
		}
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("schedule %s: %w", sc.Name, err))
			continue
		}
		if !w.IsZero() && (wake.IsZero() || w.Before(wake)) {
			wake = w
		}
	}
	return wake, failed
}

// handle launches what is due of one schedule and returns its next
// occurrence.
func (r *Runner) handle(ctx context.Context, term *election.Term, sc *Schedule) (time.Time, error) {
	parsed, err := sc.Parsed()
	if err != nil {
		return time.Time{}, err // Validate has checked it
	}
	state, ver, err := r.cfg.Store.ReadState(ctx, sc.Name)
	if err != nil {
		return time.Time{}, err
	}
	// Occurrences count from the last one handled, and never from before
	// the schedule was created, enabled or given its rule.
	last := sc.Since
	if state.UID == sc.UID {
		if t := state.LastTick(); t.After(last) {
			last = t
		}
	}
	log := r.log.With(zap.String("schedule", sc.Name))
	d := schedule.Due(parsed, last, r.cfg.Clock.Now(), sc.catchUp())
	if !d.FirstMissed.IsZero() {
		fields := []zap.Field{zap.String(FieldFirstMissed, schedule.Tick{At: d.FirstMissed}.ID()), zap.String("catch-up", string(sc.catchUp()))}
		if d.Run {
			fields = append(fields, zap.String(FieldRunning, d.Tick.ID()))
		}
		log.Warn(MsgOccurrencesDropped, fields...)
	}
	if !d.Run {
		if d.FirstMissed.IsZero() {
			return d.Wake, nil
		}
		// Record the drop, so it is logged once.
		latest := latestBefore(parsed, last, r.cfg.Clock.Now())
		if latest.IsZero() {
			return d.Wake, nil
		}
		next := State{UID: sc.UID, Tick: schedule.Tick{At: latest}.ID(), Done: r.cfg.Clock.Now().UTC(), By: r.cfg.Identifier,
			Error: "missed while no leader ran; skipped by catch-up none"}
		if err := r.cfg.Store.writeState(ctx, sc.Name, next, ver, term.Fence()); err != nil && !errors.Is(err, errStateChanged) {
			return time.Time{}, err
		}
		return d.Wake, nil
	}
	if err := term.Check(); err != nil {
		return time.Time{}, err
	}
	next, err := r.launch(ctx, term, sc, d.Tick, log)
	if err != nil {
		return time.Time{}, err
	}
	if err := r.cfg.Store.writeState(ctx, sc.Name, next, ver, term.Fence()); err != nil {
		if errors.Is(err, errStateChanged) {
			return r.cfg.Clock.Now(), nil // read again at once
		}
		return time.Time{}, err
	}
	// There may be another occurrence due already (a slow launch): ask
	// again at once rather than at the wake computed before it.
	if n := parsed.Next(d.Tick.At); !n.IsZero() && !n.After(r.cfg.Clock.Now()) {
		return r.cfg.Clock.Now(), nil
	}
	return d.Wake, nil
}

// latestBefore returns the last occurrence in (after, upTo], zero if none.
func latestBefore(s schedule.Schedule, after, upTo time.Time) time.Time {
	d := schedule.Due(s, after, upTo, schedule.CatchUpLast)
	if !d.Run {
		return time.Time{}
	}
	return d.Tick.At
}

// launch launches one occurrence and returns the state that records it.
func (r *Runner) launch(ctx context.Context, term *election.Term, sc *Schedule, tick schedule.Tick, log *zap.Logger) (State, error) {
	o := Occurrence{Schedule: sc, Tick: tick, JobID: JobID(sc.UID, tick), CreatedBy: CreatedBy(sc.Name, r.cfg.Identifier), Fence: term.Fence()}
	state := State{UID: sc.UID, Tick: tick.ID(), By: r.cfg.Identifier, Job: o.JobID}
	fields := []zap.Field{zap.String("occurrence", tick.ID()), zap.String("job", o.JobID)}
	j, err := r.cfg.Launch(ctx, o)
	var opErr *zkconn.OpError
	switch {
	case err == nil:
		state.Job = j.ID
		log.Info("schedule launched", fields...)
	case errors.As(err, &opErr):
		return state, fmt.Errorf("%w: %v", errFenced, opErr.Err)
	case errors.Is(err, jobs.ErrDuplicate):
		if r.exists(ctx, o.JobID) {
			log.Info("occurrence already launched by an earlier leader", fields...)
		} else {
			state.Job = ""
			state.Error = "skipped: " + err.Error()
			log.Info("occurrence skipped: a live job holds its unique key", append(fields, zap.Error(err))...)
		}
	case refused(err):
		state.Error = err.Error()
		_, ferr := r.cfg.Jobs.CreateFailed(ctx, o.refusedJob(), fmt.Sprintf("schedule %s, occurrence %s: %v", sc.Name, tick.ID(), err), o.Fence)
		switch {
		case ferr == nil, errors.Is(ferr, jobs.ErrDuplicate):
		case errors.As(ferr, &opErr):
			return state, fmt.Errorf("%w: %v", errFenced, opErr.Err)
		default:
			return state, fmt.Errorf("recording the refused launch: %w", ferr)
		}
		log.Warn("schedule launch refused; a FAILED job says why", append(fields, zap.Error(err))...)
	default:
		return state, err
	}
	state.Done = r.cfg.Clock.Now().UTC()
	return state, nil
}

// exists reports whether the job document id exists.
func (r *Runner) exists(ctx context.Context, id string) bool {
	_, _, err := r.cfg.Jobs.Get(ctx, id)
	return err == nil
}

// catchUp returns the schedule's catch-up policy with its default.
func (s *Schedule) catchUp() schedule.CatchUp {
	if s.CatchUp == "" {
		return schedule.CatchUpLast
	}
	return s.CatchUp
}
