package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// DistributorConfig is a distributor daemon's configuration. Start from
// NewDistributorConfig.
//
// The distributor daemon is also where the maintenance services may run
// (engine/maintenance: the cleanup of finished jobs, the index pump, the
// scheduler and the reaper): every distributor process with Maintenance
// set contends in the one maintenance election, with the controllers
// (StartController), and the elected one runs them. Give every such
// process the same Cleanup, Scheduler, Reaper and Elasticsearch settings:
// the elected one applies its own.
type DistributorConfig struct {
	// ZK is the ZooKeeper ensemble: Hosts, Root and SessionTimeout (the
	// leader lease is derived from it).
	ZK zkconn.Config
	// ConnectTimeout bounds the wait for a ZooKeeper session at start.
	ConnectTimeout time.Duration
	// Identifier names this process in the elections and in the jobs'
	// created-by; hostname/pid when empty.
	Identifier string
	// MaxBacklog caps queued and running jobs: no job is created beyond
	// it (0: no cap).
	MaxBacklog int
	// Elasticsearch, when set, records every created job in the outbox,
	// and the index pump runs here while this process leads the
	// maintenance services.
	Elasticsearch *index.Config
	// Distributors are the distributors to run, each with its own
	// election. May be empty when Maintenance is set.
	Distributors []distributor.Definition
	// Maintenance makes this process a member of the maintenance election.
	Maintenance bool
	// Cleanup configures the cleanup of finished jobs (a maintenance
	// service).
	Cleanup maintenance.CleanupConfig
	// Scheduler and Reaper configure the scheduler and the reaper
	// (maintenance services; zero values are their defaults).
	Scheduler scheduler.Config
	Reaper    scheduler.ReaperConfig
	// MaintenanceServices run with the built-in maintenance services
	// (embedders, tests).
	MaintenanceServices []maintenance.Service
	// Notify configures the notification sender (a maintenance service;
	// zero values are its defaults).
	Notify maintenance.NotifyConfig
	// Logger receives the daemon's log lines (zap.NewNop() when nil).
	Logger *zap.Logger
	// Clock is the schedules' clock (schedule.System when nil; tests use a
	// fake one).
	Clock schedule.Clock
}

// NewDistributorConfig returns the defaults of a distributor daemon, as
// the command line has them: no distributor yet, hosting maintenance.
func NewDistributorConfig() DistributorConfig {
	return DistributorConfig{
		ZK:             zkconn.Config{Hosts: []string{zkconn.DefaultHosts}, Root: "/", SessionTimeout: zkconn.DefaultSessionTimeout},
		ConnectTimeout: DefaultConnectTimeout,
		MaxBacklog:     jobs.DefaultMaxBacklog,
		Maintenance:    true,
	}
}

// Validate reports the first thing wrong with cfg, as a *ConfigError. It
// contacts no server.
func (cfg DistributorConfig) Validate() error {
	if err := checkZK(cfg.ZK, cfg.ConnectTimeout); err != nil {
		return err
	}
	if cfg.MaxBacklog < 0 {
		return configErr("MaxBacklog", "must not be negative, got %d", cfg.MaxBacklog)
	}
	if len(cfg.Distributors) == 0 && !cfg.Maintenance {
		return configErr("Distributors", "nothing to run: no distributor, and maintenance is off")
	}
	seen := map[string]bool{}
	for _, d := range cfg.Distributors {
		if err := d.Normalized().Validate(); err != nil {
			return configErr("Distributors", "%s: %v", d.Name, err)
		}
		if seen[d.Name] {
			return configErr("Distributors", "%s is given twice", d.Name)
		}
		seen[d.Name] = true
	}
	if cfg.Maintenance {
		if err := cfg.Cleanup.Validate(); err != nil {
			return configErr("Cleanup", "%v", err)
		}
	}
	return checkES(cfg.Elasticsearch)
}

// Distributor is a running distributor daemon: a ZooKeeper session, its
// distributors each contending in its own election, and its part in the
// maintenance election.
type Distributor struct {
	names   []string
	m       *maintenance.Maintainer // nil without maintenance
	log     *zap.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers cleanups

	once sync.Once
	done chan struct{}
}

// StartDistributor starts a distributor daemon: it connects to ZooKeeper
// and starts contending for leadership of each distributor and of the
// maintenance services. ctx bounds the start only; stop the daemon with
// Shutdown or Stop. An error wrapping ErrConfig is about cfg.
func StartDistributor(ctx context.Context, cfg DistributorConfig) (_ *Distributor, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Identifier == "" {
		cfg.Identifier = distributor.DefaultIdentifier()
	}
	d := &Distributor{log: log, done: make(chan struct{})}
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
	// Jobs notify what is attached to their action (notification attach).
	store, err := openStore(zctx, conn, es, cfg.MaxBacklog, log, func(sc *jobs.StoreConfig) {
		sc.Notifications = notify.NewResolver(notify.NewStore(conn))
	})
	if err != nil {
		return nil, err
	}
	dcfg := distributor.Config{
		Conn: conn, Store: store, SessionTimeout: cfg.ZK.SessionTimeout,
		Identifier: cfg.Identifier, Logger: log, Clock: cfg.Clock,
	}
	var runs []func(context.Context) error
	for _, def := range cfg.Distributors {
		x, err := distributor.New(dcfg, def)
		if err != nil {
			return nil, configErr("Distributors", "%v", err)
		}
		runs = append(runs, x.Run)
		d.names = append(d.names, def.Name)
	}
	if cfg.Maintenance {
		d.m, err = maintenance.New(maintenance.Config{
			Conn: conn, Store: store, Index: es, Identifier: cfg.Identifier, SessionTimeout: cfg.ZK.SessionTimeout,
			Logger: log, Clock: cfg.Clock, Cleanup: cfg.Cleanup, Scheduler: cfg.Scheduler, Reaper: cfg.Reaper,
			Notify: cfg.Notify, Services: cfg.MaintenanceServices,
		})
		if errors.Is(err, maintenance.ErrConfig) {
			return nil, configErr("Cleanup", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, d.m.Run)
	}

	runCtx, stop := context.WithCancel(context.Background())
	d.cancel = stop
	for _, run := range runs {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := run(runCtx); err != nil {
				log.Error("a distributor stopped", zap.Error(err))
			}
		}()
	}
	fields := []zap.Field{zap.Strings("distributors", d.names), zap.String("identifier", cfg.Identifier)}
	if d.m != nil {
		fields = append(fields, zap.Strings("maintenance", d.m.Services()))
	}
	log.Info("distributor daemon started", fields...)
	d.closers = undo
	return d, nil
}

// Distributors returns the names of the distributors this daemon runs.
func (d *Distributor) Distributors() []string { return append([]string(nil), d.names...) }

// Maintenance returns this daemon's part in the maintenance election, nil
// when it does not host maintenance.
func (d *Distributor) Maintenance() *maintenance.Maintainer { return d.m }

// Shutdown gives up every leadership (the election nodes are deleted, so
// another instance takes over at once), stops the maintenance services and
// closes the ZooKeeper session. When ctx ends first (ZooKeeper does not
// answer), the session is closed at once, which ends the leaderships too;
// the goroutines still withdrawing then end on their own. It returns once
// stopped; calling it again waits for the first call.
func (d *Distributor) Shutdown(ctx context.Context) {
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
		d.log.Info("distributor daemon stopped")
		close(d.done)
	})
	<-d.done
}

// Stop gives up every leadership and stops; see Shutdown.
func (d *Distributor) Stop() { d.Shutdown(context.Background()) }

// Done is closed once the daemon has stopped.
func (d *Distributor) Done() <-chan struct{} { return d.done }

// DumpState logs a summary line (the distributors, whether this process
// leads the maintenance services) and one line per group of goroutines
// with the same stack (see LogDump).
func (d *Distributor) DumpState() {
	fields := []zap.Field{zap.String("daemon", "distributor"), zap.Strings("distributors", d.names)}
	if d.m != nil {
		fields = append(fields, zap.Bool("maintenance-leader", d.m.Leading()), zap.Strings("maintenance", d.m.Services()))
	}
	dump(d.log, nil, fields...)
}
