package command

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/inventory"
)

func inventoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "create, import, list, show and delete inventories; print them for Ansible",
		Subcommands: []*cli.Command{
			inventoryCreateCommand(), inventoryImportCommand(), inventoryListCommand(), inventoryShowCommand(),
			inventoryHostsCommand(), inventoryScriptCommand(), inventoryDeleteCommand(), inventorySourceCommand(),
		},
	}
}

func inventoryCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create an inventory (static, from a file, or smart)",
		ArgsUsage: "NAME",
		Description: "A static inventory is empty, or holds the hosts and groups of --file (Ansible's JSON inventory\n" +
			"format, as `ansible-inventory --list` prints it). A smart inventory (--smart) holds a host filter\n" +
			"over static inventories: the hosts of its --source inventories that match every --filter-* given.",
		Flags: withEnv("inventory create",
			&cli.StringFlag{Name: "description", Usage: "what the inventory is for"},
			&cli.StringFlag{Name: "file", Usage: "hosts and groups in Ansible's JSON inventory format (- reads stdin)"},
			&cli.StringSliceFlag{Name: "instance-group", Usage: "a group of executors for jobs over this inventory; repeat, in preference order"},
			&cli.BoolFlag{Name: "smart", Usage: "a smart inventory: a host filter over --source inventories"},
			&cli.StringSliceFlag{Name: "source", Usage: "a static inventory a smart inventory draws from; repeat, in order"},
			&cli.StringFlag{Name: "filter-name", Usage: "smart: hosts whose name matches this glob (web*)"},
			&cli.StringFlag{Name: "filter-group", Usage: "smart: hosts in this group or its descendants"},
			&cli.StringSliceFlag{Name: "filter-var", Usage: "smart: hosts whose variable NAME=VALUE; repeat for more"},
		),
		Action: func(c *cli.Context) error {
			inv, content, _, err := newInventoryFromFlags(c)
			if err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.inv.Create(o.ctx, inv, content); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "inventory %s created (%s)\n", inv.Name, countsText(inv))
			return nil
		},
	}
}

// newInventoryFromFlags reads the inventory of `inventory create` from
// its argument and flags, checked: its head, and with --file its content
// and the file's bytes.
func newInventoryFromFlags(c *cli.Context) (*inventory.Inventory, *inventory.Content, []byte, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkName("inventory", args[0]); err != nil {
		return nil, nil, nil, err
	}
	inv := &inventory.Inventory{Name: args[0], Kind: inventory.Static, Description: c.String("description"),
		InstanceGroups: nonEmpty(c.StringSlice("instance-group"))}
	var content *inventory.Content
	var data []byte
	smartFlags := []string{"source", "filter-name", "filter-group", "filter-var"}
	if c.Bool("smart") {
		if c.IsSet("file") {
			return nil, nil, nil, usagef("--file and --smart: a smart inventory takes its hosts from its filter")
		}
		f := &inventory.Filter{Sources: nonEmpty(c.StringSlice("source")), Name: c.String("filter-name"), Group: c.String("filter-group")}
		for _, v := range c.StringSlice("filter-var") {
			m, err := inventory.ParseVarMatch(v)
			if err != nil {
				return nil, nil, nil, &UsageError{Err: err}
			}
			f.Variables = append(f.Variables, m)
		}
		if len(f.Sources) == 0 {
			return nil, nil, nil, usagef("--smart needs at least one --source inventory")
		}
		inv.Kind, inv.Filter = inventory.Smart, f
	} else {
		for _, name := range smartFlags {
			if c.IsSet(name) {
				return nil, nil, nil, usagef("--%s is for smart inventories: add --smart", name)
			}
		}
		if c.IsSet("file") {
			var err error
			if data, err = readFile(c.String("file"), inventory.MaxImportBytes); err != nil {
				return nil, nil, nil, err
			}
			if content, err = inventory.ParseAnsible(data); err != nil {
				return nil, nil, nil, usagef("--file %s: %v", c.String("file"), err)
			}
		}
	}
	if err := inv.Validate(); err != nil {
		return nil, nil, nil, &UsageError{Err: err}
	}
	return inv, content, data, nil
}

// countsText says how many hosts and groups an inventory holds.
func countsText(inv *inventory.Inventory) string {
	if inv.Kind == inventory.Smart {
		return "smart, over " + strings.Join(inv.Filter.Sources, ", ")
	}
	if inv.Snapshot == nil {
		return "empty"
	}
	g := inv.Snapshot
	return fmt.Sprintf("%d hosts, %d enabled, %d groups", g.Hosts, g.Enabled, g.Groups)
}

func inventoryImportCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "replace a static inventory's hosts and groups with a file in Ansible's JSON format",
		ArgsUsage: "NAME FILE",
		Description: "FILE is the output of `ansible-inventory -i SOURCE --list` (or - for stdin), _meta.hostvars\n" +
			"included. The inventory is created when it does not exist. Hosts that were disabled stay disabled.\n" +
			"The whole content is replaced at once: a job never sees half of an import.",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME", "FILE")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			data, err := readFile(args[1], inventory.MaxImportBytes)
			if err != nil {
				return err
			}
			content, err := inventory.ParseAnsible(data)
			if err != nil {
				return usagef("%s: %v", args[1], err)
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			inv, created, err := o.inv.Import(o.ctx, args[0], content)
			if err != nil {
				return o.failObj(err)
			}
			verb := "imported"
			if created {
				verb = "created"
			}
			fmt.Fprintf(c.App.Writer, "inventory %s %s (%s)\n", inv.Name, verb, countsText(inv))
			return nil
		},
	}
}

func inventoryListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list inventories",
		Flags: withEnv("inventory list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of inventories"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			list, bad, err := o.inv.List(o.ctx)
			if err != nil {
				return o.failObj(err)
			}
			reportBad(c.App.ErrWriter, bad)
			return printInventories(c, list)
		},
	}
}

// printInventories prints inventories as `inventory list` does.
func printInventories(c *cli.Context, list []*inventory.Inventory) error {
	if c.Bool("json") {
		return writeJSONList(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tKIND\tHOSTS\tENABLED\tGROUPS\tUPDATED\tDESCRIPTION")
	for _, inv := range list {
		hosts, enabled, groups := "-", "-", "-"
		if g := inv.Snapshot; g != nil && inv.Kind == inventory.Static {
			hosts, enabled, groups = strconv.Itoa(g.Hosts), strconv.Itoa(g.Enabled), strconv.Itoa(g.Groups)
		} else if inv.Kind == inventory.Static {
			hosts, enabled, groups = "0", "0", "0"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inv.Name, inv.Kind, hosts, enabled, groups, stamp(inv.Updated), oneLine(inv.Description))
	}
	return tw.Flush()
}

func inventoryShowCommand() *cli.Command {
	return &cli.Command{
		Name:        "show",
		Usage:       "show an inventory",
		ArgsUsage:   "NAME",
		Description: "Prints the inventory's settings and counts; a smart inventory's filter is applied now.",
		Flags:       withEnv("inventory show", &cli.BoolFlag{Name: "json", Usage: "print the inventory as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			inv, content, err := o.inv.Content(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			return printInventory(c, inv, inventoryCounts{hosts: len(content.Hosts), enabled: content.EnabledCount(), groups: len(content.Groups)})
		},
	}
}

// inventoryCounts are the counts `inventory show` prints.
type inventoryCounts struct{ hosts, enabled, groups int }

// printInventory prints an inventory as `inventory show` does.
func printInventory(c *cli.Context, inv *inventory.Inventory, n inventoryCounts) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, inv)
	}
	tw := newTable(c.App.Writer)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("name", inv.Name)
	row("kind", string(inv.Kind))
	row("description", oneLine(inv.Description))
	row("hosts", strconv.Itoa(n.hosts))
	row("enabled-hosts", strconv.Itoa(n.enabled))
	row("groups", strconv.Itoa(n.groups))
	row("instance-groups", strings.Join(inv.InstanceGroups, ", "))
	if f := inv.Filter; f != nil {
		row("sources", strings.Join(f.Sources, ", "))
		row("filter-name", f.Name)
		row("filter-group", f.Group)
		var vs []string
		for _, m := range f.Variables {
			vs = append(vs, m.String())
		}
		row("filter-vars", strings.Join(vs, ", "))
	}
	if src := inv.Source; src != nil {
		row("source", fmt.Sprintf("%s of project %s (see `jobengine inventory source show %s`)", src.Path, src.Project, inv.Name))
	}
	if g := inv.Snapshot; g != nil {
		row("snapshot", fmt.Sprintf("%s (%d chunks, %d bytes compressed, %d raw)", g.ID, g.Chunks, g.Bytes, g.RawBytes))
	}
	row("created", stamp(inv.Created))
	row("updated", stamp(inv.Updated))
	return tw.Flush()
}

func inventoryHostsCommand() *cli.Command {
	return &cli.Command{
		Name:      "hosts",
		Usage:     "list an inventory's hosts; enable or disable some",
		ArgsUsage: "NAME",
		Description: "Lists the hosts with their groups. --enable and --disable change hosts of a static inventory\n" +
			"first (all of them or none: an unknown host changes nothing). Disabled hosts are left out of jobs,\n" +
			"slices and inventory scripts.",
		Flags: withEnv("inventory hosts",
			&cli.StringSliceFlag{Name: "enable", Usage: "enable this host; repeat for more"},
			&cli.StringSliceFlag{Name: "disable", Usage: "disable this host; repeat for more"},
			&cli.StringFlag{Name: "limit", Usage: "only the hosts this Ansible host pattern selects (enabled ones)"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array of hosts"},
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			enable, disable, limit, err := hostsFlags(c)
			if err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			for _, ch := range []struct {
				hosts []string
				on    bool
			}{{enable, true}, {disable, false}} {
				if len(ch.hosts) == 0 {
					continue
				}
				if _, err := o.inv.SetEnabled(o.ctx, args[0], ch.hosts, ch.on); err != nil {
					return o.failObj(err)
				}
			}
			_, content, err := o.inv.Content(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			hosts := content.Hosts
			if limit != nil {
				sel := content.Select(limit)
				hosts = make([]inventory.Host, 0, len(sel))
				for _, h := range sel {
					hosts = append(hosts, content.Hosts[content.HostIndex(h)])
				}
			}
			return printHosts(c, hosts, content.GroupsOf())
		},
	}
}

// hostsFlags checks the flags of `inventory hosts`: the hosts to enable
// and disable, and the --limit.
func hostsFlags(c *cli.Context) (enable, disable []string, limit *inventory.Limit, err error) {
	enable, disable = nonEmpty(c.StringSlice("enable")), nonEmpty(c.StringSlice("disable"))
	for _, h := range append(append([]string{}, enable...), disable...) {
		if err := inventory.ValidHostName(h); err != nil {
			return nil, nil, nil, &UsageError{Err: err}
		}
	}
	for _, h := range enable {
		for _, d := range disable {
			if h == d {
				return nil, nil, nil, usagef("host %s is both enabled and disabled", h)
			}
		}
	}
	limit, err = inventory.ParseLimit(c.String("limit"))
	if err != nil {
		return nil, nil, nil, usagef("--limit: %v", err)
	}
	return enable, disable, limit, nil
}

// printHosts prints hosts as `inventory hosts` does, with the groups of
// each.
func printHosts(c *cli.Context, hosts []inventory.Host, groups map[string][]string) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, hosts)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "HOST\tENABLED\tGROUPS\tVARIABLES")
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", h.Name, yesNo(h.Enabled), dash(strings.Join(groups[h.Name], ",")), inventory.VarsCount(h.Variables))
	}
	return tw.Flush()
}

func inventoryScriptCommand() *cli.Command {
	return &cli.Command{
		Name:      "script",
		Usage:     "print an inventory, or one slice of it, in Ansible's JSON inventory format",
		ArgsUsage: "NAME",
		Description: "Prints what `ansible-inventory --list` would: the enabled hosts, their groups (each listing only\n" +
			"the hosts printed) and, with --hostvars, _meta.hostvars. --limit is applied first, then --slice K/N\n" +
			"takes the hosts at positions K-1, K-1+N, ... of the selected hosts sorted by name — what slice K of\n" +
			"a sliced job over the inventory runs on. The same inventory gives the same slices every time.",
		Flags: withEnv("inventory script",
			&cli.StringFlag{Name: "slice", Usage: "print slice K of N only (K/N, 1 ≤ K ≤ N)"},
			&cli.StringFlag{Name: "limit", Usage: "an Ansible host pattern, applied before slicing"},
			&cli.BoolFlag{Name: "hostvars", Usage: "include each host's variables in _meta.hostvars"},
			&cli.BoolFlag{Name: "all", Usage: "include disabled hosts (not with --limit or --slice)"},
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			k, n := 0, 0
			if c.IsSet("slice") {
				if k, n, err = inventory.ParseSlice(c.String("slice")); err != nil {
					return usagef("--slice: %v", err)
				}
			}
			if _, err := inventory.ParseLimit(c.String("limit")); err != nil {
				return usagef("--limit: %v", err)
			}
			if c.Bool("all") && (c.IsSet("slice") || c.IsSet("limit")) {
				return usagef("--all prints every host; it does not go with --slice or --limit, which select enabled hosts")
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			_, content, err := o.inv.Content(o.ctx, args[0])
			if err != nil {
				return o.failObj(err)
			}
			out := content
			if !c.Bool("all") {
				if out, _, err = content.SliceOf(c.String("limit"), k, n); err != nil {
					return &UsageError{Err: err}
				}
			}
			data, err := out.Ansible(inventory.ExportOptions{Hostvars: c.Bool("hostvars"), Disabled: c.Bool("all")})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "%s\n", data)
			return err
		},
	}
}

func inventoryDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:        "delete",
		Usage:       "delete an inventory",
		ArgsUsage:   "NAME",
		Description: "Refused while a job that is not final runs over the inventory.",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkName("inventory", args[0]); err != nil {
				return err
			}
			o, err := openObjects(c)
			if err != nil {
				return err
			}
			defer o.Close()
			if err := o.inv.Delete(o.ctx, args[0]); err != nil {
				return o.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "inventory %s deleted\n", args[0])
			return nil
		},
	}
}
