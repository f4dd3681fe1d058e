package command

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

func projectCommand() *cli.Command {
	return &cli.Command{
		Name:  "project",
		Usage: "create, list, show, update and delete projects (where playbooks come from)",
		Subcommands: []*cli.Command{
			projectCreateCommand(), projectListCommand(), projectShowCommand(), projectUpdateCommand(), projectDeleteCommand(),
		},
	}
}

func projectCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a project: a git repository or a directory",
		ArgsUsage: "NAME",
		Description: "--git URL [--branch B] fetches from a git repository (https, ssh, git, file or user@host:path;\n" +
			"never put a password in the URL: use an SSH key or a credential helper on the executors).\n" +
			"--directory DIR uses a directory that exists on the executors.",
		Flags: withEnv("project create",
			&cli.StringFlag{Name: "description", Usage: "what the project is"},
			&cli.StringFlag{Name: "git", Usage: "URL of the git repository"},
			&cli.StringFlag{Name: "branch", Usage: "branch, tag or commit to fetch (default: the remote's default branch)"},
			&cli.StringFlag{Name: "directory", Usage: "absolute path of a local project directory"},
			&cli.BoolFlag{Name: "update-on-launch", Usage: "update the project before jobs that use it run"},
			&cli.DurationFlag{Name: "cache-timeout", Usage: "with --update-on-launch: reuse an update this recent"},
		),
		Action: func(c *cli.Context) error {
			p, err := newProjectFromFlags(c)
			if err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.projects.Create(o.ctx, p); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "project %s created\n", p.Name)
			return nil
		},
	}
}

// newProjectFromFlags reads the project of `project create` from its
// argument and flags, checked.
func newProjectFromFlags(c *cli.Context) (*project.Project, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return nil, err
	}
	if err := checkName("project", args[0]); err != nil {
		return nil, err
	}
	p := &project.Project{Name: args[0], Description: c.String("description"), UpdateOnLaunch: c.Bool("update-on-launch"),
		CacheTimeout: c.Duration("cache-timeout").Seconds()}
	switch {
	case c.IsSet("git") && c.IsSet("directory"):
		return nil, usagef("--git and --directory: a project is one or the other")
	case c.IsSet("git"):
		p.Kind, p.URL, p.Branch = project.Git, c.String("git"), c.String("branch")
	case c.IsSet("directory"):
		if c.IsSet("branch") {
			return nil, usagef("--branch is for git projects")
		}
		p.Kind, p.Directory = project.Directory, c.String("directory")
	default:
		return nil, usagef("give --git URL or --directory DIR")
	}
	if c.IsSet("cache-timeout") && !p.UpdateOnLaunch {
		return nil, usagef("--cache-timeout goes with --update-on-launch")
	}
	if err := p.Validate(); err != nil {
		return nil, &UsageError{Err: err}
	}
	return p, nil
}

func projectListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list projects",
		Flags: withEnv("project list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of projects"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			list, bad, err := o.projects.List(o.ctx)
			if err != nil {
				return o.failObj(err)
			}
			reportBad(c.App.ErrWriter, bad)
			return printProjects(c, list)
		},
	}
}

// printProjects prints projects as `project list` does.
func printProjects(c *cli.Context, list []*project.Project) error {
	if c.Bool("json") {
		return writeJSONList(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tKIND\tSOURCE\tBRANCH\tREVISION\tLAST UPDATE\tDESCRIPTION")
	for _, p := range list {
		src := p.URL
		if p.Kind == project.Directory {
			src = p.Directory
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.Kind, src, dash(p.Branch), dash(p.Revision), dash(p.LastUpdateJob), oneLine(p.Description))
	}
	return tw.Flush()
}

func projectShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a project",
		ArgsUsage: "NAME",
		Flags:     withEnv("project show", &cli.BoolFlag{Name: "json", Usage: "print the project as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("project", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			p, _, err := o.projects.Get(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			return printProject(c, p, func(id string) *jobs.Job {
				if v, err := o.jobs.Get(o.ctx, id); err == nil {
					return v.Job
				}
				return nil
			})
		},
	}
}

// printProject prints a project as `project show` does; job reads its
// last update job (nil when it cannot).
func printProject(c *cli.Context, p *project.Project, job func(id string) *jobs.Job) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, p)
	}
	tw := newTable(c.App.Writer)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("name", p.Name)
	row("kind", string(p.Kind))
	row("description", oneLine(p.Description))
	row("url", p.URL)
	row("branch", p.Branch)
	row("directory", p.Directory)
	row("update-on-launch", yesNo(p.UpdateOnLaunch))
	if p.CacheTimeout > 0 {
		row("cache-timeout", strconv.FormatFloat(p.CacheTimeout, 'f', -1, 64)+"s")
	}
	row("revision", p.Revision)
	row("last-update-job", p.LastUpdateJob)
	if p.LastUpdateJob != "" {
		// The update job reports the revision it fetched.
		if j := job(p.LastUpdateJob); j != nil {
			row("last-update", finalLine(j))
		}
	}
	row("created", stamp(p.Created))
	row("updated", stamp(p.Updated))
	return tw.Flush()
}

func projectUpdateCommand() *cli.Command {
	return &cli.Command{
		Name:      "update",
		Usage:     "start a project update job and print its id",
		ArgsUsage: "NAME",
		Description: "Creates a job of action project_update that fetches the project into the executors' cache and\n" +
			"records the revision; the job id is recorded on the project in the same transaction. One update\n" +
			"per project runs at a time: a second one is refused while the first is live.",
		Flags: withEnv("project update", maxBacklogFlag()),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("project", args[0]); err != nil {
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
			j, err := o.projects.StartUpdate(o.ctx, o.store, args[0], createdByCLI)
			if err != nil {
				return o.failObj(err)
			}
			fmt.Fprintln(c.App.Writer, j.ID)
			return nil
		},
	}
}

func projectDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a project",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("project", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.projects.Delete(o.ctx, args[0]); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "project %s deleted\n", args[0])
			return nil
		},
	}
}
