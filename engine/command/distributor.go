package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func init() {
	extraCommands = append(extraCommands, distributorCommand)
}

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
			"Distributors are declared in --config-dir (one YAML file each) or built in (dummy_test_action);\n" +
			"a file named after a built-in one overrides its settings. `jobengine distributor list` shows them all.\n" +
			"Every distributor process also contends for the maintenance services (the cleanup of finished jobs, configured\n" +
			"by jobs_cleanup.yaml, and the index pump); the elected one runs them. `distributor jobs_cleanup` runs them only.\n" +
			"SIGTERM/SIGINT: give up leadership and exit 0. SIGUSR1: log every goroutine's stack.",
		Flags: withEnv("distributor",
			configDirFlag(),
			&cli.BoolFlag{Name: "all", Usage: "run every enabled distributor (files without enabled: false), each with its own election"},
			&cli.BoolFlag{Name: "maintenance", Value: true, Usage: "contend for the maintenance services (cleanup of finished jobs, index pump); --maintenance=false: never run them here"},
			&cli.StringFlag{Name: "retention", Usage: "the cleanup of finished jobs: keep them this long, e.g. 7d or 36h (overrides jobs_cleanup.yaml)"},
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
// jobs_cleanup.yaml is read as the settings of the cleanup service.
func loadCatalog(c *cli.Context) (*distributor.Catalog, error) {
	cat, err := distributor.Load(configDir(c), daemon.CleanupSettings())
	if err != nil {
		return nil, err
	}
	if r := c.String("retention"); r != "" {
		if err := cat.SetOption(daemon.CleanupName, daemon.OptRetention, r); err != nil && !errors.Is(err, distributor.ErrConfig) {
			return nil, err
		} else if err != nil {
			// Either the value or the file is bad: say which.
			if _, ferr := cat.Settings(daemon.CleanupName); ferr != nil {
				return nil, &UsageError{Err: ferr}
			}
			return nil, usagef("--retention %s: %v", r, strings.TrimPrefix(err.Error(), distributor.ErrConfig.Error()+": "+daemon.CleanupName+": "))
		}
	}
	return cat, nil
}

// runDistributor reads the flags and the distributor directory into a
// distributor daemon's configuration and serves the daemon engine/daemon
// starts from it.
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
	cfg := daemon.NewDistributorConfig()
	cfg.Maintenance = c.Bool("maintenance")
	if !cfg.Maintenance {
		switch {
		case name == daemon.CleanupName:
			return usagef("distributor %s runs the maintenance services only: it cannot go with --maintenance=false", daemon.CleanupName)
		case c.String("retention") != "":
			return usagef("--retention sets the cleanup of finished jobs, a maintenance service, which --maintenance=false keeps out of this process")
		}
	}
	cat, err := loadCatalog(c)
	if err != nil {
		return err
	}
	log, err := logger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	switch {
	case name == daemon.CleanupName:
		// It was a distributor: the name now starts a process that hosts
		// the maintenance services and runs no distributor.
	case name != "":
		d, err := cat.Get(name)
		if err != nil {
			return &UsageError{Err: err}
		}
		cfg.Distributors = []distributor.Definition{d}
	default:
		cfg.Distributors = cat.Enabled()
		if len(cfg.Distributors) == 0 && !cfg.Maintenance {
			return usagef("distributor --all: no distributor is enabled (in %s or built in), and --maintenance=false leaves nothing to run", cat.Dir)
		}
	}
	cleanupErr := error(nil)
	if cfg.Maintenance {
		st, err := cat.Settings(daemon.CleanupName)
		switch {
		case err != nil && name == daemon.CleanupName:
			return &UsageError{Err: err}
		case err != nil:
			// Its defaults are no safe guess of what the file meant.
			cleanupErr = err
			cfg.Cleanup.Disabled = true
		default:
			if name == daemon.CleanupName {
				st.Enabled = true // named, it runs whatever the file says, as distributors do
			}
			if cfg.Cleanup, err = daemon.CleanupFromSettings(st); err != nil {
				return daemonError(err, "")
			}
		}
	}
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

	cfg.Logger = log
	if cat.DirMissing {
		log.Info("distributor directory does not exist: built-in distributors only", zap.String("dir", cat.Dir))
	}
	for _, p := range cat.Problems {
		log.Error("invalid distributor file: skipped", zap.String("file", p.File), zap.Int("line", p.Line),
			zap.String("distributor", p.Name), zap.String("problem", p.Message))
	}
	if cleanupErr != nil {
		log.Error("the cleanup of finished jobs does not run in this process: its file is invalid", zap.Error(cleanupErr))
	}
	if name != "" && len(cfg.Distributors) == 1 && !cfg.Distributors[0].Enabled {
		log.Info("distributor not enabled for --all; it runs because it is named", zap.String("distributor", name))
	}
	if name == daemon.CleanupName {
		log.Info("jobs_cleanup is a maintenance service: this process runs no distributor and contends for the maintenance services")
	}
	return serveDaemon(c, log, "giving up leadership", func(ctx context.Context) (daemonHandle, error) {
		return daemon.StartDistributor(ctx, cfg)
	})
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
			for _, st := range cat.SettingsFiles() {
				sched, _ := schedule.Parse(st.Schedule)
				fmt.Fprintf(c.App.Writer, "ok  %s  %s  %s  (settings of the cleanup of finished jobs, a maintenance service)\n", st.Source, st.Name, sched)
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
