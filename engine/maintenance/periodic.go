package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// StateDir is the directory of the services' state nodes, under the
// connection's root: <root>/maintenance/<service>.
const StateDir = "maintenance"

// State is what a periodic service that remembers its ticks keeps in
// <root>/maintenance/<service> (JSON) between leaders. Only the leader
// writes it, in a multi with its election fence.
type State struct {
	// Tick is the id of the last tick whose pass completed.
	Tick string `json:"tick"`
	// Done is when that pass completed.
	Done time.Time `json:"done"`
	// By is the identifier of the member that ran it.
	By string `json:"by"`
}

// StatePath returns the state node of the service called name.
func StatePath(conn *zkconn.Conn, name string) string { return conn.Path(StateDir, name) }

// ReadState reads a service's state and its znode version; a service that
// never completed a pass has the zero State and version -1. A state that is
// not valid JSON counts as none (the schedule starts afresh) and is
// replaced by the next write.
func ReadState(ctx context.Context, conn *zkconn.Conn, name string) (State, int32, error) {
	var (
		data []byte
		st   *zk.Stat
	)
	p := StatePath(conn, name)
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = conn.Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return State{}, -1, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("maintenance: reading %s: %w", p, err)
	}
	var s State
	if len(data) > 0 && json.Unmarshal(data, &s) != nil {
		return State{}, st.Version, nil
	}
	return s, st.Version, nil
}

// errStateChanged means the state node changed since it was read.
var errStateChanged = errors.New("maintenance: state changed concurrently")

// writeState writes s over version ver (-1: create) in one multi with the
// term's fence and returns the new version.
func writeState(ctx context.Context, conn *zkconn.Conn, name string, s State, ver int32, term *election.Term) (int32, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	p := StatePath(conn, name)
	if err := conn.EnsurePath(ctx, conn.Path(StateDir)); err != nil {
		return 0, fmt.Errorf("maintenance: creating %s: %w", conn.Path(StateDir), err)
	}
	var op interface{} = &zk.SetDataRequest{Path: p, Data: data, Version: ver}
	if ver < 0 {
		op = &zk.CreateRequest{Path: p, Data: data, Acl: zkconn.ACL}
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		res, err = conn.Multi(term.Fence(), op)
		return err
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i == 0:
			return 0, fmt.Errorf("%w: the election fence failed: %v", election.ErrNotLeader, opErr)
		case i == 1 && (errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNodeExists) || errors.Is(opErr, zk.ErrNoNode)):
			return 0, errStateChanged
		}
		return 0, fmt.Errorf("maintenance: writing %s: %w", p, opErr)
	}
	return ver + 1, nil
}

// periodicSpec describes a service that runs a pass on a schedule.
type periodicSpec struct {
	name     string
	schedule schedule.Spec
	catchUp  schedule.CatchUp
	// remember records each completed tick in the state node, so a new
	// leader runs the tick it finds missed (by catchUp) instead of waiting
	// for the next one: for passes far apart, such as a daily cleanup.
	// Without it, ticks count from the start of each term.
	remember bool
	// pass does one tick's work under the leader context. An error is
	// logged and the tick retried after a back-off while it is still due.
	pass func(ctx context.Context, tick schedule.Tick) error
}

// periodic is the Service of a periodicSpec.
type periodic struct {
	spec  periodicSpec
	sched schedule.Schedule
	cfg   Config
	log   *zap.Logger
	worker
}

func newPeriodic(cfg Config, spec periodicSpec) (*periodic, error) {
	s, err := schedule.Parse(spec.schedule)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, spec.name, err)
	}
	if spec.catchUp == "" {
		spec.catchUp = schedule.CatchUpLast
	}
	if _, err := schedule.ParseCatchUp(string(spec.catchUp)); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, spec.name, err)
	}
	log := cfg.Logger.Named("maintenance").Named(spec.name).With(zap.String("identifier", cfg.Identifier))
	return &periodic{spec: spec, sched: s, cfg: cfg, log: log}, nil
}

func (p *periodic) Name() string                    { return p.spec.name }
func (p *periodic) Start(ctx context.Context) error { return p.start(ctx, p.run) }
func (p *periodic) Stop()                           { p.stop() }

// run runs due passes until ctx ends.
func (p *periodic) run(ctx context.Context) {
	term := election.TermOf(ctx)
	clock := p.cfg.Clock
	bo := backoff.New(retryMin, retryMax)
	since := clock.Now() // ticks count from here until one completes
	var (
		last      time.Time
		ver       int32 = -1
		stateRead       = !p.spec.remember
	)
	p.log.Debug("started", zap.String("schedule", p.sched.String()))
	for ctx.Err() == nil {
		// A process that was frozen wakes up here before its timers have
		// told it that the term is over.
		if err := term.Check(); err != nil {
			<-ctx.Done() // the election ends the term
			return
		}
		if !stateRead {
			st, v, err := ReadState(ctx, p.cfg.Conn, p.spec.name)
			if err != nil {
				p.log.Warn("cannot read the service state; retrying", zap.Error(err))
				bo.Wait(ctx)
				continue
			}
			ver, stateRead = v, true
			if t, err := schedule.ParseTickID(st.Tick); err == nil && st.Tick != "" {
				last = t.At
			}
		}
		from := last
		if from.IsZero() {
			from = since
		}
		d := schedule.Due(p.sched, from, clock.Now(), p.spec.catchUp)
		if d.Run {
			err := p.runPass(ctx, d.Tick)
			if err == nil && p.spec.remember {
				st := State{Tick: d.Tick.ID(), Done: clock.Now().UTC(), By: p.cfg.Identifier}
				ver, err = writeState(ctx, p.cfg.Conn, p.spec.name, st, ver, term)
				if errors.Is(err, errStateChanged) {
					stateRead = false
				}
			}
			switch {
			case err == nil:
				last = d.Tick.At
				bo.Reset()
				continue
			case ctx.Err() != nil || errors.Is(err, election.ErrNotLeader):
				p.log.Info("leadership lost during a pass", zap.String("tick", d.Tick.ID()), zap.Error(err))
				<-ctx.Done()
				return
			}
			p.log.Warn("pass failed; retrying after a back-off", zap.String("tick", d.Tick.ID()), zap.Error(err))
			bo.Wait(ctx)
			continue
		}
		if d.Wake.IsZero() { // the schedule never fires again
			p.log.Warn("the schedule has no further tick")
			<-ctx.Done()
			return
		}
		if err := schedule.SleepUntil(ctx, clock, d.Wake); err != nil {
			return
		}
	}
}

// runPass runs one pass, turning a panic into an error.
func (p *periodic) runPass(ctx context.Context, tick schedule.Tick) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("pass panicked", zap.String("tick", tick.ID()), zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
			err = fmt.Errorf("%s: panic: %v", p.spec.name, r)
		}
	}()
	return p.spec.pass(ctx, tick)
}
