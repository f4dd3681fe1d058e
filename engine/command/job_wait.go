package command

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
)

// errWaitTimeout is the cause of a `job wait` that ran out of time.
var errWaitTimeout = errors.New("wait timed out")

func jobWaitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until a job is final; exit 0 if it succeeded",
		ArgsUsage: "ID",
		Description: "Watches the job document in ZooKeeper (no polling) until the job is SUCCESS, FAILED or\n" +
			"CANCELED, then prints its final state. Exit 0: SUCCESS; 1: FAILED or CANCELED (or the job is\n" +
			"unknown); 3: --timeout passed first. A document already removed from ZooKeeper is looked up\n" +
			"in the Elasticsearch history when --es-hosts is set. While it waits, each change (state, progress,\n" +
			"executor; the children's states of a sliced or workflow job) is shown on stderr: a line redrawn\n" +
			"with a progress bar on a terminal, a line per change otherwise (not with --json or --quiet).",
		Flags: withEnv("job wait",
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long (30s, 10m; exit 3); 0: wait as long as it takes"},
			jsonFlag("print the final document as JSON"),
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "show no change while waiting: print the final line only"},
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, _, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			if timeout < 0 {
				return usagef("--timeout %s is negative: type a duration such as 30s, or 0 to wait as long as it takes", timeout)
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := cl.ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeoutCause(cl.ctx, timeout, errWaitTimeout)
			}
			defer cancel()
			p := newWaitProgress(c)
			v, err := cl.jobs.Follow(ctx, id, func(v history.Job) {
				var children []*jobs.Job
				if p != nil && len(v.NestedJobs) > 0 {
					// Read again at each change: a failed read shows
					// the job without its children's counts.
					if cs, err := cl.store.Slices(ctx, v.Job); err == nil {
						children = cs
					}
				}
				p.show(v.Job, children)
			})
			p.end()
			if errors.Is(context.Cause(ctx), errWaitTimeout) {
				state := "still not final"
				if v.Job != nil {
					state = "it is " + string(v.State)
				}
				return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for %s; %s", timeout, id, state)}
			}
			if err != nil {
				return cl.fail(err, id)
			}
			if c.Bool("json") {
				err = writeJSON(c.App.Writer, v)
			} else {
				fmt.Fprintln(c.App.Writer, finalLine(v.Job))
			}
			if err != nil || v.State == jobs.Success {
				return err
			}
			return &ExitError{Code: ExitFailure, Err: &withCause{fmt.Sprintf("%s ended %s", id, v.State), errJobFailed}}
		},
	}
}

// finalLine says how a job ended: "job/… FAILED (return code 2): message".
func finalLine(j *jobs.Job) string {
	s := j.ID + " " + string(j.State)
	if j.ReturnCode != nil {
		s += fmt.Sprintf(" (return code %d)", *j.ReturnCode)
	}
	if j.StatusMessage != "" {
		s += ": " + oneLine(j.StatusMessage)
	}
	return s
}
