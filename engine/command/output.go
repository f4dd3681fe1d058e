package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONList writes list as a JSON array, [] when it is empty.
func writeJSONList[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	return writeJSON(w, list)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// metaJSON is the key of App.Metadata that records a --json given to the
// command, so that its errors are written as JSON too.
const metaJSON = "json"

// noteJSON records in the app that the command's output is JSON (from the
// flag wherever it was written, or its environment variable).
func noteJSON(c *cli.Context) {
	if lookupFlag(c, "json") != nil && c.Bool("json") {
		c.App.Metadata[metaJSON] = true
	}
}

// wantsJSON reports whether args ask for JSON output, for errors found
// before the command ran (a flag that does not parse).
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "json" {
			continue
		}
		if !hasVal {
			return true
		}
		b, err := strconv.ParseBool(val)
		return err == nil && b
	}
	return false
}

// Kinds of errors, in the "kind" field of a JSON error.
const (
	kindUsage       = "usage"       // exit 2: the command was called wrong; nothing was written
	kindTimeout     = "timeout"     // exit 3: `job wait --timeout` passed
	kindNotFound    = "not-found"   // no such job
	kindUnavailable = "unavailable" // ZooKeeper or Elasticsearch could not be reached
	kindRefused     = "refused"     // the engine refused: a final job, a unique key, a full backlog
	kindInvalid     = "invalid"     // the job's document in ZooKeeper fails validation
	kindQuarantined = "quarantined" // the job's document was quarantined
	kindJobFailed   = "job-failed"  // `job wait`: the job ended FAILED or CANCELED
	kindError       = "error"       // anything else
)

// jsonError is the error object written to stderr when --json is given.
type jsonError struct {
	Error    string `json:"error"`
	Kind     string `json:"kind"`
	ExitCode int    `json:"exit-code"`
}

// errJobFailed is wrapped by the error of a `job wait` whose job ended
// FAILED or CANCELED.
var errJobFailed = errors.New("the job did not succeed")

// errorKind classifies an error for the "kind" of a JSON error.
func errorKind(err error, code int) string {
	switch {
	case code == ExitUsage:
		return kindUsage
	case code == ExitTimeout:
		return kindTimeout
	case errors.Is(err, errJobFailed):
		return kindJobFailed
	case errors.Is(err, jobs.ErrQuarantined):
		return kindQuarantined
	case errors.Is(err, jobs.ErrBadDocument):
		return kindInvalid
	case errors.Is(err, jobs.ErrNotFound), errors.Is(err, credential.ErrNotFound):
		return kindNotFound
	case errors.Is(err, errZKLost), errors.Is(err, zkconn.ErrUnavailable), zkconn.Transient(err),
		errors.Is(err, index.ErrUnavailable), errors.Is(err, history.ErrUnavailable):
		return kindUnavailable
	case errors.Is(err, jobs.ErrFinal), errors.Is(err, jobs.ErrDuplicate), errors.Is(err, jobs.ErrBacklogFull):
		return kindRefused
	}
	return kindError
}

// writeError writes the error a command ended with: one line "jobengine:
// …" (and a pointer to --help for usage errors), or with --json a JSON
// object, so a script reading JSON reads its errors the same way.
func writeError(w io.Writer, err error, code int, asJSON bool) {
	if asJSON {
		_ = writeJSON(w, jsonError{Error: err.Error(), Kind: errorKind(err, code), ExitCode: code})
		return
	}
	if msg := err.Error(); msg != "" {
		// An error may quote what ZooKeeper or a file held: escaped, line
		// by line.
		lines := strings.Split(msg, "\n")
		for i, l := range lines {
			lines[i] = printable(l)
		}
		fmt.Fprintf(w, "jobengine: %s\n", strings.Join(lines, "\n"))
	}
	if code == ExitUsage {
		fmt.Fprintln(w, "run 'jobengine help' or 'jobengine <command> --help' for usage")
	}
}

// withCause is an error with a message of its own that still matches its
// cause with errors.Is, for messages that read better without the cause's.
type withCause struct {
	msg   string
	cause error
}

func (e *withCause) Error() string { return e.msg }
func (e *withCause) Unwrap() error { return e.cause }

// writeJobText prints a job document as aligned "field: value" lines.
func writeJobText(w io.Writer, v history.Job) error {
	j := v.Job
	tw := newTable(w)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, printable(val))
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
	row("explanation", oneLine(j.Explanation))
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
	row("instance-groups", strings.Join(j.InstanceGroups, ", "))
	if j.Impact > 0 {
		row("impact", strconv.Itoa(j.Impact))
	}
	row("concurrency-keys", strings.Join(j.ConcurrencyKeys, ", "))
	row("depends-on", strings.Join(j.DependsOn, ", "))
	row("fanout-group", j.FanoutGroup)
	row("instance-group", j.InstanceGroup)
	row("execution-node", j.ExecutionNode)
	row("executor", j.Executor)
	row("attempt", strconv.Itoa(j.Attempt))
	row("created-by", j.CreatedBy)
	launchRows(row, j)
	row("version", strconv.FormatInt(j.Version, 10))
	row("trimmed", j.Trimmed)
	row("source", string(v.Source))
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

// oneLine keeps tables and one-line messages one line per row, and never
// lets what a job holds reach a terminal raw: see printable.
func oneLine(s string) string { return printable(s) }

// printable returns s as it may be written to a terminal: control
// characters (ESC, CR, the C1 controls, DEL), bidirectional controls and
// bytes that are not UTF-8 are written as Go escapes (\x1b, \r, \u202e,
// \xff); newlines as \n, tabs as a space. What is printable is left as it
// is. Every text of a job or of ZooKeeper printed as text goes through it;
// JSON output is escaped by its encoder.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || jobs.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && jobs.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case jobs.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
