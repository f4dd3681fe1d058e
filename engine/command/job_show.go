package command

import (
	"github.com/urfave/cli/v2"
)

func jobShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a job document",
		ArgsUsage: "ID",
		Description: "Reads the live document from ZooKeeper; a job no longer there is looked up in the\n" +
			"Elasticsearch history when --es-hosts is set. ID is job/<uuid> or the bare uuid.",
		Flags: withEnv("job show", jsonFlag("print the document as JSON")),
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
			v, err := cl.jobs.Get(cl.ctx, id)
			if err != nil {
				return cl.fail(err, id)
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, v)
			}
			return writeJobText(c.App.Writer, v)
		},
	}
}
