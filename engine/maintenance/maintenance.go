// Package maintenance runs the cluster's leader-run services: small
// services with Start and Stop, one file per concern (cleanup.go deletes
// finished jobs, pump.go indexes the outbox, scheduler.go runs the
// scheduler and the reaper), started together on the one member of the
// cluster that wins the maintenance election and stopped together when it
// loses it.
//
// Every process that hosts maintenance contends in one election,
// <root>/election/maintenance (engine/election: kazoo's Election layout,
// leadership as a lease shorter than the session). A service is started
// with the leader context: it ends the moment leadership is in doubt, and
// election.TermOf(ctx) gives the term for side effects that must not
// outlive it (Check before them, Fence in the same multi).
//
// Adding a service is one file: it defines the service and registers its
// constructor from an init function; a service with settings adds a field
// to Config for them.
package maintenance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// ElectionName is the election every host of the maintenance services
// contends in: <root>/election/maintenance. No distributor may take the
// name (engine/distributor reserves it).
const ElectionName = "maintenance"

// ErrConfig is wrapped by every error about the maintenance settings.
var ErrConfig = errors.New("maintenance: bad configuration")

// Back-off bounds of a service pass that failed and of an election that
// ended on its own.
const (
	retryMin = time.Second
	retryMax = time.Minute
)

// Service is one leader-run service.
type Service interface {
	// Name names the service in log lines and state nodes.
	Name() string
	// Start starts the service's work in goroutines of its own and
	// returns. ctx is the leader context: it ends when leadership is lost
	// or given up. An error gives leadership up (another member may do
	// better) and the election is contended again after a back-off.
	Start(ctx context.Context) error
	// Stop ends the work and returns once every goroutine Start started has
	// returned. The service may be started again, on a later term.
	Stop()
}

// Config is what the maintenance services of one member run with. The
// service settings (Cleanup, Pump) should be the same on every member: the
// elected one applies its own.
type Config struct {
	// Conn is the member's ZooKeeper session (required).
	Conn *zkconn.Conn
	// Store is the job store on Conn (required).
	Store *jobs.Store
	// Index is the Elasticsearch client; nil when indexing is off, and then
	// this member runs no index pump.
	Index *index.Client
	// Identifier names this member in the election (default
	// hostname/pid).
	Identifier string
	// SessionTimeout is the session timeout Conn was dialled with; the
	// leader lease is derived from it.
	SessionTimeout time.Duration
	// Logger receives the services' log lines.
	Logger *zap.Logger
	// Clock is the services' clock for their schedules (schedule.System
	// when nil).
	Clock schedule.Clock
	// Cleanup configures the cleanup of finished jobs.
	Cleanup CleanupConfig
	// Containers configures the repair of sliced containers left behind.
	Containers ContainersConfig
	// Pump configures the index pump (Name defaults to Identifier).
	Pump index.PumpOptions
	// Scheduler and Reaper configure the scheduler and the reaper (their
	// Store and Logger are this Config's; zero values are their defaults).
	Scheduler scheduler.Config
	Reaper    scheduler.ReaperConfig
	// Workflows configures the workflow service (engine/workflow).
	Workflows WorkflowsConfig
	// Notify configures the notification sender (engine/notify).
	Notify NotifyConfig
	// Services are started after the built-in ones, on the same terms
	// (embedders, tests).
	Services []Service
}

// builtin is a registered service constructor. It returns a nil Service
// when the service is not configured on this member (the pump without
// Elasticsearch, a disabled cleanup).
type builtin struct {
	name  string
	build func(cfg Config) (Service, error)
}

var builtins []builtin

// register adds a built-in service; each service's file calls it from an
// init function. Services start in registration order (the files' order)
// and stop in reverse.
func register(name string, build func(cfg Config) (Service, error)) {
	builtins = append(builtins, builtin{name, build})
}

// Maintainer is one member's part in the maintenance election and the
// services it runs while it leads.
type Maintainer struct {
	cfg      Config
	services []Service
	log      *zap.Logger
	leading  atomic.Bool
}

// New checks cfg and builds the services. It contacts no server.
func New(cfg Config) (*Maintainer, error) {
	if cfg.Conn == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: a ZooKeeper connection and a job store are required", ErrConfig)
	}
	if cfg.Identifier == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.Identifier = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = schedule.System
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = zkconn.DefaultSessionTimeout
	}
	m := &Maintainer{cfg: cfg, log: cfg.Logger.Named("maintenance").With(zap.String("identifier", cfg.Identifier))}
	for _, b := range builtins {
		s, err := b.build(cfg)
		if err != nil {
			return nil, err
		}
		if s != nil {
			m.services = append(m.services, s)
		}
	}
	for _, s := range cfg.Services {
		if s == nil {
			return nil, fmt.Errorf("%w: a nil service", ErrConfig)
		}
		m.services = append(m.services, s)
	}
	return m, nil
}

// Services returns the names of the services this member runs when it
// leads, in start order.
func (m *Maintainer) Services() []string {
	out := make([]string, len(m.services))
	for i, s := range m.services {
		out[i] = s.Name()
	}
	return out
}

// Leading reports whether this member leads and every service has started.
func (m *Maintainer) Leading() bool { return m.leading.Load() }

// Run contends in the maintenance election until ctx ends, running the
// services while it leads, and returns nil once it has stopped them and
// given up its election node. An election that ends on its own (a service
// that failed to start) is contended again after a back-off.
func (m *Maintainer) Run(ctx context.Context) error {
	m.log.Info("contending for the maintenance services", zap.Strings("services", m.Services()))
	bo := backoff.New(retryMin, retryMax)
	for ctx.Err() == nil {
		e := election.New(m.cfg.Conn, ElectionName, m.cfg.Identifier, m.cfg.Logger, election.WithSessionTimeout(m.cfg.SessionTimeout))
		err := e.Run(ctx, m.lead)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, election.ErrConfig) {
			return err
		}
		m.log.Warn("the maintenance election ended; contending again after a back-off", zap.Error(err))
		bo.Wait(ctx)
	}
	return nil
}

// lead is the leader function: it starts every service, waits for the term
// to end, and stops them in reverse order.
func (m *Maintainer) lead(ctx context.Context) error {
	var started []Service
	stopAll := func() {
		for i := len(started) - 1; i >= 0; i-- {
			m.stop(started[i])
		}
	}
	for _, s := range m.services {
		if err := m.start(ctx, s); err != nil {
			stopAll()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			m.log.Error("a maintenance service did not start; giving up leadership", zap.String("service", s.Name()), zap.Error(err))
			return fmt.Errorf("maintenance: starting %s: %w", s.Name(), err)
		}
		started = append(started, s)
	}
	m.leading.Store(true)
	m.log.Info("leading: maintenance services started", zap.Strings("services", m.Services()))
	warnUnpumped(ctx, m.cfg, m.log)
	<-ctx.Done()
	m.leading.Store(false)
	stopAll()
	m.log.Info("maintenance services stopped", zap.NamedError("reason", context.Cause(ctx)))
	return context.Cause(ctx)
}

// start starts s, turning a panic into an error.
func (m *Maintainer) start(ctx context.Context, s Service) (err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("a maintenance service panicked in Start", zap.String("service", s.Name()), zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return s.Start(ctx)
}

// stop stops s; a panic is logged, so the other services still stop.
func (m *Maintainer) stop(s Service) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("a maintenance service panicked in Stop", zap.String("service", s.Name()), zap.Any("panic", r), zap.String("stack", string(debug.Stack())))
		}
	}()
	s.Stop()
}

// Func returns a service that runs fn in a goroutine of its own from Start
// until Stop; fn must return once its context ends.
func Func(name string, fn func(ctx context.Context)) Service {
	return &funcService{name: name, fn: fn}
}

type funcService struct {
	name string
	fn   func(ctx context.Context)
	worker
}

func (f *funcService) Name() string                    { return f.name }
func (f *funcService) Start(ctx context.Context) error { return f.start(ctx, f.fn) }
func (f *funcService) Stop()                           { f.stop() }

// worker runs one function in a goroutine between start and stop; the
// built-in services embed it.
type worker struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

var errStarted = errors.New("maintenance: service already started")

func (w *worker) start(ctx context.Context, fn func(ctx context.Context)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return errStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w.cancel, w.done = cancel, done
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return nil
}

func (w *worker) stop() {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.cancel, w.done = nil, nil
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
