package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// daemonHandle is what the command line needs of a daemon started by
// engine/daemon.
type daemonHandle interface {
	Shutdown(ctx context.Context)
	Done() <-chan struct{}
	DumpState()
}

// serveDaemon starts a daemon with start and serves it until it has
// stopped. This is what the process adds to the library: signals and
// systemd notification (READY=1 once started, STOPPING=1 on the signal).
// SIGTERM or SIGINT shuts the daemon down; a second one ends the shutdown's
// context, which stops at once; SIGUSR1 dumps its state. Signals are
// caught from the start: one that comes while the daemon starts stops it.
// stopping says what the daemon does on the first signal (a log field).
func serveDaemon(c *cli.Context, log *zap.Logger, stopping string, start func(ctx context.Context) (daemonHandle, error)) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	startCtx, cancelStart := context.WithCancel(c.Context)
	defer cancelStart()
	type started struct {
		d   daemonHandle
		err error
	}
	result := make(chan started, 1)
	go func() {
		d, err := start(startCtx)
		result <- started{d, err}
	}()
	hard, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	var d daemonHandle
	stopped := false
	for d == nil {
		select {
		case r := <-result:
			if r.err != nil {
				if stopped {
					log.Info("stopped while starting", zap.Error(r.err))
					return nil
				}
				return daemonError(r.err, c.String("zk-hosts"))
			}
			d = r.d
		case sig := <-sigs:
			if sig != syscall.SIGUSR1 && !stopped {
				stopped = true
				log.Info("signal received while starting: stopping", zap.String("signal", sig.String()))
				cancelStart()
			}
		}
	}
	if stopped {
		go d.Shutdown(hard)
	} else {
		_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyReady)
	}
	for {
		select {
		case <-d.Done():
			return nil
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGUSR1:
				d.DumpState()
			case !stopped:
				stopped = true
				log.Info("signal received: stopping", zap.String("signal", sig.String()), zap.String("action", stopping))
				_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
				go d.Shutdown(hard)
			default:
				log.Warn("second signal: stopping at once", zap.String("signal", sig.String()))
				hardStop()
			}
		}
	}
}

// configFlags names the flag of each daemon configuration field, for
// errors.
var configFlags = map[string]string{
	"ZK.Hosts":               "--zk-hosts",
	"ZK.Root":                "--zk-root",
	"ZK.SessionTimeout":      "--zk-session-timeout",
	"ConnectTimeout":         "--zk-connect-timeout",
	"Elasticsearch":          "--es-hosts/--es-index-prefix",
	"Name":                   "--name",
	"Threads":                "--threads",
	"ActionTimeouts":         "--action-timeout",
	"ShutdownGrace":          "--shutdown-grace",
	"MaxBacklog":             "--max-backlog",
	"MetricsListen":          "--metrics-listen",
	"Plugins.KillGrace":      "--plugin-kill-grace",
	"Plugins.StartTimeout":   "--plugin-start-timeout",
	"Identifier":             "--identifier",
	"Cleanup":                "jobs_cleanup",
	"Distributors":           "distributor",
	"Groups":                 "--groups",
	"Capacity":               "--capacity/--capacity-adjustment/--forks-per-cpu/--memory-per-fork",
	"Scheduler.Interval":     "--pass-interval",
	"Scheduler.MaxStarts":    "--max-starts",
	"Scheduler.PassDeadline": "--pass-deadline",
	"Reaper.Interval":        "--reap-interval",
}

// daemonError turns a start error into what the user sees: a usage error
// (exit 2) naming the flag for a bad configuration, and a hint when
// ZooKeeper cannot be reached.
func daemonError(err error, hosts string) error {
	var ce *daemon.ConfigError
	switch {
	case errors.As(err, &ce):
		name := ce.Field
		if f, ok := configFlags[ce.Field]; ok {
			name = f
		}
		return usagef("%s: %s", name, ce.Problem)
	case errors.Is(err, daemon.ErrConfig):
		return &UsageError{Err: err}
	case errors.Is(err, zkconn.ErrUnavailable):
		return fmt.Errorf("%w (is ZooKeeper running at %s? set --zk-hosts or JOBENGINE_ZK_HOSTS)", err, strings.TrimSpace(hosts))
	}
	return err
}
