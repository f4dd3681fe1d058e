package command

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/systemjob"
)

func init() { extraCommands = append(extraCommands, systemJobCommand) }

func systemJobCommand() *cli.Command {
	return &cli.Command{
		Name:  "system-job",
		Usage: "list and launch the cluster's system jobs (cleanup of finished jobs, of expired tokens)",
		Description: "A system job is the cluster's housekeeping run as a job (action system_job): it holds the\n" +
			"concurrency key `system`, so one runs at a time cluster-wide, weighs an impact of 5, and is placed\n" +
			"on an executor by the elected controller's scheduler. A schedule launches one with\n" +
			"`schedule create NAME --action system_job --payload '{\"kind\": \"cleanup_jobs\", \"days\": 30}'`.",
		Subcommands: []*cli.Command{systemJobListCommand(), systemJobLaunchCommand()},
	}
}

func systemJobListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the kinds of system jobs",
		Flags: withEnv("system-job list", &cli.BoolFlag{Name: "json", Usage: "print the kinds as JSON"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, systemjob.Kinds)
			}
			tw := newTable(c.App.Writer)
			fmt.Fprintln(tw, "KIND\tDAYS\tDESCRIPTION")
			for _, k := range systemjob.Kinds {
				days := "-"
				if k.TakesDays {
					days = strconv.Itoa(k.DefaultDays)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Kind, days, k.Description)
			}
			return tw.Flush()
		},
	}
}

func systemJobLaunchCommand() *cli.Command {
	return &cli.Command{
		Name:      "launch",
		Usage:     "launch a system job and print its id",
		ArgsUsage: "KIND",
		Description: "Creates the job PENDING; a controller's scheduler queues it on an executor once no other\n" +
			"system job is active and the executor has room for its impact. `job show ID` or `job wait ID`\n" +
			"tells what it did.",
		Flags: withEnv("system-job launch",
			&cli.IntFlag{Name: "days", Usage: "for a kind that takes days: how old what is deleted must be (default: the kind's, see list)"},
			maxBacklogFlag(),
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "KIND")
			if err != nil {
				return err
			}
			var days *int
			if c.IsSet("days") {
				d := c.Int("days")
				days = &d
			}
			n, err := systemjob.NewJob(systemjob.Kind(args[0]), days, createdByCLI)
			if err != nil {
				return &UsageError{Err: err}
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.ensure(); err != nil {
				return err
			}
			j, err := cl.store.Create(cl.ctx, n)
			if err != nil {
				return cl.fail(err, "")
			}
			fmt.Fprintln(c.App.Writer, j.ID)
			return nil
		},
	}
}
