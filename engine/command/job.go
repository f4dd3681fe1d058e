package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Where a listed or shown job was read from.
const (
	sourceZK = "zookeeper"     // a live job document
	sourceES = "elasticsearch" // its indexed copy in the history
)

// createdByCLI is the created-by of jobs added with `job add`, and the
// canceller named in the status message of jobs canceled with `job cancel`.
const createdByCLI = "cli"

// defaultLimit bounds listings unless --limit says otherwise.
const defaultLimit = 100

func jobCommand() *cli.Command {
	return &cli.Command{
		Name:  "job",
		Usage: "add, list, show, cancel, wait for and follow jobs",
		Subcommands: []*cli.Command{
			jobAddCommand(), jobShowCommand(), jobListCommand(), jobCancelCommand(), jobWaitCommand(), jobLogsCommand(),
			jobRelaunchCommand(), jobDeleteCommand(), jobInventoryCommand(),
		},
	}
}

func queueCommand() *cli.Command {
	return &cli.Command{
		Name:        "queue",
		Usage:       "inspect and repair the job queue",
		Subcommands: []*cli.Command{queueStatsCommand(), queueInspectCommand(), queueRestoreCommand()},
	}
}

// jobView is a job document as printed, with where it was read from.
type jobView struct {
	*jobs.Job
	Source string `json:"source"`
}

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
			&cli.DurationFlag{Name: "timeout", Usage: "run time limit of the job; 0: the action's default"},
			&cli.StringFlag{Name: "unique-key", Usage: "refuse the job while another live job has this key"},
			&cli.StringSliceFlag{Name: "tag", Usage: "a tag; repeat for more"},
			maxBacklogFlag(),
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
			for _, t := range n.Tags {
				if t == "" || len(t) > jobs.MaxIDBytes {
					return usagef("--tag: a tag must be 1–%d bytes", jobs.MaxIDBytes)
				}
			}
			if err := n.Validate(); err != nil {
				return &UsageError{Err: err}
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
			fmt.Fprintln(c.App.Writer, j.ID)
			return nil
		},
	}
}

// readPayload reads --payload and returns it compacted. Only the shape is
// checked here; jobs.NewJob.Validate checks that it is an object of
// bounded size.
func readPayload(v string) (json.RawMessage, error) {
	b, err := readArg(v)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, usagef("--payload is empty (want a JSON object, e.g. '{\"key\": \"value\"}')")
	}
	if len(b) > 4*jobs.MaxPayloadBytes {
		return nil, usagef("--payload: %d bytes is over the %d-byte limit", len(b), jobs.MaxPayloadBytes)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, usagef("--payload is not valid JSON: %v", err)
	}
	return buf.Bytes(), nil
}

func jobShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a job document",
		ArgsUsage: "ID",
		Description: "Reads the live document from ZooKeeper; a job no longer there is looked up in the\n" +
			"Elasticsearch history when --es-hosts is set. ID is job/<uuid> or the bare uuid.",
		Flags: withEnv("job show", &cli.BoolFlag{Name: "json", Usage: "print the document as JSON"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, uid, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			v, err := cl.find(cl.ctx, id, uid)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, v)
			}
			return writeJobText(c.App.Writer, v)
		},
	}
}

// find reads a job from ZooKeeper, or from the history when it is not live.
func (cl *client) find(ctx context.Context, id, uid string) (jobView, error) {
	j, _, err := cl.store.Get(ctx, id)
	if err == nil {
		return jobView{cl.followContainer(ctx, j), sourceZK}, nil
	}
	if !errors.Is(err, jobs.ErrNotFound) || cl.hist == nil {
		return jobView{}, cl.fail(err, id)
	}
	hj, herr := cl.hist.get(ctx, uid)
	if herr != nil {
		return jobView{}, fmt.Errorf("%s is not in ZooKeeper and the history could not be read: %w", id, herr)
	}
	if hj == nil {
		return jobView{}, cl.fail(err, id)
	}
	return jobView{hj, sourceES}, nil
}

func jobListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list jobs, newest first",
		Description: "Lists the live jobs in ZooKeeper and, when --es-hosts is set, the history in Elasticsearch.\n" +
			"A job in both is shown once, as it is in ZooKeeper. The SOURCE column (the \"source\" field\n" +
			"with --json) says where each job was read from.",
		Flags: withEnv("job list", append([]cli.Flag{
			&cli.StringFlag{Name: "state", Usage: "only jobs in this state (PENDING, QUEUED, RUNNING, SUCCESS, FAILED, CANCELED)"},
			&cli.StringFlag{Name: "action", Usage: "only jobs of this action"},
			&cli.IntFlag{Name: "limit", Value: defaultLimit, Usage: "at most this many jobs; 0: no limit"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array of job documents"},
		}, launchFilterFlags()...)...),
		Action: func(c *cli.Context) error {
			_, err := parseArgs(c)
			if err != nil {
				return err
			}
			var f jobs.Filter
			if s := c.String("state"); s != "" {
				st, err := jobs.ParseState(s)
				if err != nil {
					return &UsageError{Err: err}
				}
				f.State = st
			}
			f.Action = c.String("action")
			if f.LaunchFilter, err = readLaunchFilter(c, time.Now()); err != nil {
				return err
			}
			limit, offset := c.Int("limit"), c.Int("offset")
			if limit < 0 || offset < 0 {
				return usagef("--limit and --offset must not be negative")
			}
			if limit > 0 {
				f.Limit = offset + limit + 1 // one more: is there a next page?
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			list, err := cl.list(cl.ctx, f, c.App.ErrWriter)
			if err != nil {
				return err
			}
			list, more := pageOf(list, offset, limit)
			if more {
				fmt.Fprintf(c.App.ErrWriter, "jobengine: more jobs match: showing %d from offset %d (--offset %d for the next page, --limit 0 for all)\n",
					len(list), offset, offset+limit)
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, list)
			}
			tw := newTable(c.App.Writer)
			fmt.Fprintln(tw, "ID\tACTION\tSTATE\tPRIORITY\tPROGRESS\tCREATED\tTARGET\tSOURCE")
			for _, v := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d%%\t%s\t%s\t%s\n", v.ID, v.Action, v.State, v.Priority, v.Progress,
					stamp(v.Created), dash(v.Target()), v.Source)
			}
			return tw.Flush()
		},
	}
}

// list merges the live jobs with the history: a job in both is kept as it
// is in ZooKeeper, whatever state its indexed copy is in. A history that
// cannot be read is reported on warn and left out.
func (cl *client) list(ctx context.Context, f jobs.Filter, warn io.Writer) ([]jobView, error) {
	live := map[string]bool{}
	out := []jobView{}
	err := cl.store.Walk(ctx, func(j *jobs.Job, _ int32) {
		live[j.ID] = true
		if f.Match(j) {
			out = append(out, jobView{j, sourceZK})
		}
	})
	if err != nil {
		return nil, cl.fail(err, "")
	}
	if cl.hist != nil {
		// Ask for enough that live copies dropped from the answer still
		// leave the limit filled.
		limit := 0
		if f.Limit > 0 {
			limit = f.Limit + len(live)
		}
		hs, err := cl.hist.list(ctx, f, limit)
		if err != nil {
			fmt.Fprintf(warn, "jobengine: warning: history left out: %v\n", err)
		}
		for i := range hs {
			if !live[hs[i].ID] && f.Match(&hs[i]) {
				out = append(out, jobView{&hs[i], sourceES})
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if !out[a].Created.Equal(out[b].Created) {
			return out[a].Created.After(out[b].Created)
		}
		return out[a].ID < out[b].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func jobCancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a job",
		ArgsUsage: "ID",
		Description: "A QUEUED job becomes CANCELED at once; a RUNNING job gets a cancel request that its executor\n" +
			"acts on (use `job wait` to see it end). A job in a final state cannot be canceled: exit 1.",
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
			if err := cl.ensure(); err != nil {
				return err
			}
			j, err := cl.store.CancelJob(cl.ctx, id, createdByCLI)
			switch {
			case errors.Is(err, jobs.ErrFinal):
				return fmt.Errorf("%s is already %s; a job in a final state cannot be canceled", id, j.State)
			case err != nil:
				return cl.fail(err, id)
			case j.State == jobs.Running:
				fmt.Fprintf(c.App.Writer, "%s cancel requested (RUNNING: its executor stops it)\n", j.ID)
			default:
				fmt.Fprintf(c.App.Writer, "%s %s\n", j.ID, j.State)
			}
			return nil
		},
	}
}

// errWaitTimeout is the cause of a `job wait` that ran out of time.
var errWaitTimeout = errors.New("wait timed out")

func jobWaitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "wait until a job is final; exit 0 if it succeeded",
		ArgsUsage: "ID",
		Description: "Watches the job document in ZooKeeper (no polling) until the job is SUCCESS, FAILED or\n" +
			"CANCELED, then prints its final state. Exit 0: SUCCESS; 1: FAILED or CANCELED (or the job is\n" +
			"unknown); 3: --timeout passed first. A document already removed from ZooKeeper is looked up\n" +
			"in the Elasticsearch history when --es-hosts is set.",
		Flags: withEnv("job wait",
			&cli.DurationFlag{Name: "timeout", Usage: "give up after this long (exit 3); 0: wait as long as it takes"},
			&cli.BoolFlag{Name: "json", Usage: "print the final document as JSON"},
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, uid, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			timeout := c.Duration("timeout")
			if timeout < 0 {
				return usagef("--timeout must not be negative")
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := cl.ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeoutCause(cl.ctx, timeout, errWaitTimeout)
			}
			defer cancel()
			v, err := cl.waitFinal(ctx, id, uid)
			if errors.Is(context.Cause(ctx), errWaitTimeout) {
				state := "still not final"
				if v.Job != nil {
					state = "it is " + string(v.State)
				}
				return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for %s; %s", timeout, id, state)}
			}
			if err != nil {
				return err
			}
			if c.Bool("json") {
				err = writeJSON(c.App.Writer, v)
			} else {
				fmt.Fprintln(c.App.Writer, finalLine(v.Job))
			}
			if err != nil || v.State == jobs.Success {
				return err
			}
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%s ended %s", id, v.State)}
		},
	}
}

// waitFinal watches the job document until the job is final. It returns
// the last document it read even when ctx ends first.
func (cl *client) waitFinal(ctx context.Context, id, uid string) (jobView, error) {
	var last jobView
	p := cl.store.DocPath(uid)
	for {
		var data []byte
		var ch <-chan zk.Event
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, ch, err = cl.conn.GetW(p)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			// Never created, or removed after being indexed: the history
			// has its last state.
			v, err := cl.find(ctx, id, uid)
			if err != nil {
				return last, err
			}
			if !v.State.Final() {
				return v, fmt.Errorf("%s is gone from ZooKeeper and its last indexed state is %s", id, v.State)
			}
			return v, nil
		}
		if err != nil {
			return last, cl.fail(err, id)
		}
		var j jobs.Job
		if err := json.Unmarshal(data, &j); err != nil {
			return last, fmt.Errorf("the document of %s is not valid JSON: %w", id, err)
		}
		last = jobView{&j, sourceZK}
		if j.State.Final() {
			return last, nil
		}
		cl.log.Debug("watching job document", zap.String("job", id), zap.String("action", j.Action), zap.String("state", string(j.State)))
		select {
		case <-ch:
			// Changed, deleted, or the watch was lost with the session: read again.
		case <-containerResync(&j):
			cl.followContainer(ctx, &j)
		case <-ctx.Done():
			return last, cl.fail(context.Cause(ctx), id)
		}
	}
}

// finalLine says how a job ended: "job/… FAILED (return code 2): message".
func finalLine(j *jobs.Job) string {
	s := j.ID + " " + string(j.State)
	if j.ReturnCode != nil {
		s += fmt.Sprintf(" (return code %d)", *j.ReturnCode)
	}
	if j.StatusMessage != "" {
		s += ": " + oneLine(j.StatusMessage)
	}
	return s
}

func jobLogsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print a job's log",
		ArgsUsage: "ID",
		Description: "Prints the tail of the job's log kept in ZooKeeper (the last 64 KiB), preceded by the full\n" +
			"log from the job-events index when --es-hosts is set. --follow keeps printing new lines\n" +
			"(watching ZooKeeper, no polling) until the job is final.",
		Flags: withEnv("job logs", &cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "print new lines until the job is final"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "ID")
			if err != nil {
				return err
			}
			id, uid, err := jobs.ParseID(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			return cl.logs(cl.ctx, c.App.Writer, c.App.ErrWriter, id, uid, c.Bool("follow"))
		},
	}
}

// logs prints a job's log lines and, with follow, new ones as they come
// until the job is final.
func (cl *client) logs(ctx context.Context, w, warn io.Writer, id, uid string, follow bool) error {
	var shown []jobs.LogLine // the ZooKeeper tail as last printed
	first := true
	for {
		// Watches first, then reads: a change in between fires the watch.
		var docData []byte
		var docCh, logCh <-chan zk.Event
		docGone := false
		err := zkconn.Do(ctx, func() error {
			var err error
			docData, _, docCh, err = cl.conn.GetW(cl.store.DocPath(uid))
			if errors.Is(err, zk.ErrNoNode) {
				docGone, err = true, nil
			}
			if err != nil || !follow {
				return err
			}
			_, _, logCh, err = cl.conn.ExistsW(logPath(cl.conn, uid))
			return err
		})
		if err != nil {
			return cl.fail(err, id)
		}
		tail, err := cl.store.Logs(ctx, uid)
		if err != nil {
			return cl.fail(err, id)
		}
		if first {
			first = false
			lines := tail
			if cl.hist != nil {
				hl, err := cl.hist.events(ctx, id)
				if err != nil {
					fmt.Fprintf(warn, "jobengine: warning: job-events index left out: %v\n", err)
				}
				lines = mergeLines(hl, tail)
			}
			if docGone && len(lines) == 0 {
				if _, err := cl.find(ctx, id, uid); err != nil {
					return err
				}
			}
			printLines(w, lines)
		} else {
			printLines(w, newLines(shown, tail))
		}
		shown = tail
		final := docGone
		if !docGone {
			var j jobs.Job
			if json.Unmarshal(docData, &j) == nil && j.State.Final() {
				final = true
			}
		}
		if !follow || final {
			return nil
		}
		select {
		case <-docCh:
		case <-logCh:
		case <-ctx.Done():
			return cl.fail(context.Cause(ctx), id)
		}
	}
}

// logPath is the znode of a job's log tail; it mirrors the job store's
// layout (logs/<2 hex>/<uuid>) because following the log needs a watch on it.
func logPath(conn *zkconn.Conn, uid string) string {
	return conn.Path("logs", uid[:2], uid)
}

// newLines returns the lines of cur that were not in prev. The tail only
// grows at its end and loses lines at its start, so prev minus some first
// lines is a prefix of cur.
func newLines(prev, cur []jobs.LogLine) []jobs.LogLine {
	for d := 0; d <= len(prev); d++ {
		rest := prev[d:]
		if len(rest) > len(cur) {
			continue
		}
		match := true
		for i := range rest {
			if !sameLine(rest[i], cur[i]) {
				match = false
				break
			}
		}
		if match {
			return cur[len(rest):]
		}
	}
	return cur
}

func sameLine(a, b jobs.LogLine) bool {
	return a.Time.Equal(b.Time) && a.Level == b.Level && a.Message == b.Message
}

// mergeLines joins the indexed log with the ZooKeeper tail, in time order,
// each line once.
func mergeLines(indexed, tail []jobs.LogLine) []jobs.LogLine {
	type key struct {
		t          int64
		level, msg string
	}
	seen := map[key]bool{}
	var out []jobs.LogLine
	for _, ls := range [][]jobs.LogLine{indexed, tail} {
		for _, l := range ls {
			k := key{l.Time.UnixNano(), l.Level, l.Message}
			if !seen[k] {
				seen[k] = true
				out = append(out, l)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	return out
}

func printLines(w io.Writer, lines []jobs.LogLine) {
	for _, l := range lines {
		fmt.Fprintf(w, "%s %-5s %s\n", l.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), strings.ToUpper(l.Level), l.Message)
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
				return usagef("--limit must not be negative")
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

// parseArgs returns the positional arguments of c, which must be exactly
// names, and applies flags written after them: urfave/cli stops parsing
// flags at the first argument, and `job show ID --json` should work.
func parseArgs(c *cli.Context, names ...string) ([]string, error) {
	in := c.Args().Slice()
	var pos []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c, name)
		if f == nil {
			return nil, usagef("flag provided but not defined: %s", a)
		}
		if !hasVal {
			if _, ok := f.(*cli.BoolFlag); ok {
				val = "true"
			} else if i+1 < len(in) {
				i++
				val = in[i]
			} else {
				return nil, usagef("flag needs an argument: %s", a)
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, usagef("invalid value %q for flag %s: %v", val, a, err)
		}
	}
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = strings.Join(names, " ")
		}
		return nil, usagef("%s: want %s, got %d argument(s)", c.Command.FullName(), want, len(pos))
	}
	return pos, nil
}

// lookupFlag finds a flag of the command or of the app by any of its names.
func lookupFlag(c *cli.Context, name string) cli.Flag {
	for _, fs := range [][]cli.Flag{c.Command.Flags, c.App.Flags} {
		for _, f := range fs {
			for _, n := range f.Names() {
				if n == name {
					return f
				}
			}
		}
	}
	return nil
}

// withEnv gives every flag of a command an environment variable named after
// the command and the flag (JOBENGINE_JOB_LIST_LIMIT), unless it has one.
func withEnv(command string, flags ...cli.Flag) []cli.Flag {
	for _, f := range flags {
		env := "JOBENGINE_" + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(command+" "+f.Names()[0]))
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.IntFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.BoolFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.DurationFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		case *cli.StringSliceFlag:
			f.EnvVars = defaultEnv(f.EnvVars, env)
		}
	}
	return flags
}

func defaultEnv(have []string, env string) []string {
	if len(have) > 0 {
		return have
	}
	return []string{env}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// writeJobText prints a job document as aligned "field: value" lines.
func writeJobText(w io.Writer, v jobView) error {
	j := v.Job
	tw := newTable(w)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, val)
		}
	}
	row("id", j.ID)
	row("action", j.Action)
	row("state", string(j.State))
	row("priority", strconv.Itoa(j.Priority))
	row("progress", strconv.Itoa(j.Progress)+"%")
	if j.ReturnCode != nil {
		row("return-code", strconv.Itoa(*j.ReturnCode))
	}
	row("status-message", oneLine(j.StatusMessage))
	row("target-resource", j.Target())
	hrefs := make([]string, len(j.AffectedResources))
	for i, r := range j.AffectedResources {
		hrefs[i] = r.Href
	}
	row("affected-resources", strings.Join(hrefs, ", "))
	row("parent-job", j.ParentJob)
	row("nested-jobs", strings.Join(j.NestedJobs, ", "))
	row("payload", string(j.Payload))
	row("tags", strings.Join(j.Tags, ", "))
	row("unique-key", j.UniqueKey)
	row("created", stamp(j.Created))
	row("updated", stamp(j.Updated))
	if j.Started != nil {
		row("started", stamp(*j.Started))
	}
	row("time-of-status-change", stamp(j.TimeOfStatusChange))
	if j.Duration != nil {
		row("duration", strconv.FormatFloat(*j.Duration, 'f', 3, 64)+"s")
	}
	if j.Timeout > 0 {
		row("timeout", j.TimeoutDuration().String())
	}
	row("executor", j.Executor)
	row("attempt", strconv.Itoa(j.Attempt))
	row("created-by", j.CreatedBy)
	launchRows(row, j)
	row("version", strconv.FormatInt(j.Version, 10))
	row("source", v.Source)
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine keeps tables and one-line messages one line per row.
func oneLine(s string) string {
	return strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", " ").Replace(s)
}
