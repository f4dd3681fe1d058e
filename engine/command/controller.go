package command

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/scheduler"
)

func init() {
	extraCommands = append(extraCommands, controllerCommand)
}

func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run the control plane (a daemon): the scheduler, the reaper and the other maintenance services, on the elected member",
		Description: "Every controller (and every distributor not run with --maintenance=false) contends in the maintenance\n" +
			"election in ZooKeeper; the leader runs the scheduler (it queues PENDING jobs on executors with room),\n" +
			"the reaper (it gives back the jobs of lost executors), the cleanup of finished jobs (configured by\n" +
			"jobs_cleanup.yaml in --config-dir) and, with --es-hosts, the index pump. Run two or more: the services\n" +
			"move within a session timeout when the leader dies.\n" +
			"SIGTERM/SIGINT: stop the services, give up leadership and exit 0; a second signal exits at once.\n" +
			"SIGUSR1: log every goroutine's stack.",
		Flags: withEnv("controller",
			&cli.StringFlag{Name: "identifier", Aliases: []string{"name"}, Usage: "name of this controller in the election (default hostname/pid)"},
			&cli.DurationFlag{Name: "pass-interval", Value: scheduler.DefaultInterval, Usage: "a scheduler pass at least this often (events trigger more)"},
			&cli.IntFlag{Name: "max-starts", Value: scheduler.DefaultMaxStarts, Usage: "jobs one scheduler pass queues at most"},
			&cli.DurationFlag{Name: "pass-deadline", Value: scheduler.DefaultPassDeadline, Usage: "how long one scheduler pass may decide and explain"},
			&cli.DurationFlag{Name: "reap-grace", Value: scheduler.DefaultReapGrace, Usage: "how long an executor is lost before its jobs are given back"},
			&cli.DurationFlag{Name: "reap-interval", Value: scheduler.DefaultReapInterval, Usage: "a reap at least this often (an executor leaving triggers one)"},
			&cli.StringFlag{Name: "retention", Usage: "the cleanup of finished jobs: keep them this long, e.g. 7d or 36h (overrides jobs_cleanup.yaml)"},
			configDirFlag(),
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
	cfg.Scheduler.Interval, cfg.Scheduler.MaxStarts, cfg.Scheduler.PassDeadline = c.Duration("pass-interval"), c.Int("max-starts"), c.Duration("pass-deadline")
	cfg.Reaper.Interval, cfg.Reaper.Grace = c.Duration("reap-interval"), c.Duration("reap-grace")
	// The cleanup reads the distributors' directory, as every member of
	// the maintenance election does.
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
	if cfg.ZK, err = zkConfig(c, nil); err != nil {
		return err
	}
	if cfg.Elasticsearch, err = esConfig(c); err != nil {
		return err
	}
	cfg.ConnectTimeout = c.Duration("zk-connect-timeout")
	cfg.Identifier = c.String("identifier")
	if err := cfg.Validate(); err != nil {
		return daemonError(err, c.String("zk-hosts"))
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log
	return serveDaemon(c, log, "stepping down", func(ctx context.Context) (daemonHandle, error) {
		return daemon.StartController(ctx, cfg)
	})
}
