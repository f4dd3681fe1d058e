package command

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
)

func jobLogsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a job's log",
		ArgsUsage: "ID",
		Description: "Prints the tail of the job's log kept in ZooKeeper (the last 64 KiB), preceded by the full\n" +
			"log from the job-events index when --es-hosts is set. --follow keeps printing new lines\n" +
			"(watching ZooKeeper, no polling) until the job is final.",
		Flags: withEnv("job logs",
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "print new lines until the job is final"},
			jsonFlag("print one JSON object per line: {\"time\", \"level\", \"message\"}"),
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
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			emit := printLines
			if c.Bool("json") {
				emit = printJSONLines
			}
			err = cl.jobs.Logs(cl.ctx, id, c.Bool("follow"), func(b history.LogBatch) error {
				if b.HistoryErr != nil {
					fmt.Fprintf(c.App.ErrWriter, "jobengine: warning: job-events index left out: %v\n", b.HistoryErr)
				}
				return emit(c.App.Writer, b.Lines)
			})
			return cl.fail(err, id)
		},
	}
}

func printLines(w io.Writer, lines []jobs.LogLine) error {
	for _, l := range lines {
		if _, err := fmt.Fprintf(w, "%s %-5s %s\n", l.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), printable(strings.ToUpper(l.Level)), printable(action.RenderFields(l.Message, l.Fields))); err != nil {
			return err
		}
	}
	return nil
}

// printJSONLines prints one compact JSON object per line, so that a
// follower can read each line as it comes.
func printJSONLines(w io.Writer, lines []jobs.LogLine) error {
	enc := json.NewEncoder(w)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}
