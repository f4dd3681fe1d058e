package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

func jobAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "create a job and print its id",
		ArgsUsage: "ACTION",
		Description: "Creates a QUEUED job and its queue entry in one ZooKeeper transaction and prints the job id,\n" +
			"alone on its line, so scripts can capture it: id=$(jobengine job add my_action).",
		Flags: withEnv("job add",
			&cli.StringFlag{Name: "target", Usage: "href of the target resource"},
			&cli.IntFlag{Name: "priority", Value: queue.DefaultPriority, Usage: "0–999, lower runs first"},
			&cli.StringFlag{Name: "payload", Usage: "the action's arguments: a JSON object, or @file (@- reads stdin)"},
			&cli.DurationFlag{Name: "timeout", Usage: "run time limit of the job (90s, 5m); 0: the action's default"},
			&cli.StringFlag{Name: "unique-key", Usage: "refuse the job while another live job has this key"},
			&cli.StringSliceFlag{Name: "tag", Usage: "a tag; repeat for more"},
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
			}
			if c.IsSet("payload") {
				if n.Payload, err = readPayload(c.String("payload")); err != nil {
					return err
				}
			}
			if err := checkNewJob(n); err != nil {
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
			j, err := cl.store.Create(cl.ctx, n)
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
