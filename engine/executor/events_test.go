package executor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// events is a jobs.Observer that writes down what it is told, one line per
// event.
type events struct {
	mu    sync.Mutex
	lines []string
}

func (o *events) add(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, fmt.Sprintf(format, args...))
}

func (o *events) OnState(ev jobs.StateEvent) {
	o.add("state %s→%s attempt %d by %s", ev.From, ev.Job.State, ev.Job.Attempt, ev.Job.Executor)
}

func (o *events) OnLog(ev jobs.LogEvent) {
	o.add("log %s %q at a time of its own: %v", ev.Line.Level, ev.Line.Message, !ev.Line.Time.IsZero())
}

func (o *events) OnProgress(ev jobs.ProgressEvent) {
	o.add("progress %d %q", ev.Job.Progress, ev.Job.StatusMessage)
}

func (o *events) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// Every observer of the executor's store hears of the jobs it runs: their
// states, the lines their actions log and their progress.
func TestObserversHearOfTheJobsRun(t *testing.T) {
	e := newEnv(t)
	a, b := &events{}, &events{}
	e.start("x1", nil, func(c *Config) {
		c.Store = jobs.NewStore(c.Store.Conn(), jobs.StoreConfig{Observers: []jobs.Observer{a, b}})
	})
	j := e.add("block", "")
	e.waitState(j.ID, jobs.Running, 10*time.Second)
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		// The action reports progress, status and a log line at once; the
		// reporter may flush them over one or two ticks, in either order.
		got := a.String()
		lines := strings.Split(got, "\n")
		var lastProgress string
		logged := false
		for _, l := range lines[1:] {
			switch {
			case strings.HasPrefix(l, "progress "):
				lastProgress = l
			case l == `log info "blocking until canceled" at a time of its own: true`:
				logged = true
			default:
				return fmt.Errorf("unexpected event %q in:\n%s", l, got)
			}
		}
		if lines[0] != "state QUEUED→RUNNING attempt 1 by x1" || !logged || lastProgress != `progress 42 "blocking"` {
			return fmt.Errorf("events so far:\n%s", got)
		}
		return nil
	})
	if _, err := e.store.Cancel(context.Background(), j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	e.waitState(j.ID, jobs.Canceled, 5*time.Second)
	poll.For(t, 5*time.Second, 20*time.Millisecond, func() error {
		if got := a.String(); !strings.HasSuffix(got, "\nstate RUNNING→CANCELED attempt 1 by x1") {
			return fmt.Errorf("events:\n%s", got)
		}
		return nil
	})
	if a.String() != b.String() {
		t.Fatalf("two observers were told different things:\n%s\n--\n%s", a, b)
	}
}
