package command

import "github.com/urfave/cli/v2"

func jobCommand() *cli.Command {
	return &cli.Command{Name: "job", Usage: "add, list, show, cancel, wait for and follow jobs"}
}

func queueCommand() *cli.Command {
	return &cli.Command{Name: "queue", Usage: "inspect and repair the job queue"}
}
