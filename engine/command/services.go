package command

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/notify"
)

// `jobengine services` hosts the leader-run services without anything
// else: it is a member of the maintenance election, like every controller
// and distributor process, and the elected member runs them all — the
// workflow service, the schedule runner and the notification sender among
// them. It is `distributor jobs_cleanup` with the sender's settings: kept
// for clusters that ran it before the controller's maintenance host ran
// schedules and notifications.

func init() {
	extraCommands = append(extraCommands, servicesCommand)
}

func servicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "services",
		Usage: "host the leader-run services only: workflows, schedules, notifications, cleanup, … (a daemon; one member of the cluster leads)",
		Description: "A member of the maintenance election, as every controller and distributor process is (see\n" +
			"docs/architecture.md, Maintenance): the elected member runs the scheduler, the reaper, the workflow service, the\n" +
			"schedule runner (each occurrence of each enabled schedule launched once), the notification sender (notices\n" +
			"delivered, retried with a back-off, parked after --notify-max-attempts), the cleanup of finished jobs\n" +
			"(jobs_cleanup.yaml in --config-dir) and, with Elasticsearch, the index pump. `jobengine controller` does the\n" +
			"same and serves the API: a cluster with controllers needs no `services`. SIGTERM/SIGINT: stop and exit 0.",
		Flags: withEnv("services",
			configDirFlag(),
			&cli.StringFlag{Name: "identifier", Usage: "name of this instance in the election and in the jobs' created-by (default hostname/pid)"},
			notifyMaxAttemptsFlag(), notifyMinBackoffFlag(), notifyMaxBackoffFlag(),
			maxBacklogFlag(),
		),
		Action: runServices,
	}
}

func runServices(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	nc, err := notifyConfig(c)
	if err != nil {
		return err
	}
	if c.Int("max-backlog") < 0 {
		return usagef("--max-backlog must not be negative")
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	cfg := daemon.NewDistributorConfig()
	st, err := cat.Settings(daemon.CleanupName)
	if err != nil {
		return &UsageError{Err: err}
	}
	if cfg.Cleanup, err = daemon.CleanupFromSettings(st); err != nil {
		return daemonError(err, "")
	}
	cfg.Notify = nc
	if cfg.ZK, err = zkConfig(c, nil); err != nil {
		return err
	}
	if cfg.Elasticsearch, err = esConfig(c); err != nil {
		return err
	}
	cfg.ConnectTimeout = c.Duration("zk-connect-timeout")
	cfg.Identifier = c.String("identifier")
	cfg.MaxBacklog = c.Int("max-backlog")
	if err := cfg.Validate(); err != nil {
		return daemonError(err, c.String("zk-hosts"))
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	cfg.Logger = log
	return serveDaemon(c, log, "giving up leadership", func(ctx context.Context) (daemonHandle, error) {
		return daemon.StartDistributor(ctx, cfg)
	})
}

// The notification sender's flags, on every daemon that hosts maintenance.
func notifyMaxAttemptsFlag() cli.Flag {
	return &cli.IntFlag{Name: "notify-max-attempts", Value: notify.DefaultMaxAttempts, Usage: "failed deliveries that park a notification"}
}

func notifyMinBackoffFlag() cli.Flag {
	return &cli.DurationFlag{Name: "notify-min-backoff", Value: notify.DefaultMinBackoff, Usage: "wait after a first failed delivery; it doubles with each attempt"}
}

func notifyMaxBackoffFlag() cli.Flag {
	return &cli.DurationFlag{Name: "notify-max-backoff", Value: notify.DefaultMaxBackoff, Usage: "longest wait between two delivery attempts"}
}

// notifyConfig reads the sender's flags.
func notifyConfig(c *cli.Context) (maintenance.NotifyConfig, error) {
	if n := c.Int("notify-max-attempts"); n < 1 {
		return maintenance.NotifyConfig{}, usagef("--notify-max-attempts %d: type how many failed deliveries park a notification, 1 or more", n)
	}
	if c.Duration("notify-min-backoff") <= 0 || c.Duration("notify-max-backoff") < c.Duration("notify-min-backoff") {
		return maintenance.NotifyConfig{}, usagef("--notify-min-backoff and --notify-max-backoff: type durations with 0 < min <= max, such as 5s and 5m")
	}
	return maintenance.NotifyConfig{MaxAttempts: c.Int("notify-max-attempts"),
		MinBackoff: c.Duration("notify-min-backoff"), MaxBackoff: c.Duration("notify-max-backoff")}, nil
}
