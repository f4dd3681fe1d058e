package command

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/systemjob"
)

// Every number a user types is bounded before anything starts: a count
// read from JOBENGINE_THREADS=100000000 once started that many workers.
// The bounds are by flag name, the same for every command that has the
// flag; TestEveryNumberFlagIsBounded keeps the tables complete.

// intBounds are the ranges of the whole-number flags.
var intBounds = map[string][2]int{
	"threads":         {1, executor.MaxThreads},
	"priority":        {queue.MinPriority, queue.MaxPriority},
	"max-backlog":     {0, 10_000_000},
	"limit":           {0, 1_000_000},
	"count":           {1, jobs.MaxCreateLike}, // job add
	"log-max-size":    {1, 10 << 10},           // MB
	"log-max-backups": {0, 1000},
	// bench
	"jobs":        {1, 10_000_000},
	"depth":       {0, 1_000_000},
	"workers":     {1, 4096},
	"connections": {1, 256},
	"batch":       {1, 256},
	"probes":      {1, 1_000_000},
	"zk-pid":      {0, 1 << 22},
	// scheduling and capacity
	"impact":          {0, 1_000_000},
	"max-jobs":        {0, 1_000_000},
	"max-forks":       {0, 1_000_000},
	"max-starts":      {1, 1_000_000},
	"capacity":        {0, 1_000_000},
	"forks-per-cpu":   {0, 10_000},
	"memory-per-fork": {0, 1 << 20}, // MB
	// templates and remote runs
	"slices":            {0, jobs.MaxSlices},
	"forks":             {0, 10_000},
	"verbosity":         {0, 5},
	"keepalive-seconds": {0, 86_400},
	"grace-period":      {0, 366 * 24 * 60}, // minutes
	// services and notifications
	"notify-max-attempts": {0, 1000},
	"smtp-port":           {1, 65535},
	"zk-port":             {0, 65535},
	"days":                {0, systemjob.MaxDays}, // system-job launch
}

// intSliceBounds are the ranges of each number of a list flag.
var intSliceBounds = map[string][2]int{
	"executors": {1, 64}, // bench: executor processes
}

// durationBounds say which duration flags may be 0 (their Usage says what
// 0 means); every duration is at most maxDuration, and none is negative.
var durationBounds = map[string]struct{ zero bool }{
	"zk-session-timeout":   {},
	"zk-connect-timeout":   {},
	"shutdown-grace":       {},
	"plugin-kill-grace":    {},
	"kill-grace":           {}, // worker
	"plugin-start-timeout": {},
	"raw-duration":         {},
	"timeout":              {zero: true},
	"demo-interval":        {zero: true},
	"pass-interval":        {},
	"pass-deadline":        {},
	"reap-grace":           {},
	"reap-interval":        {},
	"notify-min-backoff":   {},
	"notify-max-backoff":   {},
	"session-lifetime":     {zero: true},
	"cache-timeout":        {zero: true},
	"remote-idle-timeout":  {zero: true},
	"idle-timeout":         {zero: true},
	"watch-interval":       {},
}

// negativeHints say what to type instead of a negative number where 0 has
// a meaning of its own, by flag name or by "command --flag".
var negativeHints = map[string]string{
	"limit":               "how many to show, or 0 for no limit",
	"priority":            "0–999, lower runs first",
	"max-backlog":         "how many jobs may be queued or running at most",
	"log-max-backups":     "how many rotated files to keep, or 0 for all",
	"depth":               "how many entries to leave queued, or 0",
	"zk-pid":              "the process id of the ZooKeeper server, or 0 for none",
	"job add --timeout":   "a duration such as 90s, or 0 for the action's default",
	"job wait --timeout":  "a duration such as 30s, or 0 to wait as long as it takes",
	"demo-interval":       "whole seconds such as 15s, or 0 for no demo",
	"impact":              "the capacity the job takes, or 0 for the default of 1",
	"max-jobs":            "how many jobs may be active at once, or 0 for no limit",
	"max-forks":           "how much impact may be active at once, or 0 for no limit",
	"max-starts":          "how many jobs one pass may queue",
	"capacity":            "the capacity to set, or 0 to derive it from CPUs and memory",
	"forks-per-cpu":       "the capacity of one CPU, or 0 for the default",
	"memory-per-fork":     "megabytes per unit of capacity, or 0 for the default",
	"slices":              "a slice count, or 0 to keep the template's",
	"forks":               "how many hosts run at once, or 0 for Ansible's default",
	"verbosity":           "0–5",
	"keepalive-seconds":   "seconds between keepalives, or 0 for none",
	"grace-period":        "minutes to keep recent directories, or 0 for none",
	"notify-max-attempts": "how many failed deliveries park a notification, or 0 for the default",
	"zk-port":             "a port, or 0 for a free one",
	"days":                "an age in days, or 0 for everything finished",
	"session-lifetime":    "a duration such as 12h, or 0 for the default",
	"cache-timeout":       "a duration such as 15m, or 0 to update on every launch",
	"remote-idle-timeout": "a duration such as 10m, or 0 to wait for ever",
	"idle-timeout":        "a duration such as 10m, or 0 to wait for ever",
	"timeout":             "a duration such as 90s, or 0 for the default",
}

// negative is the error of a negative value of a flag whose 0 means
// something, saying what to type.
func negative(c *cli.Context, name string, v any) error {
	hint, ok := negativeHints[commandPath(c)+" --"+name]
	if !ok {
		hint = negativeHints[name]
	}
	return usagef("--%s %v is negative: type %s", name, v, hint)
}

// maxDuration bounds every duration flag: longer is a typo.
const maxDuration = 366 * 24 * time.Hour

// checkBounds refuses a number flag of the command outside its range, with
// the range to type instead.
func checkBounds(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		switch f.(type) {
		case *cli.IntFlag:
			b, ok := intBounds[name]
			if !ok {
				return fmt.Errorf("--%s has no bounds (a bug)", name)
			}
			switch v := c.Int(name); {
			case v < 0 && b[0] == 0:
				return negative(c, name, v)
			case v < b[0] || v > b[1]:
				return usagef("--%s %d is out of range: type %d–%d", name, v, b[0], b[1])
			}
		case *cli.IntSliceFlag:
			b, ok := intSliceBounds[name]
			if !ok {
				return fmt.Errorf("--%s has no bounds (a bug)", name)
			}
			for _, v := range c.IntSlice(name) {
				if v < b[0] || v > b[1] {
					return usagef("--%s %d is out of range: type numbers %d–%d", name, v, b[0], b[1])
				}
			}
		case *cli.DurationFlag:
			b, ok := durationBounds[name]
			if !ok {
				return fmt.Errorf("--%s has no bounds (a bug)", name)
			}
			switch v := c.Duration(name); {
			case v < 0 && b.zero:
				return negative(c, name, v)
			case v < 0 || (v == 0 && !b.zero):
				want := "a positive duration such as 30s"
				if b.zero {
					want = "0 or a positive duration such as 30s"
				}
				return usagef("--%s %s is out of range: type %s", name, v, want)
			case v > maxDuration:
				return usagef("--%s %s is out of range: type at most %s", name, v, maxDuration)
			}
		}
	}
	return nil
}
