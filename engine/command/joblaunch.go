package command

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

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
			id, _, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
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
		Usage:     "delete a finished job from ZooKeeper",
		ArgsUsage: "ID",
		Description: "Only a job in a final state can be deleted. Deleting a sliced job's container deletes its slices\n" +
			"too; deleting one slice deletes only that slice. Copies already indexed into Elasticsearch stay in\n" +
			"the history.",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, _, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			deleted, err := cl.store.DeleteJob(cl.ctx, id)
			if errors.Is(err, jobs.ErrNotFinal) || errors.Is(err, jobs.ErrConflict) {
				return err
			}
			if err != nil {
				return cl.fail(err, id)
			}
			for _, d := range deleted {
				fmt.Fprintf(c.App.Writer, "%s deleted\n", d)
			}
			return nil
		},
	}
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
			id, _, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
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
