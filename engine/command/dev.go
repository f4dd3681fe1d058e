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

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/version"
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

	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zk.Addrs(), SessionTimeout: 10 * time.Second, Logger: log.Named("zk")})
	cancel()
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
	store := jobs.NewStore(conn, jobs.StoreConfig{Logger: log.Named("jobs")})
	x, err := executor.Start(c.Context, conn, executor.Config{
		Name: "dev", Threads: c.Int("threads"), Registry: reg, Store: store, Logger: log,
		Version: version.Version, ShutdownGrace: 10 * time.Second, SessionTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}

	distCtx, stopDist := context.WithCancel(context.Background())
	defer stopDist()
	distDone := make(chan error, 1)
	if d := c.Duration("demo-interval"); d > 0 {
		def, ok := distributor.Lookup("dummy_test_action")
		if !ok {
			return errors.New("the dummy_test_action distributor is not built in")
		}
		def.Schedule = schedule.Spec{Interval: d}
		go func() {
			distDone <- distributor.RunAll(distCtx, distributor.Config{
				Conn: conn, Store: store, SessionTimeout: 10 * time.Second, Identifier: "dev", Logger: log,
			}, []distributor.Definition{def})
		}()
	} else {
		distDone <- nil
	}

	sig := <-sigs
	log.Info("stopping the local system", zap.String("signal", sig.String()))
	stopDist()
	<-distDone
	stopped := make(chan struct{})
	go func() { x.Shutdown(context.Background()); close(stopped) }()
	select {
	case <-stopped:
	case <-sigs:
		x.Stop()
		<-stopped
	}
	return nil
}
