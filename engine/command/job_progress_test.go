package command

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/jobs"
)

const progressID = "job/3f47e4ed-1ce6-4626-92f8-7a58acaf1427"

func TestProgressBar(t *testing.T) {
	for pct, want := range map[int]string{
		0:   "[--------------------]   0%",
		45:  "[#########-----------]  45%",
		100: "[####################] 100%",
		150: "[####################] 100%",
		-5:  "[--------------------]   0%",
	} {
		if got := progressBar(pct); got != want {
			t.Errorf("progressBar(%d) = %q, want %q", pct, got, want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	running := &jobs.Job{ID: progressID, State: jobs.Running, Progress: 40, Executor: "x1", Attempt: 2, StatusMessage: "copying\nfiles \x1b[31m"}
	if got, want := progressLine(running, nil, false), progressID+` RUNNING 40% on x1 (attempt 2): copying\nfiles \x1b[31m`; got != want {
		t.Errorf("plain line %q, want %q", got, want)
	}
	if got, want := progressLine(running, nil, true), progressID+` RUNNING [########------------]  40% on x1 (attempt 2): copying\nfiles \x1b[31m`; got != want {
		t.Errorf("terminal line %q, want %q", got, want)
	}
	pending := &jobs.Job{ID: progressID, State: jobs.Pending, Scheduling: jobs.Scheduling{Explanation: "template:web is held by job/…"}}
	if got, want := progressLine(pending, nil, false), progressID+" PENDING waiting: template:web is held by job/…"; got != want {
		t.Errorf("pending line %q, want %q", got, want)
	}
	c := &jobs.Job{ID: progressID, State: jobs.Running, Progress: 25, StatusMessage: "1 of 4 slices ended",
		NestedJobs: []string{"a", "b", "c", "d"}, Launch: jobs.Launch{Kind: jobs.KindWorkflow, Sliced: true}}
	slices := []*jobs.Job{{State: jobs.Success}, {State: jobs.Running}, {State: jobs.Running}, nil}
	if got, want := progressLine(c, slices, false), progressID+" RUNNING 25% slices: 2 RUNNING, 1 SUCCESS, 1 missing"; got != want {
		t.Errorf("container line %q, want %q", got, want)
	}
	c.Workflow = &jobs.Workflow{}
	if got, want := childCounts(c, slices), "nodes: 2 RUNNING, 1 SUCCESS, 1 not started"; got != want {
		t.Errorf("workflow counts %q, want %q", got, want)
	}
}

// TestWaitProgressOnATerminal draws into a buffer as on a terminal: each
// change redraws the line in place, an unchanged one draws nothing, the
// end closes the line.
func TestWaitProgressOnATerminal(t *testing.T) {
	var b bytes.Buffer
	p := &waitProgress{w: &b, tty: true}
	j := &jobs.Job{ID: progressID, State: jobs.Queued}
	p.show(j, nil)
	p.show(j, nil)
	j.State, j.Progress = jobs.Running, 50
	p.show(j, nil)
	p.end()
	want := "\r" + progressID + " QUEUED [--------------------]   0%\x1b[K" +
		"\r" + progressID + " RUNNING [##########----------]  50%\x1b[K\n"
	if b.String() != want {
		t.Fatalf("drawn %q\nwant  %q", b.String(), want)
	}
	var nothing *waitProgress // --quiet, --json
	nothing.show(j, nil)
	nothing.end()
}

// waitRun runs `job wait` in-process with stderr readable while it runs.
type waitRun struct {
	out, errOut syncBuffer
	code        chan int
}

func (e *jobEnv) startWait(args ...string) *waitRun {
	w := &waitRun{code: make(chan int, 1)}
	g := []string{"jobengine", "--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "--zk-connect-timeout", "10s", "job", "wait"}
	go func() { w.code <- Main(append(g, args...), &w.out, &w.errOut) }()
	return w
}

// lines waits until stderr holds n lines, and returns them.
func (w *waitRun) lines(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
		got = strings.Split(strings.TrimSuffix(w.errOut.String(), "\n"), "\n")
		if len(got) < n || got[0] == "" {
			return fmt.Errorf("stderr %q: want %d lines", w.errOut.String(), n)
		}
		return nil
	})
	return got
}

func (w *waitRun) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-w.code:
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("job wait did not end")
	}
	return 0
}

// TestWaitShowsChanges: off a terminal, `job wait` prints a line on
// stderr per change (state, progress) and the final line alone on stdout;
// for a sliced job, the line counts its slices by state.
func TestWaitShowsChanges(t *testing.T) {
	e := newJobEnv(t)
	id := e.add("a")
	w := e.startWait(id, "--timeout", "60s")
	if got := w.lines(t, 1); got[0] != id+" QUEUED" {
		t.Fatalf("first line %q", got[0])
	}
	e.advance(id, jobs.Running)
	if got := w.lines(t, 2); !strings.HasPrefix(got[1], id+" RUNNING 0%") {
		t.Fatalf("second line %q", got[1])
	}
	j, ver, err := e.store.Get(e.ctx(), id)
	if err != nil {
		t.Fatal(err)
	}
	j.Progress, j.StatusMessage = 40, "half-way"
	if _, err := e.store.Update(e.ctx(), j, ver); err != nil {
		t.Fatal(err)
	}
	if got := w.lines(t, 3); !strings.HasPrefix(got[2], id+" RUNNING 40%") || !strings.HasSuffix(got[2], ": half-way") {
		t.Fatalf("third line %q", got[2])
	}
	e.advance(id, jobs.Success)
	if code := w.exit(t); code != 0 || w.out.String() != id+" SUCCESS (return code 0): done: SUCCESS\n" {
		t.Fatalf("exit %d, stdout %q", code, w.out.String())
	}
	if got := strings.Split(strings.TrimSuffix(w.errOut.String(), "\n"), "\n"); len(got) != 3 {
		t.Fatalf("stderr has %d lines, want one per change before the final one:\n%s", len(got), w.errOut.String())
	}

	// --quiet shows nothing.
	q := e.add("a")
	e.advance(q, jobs.Running, jobs.Failed)
	if _, errOut, code := e.run("job", "wait", q, "--quiet"); code != 1 || strings.Contains(errOut, q+" RUNNING") {
		t.Fatalf("--quiet: exit %d, stderr %q", code, errOut)
	}

	// A sliced job: its slices by state.
	e.binOK("inventory", "import", "inv", e.writeFile("inv.json", ansibleHosts(4)))
	e.binOK("template", "create", "s", "--action", "echo", "--inventory", "inv", "--slices", "2")
	l := e.launch("s")
	w = e.startWait(l.Job.ID, "--timeout", "60s")
	if got := w.lines(t, 1); got[0] != l.Job.ID+" PENDING slices: 2 PENDING" {
		t.Fatalf("first line of a sliced job %q", got[0])
	}
	e.ok("job", "cancel", l.Slices[0].ID)
	if got := w.lines(t, 2); got[1] != l.Job.ID+" PENDING 50% slices: 1 PENDING, 1 CANCELED" {
		t.Fatalf("second line of a sliced job %q", got[1])
	}
	e.ok("job", "cancel", l.Slices[1].ID)
	if code := w.exit(t); code != 1 || !strings.HasPrefix(w.out.String(), l.Job.ID+" FAILED") {
		t.Fatalf("a sliced job whose slices were canceled: exit %d, stdout %q", code, w.out.String())
	}
}
