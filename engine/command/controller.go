package command

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/controller"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/scheduler"
)

func init() {
	extraCommands = append(extraCommands, controllerCommand)
}

func controllerCommand() *cli.Command {
	return &cli.Command{
		Name:  "controller",
		Usage: "run the control plane (a daemon): the scheduler and the reaper, on the elected controller",
		Description: "Every controller contends in one election in ZooKeeper; the leader runs the scheduler (it queues\n" +
			"PENDING jobs on executors with room) and the reaper (it gives back the jobs of lost executors).\n" +
			"Run two or more: the services move within a session timeout when the leader dies.\n" +
			"SIGTERM/SIGINT: stop the services, give up leadership and exit 0; a second signal exits at once.",
		Flags: withEnv("controller",
			&cli.StringFlag{Name: "identifier", Aliases: []string{"name"}, Usage: "name of this controller in the election (default hostname/pid)"},
			&cli.DurationFlag{Name: "pass-interval", Value: scheduler.DefaultInterval, Usage: "a scheduler pass at least this often (events trigger more)"},
			&cli.IntFlag{Name: "max-starts", Value: scheduler.DefaultMaxStarts, Usage: "jobs one scheduler pass queues at most"},
			&cli.DurationFlag{Name: "pass-deadline", Value: scheduler.DefaultPassDeadline, Usage: "how long one scheduler pass may decide and explain"},
			&cli.DurationFlag{Name: "reap-grace", Value: scheduler.DefaultReapGrace, Usage: "how long an executor is lost before its jobs are given back"},
			&cli.DurationFlag{Name: "reap-interval", Value: scheduler.DefaultReapInterval, Usage: "a reap at least this often (an executor leaving triggers one)"},
		),
		Action: runController,
	}
}

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
	esCfg, err := esConfig(c)
	if err != nil {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	// Signals are caught from the start, so a SIGTERM while connecting
	// still ends the daemon cleanly.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	conn, err := dial(c, log.Named("zk"))
	if err != nil {
		return err
	}
	defer conn.Close()
	storeCfg := jobs.StoreConfig{Logger: log.Named("jobs")}
	if esCfg != nil {
		// What the controller writes (placements, explanations) is
		// recorded for the indexer in the same transactions.
		ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
		err := index.EnsurePaths(ctx, conn)
		cancel()
		if err != nil {
			return err
		}
		storeCfg.Outbox = func(j *jobs.Job, doc []byte) *zk.CreateRequest { return index.OutboxCreate(conn, j, doc) }
	}
	store := jobs.NewStore(conn, storeCfg)
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
	err = store.Ensure(ctx)
	cancel()
	if err != nil {
		return err
	}
	ctl, err := controller.Start(controller.Config{
		Conn: conn, Store: store, Identifier: c.String("identifier"), SessionTimeout: c.Duration("zk-session-timeout"), Logger: log,
		Scheduler: scheduler.Config{Interval: c.Duration("pass-interval"), MaxStarts: c.Int("max-starts"), PassDeadline: c.Duration("pass-deadline")},
		Reaper:    scheduler.ReaperConfig{Interval: c.Duration("reap-interval"), Grace: c.Duration("reap-grace")},
	})
	if errors.Is(err, controller.ErrConfig) || errors.Is(err, scheduler.ErrConfig) {
		return &UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)

	sig := <-sigs
	log.Info("signal received: stopping the controller", zap.String("signal", sig.String()))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	stopCtx, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	go func() {
		select {
		case sig := <-sigs:
			// Closing the session removes the election node at once.
			log.Warn("second signal: stopping at once", zap.String("signal", sig.String()))
			hardStop()
		case <-ctl.Done():
		}
	}()
	shutdownCtx, cancelShutdown := context.WithTimeout(stopCtx, 30*time.Second)
	defer cancelShutdown()
	ctl.Shutdown(shutdownCtx)
	return nil
}
