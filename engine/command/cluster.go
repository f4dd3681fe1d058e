package command

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

func init() {
	extraCommands = append(extraCommands, clusterCommand)
}

// capacityFlags are the executor's instance group and capacity flags.
func capacityFlags() []cli.Flag {
	d := instance.DefaultCapacitySettings()
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "groups", Value: cli.NewStringSlice(jobs.DefaultGroup), EnvVars: envs("JOBENGINE_GROUPS"),
			Usage: "instance groups this executor joins, comma-separated"},
		&cli.IntFlag{Name: "capacity", EnvVars: envs("JOBENGINE_CAPACITY"), Usage: "set the capacity outright instead of deriving it from CPUs and memory"},
		&cli.Float64Flag{Name: "capacity-adjustment", Value: d.Adjustment, EnvVars: envs("JOBENGINE_CAPACITY_ADJUSTMENT"),
			Usage: "between the CPU and the memory capacity: 0 the smaller, 1 the larger, 0.5 half-way (may exceed 1)"},
		&cli.IntFlag{Name: "forks-per-cpu", Value: d.ForksPerCPU, EnvVars: envs("JOBENGINE_FORKS_PER_CPU"), Usage: "capacity of one CPU"},
		&cli.IntFlag{Name: "memory-per-fork", Value: int(d.MemoryPerFork >> 20), EnvVars: envs("JOBENGINE_MEMORY_PER_FORK"),
			Usage: "memory one unit of capacity takes, in MB (2 GiB are set aside first)"},
	}
}

// capacityConfig reads the executor's group and capacity flags.
func capacityConfig(c *cli.Context) ([]string, instance.CapacitySettings, error) {
	var groups []string
	for _, g := range c.StringSlice("groups") {
		g = strings.TrimSpace(g)
		if jobs.ValidGroupName(g) != nil {
			return nil, instance.CapacitySettings{}, usagef("--groups: %q is not a group name: type letters, digits, '.', '_' or '-', starting with a letter or digit, such as edge,default", g)
		}
		groups = append(groups, g)
	}
	s := instance.CapacitySettings{
		Fixed: c.Int("capacity"), ForksPerCPU: c.Int("forks-per-cpu"),
		MemoryPerFork: int64(c.Int("memory-per-fork")) << 20, Adjustment: c.Float64("capacity-adjustment"),
	}
	switch {
	case s.Fixed < 0 || s.Fixed > instance.MaxCapacity:
		return nil, s, usagef("--capacity %d is out of range: type 1–%d, or leave it out to derive it from CPUs and memory", s.Fixed, instance.MaxCapacity)
	case s.ForksPerCPU < 1 || s.ForksPerCPU > 1000:
		return nil, s, usagef("--forks-per-cpu %d is out of range: type 1–1000 (default %d)", s.ForksPerCPU, instance.DefaultForksPerCPU)
	case c.Int("memory-per-fork") < 1:
		return nil, s, usagef("--memory-per-fork %d is out of range: type a number of MB, at least 1 (default %d)", c.Int("memory-per-fork"), instance.DefaultMemoryPerFork>>20)
	}
	if err := s.Validate(); err != nil {
		return nil, s, usagef("--capacity-adjustment %v is out of range: type 0–%v (0: the smaller of the CPU and memory capacities, 1: the larger)", s.Adjustment, instance.MaxAdjustment)
	}
	return groups, s, nil
}

func clusterCommand() *cli.Command {
	name := func(c *cli.Context) (string, error) {
		args, err := parseArgs(c, "NAME")
		if err != nil {
			return "", err
		}
		if instance.ValidName(args[0]) != nil {
			return "", usagef("%q is not an executor name: type a name `jobengine cluster status` lists", args[0])
		}
		return args[0], nil
	}
	setEnabled := func(enabled bool) cli.ActionFunc {
		return func(c *cli.Context) error {
			n, err := name(c)
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			r, err := instance.SetEnabled(cl.ctx, cl.conn, n, enabled)
			if errors.Is(err, instance.ErrNotFound) {
				return usagef("no executor %s: `jobengine cluster status` lists them", n)
			}
			if err != nil {
				return cl.fail(err, "")
			}
			state := "enabled: the scheduler places jobs on it again"
			if !r.Enabled {
				state = "disabled: it finishes what it has and gets no new job"
			}
			fmt.Fprintf(c.App.Writer, "%s %s\n", n, state)
			return nil
		}
	}
	return &cli.Command{
		Name:  "cluster",
		Usage: "show and manage the executors and their instance groups",
		Subcommands: []*cli.Command{{
			Name:  "status",
			Usage: "list live, lost and disabled executors: capacity, used capacity, heartbeats, running jobs",
			Flags: append(withEnv("cluster status", jsonFlag("print JSON")), watchFlags("cluster status")...),
			Action: func(c *cli.Context) error {
				if _, err := parseArgs(c); err != nil {
					return err
				}
				w, err := startWatch(c)
				if err != nil {
					return err
				}
				defer w.Close()
				cl, err := openClient(c)
				if err != nil {
					return err
				}
				defer cl.Close()
				return watchRun(c, w, func() error {
					snap, err := instance.NewReader(cl.store, nil).Read(cl.ctx)
					if err != nil {
						return cl.fail(err, "")
					}
					rows := clusterRows(snap)
					if c.Bool("json") {
						return writeJSON(c.App.Writer, rows)
					}
					writeClusterTable(c.App.Writer, rows)
					writeClusterWarnings(c.App.ErrWriter, snap)
					return nil
				})
			},
		}, {
			Name:      "disable",
			Usage:     "stop placing jobs on an executor: it keeps its heartbeat and finishes what it has",
			ArgsUsage: "NAME",
			Action:    setEnabled(false),
		}, {
			Name:      "enable",
			Usage:     "place jobs on a disabled executor again",
			ArgsUsage: "NAME",
			Action:    setEnabled(true),
		}, {
			Name:      "remove",
			Usage:     "forget an executor that is gone (it must not be running nor have jobs placed on it)",
			ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				n, err := name(c)
				if err != nil {
					return err
				}
				cl, err := openClient(c)
				if err != nil {
					return err
				}
				defer cl.Close()
				switch err := instance.Remove(cl.ctx, cl.conn, n); {
				case errors.Is(err, instance.ErrNotFound):
					return usagef("no executor %s: `jobengine cluster status` lists them", n)
				case errors.Is(err, instance.ErrLive), errors.Is(err, instance.ErrBusy):
					return &ExitError{Code: ExitFailure, Err: err}
				case err != nil:
					return cl.fail(err, "")
				}
				fmt.Fprintf(c.App.Writer, "%s removed\n", n)
				return nil
			},
		}, clusterGroupCommand()},
	}
}

// clusterRow is one executor as `cluster status` shows it. Its first
// fields are those of the heartbeat, as earlier versions printed them.
type clusterRow struct {
	Name     string                `json:"name"`
	Host     string                `json:"host"`
	PID      int                   `json:"pid,omitempty"`
	Version  string                `json:"version"`
	Threads  int                   `json:"threads"`
	Busy     int                   `json:"busy"`
	Actions  []string              `json:"actions,omitempty"`
	Started  time.Time             `json:"started"`
	LastSeen time.Time             `json:"last-seen"`
	Running  []instance.RunningJob `json:"running"`
	State    string                `json:"state"`
	Groups   []string              `json:"groups"`
	Capacity int                   `json:"capacity"`
	Used     int                   `json:"used"`
	Jobs     int                   `json:"jobs"`
	Placed   []instance.Placed     `json:"placed"`
}

func clusterRows(snap *instance.Cluster) []clusterRow {
	rows := []clusterRow{}
	for _, e := range snap.Executors {
		r := clusterRow{Name: e.Name, State: e.State(), Groups: e.Groups(), Used: e.Used(), Jobs: e.Jobs(),
			Threads: e.Threads(), LastSeen: e.LastSeen, Placed: e.Placed, Running: []instance.RunningJob{}}
		if r.Groups == nil {
			r.Groups = []string{}
		}
		if r.Placed == nil {
			r.Placed = []instance.Placed{}
		}
		if rec := e.Record; rec != nil {
			r.Host, r.Version, r.Capacity, r.Started = rec.Host, rec.Version, rec.Capacity, rec.Started
		}
		if h := e.Heartbeat; h != nil {
			r.Host, r.PID, r.Version, r.Busy, r.Actions, r.Started = h.Host, h.PID, h.Version, h.Busy, h.Actions, h.Started
			if h.Running != nil {
				r.Running = h.Running
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func writeClusterTable(w io.Writer, rows []clusterRow) {
	tw := newTable(w)
	fmt.Fprintln(tw, "EXECUTOR\tSTATE\tGROUPS\tCAPACITY\tUSED\tJOBS\tTHREADS\tVERSION\tHOST\tLAST SEEN")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", printable(r.Name), r.State, dash(printable(strings.Join(r.Groups, ","))),
			r.Capacity, r.Used, r.Jobs, r.Threads, dash(printable(r.Version)), dash(printable(r.Host)), ago(r.LastSeen))
	}
	tw.Flush()
	for _, r := range rows {
		for _, j := range r.Running {
			fmt.Fprintf(w, "  %s runs %s (%s, attempt %d) for %s\n", printable(r.Name), printable(j.Job), printable(j.Action), j.Attempt, time.Since(j.Started).Round(time.Second))
		}
		waiting := 0
		for _, p := range r.Placed {
			if !p.Taken {
				waiting++
			}
		}
		if waiting > 0 {
			fmt.Fprintf(w, "  %s has %d job(s) placed and not started\n", printable(r.Name), waiting)
		}
	}
}

// writeClusterWarnings says what an operator should look at: no
// executor, executors of different versions, lost executors with jobs.
func writeClusterWarnings(w io.Writer, snap *instance.Cluster) {
	if len(snap.Executors) == 0 {
		fmt.Fprintln(w, "no executor is running")
	}
	if v := snap.Versions(); len(v) > 1 {
		var parts []string
		for ver, names := range v {
			sort.Strings(names)
			parts = append(parts, fmt.Sprintf("%s (%s)", dash(ver), strings.Join(names, ", ")))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "warning: live executors run different versions: %s\n", strings.Join(parts, "; "))
	}
	for _, e := range snap.Executors {
		if !e.Live() && len(e.Placed) > 0 {
			fmt.Fprintf(w, "warning: %s is lost with %d job(s) on its queue; the controller's reaper gives them back\n", e.Name, len(e.Placed))
		}
	}
	for _, p := range snap.Problems {
		fmt.Fprintf(w, "warning: %v\n", p)
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func clusterGroupCommand() *cli.Command {
	return &cli.Command{
		Name:  "group",
		Usage: "instance groups: their executors, capacity and limits",
		Subcommands: []*cli.Command{{
			Name:  "list",
			Usage: "list the groups: executors, capacity, used capacity and limits",
			Flags: withEnv("cluster group list", jsonFlag("print JSON")),
			Action: func(c *cli.Context) error {
				if _, err := parseArgs(c); err != nil {
					return err
				}
				cl, err := openClient(c)
				if err != nil {
					return err
				}
				defer cl.Close()
				snap, err := instance.NewReader(cl.store, nil).Read(cl.ctx)
				if err != nil {
					return cl.fail(err, "")
				}
				type groupRow struct {
					instance.Group
					Executors []string `json:"executors"`
					Capacity  int      `json:"capacity"`
					Used      int      `json:"used"`
					Jobs      int      `json:"jobs"`
				}
				rows := []groupRow{}
				for _, g := range snap.GroupNames() {
					r := groupRow{Group: snap.Groups[g], Executors: []string{}}
					r.Name = g
					for _, e := range snap.Members(g) {
						r.Executors = append(r.Executors, e.Name)
						r.Capacity += e.Capacity()
						r.Used += e.Used()
						r.Jobs += e.Jobs()
					}
					rows = append(rows, r)
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, rows)
				}
				limit := func(n int) string {
					if n == 0 {
						return "-"
					}
					return fmt.Sprint(n)
				}
				tw := newTable(c.App.Writer)
				fmt.Fprintln(tw, "GROUP\tEXECUTORS\tCAPACITY\tUSED\tJOBS\tMAX JOBS\tMAX FORKS")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Name, dash(strings.Join(r.Executors, ",")), r.Capacity, r.Used, r.Jobs,
						limit(r.MaxJobs), limit(r.MaxForks))
				}
				return tw.Flush()
			},
		}, {
			Name:      "set",
			Usage:     "set a group's limits (0: no limit)",
			ArgsUsage: "NAME",
			Flags: withEnv("cluster group set",
				&cli.IntFlag{Name: "max-jobs", Usage: "jobs active at once on the group's executors (0: no limit)"},
				&cli.IntFlag{Name: "max-forks", Usage: "impact of the jobs active at once on the group's executors (0: no limit)"},
			),
			Action: func(c *cli.Context) error {
				args, err := parseArgs(c, "NAME")
				if err != nil {
					return err
				}
				g := instance.Group{Name: args[0], MaxJobs: c.Int("max-jobs"), MaxForks: c.Int("max-forks")}
				if jobs.ValidGroupName(g.Name) != nil {
					return usagef("%q is not a group name: type letters, digits, '.', '_' or '-', starting with a letter or digit", g.Name)
				}
				if g.Validate() != nil {
					return usagef("--max-jobs and --max-forks take 0 (no limit) to %d", instance.MaxGroupLimit)
				}
				cl, err := openClient(c)
				if err != nil {
					return err
				}
				defer cl.Close()
				if err := instance.SetGroup(cl.ctx, cl.conn, g); err != nil {
					return cl.fail(err, "")
				}
				fmt.Fprintf(c.App.Writer, "group %s: max jobs %d, max forks %d (0: no limit)\n", g.Name, g.MaxJobs, g.MaxForks)
				return nil
			},
		}, {
			Name:      "remove",
			Usage:     "remove a group's limits (its executors stay in it)",
			ArgsUsage: "NAME",
			Action: func(c *cli.Context) error {
				args, err := parseArgs(c, "NAME")
				if err != nil {
					return err
				}
				if jobs.ValidGroupName(args[0]) != nil {
					return usagef("%q is not a group name", args[0])
				}
				cl, err := openClient(c)
				if err != nil {
					return err
				}
				defer cl.Close()
				if err := instance.DeleteGroup(cl.ctx, cl.conn, args[0]); errors.Is(err, instance.ErrNotFound) {
					return usagef("group %s has no limits set: `jobengine cluster group list` shows them", args[0])
				} else if err != nil {
					return cl.fail(err, "")
				}
				fmt.Fprintf(c.App.Writer, "group %s: limits removed\n", args[0])
				return nil
			},
		}},
	}
}
