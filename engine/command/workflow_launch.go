package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/workflow"
)

// The commands that launch workflow templates and follow workflow jobs.

func workflowLaunchCommand() *cli.Command {
	return &cli.Command{
		Name:      "launch",
		Usage:     "launch a workflow template and print the workflow job's id",
		ArgsUsage: "NAME",
		Description: "Creates a workflow job (kind workflow) carrying the graph; the maintenance leader (a controller) runs its\n" +
			"nodes. Follow it with `jobengine workflow nodes JOB` and `jobengine job wait JOB`.",
		Flags: withEnv("workflow launch", &cli.BoolFlag{Name: "json", Usage: "print the workflow job as JSON"}, maxBacklogFlag()),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("workflow", args[0]); err != nil {
				return err
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.ensure(); err != nil {
				return err
			}
			j, err := o.wl.Launch(o.ctx, workflow.Request{Workflow: args[0], CreatedBy: createdByCLI})
			if err != nil {
				return o.failWorkflow(err)
			}
			return printWorkflowJob(c, j)
		},
	}
}

func workflowRelaunchCommand() *cli.Command {
	return &cli.Command{
		Name:      "relaunch",
		Usage:     "run a workflow job's graph again, with the same launch values",
		ArgsUsage: "JOB",
		Description: "Refused, with the reason, when a node's template or workflow is gone or a sliced node's template changed\n" +
			"its slice count. --from NODE runs only that node and what follows it.",
		Flags: withEnv("workflow relaunch",
			&cli.StringFlag{Name: "from", Usage: "relaunch from this node (such as the one that failed)"},
			&cli.BoolFlag{Name: "json", Usage: "print the new workflow job as JSON"}, maxBacklogFlag()),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "JOB")
			if err != nil {
				return err
			}
			id, _, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			if from := c.String("from"); from != "" {
				if err := checkName("node", from); err != nil {
					return err
				}
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.ensure(); err != nil {
				return err
			}
			j, err := o.wl.Relaunch(o.ctx, id, c.String("from"), createdByCLI)
			if err != nil {
				return o.failWorkflow(err)
			}
			return printWorkflowJob(c, j)
		},
	}
}

func printWorkflowJob(c *cli.Context, j *jobs.Job) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, j)
	}
	fmt.Fprintln(c.App.Writer, j.ID)
	return nil
}

// nodeRow is a node of a workflow job as `workflow nodes` shows it.
type nodeRow struct {
	Node   string `json:"node"`
	Status string `json:"status"`
	Job    string `json:"job"`
	State  string `json:"state,omitempty"`
}

func workflowNodesCommand() *cli.Command {
	return &cli.Command{
		Name:      "nodes",
		Usage:     "show the nodes of a workflow job: what ran, what waits, what will not run",
		ArgsUsage: "JOB",
		Flags:     withEnv("workflow nodes", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of nodes"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "JOB")
			if err != nil {
				return err
			}
			id, _, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			j, _, err := o.store.Get(o.ctx, id)
			if err != nil {
				return o.fail(err, id)
			}
			if !j.IsWorkflow() {
				return fmt.Errorf("%s is not a workflow job", j.ID)
			}
			nodeJobs, err := o.store.Slices(o.ctx, j)
			if err != nil {
				return o.fail(err, id)
			}
			ev, err := workflow.Evaluate(j.Workflow, nodeJobs, j.CancelRequested)
			if err != nil {
				return err
			}
			rows := make([]nodeRow, len(j.Workflow.Nodes))
			for i, n := range j.Workflow.Nodes {
				rows[i] = nodeRow{Node: n.ID, Status: string(ev.Status[i]), Job: j.NestedJobs[i]}
				if nodeJobs[i] != nil {
					rows[i].State = string(nodeJobs[i].State)
				}
			}
			return printNodes(c, rows)
		},
	}
}

// printNodes prints a workflow job's nodes as `workflow nodes` does.
func printNodes(c *cli.Context, rows []nodeRow) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, rows)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NODE\tSTATUS\tJOB\tSTATE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Node, r.Status, r.Job, dash(r.State))
	}
	return tw.Flush()
}
