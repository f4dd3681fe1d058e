package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// `jobengine services` hosts the leader-run services of schedules and
// notifications — the schedule runner and the notification sender — on
// whichever of its instances wins the "control-services" election, until
// the controller's maintenance host runs them. Everything about hosting is
// in this file; the services themselves are engine/schedules.Runner and
// engine/notify.Sender, each a Start/Stop service.

func init() {
	extraCommands = append(extraCommands, servicesCommand)
}

// servicesElection is the election of the services' hosts.
const servicesElection = "control-services"

// leaderService is a service run while leading: started with the leader
// context, stopped when leadership ends.
type leaderService interface {
	Name() string
	Start(ctx context.Context) error
	Stop()
}

func servicesCommand() *cli.Command {
	return &cli.Command{
		Name:  "services",
		Usage: "launch schedules and deliver notifications (a daemon; one instance leads, the others stand by)",
		Description: "Every instance contends in the control-services election in ZooKeeper; the leader runs the schedule\n" +
			"runner (each occurrence of each enabled schedule launched once) and the notification sender (notices\n" +
			"delivered, retried with a back-off, parked after --notify-max-attempts). SIGTERM/SIGINT: stop and exit 0.",
		Flags: withEnv("services",
			&cli.StringFlag{Name: "identifier", Usage: "name of this instance in the election and in the jobs' created-by (default hostname/pid)"},
			&cli.IntFlag{Name: "notify-max-attempts", Value: notify.DefaultMaxAttempts, Usage: "failed deliveries that park a notification"},
			&cli.DurationFlag{Name: "notify-min-backoff", Value: notify.DefaultMinBackoff, Usage: "wait after a first failed delivery; it doubles with each attempt"},
			&cli.DurationFlag{Name: "notify-max-backoff", Value: notify.DefaultMaxBackoff, Usage: "longest wait between two delivery attempts"},
			maxBacklogFlag(),
		),
		Action: runServices,
	}
}

func runServices(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	if n := c.Int("notify-max-attempts"); n < 1 {
		return usagef("--notify-max-attempts %d: type how many failed deliveries park a notification, 1 or more", n)
	}
	if c.Duration("notify-min-backoff") <= 0 || c.Duration("notify-max-backoff") < c.Duration("notify-min-backoff") {
		return usagef("--notify-min-backoff and --notify-max-backoff: type durations with 0 < min <= max, such as 5s and 5m")
	}
	if c.Int("max-backlog") < 0 {
		return usagef("--max-backlog must not be negative")
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
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	conn, err := dial(c, log.Named("zk"))
	if err != nil {
		return err
	}
	defer conn.Close()
	id := c.String("identifier")
	if id == "" {
		id = distributor.DefaultIdentifier()
	}
	nstore := notify.NewStore(conn)
	storeCfg := jobs.StoreConfig{MaxBacklog: c.Int("max-backlog"), Logger: log.Named("jobs"), Notifications: notify.NewResolver(nstore)}
	if esCfg != nil {
		ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
		err := index.EnsurePaths(ctx, conn)
		cancel()
		if err != nil {
			return err
		}
		storeCfg.Outbox = func(j *jobs.Job, doc []byte) *zk.CreateRequest { return index.OutboxCreate(conn, j, doc) }
	}
	js := jobs.NewStore(conn, storeCfg)
	runner, err := schedules.NewRunner(schedules.RunnerConfig{Store: schedules.NewStore(conn), Jobs: js,
		Launch: schedules.JobLauncher(js), Identifier: id, Logger: log})
	if err != nil {
		return err
	}
	sender, err := notify.NewSender(notify.SenderConfig{Store: nstore, Logger: log, MaxAttempts: c.Int("notify-max-attempts"),
		MinBackoff: c.Duration("notify-min-backoff"), MaxBackoff: c.Duration("notify-max-backoff")})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- hostServices(ctx, conn, c.Duration("zk-session-timeout"), id, log, runner, sender)
	}()
	log.Info("services contending", zap.String("election", servicesElection), zap.String("identifier", id))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	select {
	case err := <-done:
		return err
	case sig := <-sigs:
		log.Info("signal received: stopping", zap.String("signal", sig.String()))
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		stop()
	}
	select {
	case <-done:
	case sig := <-sigs:
		log.Warn("second signal: stopping at once", zap.String("signal", sig.String()))
	}
	log.Info("services stopped")
	return nil
}

// hostServices contends in the services' election until ctx ends, running
// every service while it leads: started in order with the leader context,
// stopped in reverse when the term ends. A service that does not start
// gives leadership up, and the election is contended again after a
// back-off.
func hostServices(ctx context.Context, conn *zkconn.Conn, sessionTimeout time.Duration, id string, log *zap.Logger, services ...leaderService) error {
	bo := backoff.New(time.Second, time.Minute)
	lead := func(lctx context.Context) error {
		var started []leaderService
		defer func() {
			for i := len(started) - 1; i >= 0; i-- {
				started[i].Stop()
			}
		}()
		for _, s := range services {
			if err := s.Start(lctx); err != nil {
				log.Error("a service did not start; giving up leadership", zap.String("service", s.Name()), zap.Error(err))
				return fmt.Errorf("starting %s: %w", s.Name(), err)
			}
			started = append(started, s)
		}
		log.Info("leading: services started", zap.String("identifier", id))
		<-lctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		e := election.New(conn, servicesElection, id, log, election.WithSessionTimeout(sessionTimeout))
		err := e.Run(ctx, lead)
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, election.ErrConfig) {
			return err
		}
		log.Warn("the services election ended; contending again after a back-off", zap.Error(err))
		bo.Wait(ctx)
	}
	return nil
}
