package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jobengine/jobengine/engine/scheduler"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/dashboard"
	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/version"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ControllerConfig is a controller daemon's configuration: the HTTP API
// and, when Maintenance is set, its part in the election of the leader-run
// services. Start from NewControllerConfig.
type ControllerConfig struct {
	// ZK is the ZooKeeper ensemble.
	ZK zkconn.Config
	// ConnectTimeout bounds the wait for a ZooKeeper session at start.
	ConnectTimeout time.Duration
	// Identifier names this controller in the maintenance election and in
	// /api/v1/ping; hostname/pid when empty.
	Identifier string
	// Listen is the API's address (host:port; port 0 picks a free one).
	Listen string
	// TLSCert and TLSKey are PEM files: with both the API is served over
	// HTTPS. Without them it is plain HTTP, which is refused on anything
	// but a loopback address unless InsecureListen is set (behind a
	// proxy that terminates TLS).
	TLSCert, TLSKey string
	// InsecureListen allows plain HTTP on a non-loopback address.
	InsecureListen bool
	// MaxBacklog caps queued and running jobs for the jobs the API creates.
	MaxBacklog int
	// Elasticsearch, when set, is the history the API reads and the index
	// the pump fills while this controller leads.
	Elasticsearch *index.Config
	// Maintenance makes this controller a member of the maintenance
	// election: the elected one runs the leader-run services.
	Maintenance bool
	// Cleanup configures the cleanup of finished jobs.
	Cleanup maintenance.CleanupConfig
	// Scheduler and Reaper configure the scheduler and the reaper, which
	// run with the other maintenance services on the elected member.
	Scheduler scheduler.Config
	Reaper    scheduler.ReaperConfig
	// Workflows and Notify configure the workflow service and the
	// notification sender (maintenance services; zero values are their
	// defaults).
	Workflows maintenance.WorkflowsConfig
	Notify    maintenance.NotifyConfig
	// MaintenanceServices run with the built-in ones (embedders, tests).
	MaintenanceServices []maintenance.Service
	// CredentialKey seals the secrets of credentials created through the
	// API (nil: the API creates none).
	CredentialKey *credential.Key
	// SessionLifetime is how long a login session lasts (API default
	// when 0).
	SessionLifetime time.Duration
	// Logger receives the daemon's log lines (zap.NewNop() when nil).
	Logger *zap.Logger
}

// DefaultControllerListen is the API's address by default: loopback only.
const DefaultControllerListen = "127.0.0.1:8052"

// NewControllerConfig returns the defaults of a controller.
func NewControllerConfig() ControllerConfig {
	return ControllerConfig{
		ZK:             zkconn.Config{Hosts: []string{zkconn.DefaultHosts}, Root: "/", SessionTimeout: zkconn.DefaultSessionTimeout},
		ConnectTimeout: DefaultConnectTimeout,
		Listen:         DefaultControllerListen,
		MaxBacklog:     jobs.DefaultMaxBacklog,
		Maintenance:    true,
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
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return configErr("Listen", "%q: want host:port, such as 127.0.0.1:8052 or :8443", cfg.Listen)
	}
	switch {
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return configErr("TLSCert", "give both a certificate and its key, or neither")
	case cfg.TLSCert != "":
		if _, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			return configErr("TLSCert", "%v", err)
		}
	case !cfg.InsecureListen && !loopback(host):
		return configErr("Listen", "%q is not a loopback address: serve TLS (a certificate and key) or, behind a proxy that terminates TLS, allow plain HTTP explicitly", cfg.Listen)
	}
	if cfg.MaxBacklog < 0 {
		return configErr("MaxBacklog", "must not be negative, got %d", cfg.MaxBacklog)
	}
	if cfg.Maintenance {
		if err := cfg.Cleanup.Validate(); err != nil {
			return configErr("Cleanup", "%v", err)
		}
	}
	return checkES(cfg.Elasticsearch)
}

// loopback reports whether host names only this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Controller is a running controller daemon.
type Controller struct {
	addr    net.Addr
	m       *maintenance.Maintainer
	srv     *http.Server
	log     *zap.Logger
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers cleanups

	once sync.Once
	done chan struct{}
}

// StartController starts a controller: it connects to ZooKeeper, serves
// the API and contends for the maintenance services. ctx bounds the start
// only; stop it with Shutdown or Stop.
func StartController(ctx context.Context, cfg ControllerConfig) (_ *Controller, err error) {
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
	d := &Controller{log: log, done: make(chan struct{})}
	var undo cleanups
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, configErr("Listen", "%v", err)
	}
	undo.add(func() { _ = ln.Close() })
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
	// Jobs launched through the API notify what is attached to them, as
	// jobs of the other daemons do.
	store, err := openStore(zctx, conn, es, cfg.MaxBacklog, log, func(sc *jobs.StoreConfig) {
		sc.Notifications = notify.NewResolver(notify.NewStore(conn))
	})
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	d.cancel = stop
	undo.add(stop)
	handler, err := api.New(api.Config{Streams: runCtx,
		Conn: conn, Jobs: store, Index: es, Logger: log.Named("api"), Version: version.Version,
		SessionLifetime: cfg.SessionLifetime, SecureCookies: cfg.TLSCert != "", Identifier: cfg.Identifier,
		CredentialKey: cfg.CredentialKey,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Maintenance {
		// The scheduler's first pass over a large backlog reads one
		// document per pending job; ZooKeeper answers a session's requests
		// one at a time, so a second session shares those reads.
		var readConn *zkconn.Conn
		if readConn, err = dial(ctx, cfg.ZK, cfg.ConnectTimeout, log.Named("read")); err != nil {
			return nil, err
		}
		undo.add(readConn.Close)
		sc := cfg.Scheduler
		sc.Readers = append(sc.Readers, jobs.NewStore(readConn, jobs.StoreConfig{}))
		d.m, err = maintenance.New(maintenance.Config{
			Conn: conn, Store: store, Index: es, Identifier: cfg.Identifier, SessionTimeout: cfg.ZK.SessionTimeout,
			Logger: log, Cleanup: cfg.Cleanup, Scheduler: sc, Reaper: cfg.Reaper,
			Workflows: cfg.Workflows, Notify: cfg.Notify,
			Services: append([]maintenance.Service{expiryService(access.NewStore(conn, log.Named("access")), log)}, cfg.MaintenanceServices...),
		})
		if errors.Is(err, maintenance.ErrConfig) {
			return nil, configErr("Cleanup", "%v", err)
		}
		if err != nil {
			return nil, err
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.m.Run(runCtx); err != nil {
				log.Error("the maintenance election stopped", zap.Error(err))
			}
		}()
	}
	// The dashboard is served next to the API, from the binary itself.
	d.srv = &http.Server{Handler: dashboard.Handler(handler), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: zap.NewStdLog(log.Named("http"))}
	// Event streams end when the server shuts down, so that they do not
	// hold the shutdown up; other requests finish.
	d.srv.RegisterOnShutdown(stop)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		var err error
		if cfg.TLSCert != "" {
			err = d.srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = d.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the API server stopped", zap.Error(err))
		}
	}()
	d.addr = ln.Addr()
	d.closers = undo
	log.Info("controller started", zap.String("address", scheme+"://"+d.addr.String()), zap.String("identifier", cfg.Identifier),
		zap.Bool("maintenance", cfg.Maintenance))
	return d, nil
}

// ExpiryInterval is how often the leading controller deletes expired
// sessions and tokens (each is also refused, and deleted, when presented).
const ExpiryInterval = time.Hour

// expiryService deletes expired login sessions and tokens, so that they do
// not pile up in ZooKeeper.
func expiryService(store *access.Store, log *zap.Logger) maintenance.Service {
	return maintenance.Func("access-expiry", func(ctx context.Context) {
		t := time.NewTicker(ExpiryInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := store.PurgeExpired(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("expired sessions and tokens not deleted", zap.Error(err))
			case n > 0:
				log.Info("expired sessions and tokens deleted", zap.Int("deleted", n))
			}
		}
	})
}

// Addr returns the address the API listens on.
func (d *Controller) Addr() net.Addr { return d.addr }

// Maintenance returns this controller's part in the maintenance election,
// nil when it does not host maintenance.
func (d *Controller) Maintenance() *maintenance.Maintainer { return d.m }

// Shutdown stops accepting requests, lets those in flight finish (event
// streams end with ctx), gives up the maintenance leadership and closes
// the ZooKeeper session. Calling it again waits for the first call.
func (d *Controller) Shutdown(ctx context.Context) {
	d.once.Do(func() {
		if err := d.srv.Shutdown(ctx); err != nil {
			_ = d.srv.Close()
		}
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

// Stop stops at once; see Shutdown.
func (d *Controller) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Shutdown(ctx)
}

// Done is closed once the daemon has stopped.
func (d *Controller) Done() <-chan struct{} { return d.done }

// DumpState logs what this controller runs — its address, whether it
// leads the maintenance services — and its goroutines (see LogDump).
func (d *Controller) DumpState() {
	fields := []zap.Field{zap.String("daemon", "controller"), zap.String("address", d.addr.String())}
	if d.m != nil {
		fields = append(fields, zap.Bool("maintenance-leader", d.m.Leading()), zap.Strings("maintenance", d.m.Services()))
	}
	dump(d.log, nil, fields...)
}
