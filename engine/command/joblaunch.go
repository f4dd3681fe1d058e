package command

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
)

// The job commands that know templates and sliced jobs: relaunch, delete
// and the inventory a job runs over.

func jobRelaunchCommand() *cli.Command {
	return &cli.Command{
		Name:      "relaunch",
		Usage:     "launch a job of a template again and print the new job's id",
		ArgsUsage: "ID",
		Description: "A sliced job (its container) or a plain job launched from a template: a new launch of the same\n" +
			"template with the same launch values; refused when the template is gone, or when its slice count\n" +
			"changed since and was not given at launch. One slice: a plain job over the same slice (number and\n" +
			"count kept) of the inventory as it is now, with the slice's values, and no container.",
		Flags: withEnv("job relaunch", &cli.BoolFlag{Name: "json", Usage: "print the job (and its slices) as JSON"}, maxBacklogFlag()),
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
			res, err := o.launcher.Relaunch(o.ctx, id, createdByCLI)
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

func jobDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a finished job, from ZooKeeper and from the history",
		ArgsUsage: "ID",
		Description: "Only a job in a final state can be deleted. Deleting a sliced job's container deletes its slices\n" +
			"too; deleting one slice deletes only that slice. With --es-hosts, the jobs and their events are\n" +
			"also deleted from Elasticsearch (a job no longer in ZooKeeper is deleted from there alone); a job\n" +
			"with versions still waiting for the indexer is refused until they are indexed.",
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
			timeout := c.Duration("zk-connect-timeout")
			j, _, err := cl.store.Get(cl.ctx, id)
			if errors.Is(err, jobs.ErrNotFound) && cl.es != nil {
				return cl.deleteHistory(c, id, timeout)
			}
			if err != nil {
				return cl.fail(err, id)
			}
			ids := append([]string{j.ID}, j.NestedJobs...)
			if cl.es != nil {
				if err := cl.checkIndexed(ids); err != nil {
					return err
				}
			}
			deleted, err := cl.store.DeleteJob(cl.ctx, id)
			for _, d := range deleted {
				fmt.Fprintf(c.App.Writer, "%s deleted\n", d)
			}
			if errors.Is(err, jobs.ErrNotFinal) || errors.Is(err, jobs.ErrConflict) {
				return err
			}
			if err != nil {
				return cl.fail(err, id)
			}
			if cl.es != nil {
				ctx, cancel := context.WithTimeout(cl.ctx, 4*timeout)
				defer cancel()
				if err := cl.es.DeleteJobs(ctx, ids...); err != nil {
					return fmt.Errorf("deleted from ZooKeeper, but not from the history: %w (run the same command again)", err)
				}
			}
			return nil
		},
	}
}

// checkIndexed refuses to delete jobs that still have versions in the
// outbox: the indexer would put them back into the history.
func (cl *client) checkIndexed(ids []string) error {
	pending, err := index.Pending(cl.ctx, cl.conn)
	if err != nil {
		return cl.fail(err, "")
	}
	for _, id := range ids {
		if _, uid, err := jobs.ParseID(id); err == nil && pending[uid] {
			return fmt.Errorf("%s has versions not yet indexed into Elasticsearch; try again once the index pump has sent them (is an executor with --es-hosts running?)", id)
		}
	}
	return nil
}

// deleteHistory deletes a job that is only in the history (and, for a
// container, its slices).
func (cl *client) deleteHistory(c *cli.Context, id string, timeout time.Duration) error {
	v, err := cl.jobs.Get(cl.ctx, id)
	if err != nil {
		return cl.fail(err, id)
	}
	if !v.State.Final() {
		return fmt.Errorf("%w: %s was last indexed %s; only a final job can be deleted", jobs.ErrNotFinal, id, v.State)
	}
	ids := append([]string{v.ID}, v.NestedJobs...)
	if err := cl.checkIndexed(ids); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cl.ctx, 4*timeout)
	defer cancel()
	if err := cl.es.DeleteJobs(ctx, ids...); err != nil {
		return fmt.Errorf("deleting %s from the history: %w", id, err)
	}
	for _, d := range ids {
		fmt.Fprintf(c.App.Writer, "%s deleted\n", d)
	}
	return nil
}

func jobInventoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "inventory",
		Usage:     "print the inventory a job runs over, in Ansible's JSON inventory format",
		ArgsUsage: "ID",
		Description: "The hosts of the job's inventory snapshot (the one pinned when it was launched, shared by every\n" +
			"slice of a sliced job), selected by its limit, and for a slice only its share — what the job's\n" +
			"run sees, whatever happened to the inventory since.",
		Flags: withEnv("job inventory", &cli.BoolFlag{Name: "hostvars", Usage: "include each host's variables in _meta.hostvars"}),
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
			j, _, err := o.store.Get(o.ctx, id)
			if err != nil {
				return o.fail(err, id)
			}
			if j.Inventory == "" {
				return fmt.Errorf("%s runs over no inventory", id)
			}
			content := &inventory.Content{Hosts: []inventory.Host{}, Groups: []inventory.Group{}}
			if j.InventorySnapshot != "" {
				if _, content, err = o.inv.ReadGeneration(o.ctx, j.Inventory, j.InventorySnapshot); err != nil {
					return o.failObj(err)
				}
			}
			n := j.SliceCount
			if j.IsContainer() {
				n = 0 // the container covers every selected host
			}
			out, _, err := content.SliceOf(j.Limit, j.SliceNumber, n)
			if err != nil {
				return o.failObj(err)
			}
			data, err := out.Ansible(inventory.ExportOptions{Hostvars: c.Bool("hostvars")})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "%s\n", data)
			return err
		},
	}
}

// launchFilterFlags are the flags of `job list` that select by the fields
// of jobs launched from templates.
func launchFilterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "template", Usage: "only jobs launched from this template"},
		&cli.StringFlag{Name: "slices-of", Usage: "only the slices of this sliced job (the id of its container)"},
		&cli.BoolFlag{Name: "sliced", Usage: "only the containers of sliced jobs"},
		&cli.BoolFlag{Name: "slices", Usage: "only the slices of sliced jobs"},
		&cli.StringFlag{Name: "launch-type", Usage: "only jobs launched this way: " + launchTypeNames()},
		&cli.StringFlag{Name: "since", Usage: "only jobs created at or after this time (RFC 3339, or a duration ago such as 24h)"},
		&cli.StringFlag{Name: "until", Usage: "only jobs created at or before this time (RFC 3339, or a duration ago)"},
	}
}

func launchTypeNames() string {
	var names []string
	for _, t := range jobs.LaunchTypes {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// readLaunchFilter reads the launch filter flags.
func readLaunchFilter(c *cli.Context, now time.Time) (jobs.LaunchFilter, error) {
	f := jobs.LaunchFilter{Template: c.String("template"), Sliced: c.Bool("sliced"), Slices: c.Bool("slices")}
	if f.Template != "" {
		if err := configstore.ValidName("template", f.Template); err != nil {
			return f, usagef("--template %q is not a template name: type a name as `jobengine template list` prints it", f.Template)
		}
	}
	if f.Sliced && f.Slices {
		return f, usagef("--sliced and --slices: a job is a container or a slice, not both")
	}
	if s := c.String("slices-of"); s != "" {
		id, _, err := jobs.ParseID(s)
		if err != nil {
			return f, usagef("--slices-of %q is not a job id: type the sliced job's job/<uuid>, as `template launch` printed it", s)
		}
		f.SlicesOf = id
	}
	if s := c.String("launch-type"); s != "" {
		t, err := jobs.ParseLaunchType(s)
		if err != nil {
			return f, usagef("--launch-type %q is not a launch type: type one of %s", s, launchTypeNames())
		}
		f.LaunchType = t
	}
	var err error
	if f.Since, err = parseWhen("since", c.String("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = parseWhen("until", c.String("until"), now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, usagef("--until is before --since")
	}
	return f, nil
}

// parseWhen reads a time: RFC 3339, or a duration before now.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--%s %q: want a time such as 2024-05-01T12:00:00Z or a duration ago such as 24h", flag, s)
}

// launchRows adds the fields of a job launched from a template to `job
// show`.
func launchRows(row func(k, v string), j *jobs.Job) {
	row("kind", string(j.Kind))
	if j.Sliced {
		row("sliced", "yes")
	}
	row("template", j.Template)
	row("launch-type", string(j.LaunchType))
	row("relaunch-of", j.RelaunchOf)
	row("retry-of", j.RetryOf)
	row("inventory", j.Inventory)
	row("inventory-snapshot", j.InventorySnapshot)
	row("limit", j.Limit)
	if j.Inventory != "" {
		row("hosts", strconv.Itoa(j.Hosts))
	}
	if j.SliceNumber > 0 {
		row("slice", fmt.Sprintf("%d of %d", j.SliceNumber, j.SliceCount))
	} else if j.SliceCount > 0 {
		row("slice-count", strconv.Itoa(j.SliceCount))
	}
	row("instance-groups", strings.Join(j.InstanceGroups, ", "))
	if j.AllowSimultaneous {
		row("allow-simultaneous", "yes")
	}
	if j.CancelRequested {
		row("cancel-requested", "yes")
	}
	if a := j.Ansible; a != nil {
		row("project", a.Project)
		row("playbook", a.Playbook)
		row("extra-vars", string(a.ExtraVars))
		if a.Forks > 0 {
			row("forks", strconv.Itoa(a.Forks))
		}
		if a.Verbosity > 0 {
			row("verbosity", strconv.Itoa(a.Verbosity))
		}
		if a.DiffMode {
			row("diff-mode", "yes")
		}
		if a.CheckMode {
			row("check-mode", "yes")
		}
		row("job-tags", a.JobTags)
		row("skip-tags", a.SkipTags)
	}
}
