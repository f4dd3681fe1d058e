package command

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
)

// listedJob is a job as `job list --json` prints it: the document, where
// it was read from, and the cursor that lists the jobs after it.
type listedJob struct {
	history.Job
	Cursor string `json:"cursor"`
}

func jobListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list jobs, newest first, a page at a time",
		Description: "Lists the live jobs in ZooKeeper and, when --es-hosts is set, the history in Elasticsearch.\n" +
			"A job in both is shown once, as it is in ZooKeeper. The SOURCE column (the \"source\" field\n" +
			"with --json) says where each job was read from. When more jobs match than --limit, a note on\n" +
			"stderr gives the --after to type for the next page (with --json, each job's \"cursor\").\n" +
			"Documents that fail validation and quarantined objects are listed after the jobs (with --json,\n" +
			"counted on stderr: see `queue inspect --quarantined`).",
		Flags: append(withEnv("job list",
			&cli.StringFlag{Name: "state", Usage: "only jobs in this state (" + stateNames() + ")"},
			&cli.StringFlag{Name: "action", Usage: "only jobs of this action"},
			&cli.IntFlag{Name: "limit", Value: defaultLimit, Usage: "at most this many jobs; 0: no limit"},
			&cli.StringFlag{Name: "after", Usage: "start after this cursor, as the previous page's note printed it"},
			jsonFlag("print a JSON array of job documents"),
		), append(launchFilterFlags(), watchFlags("job list")...)...),
		Action: func(c *cli.Context) error {
			_, err := parseArgs(c)
			if err != nil {
				return err
			}
			var q history.Query
			if s := c.String("state"); s != "" {
				st, err := parseState(s)
				if err != nil {
					return err
				}
				q.State = st
			}
			q.Action = c.String("action")
			if q.Launch, err = readLaunchFilter(c, time.Now()); err != nil {
				return err
			}
			if q.Limit = c.Int("limit"); q.Limit < 0 {
				return negativeLimit(q.Limit)
			}
			if a := c.String("after"); a != "" {
				cur, err := history.ParseCursor(a)
				if err != nil {
					return usagef("--after %q is not a cursor: type the value a previous `job list` printed after --after", a)
				}
				q.After = &cur
			}
			w, err := startWatch(c)
			if err != nil {
				return err
			}
			defer w.Close()
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			return watchRun(c, w, func() error { return listJobs(c, cl, q) })
		},
	}
}

// listJobs prints a page of jobs, the invalid documents and the
// quarantined objects.
func listJobs(c *cli.Context, cl *client, q history.Query) error {
	page, err := cl.jobs.List(cl.ctx, q)
	if err != nil {
		return cl.fail(err, "")
	}
	if page.HistoryErr != nil {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: warning: history left out: %v\n", page.HistoryErr)
	}
	if err := printJobs(c, page); err != nil {
		return err
	}
	qs, err := cl.store.QuarantineList(cl.ctx)
	if err != nil {
		return cl.fail(err, "")
	}
	if err := printInvalid(c, page.Invalid); err != nil {
		return err
	}
	if err := printQuarantined(c, qs, false); err != nil {
		return err
	}
	if page.Next != nil {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: %d jobs shown, more match: for the next page, run the same command with --after %s\n", len(page.Jobs), page.Next)
	}
	return nil
}

func printJobs(c *cli.Context, page history.Page) error {
	if c.Bool("json") {
		out := make([]listedJob, len(page.Jobs))
		for i, j := range page.Jobs {
			out[i] = listedJob{j, history.CursorOf(j.Job).String()}
		}
		return writeJSON(c.App.Writer, out)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "ID\tACTION\tSTATE\tPRIORITY\tPROGRESS\tCREATED\tTARGET\tSOURCE")
	for _, v := range page.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d%%\t%s\t%s\t%s\n", printable(v.ID), printable(v.Action), printable(string(v.State)), v.Priority, v.Progress,
			stamp(v.Created), dash(printable(v.Target())), v.Source)
	}
	return tw.Flush()
}

// printInvalid lists the live documents that fail validation after the
// jobs (a note on stderr with --json).
func printInvalid(c *cli.Context, bad []jobs.InvalidDocument) error {
	switch {
	case len(bad) == 0:
		return nil
	case c.Bool("json"):
		fmt.Fprintf(c.App.ErrWriter, "jobengine: %d job documents fail validation and are in no listing: see `jobengine queue stats`; an executor quarantines each when it takes its entry\n", len(bad))
		return nil
	}
	fmt.Fprintln(c.App.Writer)
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "INVALID\tPATH\tREASON")
	for _, b := range bad {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", dash(printable(b.Job)), printable(b.Path), printable(b.Reason))
	}
	return tw.Flush()
}
