package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/scheduler"
)

func jobAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "create a job (or --count of them) and print its id",
		ArgsUsage: "ACTION",
		Description: "Creates a QUEUED job and its queue entry in one ZooKeeper transaction and prints the job id,\n" +
			"alone on its line, so scripts can capture it: id=$(jobengine job add my_action).\n" +
			"A job with a concurrency key, an instance group, an impact or a dependency is created PENDING instead:\n" +
			"the scheduler of `jobengine controller` queues it on an executor of its groups once nothing blocks it\n" +
			"and the executor has room (see `job show` for why it waits).\n" +
			"--fanout runs the job once on every live, enabled executor of --group (default: default), through\n" +
			"their direct queues, and prints the id of a parent job that ends when every child has.\n" +
			"--count N creates N jobs alike, hundreds per transaction with several transactions in flight, and\n" +
			"prints their ids one per line; it checks the input and the backlog cap before writing anything.",
		Flags: withEnv("job add",
			&cli.StringFlag{Name: "target", Usage: "href of the target resource"},
			&cli.IntFlag{Name: "priority", Value: queue.DefaultPriority, Usage: "0–999, lower runs first"},
			&cli.StringFlag{Name: "payload", Usage: "the action's arguments: a JSON object, or @file (@- reads stdin)"},
			&cli.DurationFlag{Name: "timeout", Usage: "run time limit of the job (90s, 5m); 0: the action's default"},
			&cli.StringFlag{Name: "unique-key", Usage: "refuse the job while another live job has this key"},
			&cli.StringSliceFlag{Name: "tag", Usage: "a tag; repeat for more"},
			&cli.StringSliceFlag{Name: "concurrency-key", Usage: "wait while an active or older pending job has this key (such as template:deploy); repeat for more"},
			&cli.StringSliceFlag{Name: "group", Usage: "an instance group of executors that may run the job, in preference order; repeat for more (default: default)"},
			&cli.IntFlag{Name: "impact", Usage: "the capacity the job takes on its executor (default 1)"},
			&cli.StringSliceFlag{Name: "depends-on", Usage: "a job (job/<uuid>) that must succeed first; repeat for more"},
			&cli.BoolFlag{Name: "fanout", Usage: "run the job on every live, enabled executor of --group, under a parent job"},
			&cli.IntFlag{Name: "count", Value: 1, Usage: fmt.Sprintf("create this many jobs alike (1–%d), many per transaction; their ids are printed one per line", jobs.MaxCreateLike)},
			&cli.StringSliceFlag{Name: "notify-started", Usage: "notification template to notify when the job starts; repeat for more"},
			&cli.StringSliceFlag{Name: "notify-success", Usage: "notification template to notify when the job succeeds; repeat for more"},
			&cli.StringSliceFlag{Name: "notify-failure", Usage: "notification template to notify when the job fails or is canceled; repeat for more"},
			maxBacklogFlag(),
			jsonFlag("print the new job document as JSON instead of its id"),
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ACTION")
			if err != nil {
				return err
			}
			n := jobs.NewJob{
				Action:    args[0],
				Target:    c.String("target"),
				Priority:  c.Int("priority"),
				Timeout:   c.Duration("timeout"),
				UniqueKey: c.String("unique-key"),
				Tags:      c.StringSlice("tag"),
				CreatedBy: createdByCLI,
				Launch:    jobs.Launch{InstanceGroups: c.StringSlice("group")},
				Scheduling: jobs.Scheduling{
					Impact:          c.Int("impact"),
					ConcurrencyKeys: c.StringSlice("concurrency-key"),
				},
			}
			for _, d := range c.StringSlice("depends-on") {
				id, _, err := jobs.ParseID(d)
				if err != nil {
					return usagef("--depends-on %q is not a job id: type job/<uuid> or the bare uuid, as `job add` printed it", d)
				}
				n.Scheduling.DependsOn = append(n.Scheduling.DependsOn, id)
			}
			n.Notifications.Add(jobs.NotifyStarted, c.StringSlice("notify-started")...)
			n.Notifications.Add(jobs.NotifySuccess, c.StringSlice("notify-success")...)
			n.Notifications.Add(jobs.NotifyFailure, c.StringSlice("notify-failure")...)
			if c.IsSet("payload") {
				if n.Payload, err = readPayload(c.String("payload")); err != nil {
					return err
				}
			}
			fanout := c.Bool("fanout")
			var fanGroup string
			if fanout {
				if len(n.Scheduling.ConcurrencyKeys) > 0 || len(n.Scheduling.DependsOn) > 0 || len(n.Launch.InstanceGroups) > 1 {
					return usagef("--fanout takes one --group and an --impact; not --concurrency-key, --depends-on or several groups")
				}
				if len(n.Launch.InstanceGroups) == 1 {
					fanGroup = n.Launch.InstanceGroups[0]
				}
				n.Launch.InstanceGroups = nil
			}
			if err := checkNewJob(n); err != nil {
				return err
			}
			count := c.Int("count")
			if err := checkCount(count, n, fanout, c.Bool("json")); err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.ensure(); err != nil {
				return err
			}
			for _, d := range n.Scheduling.DependsOn {
				if _, _, err := cl.store.Get(cl.ctx, d); errors.Is(err, jobs.ErrNotFound) {
					return usagef("--depends-on %s: no such live job (`jobengine job list` shows them)", d)
				} else if err != nil {
					return cl.fail(err, d)
				}
			}
			if count > 1 {
				return addLike(cl, c.App.Writer, n, count)
			}
			var j *jobs.Job
			if fanout {
				j, err = scheduler.Fanout(cl.ctx, cl.store, n, fanGroup)
				if errors.Is(err, scheduler.ErrNoExecutor) {
					return &ExitError{Code: ExitFailure, Err: err}
				}
			} else {
				j, err = cl.store.Create(cl.ctx, n)
			}
			if err != nil {
				return cl.fail(err, "")
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, history.Job{Job: j, Source: history.Live})
			}
			fmt.Fprintln(c.App.Writer, j.ID)
			return nil
		},
	}
}

// checkNewJob checks what the user typed for `job add`, naming the argument
// or flag that is wrong and what to type instead.
func checkNewJob(n jobs.NewJob) error {
	if !action.ValidName(n.Action) {
		return usagef("action %s is not an action name: type 1–64 characters of a-z, 0-9, '_', '-' and '.' (not . or ..), such as say_hello", quote(n.Action))
	}
	if n.Priority < queue.MinPriority || n.Priority > queue.MaxPriority {
		return usagef("--priority %d is out of range: type %d–%d (lower runs first)", n.Priority, queue.MinPriority, queue.MaxPriority)
	}
	if n.Timeout < 0 {
		return usagef("--timeout %s is negative: type a duration such as 90s, or 0 for the action's default", n.Timeout)
	}
	for flag, v := range map[string]string{"--target": n.Target, "--unique-key": n.UniqueKey} {
		if len(v) > jobs.MaxIDBytes {
			return usagef("%s is %d bytes: type at most %d", flag, len(v), jobs.MaxIDBytes)
		}
	}
	if len(n.Tags) > jobs.MaxTags {
		return usagef("%d tags: give --tag at most %d times", len(n.Tags), jobs.MaxTags)
	}
	for _, t := range n.Tags {
		if t == "" || len(t) > jobs.MaxIDBytes {
			return usagef("--tag %s: a tag must be 1–%d bytes", quote(t), jobs.MaxIDBytes)
		}
	}
	if err := checkScheduling(n.Scheduling, n.Launch.InstanceGroups); err != nil {
		return err
	}
	if err := n.Notifications.Validate(); err != nil {
		return usagef("--notify-started/--notify-success/--notify-failure: %s (see jobengine notification list)", strings.TrimPrefix(err.Error(), jobs.ErrInvalid.Error()+": "))
	}
	// What is left for the store's own check is not typed by a user.
	if err := n.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

// quote quotes what the user typed for a message: escaped as Go does
// (control characters and bytes that are not UTF-8 included) and cut at 80
// bytes.
func quote(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "…"
	}
	return strconv.Quote(s)
}

// payloadExample is what the payload errors suggest typing.
const payloadExample = `type a JSON object such as '{"key": "value"}'`

// readPayload reads --payload and returns it compacted: a JSON object of
// bounded size.
func readPayload(v string) (json.RawMessage, error) {
	// Room for indentation, which compacting removes.
	b, err := readArg("--payload", v, 4*jobs.MaxPayloadBytes)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, usagef("--payload is empty: %s", payloadExample)
	}
	if !utf8.Valid(b) {
		return nil, usagef("--payload is not valid UTF-8: %s", payloadExample)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, usagef("--payload is not valid JSON (%v): %s", err, payloadExample)
	}
	if kind := jsonKind(buf.Bytes()); kind != "object" {
		return nil, usagef("--payload is a JSON %s, not an object: %s", kind, payloadExample)
	}
	if buf.Len() > jobs.MaxPayloadBytes {
		return nil, usagef("--payload: %d bytes is over the %d-byte limit", buf.Len(), jobs.MaxPayloadBytes)
	}
	return buf.Bytes(), nil
}

// jsonKind names the kind of a valid JSON value by its first byte.
func jsonKind(b []byte) string {
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// checkScheduling checks the scheduling flags of `job add`.
func checkScheduling(sc jobs.Scheduling, groups []string) error {
	if sc.Impact < 0 || sc.Impact > jobs.MaxImpact {
		return usagef("--impact %d is out of range: type 1–%d (how much of an executor's capacity the job takes)", sc.Impact, jobs.MaxImpact)
	}
	if len(groups) > jobs.MaxInstanceGroups {
		return usagef("%d groups: give --group at most %d times", len(groups), jobs.MaxInstanceGroups)
	}
	seen := map[string]bool{}
	for _, g := range groups {
		if jobs.ValidGroupName(g) != nil {
			return usagef("--group %q is not a group name: type letters, digits, '.', '_' or '-', starting with a letter or digit, such as edge", g)
		}
		if seen[g] {
			return usagef("--group %s is given twice: give each group once, in preference order", g)
		}
		seen[g] = true
	}
	if len(sc.ConcurrencyKeys) > jobs.MaxConcurrencyKeys {
		return usagef("%d concurrency keys: give --concurrency-key at most %d times", len(sc.ConcurrencyKeys), jobs.MaxConcurrencyKeys)
	}
	for _, k := range sc.ConcurrencyKeys {
		if jobs.ValidConcurrencyKey(k) != nil {
			return usagef("--concurrency-key %q: type 1–%d bytes without spaces, such as template:deploy", k, jobs.MaxKeyBytes)
		}
	}
	if len(sc.DependsOn) > jobs.MaxDependsOn {
		return usagef("%d dependencies: give --depends-on at most %d times", len(sc.DependsOn), jobs.MaxDependsOn)
	}
	return nil
}
