package command

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

func init() {
	extraCommands = append(extraCommands, executorCommand, actionsCommand)
}

func pluginFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "plugin-dir", Value: pluginhost.DefaultDir, EnvVars: envs("JOBENGINE_PLUGIN_DIR"), Usage: "directory of action plugins, scanned at start-up"},
		&cli.StringSliceFlag{Name: "plugin-sha256", EnvVars: envs("JOBENGINE_PLUGIN_SHA256"), Usage: "pin a plugin binary: NAME=HEX (repeatable)"},
		&cli.StringFlag{Name: "plugin-checksums", EnvVars: envs("JOBENGINE_PLUGIN_CHECKSUMS"), Usage: "pin plugin binaries from a sha256sum-format file"},
		&cli.BoolFlag{Name: "plugin-pinned-only", EnvVars: envs("JOBENGINE_PLUGIN_PINNED_ONLY"), Usage: "refuse every plugin that --plugin-sha256/--plugin-checksums do not pin"},
		&cli.StringSliceFlag{Name: "plugin-env", EnvVars: envs("JOBENGINE_PLUGIN_ENV"), Usage: "pass this variable of the executor's environment to plugins, besides PATH, HOME, LANG, TZ… (repeatable)"},
		&cli.DurationFlag{Name: "plugin-kill-grace", Value: pluginhost.DefaultKillGrace, EnvVars: envs("JOBENGINE_PLUGIN_KILL_GRACE"), Usage: "how long a plugin may ignore a cancel before it is killed"},
		&cli.DurationFlag{Name: "plugin-start-timeout", Value: pluginhost.DefaultStartTimeout, EnvVars: envs("JOBENGINE_PLUGIN_START_TIMEOUT"), Usage: "how long a plugin may take to answer its handshake"},
	}
}

// testActionsFlag turns on the built-in test actions (package actions),
// which a production executor must not run just because a job names one.
func testActionsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "enable-test-actions", EnvVars: envs("JOBENGINE_ENABLE_TEST_ACTIONS"),
		Usage: "also offer the built-in test actions (echo, fail, sleep, dummy_test_action): for trying the engine out, not for production"}
}

// builtinActions is the registry an executor starts from: the built-in
// actions, with the test actions only when --enable-test-actions says so.
func builtinActions(c *cli.Context) *action.Registry {
	if c.Bool("enable-test-actions") {
		return action.BuiltinsWithTests()
	}
	return action.Builtins()
}

// pluginOptions reads the plugin flags.
func pluginOptions(c *cli.Context) (pluginhost.Options, error) {
	sums, err := pluginhost.ParseChecksumFlags(c.StringSlice("plugin-sha256"))
	if err != nil {
		return pluginhost.Options{}, &UsageError{Err: err}
	}
	if f := c.String("plugin-checksums"); f != "" {
		more, err := pluginhost.ReadChecksumsFile(f)
		if err != nil {
			return pluginhost.Options{}, &UsageError{Err: err}
		}
		if sums == nil {
			sums = map[string]string{}
		}
		for k, v := range more {
			sums[k] = v
		}
	}
	for _, n := range c.StringSlice("plugin-env") {
		if n == "" || strings.ContainsAny(n, "= \t") || strings.HasPrefix(n, "JOBENGINE_") {
			return pluginhost.Options{}, usagef("--plugin-env %q: give a variable name; JOBENGINE_ variables hold the engine's settings and secrets and never reach plugins", n)
		}
	}
	return pluginhost.Options{
		Dir: c.String("plugin-dir"), Checksums: sums, PinnedOnly: c.Bool("plugin-pinned-only"),
		Env:       c.StringSlice("plugin-env"),
		KillGrace: c.Duration("plugin-kill-grace"), StartTimeout: c.Duration("plugin-start-timeout"),
	}, nil
}

// loadPlugins scans the plugin directory and adds its actions to reg.
func loadPlugins(c *cli.Context, reg *action.Registry, log *zap.Logger) (*pluginhost.Host, error) {
	opts, err := pluginOptions(c)
	if err != nil {
		return nil, err
	}
	opts.Logger = log
	h, err := pluginhost.Load(c.Context, opts)
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
			&cli.StringFlag{Name: "metrics-listen", EnvVars: envs("JOBENGINE_METRICS_LISTEN"), Usage: "serve Prometheus metrics on this address, e.g. 127.0.0.1:9310 (off by default)"},
			maxBacklogFlag(),
			credentialKeyFlag(),
			&cli.StringFlag{Name: "remote-command", EnvVars: envs("JOBENGINE_REMOTE_COMMAND"),
				Usage: "run every job on remote nodes through this command, {node} replaced, e.g. 'ssh -T {node} jobengine worker --keepalive-seconds 10'"},
			&cli.StringSliceFlag{Name: "remote-node", EnvVars: envs("JOBENGINE_REMOTE_NODE"), Usage: "a node of --remote-command (repeatable)"},
			&cli.DurationFlag{Name: "remote-idle-timeout", EnvVars: envs("JOBENGINE_REMOTE_IDLE_TIMEOUT"),
				Usage: "fail a remote run that sends nothing for this long, keepalives included (0: never)"},
			testActionsFlag(),
		}, append(capacityFlags(), pluginFlags()...)...),
		Action: runExecutor,
	}
}

// runExecutor reads the flags into an executor's configuration and serves
// the daemon engine/daemon starts from it.
func runExecutor(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("executor takes no arguments (got %q)", c.Args().Slice())
	}
	cfg := daemon.NewExecutorConfig()
	var err error
	if cfg.ActionTimeouts, err = parseActionTimeouts(c.StringSlice("action-timeout")); err != nil {
		return err
	}
	key, err := credentialKey(c, false)
	if err != nil {
		return err
	}
	cfg.CredentialKey = key
	cfg.RemoteCommand = c.String("remote-command")
	cfg.RemoteNodes = c.StringSlice("remote-node")
	cfg.RemoteIdleTimeout = c.Duration("remote-idle-timeout")
	if cfg.Groups, cfg.Capacity, err = capacityConfig(c); err != nil {
		return err
	}
	if cfg.Plugins, err = pluginOptions(c); err != nil {
		return err
	}
	if cfg.Elasticsearch, err = esConfig(c); err != nil {
		return err
	}
	if cfg.ZK, err = zkConfig(c, nil); err != nil {
		return err
	}
	cfg.ConnectTimeout = c.Duration("zk-connect-timeout")
	cfg.Name = c.String("name")
	cfg.Threads = c.Int("threads")
	cfg.ShutdownGrace = c.Duration("shutdown-grace")
	cfg.MaxBacklog = c.Int("max-backlog")
	cfg.MetricsListen = c.String("metrics-listen")
	cfg.EnableTestActions = c.Bool("enable-test-actions")
	if err := cfg.Validate(); err != nil {
		return daemonError(err, c.String("zk-hosts"))
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log
	return serveDaemon(c, log, "draining", func(ctx context.Context) (daemonHandle, error) {
		return daemon.StartExecutor(ctx, cfg)
	})
}

func actionsCommand() *cli.Command {
	return &cli.Command{
		Name:  "actions",
		Usage: "list the actions an executor would run",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "built-in actions and the plugins found in --plugin-dir, with their source",
			Flags: append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}, testActionsFlag()}, pluginFlags()...),
			Action: func(c *cli.Context) error {
				log := quietLogger(c)
				reg := builtinActions(c)
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
