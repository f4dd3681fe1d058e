package command

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/template"
)

func templateCommand() *cli.Command {
	return &cli.Command{
		Name:  "template",
		Usage: "create, edit, list, show, delete and launch job templates",
		Subcommands: []*cli.Command{
			templateCreateCommand(), templateEditCommand(), templateListCommand(), templateShowCommand(),
			templateDeleteCommand(), templateLaunchCommand(),
		},
	}
}

// valueFlags are the flags of the fields a launch may give (prompts), on
// create and edit as on launch.
func valueFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "payload", Usage: "the action's arguments: a JSON object, or @file (@- reads stdin)"},
		&cli.StringFlag{Name: "extra-vars", Usage: "Ansible extra variables: a JSON object, or @file"},
		&cli.StringFlag{Name: "inventory", Usage: "the inventory the jobs run over"},
		&cli.StringFlag{Name: "limit", Usage: "an Ansible host pattern selecting hosts of the inventory (applied before slicing)"},
		&cli.IntFlag{Name: "slices", Aliases: []string{"slice-count"}, Usage: "slice count: more than 1 runs a sliced job"},
		&cli.IntFlag{Name: "forks", Usage: "Ansible forks"},
		&cli.IntFlag{Name: "verbosity", Usage: "Ansible verbosity, 0–5"},
		&cli.BoolFlag{Name: "diff-mode", Usage: "Ansible --diff"},
		&cli.BoolFlag{Name: "check-mode", Usage: "Ansible --check"},
		&cli.StringFlag{Name: "job-tags", Usage: "Ansible --tags"},
		&cli.StringFlag{Name: "skip-tags", Usage: "Ansible --skip-tags"},
		&cli.DurationFlag{Name: "timeout", Usage: "run time limit of each job; 0: the action's default"},
		&cli.IntFlag{Name: "priority", Value: queue.DefaultPriority, Usage: "0–999, lower runs first"},
		&cli.StringSliceFlag{Name: "instance-group", Usage: "a group of executors that may run the jobs; repeat, in preference order"},
		&cli.StringSliceFlag{Name: "tag", Usage: "a tag of every job; repeat for more"},
	}
}

// fixedFlags are the flags of the fields no launch may change.
func fixedFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "action", Usage: "the action the jobs run"},
		&cli.StringFlag{Name: "project", Usage: "Ansible: the project holding the playbook"},
		&cli.StringFlag{Name: "playbook", Usage: "Ansible: the playbook's path within the project"},
		&cli.BoolFlag{Name: "allow-simultaneous", Usage: "let two launches of the template run at once"},
		&cli.BoolFlag{Name: "prevent-fallback", Usage: "run the jobs in their first instance group only: wait there for room"},
		&cli.StringSliceFlag{Name: "credential", Usage: "Ansible: a credential the runs use (machine, vault, secret); repeat for more"},
	}
}

// definitionFlags are the flags of template create and edit.
func definitionFlags(command string) []cli.Flag {
	fs := append(fixedFlags(), valueFlags()...)
	fs = append(fs,
		&cli.StringFlag{Name: "description", Usage: "what the template is for"},
		&cli.StringSliceFlag{Name: "prompt", Usage: "a field a launch may override (" + strings.Join(template.Prompts, ", ") + "); repeat for more"},
	)
	return withEnv(command, fs...)
}

// templateFlags reads the fields given on the command line (@files once)
// and returns what sets them on a template: all of them for create, those
// given for edit. Values are checked by Template.Validate.
func templateFlags(c *cli.Context, all bool) (func(t *template.Template), error) {
	set := func(name string) bool { return all || c.IsSet(name) }
	var payload, extraVars []byte
	var err error
	if c.IsSet("payload") {
		if payload, err = readObjectFlag("payload", c.String("payload"), template.MaxPayloadBytes); err != nil {
			return nil, err
		}
	}
	if c.IsSet("extra-vars") {
		if extraVars, err = readObjectFlag("extra-vars", c.String("extra-vars"), template.MaxPayloadBytes); err != nil {
			return nil, err
		}
	}
	if c.Duration("timeout") < 0 {
		return nil, usagef("--timeout must not be negative")
	}
	return func(t *template.Template) {
		if set("description") {
			t.Description = c.String("description")
		}
		if set("action") {
			t.Action = c.String("action")
		}
		if set("project") {
			t.Project = c.String("project")
		}
		if set("playbook") {
			t.Playbook = c.String("playbook")
		}
		if set("allow-simultaneous") {
			t.AllowSimultaneous = c.Bool("allow-simultaneous")
		}
		if c.IsSet("payload") {
			t.Payload = payload
		}
		if c.IsSet("extra-vars") {
			t.ExtraVars = extraVars
		}
		if set("inventory") {
			t.Inventory = c.String("inventory")
		}
		if set("limit") {
			t.Limit = c.String("limit")
		}
		if set("slices") {
			t.SliceCount = c.Int("slices")
		}
		if set("forks") {
			t.Forks = c.Int("forks")
		}
		if set("verbosity") {
			t.Verbosity = c.Int("verbosity")
		}
		if set("diff-mode") {
			t.DiffMode = c.Bool("diff-mode")
		}
		if set("check-mode") {
			t.CheckMode = c.Bool("check-mode")
		}
		if set("job-tags") {
			t.JobTags = c.String("job-tags")
		}
		if set("skip-tags") {
			t.SkipTags = c.String("skip-tags")
		}
		if set("timeout") {
			t.Timeout = c.Duration("timeout").Seconds()
		}
		if set("priority") {
			t.Priority = c.Int("priority")
		}
		if set("instance-group") {
			t.InstanceGroups = nonEmpty(c.StringSlice("instance-group"))
		}
		if set("tag") {
			t.Tags = nonEmpty(c.StringSlice("tag"))
		}
		if set("prompt") {
			t.Prompts = nonEmpty(c.StringSlice("prompt"))
		}
		if set("prevent-fallback") {
			t.PreventFallback = c.Bool("prevent-fallback")
		}
		if set("credential") {
			t.Credentials = nonEmpty(c.StringSlice("credential"))
		}
	}, nil
}

// validTemplate refuses a template that does not validate, as bad input.
func validTemplate(t *template.Template) error {
	if err := t.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// checkRefs refuses a template whose inventory or project does not exist.
func (o *objects) checkRefs(t *template.Template) error {
	if t.Inventory != "" {
		if _, _, err := o.inv.Get(o.ctx, t.Inventory); errors.Is(err, configstore.ErrNotFound) {
			return usagef("inventory %s does not exist (create it first with `jobengine inventory create`)", t.Inventory)
		} else if err != nil {
			return o.failObj(err)
		}
	}
	if t.Project != "" {
		if _, _, err := o.projects.Get(o.ctx, t.Project); errors.Is(err, configstore.ErrNotFound) {
			return usagef("project %s does not exist (create it first with `jobengine project create`)", t.Project)
		} else if err != nil {
			return o.failObj(err)
		}
	}
	creds := credential.NewStore(o.conn, nil) // names only: no key needed
	for _, name := range t.Credentials {
		if _, err := creds.Get(o.ctx, name); errors.Is(err, credential.ErrNotFound) {
			return usagef("credential %s does not exist (create it first with `jobengine credential create`)", name)
		} else if err != nil {
			return o.failObj(err)
		}
	}
	return nil
}

func templateCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a job template",
		ArgsUsage: "NAME",
		Description: "A template is a named, reusable launch: --action (required) with --payload defaults, the\n" +
			"Ansible parameters, --inventory, --limit and --slices, scheduling hints, --tag, and --prompt for\n" +
			"every field a launch may override. The inventory and the project must exist.",
		Flags: definitionFlags("template create"),
		Action: func(c *cli.Context) error {
			t, err := newTemplateFromFlags(c)
			if err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.checkRefs(t); err != nil {
				return err
			}
			if err := o.tmpls.Create(o.ctx, t); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "template %s created\n", t.Name)
			return nil
		},
	}
}

// newTemplateFromFlags reads the template of `template create` from its
// argument and flags, checked.
func newTemplateFromFlags(c *cli.Context) (*template.Template, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return nil, err
	}
	if err := checkName("template", args[0]); err != nil {
		return nil, err
	}
	if !c.IsSet("action") {
		return nil, usagef("--action is required: the action the template's jobs run")
	}
	apply, err := templateFlags(c, true)
	if err != nil {
		return nil, err
	}
	t := &template.Template{Name: args[0]}
	apply(t)
	if err := validTemplate(t); err != nil {
		return nil, err
	}
	return t, nil
}

func templateEditCommand() *cli.Command {
	return &cli.Command{
		Name:      "edit",
		Usage:     "change fields of a job template",
		ArgsUsage: "NAME",
		Description: "Only the fields given change; an empty value clears a field (--limit ''), a list flag replaces\n" +
			"the list (--prompt limit --prompt slices; --prompt '' clears it).",
		Flags: definitionFlags("template edit"),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("template", args[0]); err != nil {
				return err
			}
			changed := false
			for _, f := range definitionFlags("template edit") {
				changed = changed || c.IsSet(f.Names()[0])
			}
			if !changed {
				return usagef("nothing to change: give the fields to change (see --help)")
			}
			apply, err := templateFlags(c, false)
			if err != nil {
				return err
			}
			// The values given are checked before connecting: on a template
			// valid but for them, only they can be wrong.
			probe := &template.Template{Name: args[0], Action: "probe", Priority: queue.DefaultPriority}
			apply(probe)
			if err := validTemplate(probe); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			for attempt := 0; ; attempt++ {
				t, ver, err := o.tmpls.Get(o.ctx, args[0])
				if err != nil {
					return o.failObj(err)
				}
				apply(t)
				if err := validTemplate(t); err != nil {
					return err
				}
				if err := o.checkRefs(t); err != nil {
					return err
				}
				err = o.tmpls.Update(o.ctx, t, ver)
				if errors.Is(err, configstore.ErrConflict) && attempt < 5 {
					continue
				}
				if err != nil {
					return o.failObj(err)
				}
				fmt.Fprintf(c.App.Writer, "template %s changed\n", t.Name)
				return nil
			}
		},
	}
}

func templateListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list job templates",
		Flags: withEnv("template list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of templates"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			list, bad, err := o.tmpls.List(o.ctx)
			if err != nil {
				return o.failObj(err)
			}
			reportBad(c.App.ErrWriter, bad)
			return printTemplates(c, list)
		},
	}
}

// printTemplates prints the templates as `template list` does.
func printTemplates(c *cli.Context, list []*template.Template) error {
	if c.Bool("json") {
		return writeJSONList(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tACTION\tINVENTORY\tLIMIT\tSLICES\tPROMPTS\tUPDATED")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, t.Action, dash(t.Inventory), dash(oneLine(t.Limit)),
			max(t.SliceCount, 1), dash(strings.Join(t.Prompts, ",")), stamp(t.Updated))
	}
	return tw.Flush()
}

func templateShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a job template",
		ArgsUsage: "NAME",
		Flags:     withEnv("template show", &cli.BoolFlag{Name: "json", Usage: "print the template as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("template", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			t, _, err := o.tmpls.Get(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			return printTemplate(c, t)
		},
	}
}

// printTemplate prints a template as `template show` does.
func printTemplate(c *cli.Context, t *template.Template) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, t)
	}
	tw := newTable(c.App.Writer)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("name", t.Name)
	row("description", oneLine(t.Description))
	row("action", t.Action)
	row("payload", string(t.Payload))
	row("project", t.Project)
	row("playbook", t.Playbook)
	row("extra-vars", string(t.ExtraVars))
	if t.Forks > 0 {
		row("forks", strconv.Itoa(t.Forks))
	}
	if t.Verbosity > 0 {
		row("verbosity", strconv.Itoa(t.Verbosity))
	}
	if t.DiffMode {
		row("diff-mode", "yes")
	}
	if t.CheckMode {
		row("check-mode", "yes")
	}
	row("job-tags", t.JobTags)
	row("skip-tags", t.SkipTags)
	row("inventory", t.Inventory)
	row("limit", t.Limit)
	row("slice-count", strconv.Itoa(max(t.SliceCount, 1)))
	row("allow-simultaneous", yesNo(t.AllowSimultaneous))
	if t.Timeout > 0 {
		row("timeout", strconv.FormatFloat(t.Timeout, 'f', -1, 64)+"s")
	}
	row("priority", strconv.Itoa(t.Priority))
	row("instance-groups", strings.Join(t.InstanceGroups, ", "))
	row("tags", strings.Join(t.Tags, ", "))
	row("credentials", strings.Join(t.Credentials, ", "))
	if t.PreventFallback {
		row("prevent-fallback", "yes")
	}
	row("prompts", strings.Join(t.Prompts, ", "))
	row("created", stamp(t.Created))
	row("updated", stamp(t.Updated))
	return tw.Flush()
}

func templateDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:        "delete",
		Usage:       "delete a job template",
		ArgsUsage:   "NAME",
		Description: "Jobs already launched keep running; relaunching them is refused once the template is gone.",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("template", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.tmpls.Delete(o.ctx, args[0]); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "template %s deleted\n", args[0])
			return nil
		},
	}
}

// launchValues reads the prompt flags given to template launch.
func launchValues(c *cli.Context) (*jobs.LaunchValues, error) {
	for _, name := range []string{"action", "project", "playbook", "allow-simultaneous"} {
		if c.IsSet(name) {
			return nil, usagef("--%s: %s is not promptable: a launch cannot change it (edit the template, or make another)", name, name)
		}
	}
	v := &jobs.LaunchValues{}
	var err error
	str := func(name string) *string {
		if !c.IsSet(name) {
			return nil
		}
		s := c.String(name)
		return &s
	}
	num := func(name string) *int {
		if !c.IsSet(name) {
			return nil
		}
		n := c.Int(name)
		return &n
	}
	flag := func(name string) *bool {
		if !c.IsSet(name) {
			return nil
		}
		b := c.Bool(name)
		return &b
	}
	if c.IsSet("payload") {
		if v.Payload, err = readObjectFlag("payload", c.String("payload"), template.MaxPayloadBytes); err != nil {
			return nil, err
		}
	}
	if c.IsSet("extra-vars") {
		if v.ExtraVars, err = readObjectFlag("extra-vars", c.String("extra-vars"), template.MaxPayloadBytes); err != nil {
			return nil, err
		}
	}
	v.Inventory, v.Limit, v.JobTags, v.SkipTags = str("inventory"), str("limit"), str("job-tags"), str("skip-tags")
	v.SliceCount, v.Forks, v.Verbosity, v.Priority = num("slices"), num("forks"), num("verbosity"), num("priority")
	v.DiffMode, v.CheckMode = flag("diff-mode"), flag("check-mode")
	if c.IsSet("timeout") {
		if c.Duration("timeout") < 0 {
			return nil, usagef("--timeout must not be negative")
		}
		secs := c.Duration("timeout").Seconds()
		v.Timeout = &secs
	}
	if c.IsSet("instance-group") {
		if v.InstanceGroups = nonEmpty(c.StringSlice("instance-group")); len(v.InstanceGroups) == 0 {
			return nil, usagef("--instance-group: give a group name")
		}
	}
	if c.IsSet("tag") {
		if v.Tags = nonEmpty(c.StringSlice("tag")); len(v.Tags) == 0 {
			return nil, usagef("--tag: give a tag")
		}
	}
	return v, nil
}

// launchResult is what `template launch --json` and `job relaunch --json`
// print.
type launchResult struct {
	Job    *jobs.Job   `json:"job"`
	Slices []*jobs.Job `json:"slices"`
}

func templateLaunchCommand() *cli.Command {
	flags := append(valueFlags(), fixedFlags()...)
	flags = append(flags, &cli.BoolFlag{Name: "json", Usage: "print the job (and its slices) as JSON"}, maxBacklogFlag())
	return &cli.Command{
		Name:      "launch",
		Usage:     "launch a job template and print the job id",
		ArgsUsage: "NAME",
		Description: "Creates the template's job with the values given for the fields it prompts for; a value for any\n" +
			"other field is refused (exit 2). With a slice count above 1 and as many enabled hosts within the\n" +
			"limit, it creates a sliced job: a container (kind workflow) and one job per slice, over one\n" +
			"snapshot of the inventory; it prints the container's id. A prompted slice count the inventory\n" +
			"cannot fill is refused; the template's own count is reduced to the number of hosts.",
		Flags: withEnv("template launch", flags...),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("template", args[0]); err != nil {
				return err
			}
			v, err := launchValues(c)
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
			res, err := o.launcher.Launch(o.ctx, template.Request{Template: args[0], Values: v, CreatedBy: createdByCLI})
			if err != nil {
				return o.failObj(err)
			}
			return printLaunch(c, res)
		},
	}
}

func printLaunch(c *cli.Context, res *template.Result) error {
	if c.Bool("json") {
		out := launchResult{Job: res.Job, Slices: res.Slices}
		if out.Slices == nil {
			out.Slices = []*jobs.Job{}
		}
		return writeJSON(c.App.Writer, out)
	}
	fmt.Fprintln(c.App.Writer, res.Job.ID)
	return nil
}
