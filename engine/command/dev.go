package command

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

func init() {
	extraCommands = append(extraCommands, devCommand)
}

// DefaultDevZKPort is the port of `jobengine dev`'s ZooKeeper, as
// ZooKeeper's own default, so that JOBENGINE_ZK_HOSTS stays the same from
// one start to the next.
const DefaultDevZKPort = 2181

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a complete local system in the foreground: ZooKeeper, an executor, a controller, the demo distributor",
		Description: "Starts a ZooKeeper child process (Debian's zookeeper package) on 127.0.0.1:--zk-port (a free\n" +
			"port when that one is taken) with its data in --data-dir, one executor (group default), one\n" +
			"controller (the scheduler, the reaper, the cleanup) and the demo distributor (a dummy_test_action\n" +
			"job every --demo-interval), and prints how to reach it. One dev runs per\n" +
			"data directory. Ctrl-C stops everything it started; SIGUSR1 logs the daemons' state.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: ".jobengine-dev", EnvVars: envs("JOBENGINE_DEV_DATA_DIR"), Usage: "where ZooKeeper keeps its data"},
			&cli.IntFlag{Name: "zk-port", Value: DefaultDevZKPort, EnvVars: envs("JOBENGINE_DEV_ZK_PORT"), Usage: "ZooKeeper's client port on 127.0.0.1; a free one when it is taken (0: always a free one)"},
			&cli.IntFlag{Name: "threads", Value: 4, Usage: "executor workers"},
			&cli.DurationFlag{Name: "demo-interval", Value: 15 * time.Second, Usage: "how often the demo distributor creates a job (0: no demo)"},
		}, pluginFlags()...),
		Action: runDev,
	}
}

func runDev(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("dev takes no arguments (got %q)", c.Args().Slice())
	}
	if d := c.Duration("demo-interval"); d != 0 && (d < time.Second || d%time.Second != 0) {
		return usagef("--demo-interval must be whole seconds (or 0 for no demo), got %s", d)
	}
	port := c.Int("zk-port")
	if port < 0 || port > 65535 {
		return usagef("--zk-port %d is not a port: type a number from 1 to 65535, or 0 for a free port", port)
	}
	if err := zkserver.Installed(); err != nil {
		return fmt.Errorf("%v\nrun `make deps` or `apt-get install -y zookeeper` first", err)
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return usagef("--data-dir: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usagef("--data-dir %s: %v", dir, err)
	}
	plugins, err := pluginOptions(c)
	if err != nil {
		return err
	}
	// Every setting but the ZooKeeper address, checked before anything
	// starts.
	zc := func(hosts []string) zkconn.Config {
		return zkconn.Config{Hosts: hosts, Root: "/", SessionTimeout: 10 * time.Second}
	}
	xcfg := daemon.NewExecutorConfig()
	xcfg.ConnectTimeout, xcfg.Logger, xcfg.Plugins = 30*time.Second, log, plugins
	xcfg.Name, xcfg.Threads, xcfg.ShutdownGrace = "dev", c.Int("threads"), 10*time.Second
	// A local system for trying things out: the test actions are what the
	// demo distributor and the README's examples run.
	xcfg.EnableTestActions = true
	ccfg := daemon.NewControllerConfig()
	ccfg.ConnectTimeout, ccfg.Logger, ccfg.Identifier = 30*time.Second, log, "dev"
	// The API on its usual port, or on a free one when that is taken (by
	// another dev or a controller on this host).
	if ln, err := net.Listen("tcp", ccfg.Listen); err == nil {
		_ = ln.Close()
	} else {
		ccfg.Listen = "127.0.0.1:0"
	}
	// The controller hosts the maintenance services, as on a real cluster.
	dcfg := daemon.NewDistributorConfig()
	dcfg.ConnectTimeout, dcfg.Logger, dcfg.Identifier, dcfg.Maintenance = 30*time.Second, log, "dev", false
	if d := c.Duration("demo-interval"); d > 0 {
		def, ok := distributor.Lookup("dummy_test_action")
		if !ok {
			return errors.New("the dummy_test_action distributor is not built in")
		}
		def.Schedule = schedule.Spec{Interval: d}
		dcfg.Distributors = []distributor.Definition{def}
	}
	if err := xcfg.Validate(); err != nil {
		return daemonError(err, "")
	}
	// One dev per data directory, checked before ZooKeeper's files there
	// are touched. The lock goes with the process, however it ends.
	lock, err := lockDevDir(dir)
	if err != nil {
		return err
	}
	defer lock.release()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	if port != 0 && !portFree(port) {
		fmt.Fprintf(c.App.Writer, "Port %d is taken: ZooKeeper gets a free port instead (--zk-port chooses another).\n", port)
		port = 0
	}
	zk, err := zkserver.Start(zkserver.Options{Dir: dir, TickTime: time.Second, ClientPort: port})
	if err != nil {
		return fmt.Errorf("starting ZooKeeper: %w", err)
	}
	defer zk.StopAll()
	server := zk.Servers[0]
	addr := zk.ConnectString()
	fmt.Fprintf(c.App.Writer, "ZooKeeper is running at %s (pid %d, data in %s)\n\n  export JOBENGINE_ZK_HOSTS=%s\n  jobengine job list\n\nCtrl-C stops everything.\n",
		addr, server.PID(), dir, addr)

	zkExited := func() error {
		return fmt.Errorf("ZooKeeper (pid %d) exited unexpectedly; see its log %s", server.PID(), server.LogPath())
	}
	// The daemons' start ends with ZooKeeper, rather than waiting out its
	// connect timeout.
	startCtx, cancelStart := context.WithCancel(c.Context)
	defer cancelStart()
	go func() {
		select {
		case <-server.Exited():
			cancelStart()
		case <-startCtx.Done():
		}
	}()
	startErr := func(err error) error {
		select {
		case <-server.Exited():
			return zkExited()
		default:
			return daemonError(err, zk.ConnectString())
		}
	}
	xcfg.ZK, dcfg.ZK, ccfg.ZK = zc(zk.Addrs()), zc(zk.Addrs()), zc(zk.Addrs())
	x, err := daemon.StartExecutor(startCtx, xcfg)
	if err != nil {
		return startErr(err)
	}
	ctl, err := daemon.StartController(startCtx, ccfg)
	if err != nil {
		stopWithin(devStopAfterZKExit, x.Stop)
		return startErr(err)
	}
	fmt.Fprintf(c.App.Writer, "The controller's HTTP API is at http://%s/api/v1\n", ctl.Addr())
	pw, err := devCredentials(startCtx, ccfg.ZK, log)
	if err != nil {
		stopWithin(devStopAfterZKExit, ctl.Stop, x.Stop)
		return startErr(err)
	}
	fmt.Fprintf(c.App.Writer, "The dashboard is at http://%s/\n  log in as %s with the password %s (new at each start)\n\n", ctl.Addr(), DevUser, pw)
	// The others stop first, the executor last (it drains).
	others := []daemonHandle{ctl}
	if len(dcfg.Distributors) > 0 {
		dist, err := daemon.StartDistributor(startCtx, dcfg)
		if err != nil {
			stopWithin(devStopAfterZKExit, ctl.Stop, x.Stop)
			return startErr(err)
		}
		others = append([]daemonHandle{dist}, others...)
	}
	stopOthers := func() {
		for _, d := range others {
			d.Shutdown(context.Background())
		}
	}

	for {
		select {
		case <-server.Exited():
			// Without ZooKeeper nothing can go on: stop at once, without
			// waiting on writes that cannot succeed.
			log.Error("ZooKeeper exited: stopping the local system", zap.Int("pid", server.PID()), zap.String("zookeeper-log", server.LogPath()))
			stopWithin(devStopAfterZKExit, stopOthers, x.Stop)
			return zkExited()
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				x.DumpState()
				for _, d := range others {
					d.DumpState()
				}
				continue
			}
			log.Info("stopping the local system", zap.String("signal", sig.String()))
			stopOthers()
			hard, hardStop := context.WithCancel(context.Background())
			defer hardStop()
			go func() {
				for {
					select {
					case sig := <-sigs:
						if sig != syscall.SIGUSR1 {
							hardStop()
							return
						}
					case <-x.Done():
						return
					}
				}
			}()
			x.Shutdown(hard)
			return nil
		}
	}
}

// devStopAfterZKExit bounds the stop of dev's daemons once its ZooKeeper
// is gone: what they would still write cannot be written.
const devStopAfterZKExit = 5 * time.Second

// stopWithin runs the stop functions in order, and returns once they are
// done or d has passed.
func stopWithin(d time.Duration, stops ...func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, stop := range stops {
			stop()
		}
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// portFree reports whether a TCP port on 127.0.0.1 can be listened on.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
