package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/workflow"
)

func init() {
	extraCommands = append(extraCommands, workflowCommand)
}

// maxWorkflowFile bounds a workflow file.
const maxWorkflowFile = configstore.MaxObjectBytes

func workflowCommand() *cli.Command {
	return &cli.Command{
		Name:  "workflow",
		Usage: "create, edit, list, show, delete, launch and relaunch workflow templates",
		Description: "A workflow template is a graph of nodes — each a job template or another workflow template, with launch\n" +
			"values — joined by success, failure and always edges, written in a YAML (or JSON) file; see docs/workflows.md.",
		Subcommands: []*cli.Command{
			workflowCreateCommand(), workflowEditCommand(), workflowListCommand(), workflowShowCommand(),
			workflowDeleteCommand(), workflowLaunchCommand(), workflowRelaunchCommand(), workflowNodesCommand(),
		},
	}
}

// workflowObjects are the stores the workflow commands use.
type workflowObjects struct {
	*objects
	wfs *workflow.Store
	wl  *workflow.Launcher
}

func openWorkflows(c *cli.Context) (*workflowObjects, error) {
	o, err := openObjects(c)
	if err != nil {
		return nil, err
	}
	wfs := workflow.NewStore(o.conn, o.log.Named("workflow"))
	return &workflowObjects{objects: o, wfs: wfs,
		wl: &workflow.Launcher{Jobs: o.store, Workflows: wfs, Templates: o.tmpls, Logger: o.log.Named("launch")}}, nil
}

// failWorkflow is failObj knowing the workflow package's errors.
func (o *workflowObjects) failWorkflow(err error) error {
	if errors.Is(err, workflow.ErrCannotRelaunch) || errors.Is(err, jobs.ErrNotFound) {
		return err
	}
	return o.failObj(err)
}

// readWorkflowFile reads a workflow template from a YAML or JSON file
// (- for stdin), strictly: an unknown field is an error, as a typo would
// otherwise drop an edge silently.
func readWorkflowFile(name string) (*workflow.Template, error) {
	data, err := readFile(name, maxWorkflowFile)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, usagef("%s: not YAML or JSON: %v", name, err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, usagef("%s: want a mapping with nodes (and optionally name and description); see docs/workflows.md", name)
	}
	asJSON, err := json.Marshal(doc)
	if err != nil {
		return nil, usagef("%s: %v", name, err)
	}
	var t workflow.Template
	if err := configstore.DecodeStrict(asJSON, &t); err != nil {
		return nil, usagef("%s: %v", name, err)
	}
	return &t, nil
}

// workflowFromFlags reads --file and --description into a template of
// name; the name in the file, if any, must be the same.
func workflowFromFlags(c *cli.Context, name string) (*workflow.Template, error) {
	t, err := readWorkflowFile(c.String("file"))
	if err != nil {
		return nil, err
	}
	if t.Name != "" && t.Name != name {
		return nil, usagef("%s names workflow %s, not %s: give the same name, or none in the file", c.String("file"), t.Name, name)
	}
	t.Name = name
	if c.IsSet("description") {
		t.Description = c.String("description")
	}
	if err := t.Validate(); err != nil {
		return nil, &UsageError{Err: err}
	}
	return t, nil
}

func workflowFileFlags(command string) []cli.Flag {
	return withEnv(command,
		&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "the workflow's nodes, a YAML or JSON file (- reads stdin)"},
		&cli.StringFlag{Name: "description", Usage: "what the workflow is for (overrides the file's)"},
	)
}

func workflowCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a workflow template from a YAML file",
		ArgsUsage: "NAME",
		Description: "The file holds nodes: each an id, a template or a workflow, optional values (the template's prompts) and\n" +
			"the ids of the nodes that follow on success, failure and always. A cycle, a workflow that contains itself,\n" +
			"a template or workflow that does not exist, or a value the template does not prompt for is refused (exit 2).",
		Flags: workflowFileFlags("workflow create"),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("workflow", args[0]); err != nil {
				return err
			}
			if !c.IsSet("file") {
				return usagef("--file is required: the workflow's nodes, a YAML or JSON file (see docs/workflows.md)")
			}
			t, err := workflowFromFlags(c, args[0])
			if err != nil {
				return err
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := workflow.Check(o.ctx, t, o.wfs, o.tmpls); err != nil {
				return o.failWorkflow(err)
			}
			if err := o.wfs.Create(o.ctx, t); err != nil {
				return o.failWorkflow(err)
			}
			fmt.Fprintf(c.App.Writer, "workflow %s created\n", t.Name)
			return nil
		},
	}
}

func workflowEditCommand() *cli.Command {
	return &cli.Command{
		Name:        "edit",
		Usage:       "replace the nodes (and description) of a workflow template from a YAML file",
		ArgsUsage:   "NAME",
		Description: "Workflow jobs already launched run on with the graph they were launched with.",
		Flags:       workflowFileFlags("workflow edit"),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("workflow", args[0]); err != nil {
				return err
			}
			if !c.IsSet("file") && !c.IsSet("description") {
				return usagef("nothing to change: give --file (the new nodes) or --description")
			}
			var fromFile *workflow.Template
			if c.IsSet("file") {
				if fromFile, err = workflowFromFlags(c, args[0]); err != nil {
					return err
				}
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			for attempt := 0; ; attempt++ {
				t, ver, err := o.wfs.Get(o.ctx, args[0])
				if err != nil {
					return o.failWorkflow(err)
				}
				if fromFile != nil {
					t.Nodes, t.Description = fromFile.Nodes, fromFile.Description
				}
				if c.IsSet("description") {
					t.Description = c.String("description")
				}
				if err := t.Validate(); err != nil {
					return &UsageError{Err: err}
				}
				if err := workflow.Check(o.ctx, t, o.wfs, o.tmpls); err != nil {
					return o.failWorkflow(err)
				}
				err = o.wfs.Update(o.ctx, t, ver)
				if errors.Is(err, configstore.ErrConflict) && attempt < 5 {
					continue
				}
				if err != nil {
					return o.failWorkflow(err)
				}
				fmt.Fprintf(c.App.Writer, "workflow %s changed\n", t.Name)
				return nil
			}
		},
	}
}

func workflowListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list workflow templates",
		Flags: withEnv("workflow list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of workflow templates"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			o, err := openWorkflows(c)
			if err != nil {
				return err
			}
			defer o.Close()
			list, bad, err := o.wfs.List(o.ctx)
			if err != nil {
				return o.failWorkflow(err)
			}
			reportBad(c.App.ErrWriter, bad)
			return printWorkflows(c, list)
		},
	}
}

// printWorkflows prints workflow templates as `workflow list` does.
func printWorkflows(c *cli.Context, list []*workflow.Template) error {
	if c.Bool("json") {
		return writeJSONList(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tNODES\tDESCRIPTION\tUPDATED")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Name, len(t.Nodes), dash(oneLine(t.Description)), stamp(t.Updated))
	}
	return tw.Flush()
}

func workflowShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a workflow template",
		ArgsUsage: "NAME",
		Flags: withEnv("workflow show",
			&cli.BoolFlag{Name: "json", Usage: "print the workflow template as JSON"},
			&cli.BoolFlag{Name: "yaml", Usage: "print the workflow template as YAML, as `workflow edit --file` takes it"}),
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
			t, _, err := o.wfs.Get(o.ctx, args[0])
			if err != nil {
				return o.failWorkflow(err)
			}
			return printWorkflow(c, t)
		},
	}
}

// printWorkflow prints a workflow template as `workflow show` does.
func printWorkflow(c *cli.Context, t *workflow.Template) error {
	switch {
	case c.Bool("json"):
		return writeJSON(c.App.Writer, t)
	case c.Bool("yaml"):
		return writeWorkflowYAML(c, t)
	}
	fmt.Fprintf(c.App.Writer, "name:         %s\n", t.Name)
	if t.Description != "" {
		fmt.Fprintf(c.App.Writer, "description:  %s\n", oneLine(t.Description))
	}
	fmt.Fprintf(c.App.Writer, "updated:      %s\n\n", stamp(t.Updated))
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NODE\tLAUNCHES\tVALUES\tON SUCCESS\tON FAILURE\tALWAYS")
	for _, n := range t.Nodes {
		what := strings.Replace(n.Target(), "/", " ", 1)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, what, dash(strings.Join(n.Values.Fields(), ",")),
			dash(strings.Join(n.Success, ",")), dash(strings.Join(n.Failure, ",")), dash(strings.Join(n.Always, ",")))
	}
	return tw.Flush()
}

// writeWorkflowYAML prints t as YAML, through its JSON form so that the
// field names are the file's.
func writeWorkflowYAML(c *cli.Context, t *workflow.Template) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	delete(doc, "created")
	delete(doc, "updated")
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(out)
	return err
}

func workflowDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:        "delete",
		Usage:       "delete a workflow template",
		ArgsUsage:   "NAME",
		Description: "Workflow jobs already launched run on; relaunching them still works (they carry their graph).",
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
			if err := o.wfs.Delete(o.ctx, args[0]); err != nil {
				return o.failWorkflow(err)
			}
			fmt.Fprintf(c.App.Writer, "workflow %s deleted\n", args[0])
			return nil
		},
	}
}
