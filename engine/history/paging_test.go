package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
)

// Events sharing one timestamp — a burst of state events — are all read
// when they straddle a page boundary of the history, once each.
func TestLogsPageThroughEventsSharingATime(t *testing.T) {
	e := newEnv(t, true)
	ctx := ctxT(t)
	j := e.live("a", t0)
	at := t0.Add(time.Second)
	var evs []index.Event
	for i := range 12 {
		evs = append(evs, index.Event{ID: fmt.Sprintf("%s-burst-%02d", j.UUID(), i), Job: j.ID, Time: at,
			Type: index.EventLog, Level: "info", Message: fmt.Sprintf("burst %02d", i)})
	}
	evs = append(evs, index.Event{ID: j.UUID() + "-after", Job: j.ID, Time: at.Add(time.Nanosecond), Type: index.EventLog, Level: "info", Message: "after"})
	if _, err := e.ix.IndexEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	if err := e.ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.reader()
	r.window = 5 // pages end inside the burst
	var c collector
	if err := r.Logs(ctx, j.ID, false, c.emit); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, ev := range evs {
		want = append(want, ev.Message)
	}
	if got := c.lines(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Logs read in pages of 5:\n%v\nwant:\n%v", got, want)
	}

	// The index's pages themselves: 5, 5, 3, then none.
	var after index.EventCursor
	var n []int
	seen := map[string]bool{}
	for {
		page, next, err := e.ix.JobEventsPage(ctx, j.ID, after, 5)
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, len(page))
		for _, ev := range page {
			if seen[ev.ID] {
				t.Fatalf("event %s read twice", ev.ID)
			}
			seen[ev.ID] = true
		}
		if len(page) < 5 {
			break
		}
		after = next
	}
	if fmt.Sprint(n) != "[5 5 3]" || len(seen) != 13 {
		t.Fatalf("pages of %v, %d events; want [5 5 3], 13", n, len(seen))
	}
}
