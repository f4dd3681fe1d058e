package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/pluginhost"
	"github.com/jobengine/jobengine/engine/version"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func init() {
	extraCommands = append(extraCommands, executorCommand, clusterCommand, actionsCommand)
}

func pluginFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "plugin-dir", Value: pluginhost.DefaultDir, EnvVars: envs("JOBENGINE_PLUGIN_DIR"), Usage: "directory of action plugins, scanned at start-up"},
		&cli.StringSliceFlag{Name: "plugin-sha256", EnvVars: envs("JOBENGINE_PLUGIN_SHA256"), Usage: "pin a plugin binary: NAME=HEX (repeatable)"},
		&cli.StringFlag{Name: "plugin-checksums", EnvVars: envs("JOBENGINE_PLUGIN_CHECKSUMS"), Usage: "pin plugin binaries from a sha256sum-format file"},
		&cli.DurationFlag{Name: "plugin-kill-grace", Value: pluginhost.DefaultKillGrace, EnvVars: envs("JOBENGINE_PLUGIN_KILL_GRACE"), Usage: "how long a plugin may ignore a cancel before it is killed"},
		&cli.DurationFlag{Name: "plugin-start-timeout", Value: pluginhost.DefaultStartTimeout, EnvVars: envs("JOBENGINE_PLUGIN_START_TIMEOUT"), Usage: "how long a plugin may take to answer its handshake"},
	}
}

// loadPlugins scans the plugin directory and adds its actions to reg.
func loadPlugins(c *cli.Context, reg *action.Registry, log *zap.Logger) (*pluginhost.Host, error) {
	sums, err := pluginhost.ParseChecksumFlags(c.StringSlice("plugin-sha256"))
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	if f := c.String("plugin-checksums"); f != "" {
		more, err := pluginhost.ReadChecksumsFile(f)
		if err != nil {
			return nil, &UsageError{Err: err}
		}
		if sums == nil {
			sums = map[string]string{}
		}
		for k, v := range more {
			sums[k] = v
		}
	}
	h, err := pluginhost.Load(c.Context, pluginhost.Options{
		Dir: c.String("plugin-dir"), Checksums: sums,
		KillGrace: c.Duration("plugin-kill-grace"), StartTimeout: c.Duration("plugin-start-timeout"),
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := h.Register(reg); err != nil {
		log.Warn("some plugin actions were not added", zap.Error(err))
	}
	return h, nil
}

// parseActionTimeouts reads NAME=DURATION pairs.
func parseActionTimeouts(vals []string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, v := range vals {
		name, d, ok := strings.Cut(v, "=")
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if !ok || name == "" || err != nil || dur <= 0 {
			return nil, usagef("--action-timeout %q: want NAME=DURATION, e.g. dummy_test_action=30s", v)
		}
		out[strings.TrimSpace(name)] = dur
	}
	return out, nil
}

func executorCommand() *cli.Command {
	return &cli.Command{
		Name:  "executor",
		Usage: "run jobs from the queue (a daemon)",
		Description: "Takes jobs from the ZooKeeper queue and runs their actions with per-action timeouts.\n" +
			"SIGTERM/SIGINT: stop taking jobs, let running ones finish within --shutdown-grace, requeue the rest.\n" +
			"A second signal stops at once. SIGUSR1: log every goroutine's stack and the running jobs.",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "threads", Value: runtime.NumCPU(), EnvVars: envs("JOBENGINE_THREADS"), Usage: "workers running jobs at once"},
			&cli.StringFlag{Name: "name", EnvVars: envs("JOBENGINE_NAME"), Usage: "executor name (default hostname-pid)"},
			&cli.StringSliceFlag{Name: "action-timeout", EnvVars: envs("JOBENGINE_ACTION_TIMEOUT"), Usage: "override an action's default timeout: NAME=DURATION (repeatable)"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: 2 * time.Minute, EnvVars: envs("JOBENGINE_SHUTDOWN_GRACE"), Usage: "how long running jobs may finish after SIGTERM"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: envs("JOBENGINE_METRICS_LISTEN"), Usage: "serve Prometheus metrics on this address, e.g. :9310 (off by default)"},
			maxBacklogFlag(),
		}, pluginFlags()...),
		Action: runExecutor,
	}
}

func runExecutor(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("executor takes no arguments (got %q)", c.Args().Slice())
	}
	if c.Int("threads") <= 0 {
		return usagef("--threads must be at least 1")
	}
	if c.Duration("shutdown-grace") <= 0 {
		return usagef("--shutdown-grace must be positive")
	}
	timeouts, err := parseActionTimeouts(c.StringSlice("action-timeout"))
	if err != nil {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	esCfg, err := esConfig(c)
	if err != nil {
		return err
	}
	var metricsLn net.Listener
	if addr := c.String("metrics-listen"); addr != "" {
		if metricsLn, err = net.Listen("tcp", addr); err != nil {
			return usagef("--metrics-listen %s: %v", addr, err)
		}
		defer metricsLn.Close()
	}

	// Signals are caught from the start, so a SIGTERM while connecting
	// still ends the daemon cleanly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	conn, err := dial(c, log.Named("zk"))
	if err != nil {
		return err
	}
	defer conn.Close()

	reg := action.Builtins()
	host, err := loadPlugins(c, reg, log)
	if err != nil {
		return err
	}
	defer host.Close()

	storeCfg := jobs.StoreConfig{MaxBacklog: c.Int("max-backlog"), Logger: log.Named("jobs")}
	var sink *index.EventSink
	var pumpDone chan struct{}
	pumpCtx, stopPump := context.WithCancel(context.Background())
	defer stopPump()
	if esCfg != nil {
		es, err := index.New(*esCfg, log.Named("index"))
		if err != nil {
			return &UsageError{Err: err}
		}
		defer es.Close(context.Background())
		if err := index.EnsurePaths(c.Context, conn); err != nil {
			return err
		}
		storeCfg.Outbox = func(j *jobs.Job, doc []byte) *zk.CreateRequest { return index.OutboxCreate(conn, j, doc) }
		sink = index.NewEventSink(es, log.Named("events"), index.SinkOptions{})
		storeCfg.Observers = append(storeCfg.Observers, sink)
		pump := index.NewPump(conn, es, log.Named("index"), index.PumpOptions{Name: c.String("name")})
		pumpDone = make(chan struct{})
		go func() { defer close(pumpDone); _ = pump.Run(pumpCtx) }()
	}
	store := jobs.NewStore(conn, storeCfg)

	metrics := executor.NewMetrics()
	cfg := executor.Config{
		Name: c.String("name"), Threads: c.Int("threads"), Registry: reg, ActionTimeouts: timeouts,
		ShutdownGrace: c.Duration("shutdown-grace"), Store: store, Metrics: metrics, Logger: log,
		Version: version.Version, SessionTimeout: c.Duration("zk-session-timeout"),
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
	x, err := executor.Start(ctx, conn, cfg)
	cancel()
	if errors.Is(err, executor.ErrConfig) {
		return &UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	if metricsLn != nil {
		srv := &http.Server{Handler: promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(metricsLn) }()
		defer srv.Close()
		log.Info("serving metrics", zap.String("address", metricsLn.Addr().String()))
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)

	stopNow, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	stopping := false
	for {
		select {
		case <-x.Done():
			stopPump()
			if pumpDone != nil {
				<-pumpDone
			}
			if sink != nil {
				sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = sink.Close(sctx)
				scancel()
			}
			return nil
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGUSR1:
				dumpState(log, x, host)
			case !stopping:
				stopping = true
				log.Info("signal received: draining", zap.String("signal", sig.String()))
				_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
				go x.Shutdown(stopNow)
			default:
				log.Warn("second signal: stopping at once", zap.String("signal", sig.String()))
				hardStop()
			}
		}
	}
}

// dumpState logs every goroutine's stack and the table of running jobs.
func dumpState(log *zap.Logger, x *executor.Executor, host *pluginhost.Host) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tACTION\tATTEMPT\tWORKER\tELAPSED")
	running := x.Running()
	for _, r := range running {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", r.Job, r.Action, r.Attempt, r.Worker, time.Since(r.Started).Round(time.Millisecond))
	}
	tw.Flush()
	procs := host.Processes()
	log.Info("SIGUSR1: state dump",
		zap.Int("goroutines", runtime.NumGoroutine()),
		zap.Int("running", len(running)),
		zap.Int("plugin-processes", len(procs)),
		zap.String("jobs", "\n"+b.String()),
		zap.String("stacks", "\n"+string(buf)))
}

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "show the executors of the cluster",
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "list executors, their heartbeats and the jobs each is running",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
			Action: func(c *cli.Context) error {
				log := quietLogger(c)
				conn, err := dial(c, log)
				if err != nil {
					return err
				}
				defer conn.Close()
				members, err := readMembers(c.Context, conn)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					enc := json.NewEncoder(c.App.Writer)
					enc.SetIndent("", "  ")
					return enc.Encode(members)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "EXECUTOR\tHOST\tPID\tVERSION\tTHREADS\tBUSY\tLAST SEEN\tUP")
				for _, m := range members {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s ago\t%s\n", printable(m.Name), printable(m.Host), m.PID, printable(m.Version), m.Threads, m.Busy,
						time.Since(m.LastSeen).Round(time.Second), time.Since(m.Started).Round(time.Second))
				}
				tw.Flush()
				for _, m := range members {
					for _, r := range m.Running {
						fmt.Fprintf(c.App.Writer, "  %s runs %s (%s, attempt %d) for %s\n", printable(m.Name), printable(r.Job), printable(r.Action), r.Attempt, time.Since(r.Started).Round(time.Second))
					}
				}
				if len(members) == 0 {
					fmt.Fprintln(c.App.ErrWriter, "no executor is running")
				}
				return nil
			},
		}},
	}
}

// readMembers reads every executor membership node, sorted by name.
func readMembers(ctx context.Context, conn *zkconn.Conn) ([]executor.Member, error) {
	out := []executor.Member{}
	err := zkconn.Do(ctx, func() error {
		names, _, err := conn.Children(conn.Path(executor.MembersPath))
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		}
		for _, n := range names {
			data, _, err := conn.Get(conn.Path(executor.MembersPath, n))
			if err != nil {
				continue // gone meanwhile
			}
			var m executor.Member
			if json.Unmarshal(data, &m) == nil {
				out = append(out, m)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

func actionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "actions",
		Usage: "list the actions an executor would run",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "built-in actions and the plugins found in --plugin-dir, with their source",
			Flags: append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}}, pluginFlags()...),
			Action: func(c *cli.Context) error {
				log := quietLogger(c)
				reg := action.Builtins()
				host, err := loadPlugins(c, reg, log)
				if err != nil {
					return err
				}
				defer host.Close()
				type row struct {
					Name           string  `json:"name"`
					Source         string  `json:"source"`
					Version        string  `json:"version,omitempty"`
					DefaultTimeout float64 `json:"default-timeout"`
					LostPolicy     string  `json:"lost-policy"`
					MaxAttempts    int     `json:"max-attempts"`
					Description    string  `json:"description,omitempty"`
				}
				rows := []row{}
				for _, d := range reg.List() {
					rows = append(rows, row{d.Name, d.Source, d.Version, d.DefaultTimeout.Seconds(), string(d.LostPolicy), d.MaxAttempts, d.Description})
				}
				if c.Bool("json") {
					enc := json.NewEncoder(c.App.Writer)
					enc.SetIndent("", "  ")
					return enc.Encode(map[string]any{"actions": rows, "skipped": host.Skipped()})
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ACTION\tSOURCE\tVERSION\tTIMEOUT\tLOST JOBS\tDESCRIPTION")
				for _, r := range rows {
					lost := "fail"
					if r.LostPolicy == string(action.Rerun) {
						lost = fmt.Sprintf("rerun ×%d", r.MaxAttempts)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Source, r.Version, time.Duration(r.DefaultTimeout*float64(time.Second)), lost, r.Description)
				}
				tw.Flush()
				for _, s := range host.Skipped() {
					fmt.Fprintf(c.App.ErrWriter, "skipped %s: %s\n", s.Path, s.Reason)
				}
				return nil
			},
		}},
	}
}
