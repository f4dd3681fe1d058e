package command

import (
	"context"

	"github.com/jobengine/jobengine/engine/scheduler"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/daemon"
)

func init() {
	extraCommands = append(extraCommands, controllerCommand)
	configFlags["Listen"] = "--listen"
	configFlags["TLSCert"] = "--tls-cert/--tls-key"
}

func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "serve the HTTP API and contend for the leader-run services (a daemon)",
		Description: "Serves the HTTP API (docs/api.md) on --listen: HTTPS with --tls-cert and --tls-key, or plain HTTP,\n" +
			"which is refused on anything but a loopback address unless --insecure-listen is given (behind a proxy\n" +
			"that terminates TLS). Any number of controllers may serve the same cluster. Every controller (unless\n" +
			"--maintenance=false) also contends for the maintenance services (the scheduler, the reaper, the workflow\n" +
			"service, the schedule runner, the notification sender, the cleanup of finished jobs, configured by\n" +
			"jobs_cleanup.yaml in --config-dir, and the index pump); the elected one runs them.\n" +
			"The first administrator is created with direct ZooKeeper access: `jobengine user create --admin NAME`.\n" +
			"SIGTERM/SIGINT: stop accepting requests, finish those in flight, give up leadership and exit 0.",
		Flags: withEnv("controller",
			&cli.StringFlag{Name: "listen", Value: daemon.DefaultControllerListen, Usage: "address of the HTTP API (host:port)"},
			&cli.StringFlag{Name: "tls-cert", Usage: "PEM certificate (chain) of the HTTPS server"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM private key of the HTTPS server"},
			&cli.BoolFlag{Name: "insecure-listen", Usage: "allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy only)"},
			&cli.StringFlag{Name: "identifier", Aliases: []string{"name"}, Usage: "name of this controller in the maintenance election and in ping (default hostname/pid)"},
			&cli.BoolFlag{Name: "maintenance", Value: true, Usage: "contend for the maintenance services; --maintenance=false: never run them here"},
			&cli.DurationFlag{Name: "pass-interval", Value: scheduler.DefaultInterval, Usage: "a scheduler pass at least this often (events trigger more)"},
			&cli.IntFlag{Name: "max-starts", Value: scheduler.DefaultMaxStarts, Usage: "jobs one scheduler pass queues at most"},
			&cli.DurationFlag{Name: "pass-deadline", Value: scheduler.DefaultPassDeadline, Usage: "how long one scheduler pass may decide and explain"},
			&cli.DurationFlag{Name: "reap-grace", Value: scheduler.DefaultReapGrace, Usage: "how long an executor is lost before its jobs are given back"},
			&cli.DurationFlag{Name: "reap-interval", Value: scheduler.DefaultReapInterval, Usage: "a reap at least this often (an executor leaving triggers one)"},
			&cli.StringFlag{Name: "retention", Usage: "the cleanup of finished jobs: keep them this long, e.g. 7d or 36h (overrides jobs_cleanup.yaml)"},
			&cli.DurationFlag{Name: "session-lifetime", Usage: "how long a login session of the web dashboard lasts (default 12h)"},
			notifyMaxAttemptsFlag(), notifyMinBackoffFlag(), notifyMaxBackoffFlag(),
			configDirFlag(),
			maxBacklogFlag(),
			credentialKeyFlag(),
		),
		Action: runController,
	}
}

// runController reads the flags into a controller's configuration and
// serves the daemon engine/daemon starts from it.
func runController(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	for _, f := range []string{"pass-interval", "pass-deadline", "reap-grace", "reap-interval"} {
		if c.Duration(f) <= 0 {
			return usagef("--%s %s: type a positive duration, such as 5s", f, c.Duration(f))
		}
	}
	if c.Int("max-starts") < 1 {
		return usagef("--max-starts %d: type at least 1 (default %d)", c.Int("max-starts"), scheduler.DefaultMaxStarts)
	}
	cfg := daemon.NewControllerConfig()
	// The key seals credentials created through the API; without it the
	// API shows and deletes credentials but creates none.
	var err error
	if cfg.CredentialKey, err = credentialKey(c, false); err != nil {
		return err
	}
	cfg.Listen, cfg.TLSCert, cfg.TLSKey = c.String("listen"), c.String("tls-cert"), c.String("tls-key")
	cfg.InsecureListen = c.Bool("insecure-listen")
	cfg.Maintenance = c.Bool("maintenance")
	cfg.Identifier = c.String("identifier")
	cfg.MaxBacklog = c.Int("max-backlog")
	cfg.SessionLifetime = c.Duration("session-lifetime")
	if c.Int("max-starts") < 1 {
		return usagef("--max-starts %d: type at least 1 (default %d)", c.Int("max-starts"), scheduler.DefaultMaxStarts)
	}
	cfg.Scheduler.Interval, cfg.Scheduler.MaxStarts, cfg.Scheduler.PassDeadline = c.Duration("pass-interval"), c.Int("max-starts"), c.Duration("pass-deadline")
	cfg.Reaper.Interval, cfg.Reaper.Grace = c.Duration("reap-interval"), c.Duration("reap-grace")
	nc, err := notifyConfig(c)
	if err != nil {
		return err
	}
	cfg.Notify = nc
	if !cfg.Maintenance && c.String("retention") != "" {
		return usagef("--retention sets the cleanup of finished jobs, a maintenance service, which --maintenance=false keeps out of this process")
	}
	if cfg.Maintenance {
		cat, err := loadCatalog(c)
		if err != nil {
			return err
		}
		st, err := cat.Settings(daemon.CleanupName)
		if err != nil {
			return &UsageError{Err: err}
		}
		if cfg.Cleanup, err = daemon.CleanupFromSettings(st); err != nil {
			return daemonError(err, "")
		}
	}
	if cfg.ZK, err = zkConfig(c, nil); err != nil {
		return err
	}
	if cfg.Elasticsearch, err = esConfig(c); err != nil {
		return err
	}
	cfg.ConnectTimeout = c.Duration("zk-connect-timeout")
	if err := cfg.Validate(); err != nil {
		return daemonError(err, c.String("zk-hosts"))
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log
	if !cfg.InsecureListen && cfg.TLSCert == "" {
		log.Info("serving plain HTTP on a loopback address: give --tls-cert and --tls-key to serve other machines")
	}
	return serveDaemon(c, log, "finishing requests and giving up leadership", func(ctx context.Context) (daemonHandle, error) {
		return daemon.StartController(ctx, cfg)
	})
}
