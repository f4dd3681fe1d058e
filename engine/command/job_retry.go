package command

import (
	"errors"
	"net/http"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
)

func init() {
	apiActions["job retry"] = apiJobRetry
}

func jobRetryCommand() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "run a FAILED job again with the inputs it had and print the new job's id",
		ArgsUsage: "ID",
		Description: "A new job (launch-type retry, retry-of the failed one) with the failed job's action, payload,\n" +
			"target, priority, tags, timeout and launch fields — for a template's job the values resolved when it\n" +
			"was launched and the same inventory snapshot, not the template as it is now (that is `job relaunch`).\n" +
			"A sliced job's container: a new container holding a retry of each slice that did not succeed; the\n" +
			"slices that succeeded are not run again. One slice, or a job of a workflow node: a job of its own.\n" +
			"Refused for a job that is not FAILED, a workflow job (`workflow relaunch ID --from NODE`), a fan-out,\n" +
			"an update run for a launch, a job whose dependency did not succeed or whose inventory snapshot is\n" +
			"gone (relaunch those).",
		Flags: withEnv("job retry", &cli.BoolFlag{Name: "json", Usage: "print the job (and its slices) as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, _, err := parseJobID(args[0])
			if err != nil {
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
			res, err := o.launcher.Retry(o.ctx, id, createdByCLI)
			if errors.Is(err, jobs.ErrNotFound) {
				return o.fail(err, id)
			}
			if err != nil {
				return o.failObj(err)
			}
			return printLaunch(c, res)
		},
	}
}

func apiJobRetry(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	var v apiLaunched
	if err := cl.do(c.Context, http.MethodPost, "/jobs/"+uid+"/retry", nil, nil, &v); err != nil {
		return err
	}
	return printAPILaunch(c, "retry", v)
}
