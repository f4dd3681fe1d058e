package command

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jobengine/jobengine/engine/jobs"
)

// While `job wait` waits it shows the job's changes on stderr (stdout
// keeps the final line alone, for scripts): on a terminal one line redrawn
// in place with a progress bar, otherwise a plain line per change. For a
// container (a sliced job, a workflow job) the line counts its children
// by state.

// progressBarWidth is the number of cells of the bar.
const progressBarWidth = 20

// waitProgress draws a job's changes.
type waitProgress struct {
	w   io.Writer
	tty bool
	// last is the last line shown; drawn says a terminal line is open.
	last  string
	drawn bool
}

// newWaitProgress returns the progress of `job wait`, nil when it shows
// none (--quiet, or --json, whose errors on stderr are JSON too).
func newWaitProgress(c *cli.Context) *waitProgress {
	if c.Bool("quiet") || c.Bool("json") {
		return nil
	}
	p := &waitProgress{w: c.App.ErrWriter}
	if f, ok := c.App.ErrWriter.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// show draws j (and, for a container, its children, nil for one whose
// document is missing) when something shown changed.
func (p *waitProgress) show(j *jobs.Job, children []*jobs.Job) {
	if p == nil || j == nil {
		return
	}
	line := progressLine(j, children, p.tty)
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		// Back to the start of the line, draw, clear what a longer line
		// left.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// end closes the terminal line before the final line is printed.
func (p *waitProgress) end() {
	if p != nil && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// progressLine is one change: id, state, progress (as a bar on a
// terminal), the executor and attempt, the children's counts, the status
// message.
func progressLine(j *jobs.Job, children []*jobs.Job, bar bool) string {
	var b strings.Builder
	b.WriteString(printable(j.ID) + " " + printable(string(j.State)))
	switch {
	case bar:
		b.WriteString(" " + progressBar(j.Progress))
	case j.State == jobs.Running || j.Progress > 0:
		fmt.Fprintf(&b, " %d%%", jobs.ClampProgress(j.Progress))
	}
	if j.State == jobs.Running && j.Executor != "" {
		fmt.Fprintf(&b, " on %s (attempt %d)", printable(j.Executor), j.Attempt)
	}
	if j.State == jobs.Pending && j.Explanation != "" {
		b.WriteString(" waiting: " + oneLine(j.Explanation))
	}
	if len(j.NestedJobs) > 0 && children != nil {
		b.WriteString(" " + childCounts(j, children))
	}
	if j.StatusMessage != "" && !j.IsContainer() {
		b.WriteString(": " + oneLine(j.StatusMessage))
	}
	return b.String()
}

// progressBar draws a percentage as [#####---------------]  25%.
func progressBar(pct int) string {
	pct = jobs.ClampProgress(pct)
	full := pct * progressBarWidth / 100
	return "[" + strings.Repeat("#", full) + strings.Repeat("-", progressBarWidth-full) + fmt.Sprintf("] %3d%%", pct)
}

// childCounts counts a container's children by state, in lifecycle order:
// "slices: 2 RUNNING, 1 SUCCESS"; a missing document is a slice that was
// never created, or a workflow node not started.
func childCounts(j *jobs.Job, children []*jobs.Job) string {
	what, missing := "slices", "missing"
	if j.IsWorkflow() {
		what, missing = "nodes", "not started"
	}
	count := map[jobs.State]int{}
	absent := 0
	for _, c := range children {
		if c == nil {
			absent++
			continue
		}
		count[c.State]++
	}
	var parts []string
	for _, s := range jobs.States {
		if n := count[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if absent > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", absent, missing))
	}
	return what + ": " + strings.Join(parts, ", ")
}
