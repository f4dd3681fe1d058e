package command

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"

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
}

func queueStatsCommand() *cli.Command {
	return &cli.Command{
		Name:  "stats",
		Usage: "count queue entries and live jobs",
		Description: "entries: queued entries, taken or not; taken: held by an executor; available: could be taken\n" +
			"now; orphans: taken nodes whose entry is gone (they vanish with their session); then the\n" +
			"entries per priority and the live job documents per state. The queue and the documents are\n" +
			"read one after the other, not as one snapshot.",
		Flags: withEnv("queue stats", &cli.BoolFlag{Name: "json", Usage: "print a JSON object"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.store.Queue().Stats(cl.ctx)
			if err != nil {
				return cl.fail(err, "")
			}
			v := queueStatsView{Stats: st, Jobs: map[jobs.State]int{}}
			for _, s := range jobs.States {
				v.Jobs[s] = 0
			}
			if err := cl.store.Walk(cl.ctx, func(j *jobs.Job, _ int32) { v.Jobs[j.State]++ }); err != nil {
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
			return tw.Flush()
		},
	}
}

func queueInspectCommand() *cli.Command {
	return &cli.Command{
		Name:  "inspect",
		Usage: "list queue entries in the order executors take them",
		Flags: withEnv("queue inspect",
			&cli.IntFlag{Name: "limit", Value: defaultLimit, Usage: "at most this many entries; 0: no limit"},
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
				return writeJSON(c.App.Writer, out)
			}
			tw := newTable(c.App.Writer)
			fmt.Fprintln(tw, "ENTRY\tPRIORITY\tITEM\tTAKEN\tTAKER\tTAKER-NAME")
			for _, e := range out {
				fmt.Fprintf(tw, "%s\t%03d\t%s\t%s\t%s\t%s\n", e.Name, e.Priority, oneLine(e.Item), yesNo(e.Taken), dash(oneLine(e.Taker)), dash(oneLine(e.TakerName)))
			}
			return tw.Flush()
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
			"second time.",
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
			fmt.Fprintf(w, "restore: %d requeued, %d removed, %d skipped (taken)\n", len(rep.Requeued), len(rep.Removed), len(rep.SkippedTaken))
			return nil
		},
	}
}
