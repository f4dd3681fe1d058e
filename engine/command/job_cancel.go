package command

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
)

// canceledJob is what `job cancel --json` prints: the job document after
// the cancel, and whether its executor was asked to stop it (a RUNNING job).
type canceledJob struct {
	history.Job
	CancelRequested bool `json:"cancel-requested"`
}

func jobCancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a job",
		ArgsUsage: "ID",
		Description: "A QUEUED job becomes CANCELED at once; a RUNNING job gets a cancel request that its executor\n" +
			"acts on (use `job wait` to see it end). A job in a final state cannot be canceled: exit 1.\n" +
			"A sliced job's container is canceled with all its slices and ends CANCELED once they have ended.\n" +
			"A job whose document fails validation is quarantined instead (exit 1, saying so).",
		Flags: withEnv("job cancel", jsonFlag("print the job document after the cancel as JSON")),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, _, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.ensure(); err != nil {
				return err
			}
			j, err := cl.store.CancelJob(cl.ctx, id, createdByCLI)
			switch {
			case errors.Is(err, jobs.ErrFinal):
				return &withCause{fmt.Sprintf("%s is already %s; a job in a final state cannot be canceled", id, j.State), err}
			case errors.Is(err, jobs.ErrQuarantined):
				// Its document failed validation: nothing runs it, and
				// `queue inspect --quarantined` shows what it held.
				return &withCause{fmt.Sprintf("%v; a quarantined job is not run and cannot be canceled (see `jobengine queue inspect --quarantined`)", err), err}
			case err != nil:
				return cl.fail(err, id)
			case c.Bool("json"):
				return writeJSON(c.App.Writer, canceledJob{history.Job{Job: j, Source: history.Live}, j.State == jobs.Running})
			case j.State == jobs.Running:
				fmt.Fprintf(c.App.Writer, "%s cancel requested (RUNNING: its executor stops it)\n", j.ID)
			default:
				fmt.Fprintf(c.App.Writer, "%s %s\n", j.ID, j.State)
			}
			return nil
		},
	}
}
