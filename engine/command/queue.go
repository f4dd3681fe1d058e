package command

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func queueCommand() *cli.Command {
	return &cli.Command{
		Name:        "queue",
		Usage:       "inspect and repair the job queue",
		Subcommands: []*cli.Command{queueStatsCommand(), queueInspectCommand(), queueRestoreCommand()},
	}
}

// queueStatsView is the output of `queue stats`.
type queueStatsView struct {
	queue.Stats
	// Jobs counts the live job documents per state.
	Jobs map[jobs.State]int `json:"jobs"`
	// Invalid counts the live documents that fail validation: an executor
	// that takes their entry quarantines them.
	Invalid int `json:"invalid"`
	// Quarantined counts the quarantine records.
	Quarantined int `json:"quarantined"`
	// Outbox counts the job versions waiting to be indexed into
	// Elasticsearch and those refused for good; an outbox whose oldest
	// entry keeps ageing is stuck.
	Outbox index.OutboxStats `json:"outbox"`
}

func queueStatsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "count queue entries and live jobs",
		Description: "entries: queued entries, taken or not; taken: held by an executor; available: could be taken\n" +
			"now; orphans: taken nodes whose entry is gone (they vanish with their session); then the\n" +
			"entries per priority and the live job documents per state; then the documents that fail\n" +
			"validation and the quarantined objects (see `queue inspect --quarantined`); then the index\n" +
			"outbox: job versions waiting for Elasticsearch, the oldest's time, and those refused for good\n" +
			"(under /index/failed, each with why). The queue and the documents are read one after the\n" +
			"other, not as one snapshot.",
		Flags: append(withEnv("queue stats", &cli.BoolFlag{Name: "json", Usage: "print a JSON object"}), watchFlags("queue stats")...),
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
			return watchRun(c, w, func() error { return queueStats(c, cl) })
		},
	}
}

// queueStats prints the counts of `queue stats`.
func queueStats(c *cli.Context, cl *client) error {
	st, err := cl.store.Queue().Stats(cl.ctx)
	if err != nil {
		return cl.fail(err, "")
	}
	v := queueStatsView{Stats: st, Jobs: map[jobs.State]int{}}
	for _, s := range jobs.States {
		v.Jobs[s] = 0
	}
	err = cl.store.Scan(cl.ctx, func(j *jobs.Job, _ int32) { v.Jobs[j.State]++ }, func(*jobs.BadDocumentError) { v.Invalid++ })
	if err != nil {
		return cl.fail(err, "")
	}
	if v.Quarantined, err = cl.store.QuarantineCount(cl.ctx); err != nil {
		return cl.fail(err, "")
	}
	if v.Outbox, err = index.Stats(cl.ctx, cl.conn); err != nil {
		return cl.fail(err, "")
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintf(tw, "entries\t%d\ntaken\t%d\navailable\t%d\norphans\t%d\n\n", st.Entries, st.Taken, st.Available, st.Orphans)
	fmt.Fprintln(tw, "PRIORITY\tENTRIES")
	prios := make([]int, 0, len(st.ByPriority))
	for p := range st.ByPriority {
		prios = append(prios, p)
	}
	sort.Ints(prios)
	for _, p := range prios {
		fmt.Fprintf(tw, "%03d\t%d\n", p, st.ByPriority[p])
	}
	fmt.Fprintln(tw, "\nSTATE\tJOBS")
	for _, s := range jobs.States {
		fmt.Fprintf(tw, "%s\t%d\n", s, v.Jobs[s])
	}
	fmt.Fprintf(tw, "\ninvalid documents\t%d\nquarantined\t%d\n", v.Invalid, v.Quarantined)
	oldest := "-"
	if !v.Outbox.Oldest.IsZero() {
		oldest = v.Outbox.Oldest.Format(time.RFC3339) + " (" + time.Since(v.Outbox.Oldest).Truncate(time.Second).String() + " ago)"
	}
	fmt.Fprintf(tw, "\noutbox entries\t%d\noutbox oldest\t%s\noutbox failed\t%d\n", v.Outbox.Entries, oldest, v.Outbox.Failed)
	return tw.Flush()
}

func queueInspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "list queue entries in the order executors take them",
		Description: "Lists the entries, then the quarantined objects: job documents and queue entries that\n" +
			"failed validation and were moved to /job/quarantine, with why. --quarantined lists only those,\n" +
			"with what each held (as JSON, the full records).",
		Flags: withEnv("queue inspect",
			&cli.IntFlag{Name: "limit", Value: defaultLimit, Usage: "at most this many entries; 0: no limit"},
			&cli.BoolFlag{Name: "quarantined", Usage: "list the quarantined objects only"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array"},
		),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			limit := c.Int("limit")
			if limit < 0 {
				return negativeLimit(limit)
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			qs, err := cl.store.QuarantineList(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			if c.Bool("quarantined") {
				return printQuarantined(c, qs, true)
			}
			es, err := cl.store.Queue().Entries(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			if es == nil {
				es = []queue.Entry{}
			}
			if limit > 0 && len(es) > limit {
				es = es[:limit]
			}
			out, err := cl.takerNames(es)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, out); err != nil {
					return err
				}
				return printQuarantined(c, qs, false)
			}
			tw := newTable(c.App.Writer)
			fmt.Fprintln(tw, "ENTRY\tPRIORITY\tITEM\tTAKEN\tTAKER\tTAKER-NAME")
			for _, e := range out {
				fmt.Fprintf(tw, "%s\t%03d\t%s\t%s\t%s\t%s\n", oneLine(e.Name), e.Priority, oneLine(e.Item), yesNo(e.Taken), dash(oneLine(e.Taker)), dash(oneLine(e.TakerName)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return printQuarantined(c, qs, false)
		},
	}
}

// inspectedEntry is a queue entry as `queue inspect` prints it.
type inspectedEntry struct {
	queue.Entry
	// TakerName is the name the taker's consumer registered (an executor's
	// hostname-pid); empty for takers that register none (kazoo clients).
	TakerName string `json:"taker-name,omitempty"`
}

// takerNames adds to each taken entry the name of its taker, read from the
// consumer's owner node (<queue>/owners/<taker id>), once per taker.
func (cl *client) takerNames(es []queue.Entry) ([]inspectedEntry, error) {
	names := map[string]string{}
	out := make([]inspectedEntry, len(es))
	for i, e := range es {
		out[i].Entry = e
		if e.Taker == "" || strings.Contains(e.Taker, "/") {
			continue
		}
		name, ok := names[e.Taker]
		if !ok {
			err := zkconn.Do(cl.ctx, func() error {
				data, _, err := cl.conn.Get(cl.store.Queue().Path() + "/owners/" + e.Taker)
				if errors.Is(err, zk.ErrNoNode) {
					return nil
				}
				name = string(data)
				return err
			})
			if err != nil {
				return nil, cl.fail(err, "")
			}
			names[e.Taker] = name
		}
		out[i].TakerName = name
	}
	return out, nil
}

func queueRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "re-queue live jobs that lost their entry and remove entries of gone or final jobs",
		Description: "Safe at any time and idempotent: every repair is conditional on what was read, and an entry\n" +
			"an executor holds is left alone (reported as skipped). Running it twice repairs nothing the\n" +
			"second time. A document that fails validation is skipped and reported, with its entries: an\n" +
			"executor that takes one quarantines it (see `queue inspect --quarantined`).",
		Flags: withEnv("queue restore", &cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
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
			rep, err := cl.store.Restore(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			for _, l := range []*[]string{&rep.Requeued, &rep.Removed, &rep.SkippedTaken} {
				if *l == nil {
					*l = []string{}
				}
			}
			if rep.SkippedInvalid == nil {
				rep.SkippedInvalid = []jobs.InvalidDocument{}
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, rep)
			}
			w := c.App.Writer
			for _, id := range rep.Requeued {
				fmt.Fprintf(w, "requeued %s\n", id)
			}
			for _, e := range rep.Removed {
				fmt.Fprintf(w, "removed %s\n", e)
			}
			for _, e := range rep.SkippedTaken {
				fmt.Fprintf(w, "skipped %s (taken)\n", e)
			}
			for _, d := range rep.SkippedInvalid {
				fmt.Fprintf(w, "skipped %s (invalid: %s)\n", printable(d.Path), printable(d.Reason))
			}
			fmt.Fprintf(w, "restore: %d requeued, %d removed, %d skipped (taken), %d skipped (invalid)\n",
				len(rep.Requeued), len(rep.Removed), len(rep.SkippedTaken), len(rep.SkippedInvalid))
			return nil
		},
	}
}

// printQuarantined prints the quarantine records: all of each as JSON, or
// a table, when they are what was asked for (only); otherwise, when there
// are any, a table after the listing, or a note on stderr for JSON.
func printQuarantined(c *cli.Context, qs []jobs.Quarantined, only bool) error {
	switch {
	case only && c.Bool("json"):
		return writeJSON(c.App.Writer, qs)
	case len(qs) == 0 && !only:
		return nil
	case c.Bool("json"):
		fmt.Fprintf(c.App.ErrWriter, "jobengine: %d quarantined objects: see `jobengine queue inspect --quarantined`\n", len(qs))
		return nil
	}
	w := c.App.Writer
	if !only {
		fmt.Fprintln(w)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "QUARANTINED\tKIND\tJOB\tSINCE\tBY\tREASON")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(q.Name), printable(q.Kind), dash(printable(q.Job)), stamp(q.Time), dash(printable(q.By)), printable(q.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if only {
		for _, q := range qs {
			held := q.Text
			if held == "" && len(q.Data) > 0 {
				held = fmt.Sprintf("%d bytes that are not UTF-8 (see --json)", len(q.Data))
			}
			if q.Truncated {
				held += fmt.Sprintf(" … (first %d of %d bytes)", jobs.MaxQuarantinedBytes, q.Size)
			}
			fmt.Fprintf(w, "\n%s (from %s) held:\n%s\n", printable(q.Name), printable(q.Path), printable(held))
		}
	}
	return nil
}
