package command

import (
	"context"
	"errors"
	"fmt"
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

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a complete local system in the foreground: ZooKeeper, an executor, the demo distributor",
		Description: "Starts a ZooKeeper child process (Debian's zookeeper package) on a free loopback port with its\n" +
			"data in --data-dir, one executor and the demo distributor (a dummy_test_action job every\n" +
			"--demo-interval), and prints how to reach it. Ctrl-C stops everything it started.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "data-dir", Value: ".jobengine-dev", EnvVars: envs("JOBENGINE_DEV_DATA_DIR"), Usage: "where ZooKeeper keeps its data"},
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
	dcfg := daemon.NewDistributorConfig()
	dcfg.ConnectTimeout, dcfg.Logger, dcfg.Identifier = 30*time.Second, log, "dev"
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
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	zk, err := zkserver.Start(zkserver.Options{Dir: dir, TickTime: time.Second})
	if err != nil {
		return fmt.Errorf("starting ZooKeeper: %w", err)
	}
	defer zk.StopAll()
	addr := zk.ConnectString()
	fmt.Fprintf(c.App.Writer, "ZooKeeper is running at %s (data in %s)\n\n  export JOBENGINE_ZK_HOSTS=%s\n  jobengine job list\n\nCtrl-C stops everything.\n", addr, dir, addr)

	xcfg.ZK, dcfg.ZK = zc(zk.Addrs()), zc(zk.Addrs())
	x, err := daemon.StartExecutor(c.Context, xcfg)
	if err != nil {
		return daemonError(err, zk.ConnectString())
	}
	// The distributor daemon also hosts the maintenance services (the
	// cleanup of finished jobs), as on a real cluster.
	dist, err := daemon.StartDistributor(c.Context, dcfg)
	if err != nil {
		x.Stop()
		return daemonError(err, zk.ConnectString())
	}

	sig := <-sigs
	log.Info("stopping the local system", zap.String("signal", sig.String()))
	dist.Stop()
	hard, hardStop := context.WithCancel(context.Background())
	defer hardStop()
	go func() {
		select {
		case <-sigs:
			hardStop()
		case <-x.Done():
		}
	}()
	x.Shutdown(hard)
	return nil
}
