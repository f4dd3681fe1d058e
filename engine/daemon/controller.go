package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ControllerConfig is a controller daemon's configuration. Start from
// NewControllerConfig.
//
// The controller is the control plane's daemon: it hosts the maintenance
// services (engine/maintenance: the scheduler and the reaper, the cleanup
// of finished jobs, the index pump) and contends in the one maintenance
// election, as distributor daemons do unless told not to; the elected
// member runs them all. Give every member the same settings: the elected
// one applies its own.
type ControllerConfig struct {
	// ZK is the ZooKeeper ensemble: Hosts, Root and SessionTimeout (the
	// leader lease is derived from it).
	ZK zkconn.Config
	// ConnectTimeout bounds the wait for a ZooKeeper session at start.
	ConnectTimeout time.Duration
	// Identifier names this process in the election; hostname/pid when
	// empty.
	Identifier string
	// Elasticsearch, when set, records every job version the services
	// write in the outbox, and the index pump runs here while this
	// process leads.
	Elasticsearch *index.Config
	// Cleanup configures the cleanup of finished jobs.
	Cleanup maintenance.CleanupConfig
	// Scheduler and Reaper configure the scheduler and the reaper.
	Scheduler scheduler.Config
	Reaper    scheduler.ReaperConfig
	// MaintenanceServices run with the built-in ones (embedders, tests).
	MaintenanceServices []maintenance.Service
	// Logger receives the daemon's log lines (zap.NewNop() when nil).
	Logger *zap.Logger
	// Clock is the services' clock (schedule.System when nil).
	Clock schedule.Clock
}

// NewControllerConfig returns the defaults of a controller, as the command
// line has them.
func NewControllerConfig() ControllerConfig {
	return ControllerConfig{
		ZK:             zkconn.Config{Hosts: []string{zkconn.DefaultHosts}, Root: "/", SessionTimeout: zkconn.DefaultSessionTimeout},
		ConnectTimeout: DefaultConnectTimeout,
		Scheduler: scheduler.Config{
			Interval: scheduler.DefaultInterval, MaxStarts: scheduler.DefaultMaxStarts, PassDeadline: scheduler.DefaultPassDeadline,
		},
		Reaper: scheduler.ReaperConfig{Interval: scheduler.DefaultReapInterval, Grace: scheduler.DefaultReapGrace},
	}
}

// Validate reports the first thing wrong with cfg, as a *ConfigError. It
// contacts no server.
func (cfg ControllerConfig) Validate() error {
	if err := checkZK(cfg.ZK, cfg.ConnectTimeout); err != nil {
		return err
	}
	if err := cfg.Cleanup.Validate(); err != nil {
		return configErr("Cleanup", "%v", err)
	}
	switch s, r := cfg.Scheduler, cfg.Reaper; {
	case s.Interval < 0:
		return configErr("Scheduler.Interval", "must not be negative, got %s", s.Interval)
	case s.MaxStarts < 0:
		return configErr("Scheduler.MaxStarts", "must not be negative, got %d", s.MaxStarts)
	case s.PassDeadline < 0:
		return configErr("Scheduler.PassDeadline", "must not be negative, got %s", s.PassDeadline)
	case r.Interval < 0:
		return configErr("Reaper.Interval", "must not be negative, got %s", r.Interval)
	}
	return checkES(cfg.Elasticsearch)
}

// Controller is a running controller daemon: a ZooKeeper session and its
// part in the maintenance election.
type Controller struct {
	m       *maintenance.Maintainer
	log     *zap.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers cleanups

	once sync.Once
	done chan struct{}
}

// StartController starts a controller daemon: it connects to ZooKeeper and
// contends for the maintenance services. ctx bounds the start only; stop
// the daemon with Shutdown or Stop. An error wrapping ErrConfig is about
// cfg.
func StartController(ctx context.Context, cfg ControllerConfig) (_ *Controller, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d := &Controller{log: log, done: make(chan struct{})}
	var undo cleanups
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	conn, err := dial(ctx, cfg.ZK, cfg.ConnectTimeout, log)
	if err != nil {
		return nil, err
	}
	undo.add(conn.Close)
	es, err := openIndex(cfg.Elasticsearch, log, &undo)
	if err != nil {
		return nil, err
	}
	zctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	store, err := openStore(zctx, conn, es, 0, log, nil)
	if err != nil {
		return nil, err
	}
	d.m, err = maintenance.New(maintenance.Config{
		Conn: conn, Store: store, Index: es, Identifier: cfg.Identifier, SessionTimeout: cfg.ZK.SessionTimeout,
		Logger: log, Clock: cfg.Clock, Cleanup: cfg.Cleanup, Scheduler: cfg.Scheduler, Reaper: cfg.Reaper,
		Services: cfg.MaintenanceServices,
	})
	if errors.Is(err, maintenance.ErrConfig) {
		return nil, configErr("Maintenance", "%v", err)
	}
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	d.cancel = stop
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.m.Run(runCtx); err != nil {
			log.Error("the maintenance services stopped", zap.Error(err))
		}
	}()
	log.Info("controller started", zap.Strings("maintenance", d.m.Services()))
	d.closers = undo
	return d, nil
}

// Maintenance returns this daemon's part in the maintenance election.
func (d *Controller) Maintenance() *maintenance.Maintainer { return d.m }

// Shutdown stops the services, gives up leadership (another controller
// takes over at once) and closes the ZooKeeper session; when ctx ends
// first, the session is closed at once. It returns once stopped; calling
// it again waits for the first call.
func (d *Controller) Shutdown(ctx context.Context) {
	d.once.Do(func() {
		d.cancel()
		stopped := make(chan struct{})
		go func() { d.wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			d.log.Warn("stopping at once: closing the ZooKeeper session")
		}
		d.closers.run()
		d.log.Info("controller stopped")
		close(d.done)
	})
	<-d.done
}

// Stop stops the controller; see Shutdown.
func (d *Controller) Stop() { d.Shutdown(context.Background()) }

// Done is closed once the daemon has stopped.
func (d *Controller) Done() <-chan struct{} { return d.done }

// DumpState logs whether this controller leads the maintenance services,
// and its goroutines (see LogDump).
func (d *Controller) DumpState() {
	dump(d.log, nil, zap.String("daemon", "controller"),
		zap.Bool("maintenance-leader", d.m.Leading()), zap.Strings("maintenance", d.m.Services()))
}
