package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func init() {
	extraCommands = append(extraCommands, distributorCommand)
}

// cleanupName is the built-in distributor --retention applies to.
const cleanupName = "jobs_cleanup"

func configDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "config-dir", Value: distributor.DefaultConfigDir, EnvVars: envs("JOBENGINE_DISTRIBUTOR_CONFIG_DIR"),
		Usage: "directory of distributor files (*.yaml, *.yml)"}
}

func distributorCommand() *cli.Command {
	return &cli.Command{
		Name:      "distributor",
		Usage:     "create jobs on a schedule (a daemon): one distributor by NAME, or every enabled one with --all",
		ArgsUsage: "NAME",
		Description: "Every instance of a distributor contends in a leader election in ZooKeeper; only the leader creates jobs.\n" +
			"Distributors are declared in --config-dir (one YAML file each) or built in (jobs_cleanup, dummy_test_action);\n" +
			"a file named after a built-in one overrides its settings. `jobengine distributor list` shows them all.\n" +
			"SIGTERM/SIGINT: give up leadership and exit 0.",
		Flags: withEnv("distributor",
			configDirFlag(),
			&cli.BoolFlag{Name: "all", Usage: "run every enabled distributor (jobs_cleanup, and files without enabled: false), each with its own election"},
			&cli.StringFlag{Name: "retention", Usage: "jobs_cleanup: keep finished jobs this long, e.g. 7d or 36h (overrides its file)"},
			&cli.StringFlag{Name: "identifier", Aliases: []string{"name"}, Usage: "name of this instance in elections and in the jobs' created-by (default hostname/pid)"},
			maxBacklogFlag(),
		),
		Subcommands: []*cli.Command{distributorListCommand(), distributorValidateCommand()},
		Action:      runDistributor,
	}
}

// configDir returns --config-dir as given to the command or to any of its
// parents (`distributor --config-dir D list` and `distributor list
// --config-dir D` are the same).
func configDir(c *cli.Context) string {
	for _, cc := range c.Lineage() {
		if cc.Command != nil && cc.IsSet("config-dir") {
			return cc.String("config-dir")
		}
	}
	return c.String("config-dir")
}

// loadCatalog reads the configuration directory with the command-line
// overrides applied.
func loadCatalog(c *cli.Context) (*distributor.Catalog, error) {
	cat, err := distributor.Load(configDir(c))
	if err != nil {
		return nil, err
	}
	if r := c.String("retention"); r != "" {
		if err := cat.SetOption(cleanupName, "retention", r); err != nil && !errors.Is(err, distributor.ErrUnknown) {
			return nil, usagef("--retention %s: %v", r, strings.TrimPrefix(err.Error(), distributor.ErrConfig.Error()+": "))
		}
	}
	return cat, nil
}

func runDistributor(c *cli.Context) error {
	var name string
	if c.Bool("all") {
		if _, err := parseArgs(c); err != nil {
			return usagef("distributor --all takes no NAME")
		}
	} else {
		args, err := parseArgs(c, "NAME")
		if err != nil {
			if c.NArg() == 0 {
				return usagef("distributor: give the NAME of a distributor, or --all (see `jobengine distributor list`)")
			}
			return err
		}
		name = args[0]
		if c.Bool("all") {
			return usagef("distributor: give a NAME or --all, not both")
		}
	}
	if r := c.String("retention"); r != "" && name != "" && name != cleanupName {
		return usagef("--retention applies to %s only, not to %s", cleanupName, name)
	}
	if c.Int("max-backlog") < 0 {
		return usagef("--max-backlog must not be negative")
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
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
	if cat.DirMissing {
		log.Info("distributor directory does not exist: built-in distributors only", zap.String("dir", cat.Dir))
	}
	for _, p := range cat.Problems {
		log.Error("invalid distributor file: skipped", zap.String("file", p.File), zap.Int("line", p.Line),
			zap.String("distributor", p.Name), zap.String("problem", p.Message))
	}
	var defs []distributor.Definition
	if name != "" {
		d, err := cat.Get(name)
		if err != nil {
			return &UsageError{Err: err}
		}
		if !d.Enabled {
			log.Info("distributor not enabled for --all; it runs because it is named", zap.String("distributor", name))
		}
		defs = append(defs, d)
	} else {
		defs = cat.Enabled()
		if len(defs) == 0 {
			return usagef("distributor --all: no distributor is enabled (in %s or built in)", cat.Dir)
		}
	}

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
	storeCfg := jobs.StoreConfig{MaxBacklog: c.Int("max-backlog"), Logger: log.Named("jobs")}
	if esCfg != nil {
		// Jobs are recorded in the indexer's outbox as they are created.
		ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
		err := index.EnsurePaths(ctx, conn)
		cancel()
		if err != nil {
			return err
		}
		storeCfg.Outbox = func(j *jobs.Job, doc []byte) *zk.CreateRequest { return index.OutboxCreate(conn, j, doc) }
	}
	cfg := distributor.Config{
		Conn:           conn,
		Store:          jobs.NewStore(conn, storeCfg),
		SessionTimeout: c.Duration("zk-session-timeout"),
		Identifier:     c.String("identifier"),
		Logger:         log,
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- distributor.RunAll(ctx, cfg, defs) }()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	log.Info("distributors contending", zap.Strings("distributors", names))
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)

	select {
	case err := <-done:
		if errors.Is(err, distributor.ErrConfig) || errors.Is(err, election.ErrConfig) {
			return &UsageError{Err: err}
		}
		return err
	case sig := <-sigs:
		log.Info("signal received: giving up leadership", zap.String("signal", sig.String()))
		_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
		stop()
	}
	select {
	case err := <-done:
		if err != nil {
			log.Warn("stopping", zap.Error(err))
		}
	case sig := <-sigs:
		// Closing the session deletes the election nodes at once.
		log.Warn("second signal: stopping at once", zap.String("signal", sig.String()))
	}
	log.Info("distributor stopped")
	return nil
}

// distributorRow is one distributor as `distributor list` shows it.
type distributorRow struct {
	Name        string   `json:"name"`
	Source      string   `json:"source"`
	Enabled     bool     `json:"enabled"`
	Action      string   `json:"action,omitempty"`
	Targets     []string `json:"targets,omitempty"`
	Schedule    string   `json:"schedule,omitempty"`
	CatchUp     string   `json:"catch-up,omitempty"`
	Dedup       string   `json:"dedup,omitempty"`
	Description string   `json:"description,omitempty"`
	Leader      string   `json:"leader,omitempty"`
	Contenders  []string `json:"contenders"`
	LastTick    string   `json:"last-tick,omitempty"`
	LastTickBy  string   `json:"last-tick-by,omitempty"`
	NextTick    string   `json:"next-tick,omitempty"`
	Errors      []string `json:"errors,omitempty"`
}

func distributorListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "show every distributor (declared and built in): schedule, leader and next tick",
		Flags: withEnv("distributor list", &cli.BoolFlag{Name: "json", Usage: "print JSON"}, configDirFlag()),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cat, err := loadCatalog(c)
			if err != nil {
				return err
			}
			log := quietLogger(c)
			conn, err := dial(c, log)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
			defer cancel()
			rows, err := distributorRows(ctx, conn, cat, log)
			if err != nil {
				return fmt.Errorf("%w (is ZooKeeper running at %s? set --zk-hosts or JOBENGINE_ZK_HOSTS)", err, c.String("zk-hosts"))
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, rows)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tENABLED\tSCHEDULE\tACTION\tLEADER\tCONTENDERS\tLAST TICK\tNEXT TICK\tSOURCE")
			for _, r := range rows {
				if len(r.Errors) > 0 {
					fmt.Fprintf(tw, "%s\t-\tinvalid\t-\t%s\t%d\t%s\t-\t%s\n", printable(r.Name), dash(printable(r.Leader)), len(r.Contenders), dash(printable(r.LastTick)), printable(r.Source))
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, yesNo(r.Enabled), r.Schedule, dash(r.Action), dash(printable(r.Leader)),
					len(r.Contenders), dash(printable(r.LastTick)), dash(r.NextTick), printable(r.Source))
			}
			tw.Flush()
			for _, p := range cat.Problems {
				fmt.Fprintln(c.App.ErrWriter, p.Error())
			}
			return nil
		},
	}
}

// distributorRows describes every distributor of cat with what ZooKeeper
// says about it: its contenders (the leader first) and its last tick.
func distributorRows(ctx context.Context, conn *zkconn.Conn, cat *distributor.Catalog, log *zap.Logger) ([]distributorRow, error) {
	rows := []distributorRow{}
	now := time.Now()
	for _, d := range cat.Defs() {
		r := distributorRow{
			Name: d.Name, Source: d.Source, Enabled: d.Enabled, Action: d.Action, Targets: d.Targets,
			Schedule: d.ScheduleString(), CatchUp: string(d.CatchUp), Dedup: string(d.Dedup), Description: d.Description,
		}
		if s, err := schedule.Parse(d.Schedule); err == nil {
			if next := s.Next(now); !next.IsZero() {
				r.NextTick = schedule.Tick{At: next}.ID()
			}
		}
		rows = append(rows, r)
	}
	for _, name := range cat.Broken() {
		r := distributorRow{Name: name}
		for _, p := range cat.Problems {
			if p.Name == name {
				r.Errors = append(r.Errors, p.Error())
				if r.Source == "" {
					r.Source = p.File
				}
			}
		}
		rows = append(rows, r)
	}
	for i := range rows {
		r := &rows[i]
		r.Contenders = []string{}
		if !distributor.ValidName(r.Name) {
			continue
		}
		cs, err := election.New(conn, r.Name, "", log).Contenders(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			r.Contenders = append(r.Contenders, c.Identifier)
		}
		if len(cs) > 0 {
			r.Leader = cs[0].Identifier
		}
		st, _, err := distributor.ReadState(ctx, conn, r.Name)
		if err != nil {
			return nil, err
		}
		r.LastTick, r.LastTickBy = st.Tick, st.By
	}
	return rows, nil
}

func distributorValidateCommand() *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "check the distributor files of --config-dir; exit 2 if any is invalid",
		Description: "Prints each problem as FILE:LINE: MESSAGE on stderr and each valid distributor on stdout.\n" +
			"Needs no server. Exit 0: every file is valid; 2: some file is invalid (the daemon would skip it).",
		Flags: withEnv("distributor validate", configDirFlag()),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cat, err := loadCatalog(c)
			if err != nil {
				return err
			}
			if cat.DirMissing {
				return usagef("%s: no such directory (set --config-dir)", cat.Dir)
			}
			for _, d := range cat.Defs() {
				if d.Source != "builtin" {
					fmt.Fprintf(c.App.Writer, "ok  %s  %s  %s\n", d.Source, d.Name, d.ScheduleString())
				}
			}
			for _, p := range cat.Problems {
				fmt.Fprintln(c.App.ErrWriter, p.Error())
			}
			if n := len(cat.Problems); n > 0 {
				fmt.Fprintf(c.App.ErrWriter, "%d problem(s) in %s; the daemon skips the distributors of those files\n", n, cat.Dir)
				return &ExitError{Code: ExitUsage}
			}
			return nil
		},
	}
}
