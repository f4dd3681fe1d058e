package command

import (
	"github.com/urfave/cli/v2"
)

// createdByCLI is the created-by of jobs added with `job add`, and the
// canceller named in the status message of jobs canceled with `job cancel`.
const createdByCLI = "cli"

// defaultLimit bounds listings unless --limit says otherwise.
const defaultLimit = 100

// The `job` commands, one file each: job_add.go, job_show.go, job_list.go,
// job_cancel.go, job_wait.go and job_logs.go; joblaunch.go holds the ones
// that know templates and sliced jobs (relaunch, delete, inventory). What they read comes from
// engine/history, which merges the live jobs with the Elasticsearch history.
func jobCommand() *cli.Command {
	return &cli.Command{
		Name:  "job",
		Usage: "add, list, show, cancel, wait for and follow jobs",
		Subcommands: []*cli.Command{
			jobAddCommand(), jobShowCommand(), jobListCommand(), jobCancelCommand(), jobWaitCommand(), jobLogsCommand(),
			jobRelaunchCommand(), jobRetryCommand(), jobDeleteCommand(), jobInventoryCommand(),
		},
	}
}

// jsonFlag is the --json flag of a command; what it prints is in its usage.
func jsonFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: usage}
}

// negativeLimit is the error of a --limit below 0.
func negativeLimit(n int) error {
	return usagef("--limit %d is negative: type how many to show, or 0 for no limit", n)
}
