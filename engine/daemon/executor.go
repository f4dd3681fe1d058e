package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/pluginhost"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/remote"
	"github.com/jobengine/jobengine/engine/systemjob"
	"github.com/jobengine/jobengine/engine/version"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ExecutorConfig is an executor daemon's configuration. Start from
// NewExecutorConfig: Validate refuses zero values that have a default there.
type ExecutorConfig struct {
	// ZK is the ZooKeeper ensemble: Hosts, Root and SessionTimeout (the
	// Logger is derived from Logger).
	ZK zkconn.Config
	// ConnectTimeout bounds the wait for a ZooKeeper session at start.
	ConnectTimeout time.Duration
	// Name identifies the executor in the cluster (membership node, the
	// jobs it runs); hostname-pid when empty.
	Name string
	// Threads is the number of jobs run at once.
	Threads int
	// ActionTimeouts override actions' default timeouts, by action name.
	ActionTimeouts map[string]time.Duration
	// ShutdownGrace is how long running jobs may finish after Shutdown
	// before they are canceled and requeued.
	ShutdownGrace time.Duration
	// MaxBacklog caps queued and running jobs for the jobs this process
	// writes (0: no cap).
	MaxBacklog int
	// MetricsListen serves Prometheus metrics on this address (e.g.
	// ":9310", or "127.0.0.1:0" for a free port); empty: no server.
	MetricsListen string
	// Elasticsearch, when set, turns indexing on: every job version goes
	// to the outbox and live events to the job-events index. The index
	// pump runs on the member elected for the maintenance services (see
	// StartDistributor), not here.
	Elasticsearch *index.Config
	// Plugins says where plugin actions are found and how they run (Logger
	// is derived from Logger).
	Plugins pluginhost.Options
	// Registry holds the compiled-in actions; plugin actions are added to
	// it. Nil: action.Builtins(), or action.BuiltinsWithTests() when
	// EnableTestActions is set.
	Registry *action.Registry
	// EnableTestActions offers the built-in test actions (echo, fail, sleep,
	// dummy_test_action), which a production executor must not run just
	// because a job names one.
	EnableTestActions bool
	// CredentialKey opens the credentials jobs name (the Ansible action's
	// logins, vault passwords); nil: a job that names one fails.
	CredentialKey *credential.Key
	// RemoteCommand, when set, runs every job on the isolated nodes
	// RemoteNodes through this command, {node} replaced by a node's name,
	// e.g. "ssh -T {node} jobengine worker --keepalive-seconds 10".
	RemoteCommand string
	// RemoteNodes are the nodes of RemoteCommand.
	RemoteNodes []string
	// RemoteIdleTimeout fails a remote run whose stream sends nothing for
	// this long, keepalives included (0: never).
	RemoteIdleTimeout time.Duration
	// Logger receives the daemon's log lines (zap.NewNop() when nil).
	Logger *zap.Logger
	// Version is reported in the membership node.
	Version string
	// Groups are the instance groups the executor joins (default:
	// jobs.DefaultGroup).
	Groups []string
	// Capacity says how its capacity is derived, or sets it (default:
	// AWX's formula, instance.DefaultCapacitySettings).
	Capacity instance.CapacitySettings
	// Resources, when set, replace what the machine is detected to have
	// (tests).
	Resources *instance.Resources
}

// NewExecutorConfig returns the defaults of an executor, as the command
// line has them.
func NewExecutorConfig() ExecutorConfig {
	return ExecutorConfig{
		ZK:             zkconn.Config{Hosts: []string{zkconn.DefaultHosts}, Root: "/", SessionTimeout: zkconn.DefaultSessionTimeout},
		ConnectTimeout: DefaultConnectTimeout,
		Threads:        runtime.NumCPU(),
		ShutdownGrace:  2 * time.Minute,
		MaxBacklog:     jobs.DefaultMaxBacklog,
		Plugins: pluginhost.Options{
			Dir: pluginhost.DefaultDir, KillGrace: pluginhost.DefaultKillGrace, StartTimeout: pluginhost.DefaultStartTimeout,
		},
		Version:  version.Version,
		Capacity: instance.DefaultCapacitySettings(),
	}
}

// Validate reports the first thing wrong with cfg, as a *ConfigError. It
// contacts no server.
func (cfg ExecutorConfig) Validate() error {
	if err := checkZK(cfg.ZK, cfg.ConnectTimeout); err != nil {
		return err
	}
	switch {
	case strings.ContainsAny(cfg.Name, "/ \t\n"):
		return configErr("Name", "%q must not contain slashes or spaces", cfg.Name)
	case cfg.Threads < 1:
		return configErr("Threads", "must be at least 1, got %d", cfg.Threads)
	case cfg.ShutdownGrace <= 0:
		return configErr("ShutdownGrace", "must be positive, got %s", cfg.ShutdownGrace)
	case cfg.MaxBacklog < 0:
		return configErr("MaxBacklog", "must not be negative, got %d", cfg.MaxBacklog)
	case cfg.Plugins.KillGrace < 0:
		return configErr("Plugins.KillGrace", "must not be negative, got %s", cfg.Plugins.KillGrace)
	case cfg.Plugins.StartTimeout < 0:
		return configErr("Plugins.StartTimeout", "must not be negative, got %s", cfg.Plugins.StartTimeout)
	case cfg.RemoteCommand == "" && len(cfg.RemoteNodes) > 0:
		return configErr("RemoteNodes", "need RemoteCommand (--remote-command), the command that reaches a node's worker")
	case cfg.RemoteIdleTimeout < 0:
		return configErr("RemoteIdleTimeout", "must not be negative, got %s", cfg.RemoteIdleTimeout)
	}
	for _, g := range cfg.Groups {
		if err := jobs.ValidGroupName(g); err != nil {
			return configErr("Groups", "%v", err)
		}
	}
	if err := cfg.Capacity.Validate(); err != nil {
		return configErr("Capacity", "%v", err)
	}
	for name, d := range cfg.ActionTimeouts {
		if name == "" || d <= 0 {
			return configErr("ActionTimeouts", "%q=%s: want an action name and a positive duration, e.g. dummy_test_action=30s", name, d)
		}
	}
	return checkES(cfg.Elasticsearch)
}

// Executor is a running executor daemon: a ZooKeeper session, the plugin
// host, the job store (with the outbox and the event sink when indexing is
// on), the workers and the metrics server.
type Executor struct {
	x       *executor.Executor
	host    *pluginhost.Host
	metrics net.Addr
	log     *zap.Logger
	closers cleanups // run by Shutdown after the workers stop

	once sync.Once
	done chan struct{}
}

// StartExecutor starts an executor daemon: it connects to ZooKeeper, loads
// the plugins, registers the executor and starts its workers. ctx bounds
// the start only; stop the daemon with Shutdown or Stop. An error wrapping
// ErrConfig is about cfg; anything started meanwhile is stopped again.
func StartExecutor(ctx context.Context, cfg ExecutorConfig) (_ *Executor, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d := &Executor{log: log, done: make(chan struct{})}
	var undo cleanups
	defer func() {
		if err != nil {
			undo.run()
		}
	}()
	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return nil, configErr("MetricsListen", "%v", err)
		}
		undo.add(func() { _ = metricsLn.Close() })
	}
	conn, err := dial(ctx, cfg.ZK, cfg.ConnectTimeout, log)
	if err != nil {
		return nil, err
	}
	undo.add(conn.Close)

	reg := cfg.Registry
	switch {
	case reg != nil:
	case cfg.EnableTestActions:
		reg = action.BuiltinsWithTests()
	default:
		reg = action.Builtins()
	}
	invStore := inventory.NewStore(conn, inventory.Config{Logger: log.Named("inventory")})
	ansibleOpts := actions.AnsibleOptions{Logger: log, Sources: &ansible.Sources{
		Inventories: invStore,
		ProjectsDir: actions.ProjectsDir(), Logger: log.Named("sources"),
	}}
	if cfg.CredentialKey != nil {
		ansibleOpts.Credentials = credential.NewStore(conn, cfg.CredentialKey)
		log.Info("credentials can be opened", zap.String("key-id", cfg.CredentialKey.ID()))
	}
	if _, ok := reg.Lookup(actions.AnsiblePlaybookName); ok {
		if err := reg.Replace(actions.AnsiblePlaybook(ansibleOpts)); err != nil {
			return nil, err
		}
	}
	if _, ok := reg.Lookup(invsource.UpdateAction); ok {
		if err := reg.Replace(actions.InventoryUpdate(actions.InventoryUpdateOptions{
			Inventories: invStore, Sources: ansibleOpts.Sources, Logger: log.Named("inventory-update"),
		})); err != nil {
			return nil, err
		}
	}
	popts := cfg.Plugins
	popts.Logger = log
	if d.host, err = pluginhost.Load(ctx, popts); err != nil {
		return nil, err
	}
	undo.add(func() { _ = d.host.Close() })
	if err := d.host.Register(reg); err != nil {
		log.Warn("some plugin actions were not added", zap.Error(err))
	}
	if cfg.RemoteCommand != "" {
		if err := startRemote(ctx, cfg, reg, ansibleOpts.Credentials, ansibleOpts.Sources, log, &undo); err != nil {
			return nil, err
		}
	}
	for name := range cfg.ActionTimeouts {
		if _, ok := reg.Lookup(name); !ok {
			return nil, configErr("ActionTimeouts", "%q is not an action of this executor (have: %s)", name, strings.Join(reg.Names(), ", "))
		}
	}

	es, err := openIndex(cfg.Elasticsearch, log, &undo)
	if err != nil {
		return nil, err
	}
	// What follows talks to ZooKeeper: bounded like the connection.
	zctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	// Log lines and progress reach Elasticsearch as the store commits them;
	// state changes go through the outbox, exactly once.
	var observers []jobs.Observer
	if es != nil {
		sink := index.NewEventSink(es, log.Named("events"), index.SinkOptions{})
		undo.add(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = sink.Close(ctx)
		})
		observers = append(observers, sink)
	}
	store, err := openStore(zctx, conn, es, cfg.MaxBacklog, log, func(sc *jobs.StoreConfig) { sc.Observers = observers })
	if err != nil {
		return nil, err
	}
	// Runs of a launch that waited for a project update take the commit
	// it fetched.
	ansibleOpts.Sources.Revisions = project.Revisions{Jobs: store}
	// System jobs run here, never on a remote node: they are the
	// cluster's housekeeping, over this executor's session.
	if _, ok := reg.Lookup(systemjob.Action); ok {
		if err := reg.Replace(systemjob.Definition(systemjob.Options{
			Conn: conn, Jobs: store, Access: access.NewStore(conn, log.Named("access")), Logger: log.Named("system-job"),
		})); err != nil {
			return nil, err
		}
	}
	metrics := executor.NewMetrics()
	metrics.Registry.MustRegister(d.host.Collector())
	metrics.Registry.MustRegister(zkCollectors(conn)...)
	if es != nil {
		metrics.Registry.MustRegister(index.OutboxCollector(conn))
	}
	xcfg := executor.Config{
		Name: cfg.Name, Threads: cfg.Threads, Registry: reg, ActionTimeouts: cfg.ActionTimeouts,
		ShutdownGrace: cfg.ShutdownGrace, Store: store, Metrics: metrics, Logger: log,
		Version: cfg.Version, SessionTimeout: cfg.ZK.SessionTimeout,
		Groups: cfg.Groups, Capacity: cfg.Capacity, Resources: cfg.Resources,
	}
	d.x, err = executor.Start(zctx, conn, xcfg)
	if errors.Is(err, executor.ErrConfig) {
		return nil, configErr("executor", "%v", err)
	}
	if err != nil {
		return nil, err
	}
	if metricsLn != nil {
		// /healthz and /readyz (a session, and this executor's membership
		// node) next to the metrics, which every other path serves.
		mux := http.NewServeMux()
		mux.Handle("/", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))
		api.HealthHandlers(mux, api.SessionCheck(conn), api.NodeCheck(conn, conn.Path(executor.MembersPath, d.x.Name())))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(metricsLn) }()
		undo.add(func() { _ = srv.Close() })
		d.metrics = metricsLn.Addr()
		log.Info("serving metrics", zap.String("address", d.metrics.String()))
	}
	d.closers = undo
	return d, nil
}

// startRemote wraps every action of reg so that it runs on the isolated
// nodes of cfg.RemoteCommand, and refreshes the nodes' state every minute
// until undo runs.
func startRemote(ctx context.Context, cfg ExecutorConfig, reg *action.Registry, creds remote.CredentialResolver, src *ansible.Sources, log *zap.Logger, undo *cleanups) error {
	pool, err := remote.NewPool(remote.PoolOptions{
		Command: cfg.RemoteCommand, Nodes: cfg.RemoteNodes, Credentials: creds, Sources: src,
		IdleTimeout: cfg.RemoteIdleTimeout, Logger: log.Named("remote"),
	})
	if err != nil {
		return configErr("RemoteCommand", "%v", err)
	}
	for _, d := range reg.List() {
		_ = reg.Replace(pool.Wrap(d))
	}
	pool.Refresh(ctx)
	refreshCtx, stopRefresh := context.WithCancel(context.Background())
	undo.add(stopRefresh)
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-refreshCtx.Done():
				return
			case <-t.C:
				pool.Refresh(refreshCtx)
			}
		}
	}()
	return nil
}

// openStore opens the job store on conn. With an Elasticsearch client it
// ensures the outbox directories and records every write in the outbox:
// the one place a daemon wires the outbox.
func openStore(ctx context.Context, conn *zkconn.Conn, es *index.Client, maxBacklog int, log *zap.Logger, with func(*jobs.StoreConfig)) (*jobs.Store, error) {
	cfg := jobs.StoreConfig{MaxBacklog: maxBacklog, Logger: log.Named("jobs")}
	if with != nil {
		with(&cfg)
	}
	if es != nil {
		if err := index.EnsurePaths(ctx, conn); err != nil {
			return nil, err
		}
		cfg.Outbox = index.Outbox(conn)
	}
	return jobs.NewStore(conn, cfg), nil
}

// openIndex opens the Elasticsearch client (nil when cfg is nil); undo
// closes it.
func openIndex(cfg *index.Config, log *zap.Logger, undo *cleanups) (*index.Client, error) {
	if cfg == nil {
		return nil, nil
	}
	client, err := index.New(*cfg, log.Named("index"))
	if err != nil {
		return nil, configErr("Elasticsearch", "%v", err)
	}
	undo.add(func() { _ = client.Close(context.Background()) })
	return client, nil
}

// Name returns the executor's name in the cluster.
func (d *Executor) Name() string { return d.x.Name() }

// MetricsAddr returns the address the metrics server listens on, nil when
// there is none.
func (d *Executor) MetricsAddr() net.Addr { return d.metrics }

// Running lists the jobs being run now, oldest first.
func (d *Executor) Running() []executor.RunningJob { return d.x.Running() }

// PluginProcesses lists the plugin processes alive now.
func (d *Executor) PluginProcesses() []pluginhost.Process { return d.host.Processes() }

// Shutdown stops taking jobs, lets running ones finish within the shutdown
// grace (or until ctx ends), requeues the rest, then closes everything the
// daemon opened, its ZooKeeper session last. It returns when all is
// stopped; calling it again waits for the first call.
func (d *Executor) Shutdown(ctx context.Context) {
	d.once.Do(func() {
		d.x.Shutdown(ctx)
		d.closers.run()
		close(d.done)
	})
	<-d.done
}

// Stop stops at once: running jobs are canceled and requeued.
func (d *Executor) Stop() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.Shutdown(ctx)
}

// Done is closed once the daemon has stopped.
func (d *Executor) Done() <-chan struct{} { return d.done }

// DumpState logs, for an operator looking at a stuck daemon, a summary
// line, one line per running job, one per plugin process (its pid and
// jobs), and one per group of goroutines with the same stack (see
// LogDump).
func (d *Executor) DumpState() {
	running := d.Running()
	procs := d.PluginProcesses()
	dump(d.log, func() {
		for _, r := range running {
			d.log.Info(LogDumpJob, zap.String("job", r.Job), zap.String("action", r.Action), zap.Int("attempt", r.Attempt),
				zap.Int("worker", r.Worker), zap.Duration("elapsed", time.Since(r.Started).Round(time.Millisecond)))
		}
		for _, p := range procs {
			d.log.Info(LogDumpPlugin, zap.String("plugin", p.Plugin), zap.Int("pid", p.PID), zap.Int("jobs", p.Jobs), zap.Strings("job-ids", p.JobIDs))
		}
	}, zap.String("daemon", "executor"), zap.String("executor", d.Name()), zap.Int("running", len(running)), zap.Int("plugin-processes", len(procs)))
}
