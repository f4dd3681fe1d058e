package command

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
)

func inventorySourceCommand() *cli.Command {
	return &cli.Command{
		Name:  "source",
		Usage: "set, show, remove or run the source an inventory is refreshed from",
		Description: "An inventory source is a file of a project: an executable script that prints Ansible's JSON\n" +
			"inventory format when run with --list, or a file `ansible-inventory -i FILE --list` reads (YAML, INI).\n" +
			"An inventory update job (action inventory_update) checks the project out on an executor, runs the\n" +
			"source and imports what it prints as a new snapshot of the inventory.",
		Subcommands: []*cli.Command{
			inventorySourceSetCommand(), inventorySourceShowCommand(), inventorySourceRemoveCommand(), inventorySourceUpdateCommand(),
		},
	}
}

func inventorySourceSetCommand() *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "set the source of a static inventory",
		ArgsUsage: "NAME",
		Description: "--project names an existing project, --path a file in it (relative to the project's root).\n" +
			"With --update-on-launch, a template launch over the inventory first runs an inventory update (and\n" +
			"its jobs wait for it), unless one is pending or running (they share it) or the last one succeeded\n" +
			"within --cache-timeout.",
		Flags: withEnv("inventory source set",
			&cli.StringFlag{Name: "project", Usage: "the project the source file comes from"},
			&cli.StringFlag{Name: "path", Usage: "the source file's path in the project"},
			&cli.BoolFlag{Name: "update-on-launch", Usage: "update the inventory before template launches over it run"},
			&cli.DurationFlag{Name: "cache-timeout", Usage: "with --update-on-launch: reuse an update this recent"},
		),
		Action: func(c *cli.Context) error {
			name, src, err := sourceFromFlags(c)
			if err != nil {
				return err
			}
			args := []string{name}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if _, _, err := o.projects.Get(o.ctx, src.Project); err != nil {
				return o.failObj(fmt.Errorf("project %s: %w", src.Project, err))
			}
			if _, err := o.inv.SetSource(o.ctx, args[0], src); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "inventory %s: source %s of project %s\n", args[0], src.Path, src.Project)
			return nil
		},
	}
}

// sourceFromFlags reads the argument and flags of `inventory source set`.
func sourceFromFlags(c *cli.Context) (string, *inventory.Source, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", nil, err
	}
	if err := checkName("inventory", args[0]); err != nil {
		return "", nil, err
	}
	if c.String("project") == "" || c.String("path") == "" {
		return "", nil, usagef("give --project P and --path FILE (the source file's path in the project)")
	}
	if c.IsSet("cache-timeout") && !c.Bool("update-on-launch") {
		return "", nil, usagef("--cache-timeout goes with --update-on-launch")
	}
	if c.Duration("cache-timeout") < 0 {
		return "", nil, usagef("--cache-timeout must not be negative")
	}
	src := &inventory.Source{Project: c.String("project"), Path: c.String("path"),
		UpdateOnLaunch: c.Bool("update-on-launch"), CacheTimeout: c.Duration("cache-timeout").Seconds()}
	if err := src.Validate(); err != nil {
		return "", nil, &UsageError{Err: err}
	}
	return args[0], src, nil
}

// errNoSource is the error about an inventory without a source.
func errNoSource(name string) error {
	return fmt.Errorf("inventory %s has no source (set one with `jobengine inventory source set %s --project P --path FILE`)", name, name)
}

// printSource prints the source of inventory name as `inventory source
// show` does; job reads the last update job (false: not found).
func printSource(c *cli.Context, name string, s *inventory.Source, job func(id string) (*jobs.Job, bool)) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, s)
	}
	tw := newTable(c.App.Writer)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("inventory", name)
	row("project", s.Project)
	row("path", s.Path)
	row("update-on-launch", yesNo(s.UpdateOnLaunch))
	if s.UpdateOnLaunch {
		row("cache-timeout", (time.Duration(s.CacheTimeout * float64(time.Second))).String())
	}
	row("last-update-job", s.LastUpdateJob)
	if s.LastUpdateJob != "" {
		if j, ok := job(s.LastUpdateJob); ok {
			row("last-update", fmt.Sprintf("%s %s", j.State, oneLine(j.StatusMessage)))
		}
	}
	return tw.Flush()
}

func inventorySourceShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show the source of an inventory and its last update",
		ArgsUsage: "NAME",
		Flags:     withEnv("inventory source show", &cli.BoolFlag{Name: "json", Usage: "print the source as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			inv, _, err := o.inv.Get(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			if inv.Source == nil {
				return errNoSource(inv.Name)
			}
			return printSource(c, inv.Name, inv.Source, func(id string) (*jobs.Job, bool) {
				j, _, err := o.store.Get(o.ctx, id)
				return j, err == nil
			})
		},
	}
}

func inventorySourceRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:        "remove",
		Usage:       "remove the source of an inventory",
		ArgsUsage:   "NAME",
		Description: "The inventory keeps its hosts and groups; it is no longer updated from the source.",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if _, err := o.inv.SetSource(o.ctx, args[0], nil); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "inventory %s: source removed\n", args[0])
			return nil
		},
	}
}

func inventorySourceUpdateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "start an inventory update job and print its id",
		ArgsUsage: "NAME",
		Description: "Creates a job of action inventory_update, recorded on the inventory's source in the same\n" +
			"transaction. It holds the concurrency key inventory-source:NAME, so it is scheduled by a controller\n" +
			"and updates of one inventory run one at a time.",
		Flags: withEnv("inventory source update", maxBacklogFlag()),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.ensure(); err != nil {
				return err
			}
			st := invsource.Stores{Inventories: o.inv, Projects: o.projects, Jobs: o.store}
			j, err := st.StartUpdate(o.ctx, args[0], createdByCLI)
			if err != nil {
				return o.failObj(err)
			}
			fmt.Fprintln(c.App.Writer, j.ID)
			return nil
		},
	}
}
