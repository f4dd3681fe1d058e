package history

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

func TestCursorString(t *testing.T) {
	c := Cursor{Created: time.UnixMilli(1732271997238).UTC(), ID: "job/3f47e4ed-1ce6-4626-92f8-7a58acaf1427"}
	if s := c.String(); s != "1732271997238-3f47e4ed-1ce6-4626-92f8-7a58acaf1427" {
		t.Fatalf("String() = %q", s)
	}
	back, err := ParseCursor(c.String())
	if err != nil || back != c {
		t.Fatalf("ParseCursor(String()) = %+v, %v; want %+v", back, err, c)
	}
	j := &jobs.Job{ID: c.ID, Created: time.UnixMilli(1732271997238).Add(999 * time.Microsecond)}
	if got := CursorOf(j); got != c {
		t.Fatalf("CursorOf keeps the creation time to the millisecond: %+v, want %+v", got, c)
	}
	for _, bad := range []string{"", "1732271997238", "x-3f47e4ed-1ce6-4626-92f8-7a58acaf1427", "-5-3f47e4ed-1ce6-4626-92f8-7a58acaf1427",
		"1732271997238-nope", "1732271997238-job/3f47e4ed-1ce6-4626-92f8-7a58acaf1427x"} {
		if _, err := ParseCursor(bad); !errors.Is(err, ErrQuery) {
			t.Errorf("ParseCursor(%q) = %v, want ErrQuery", bad, err)
		}
	}
}

func TestQueryValidate(t *testing.T) {
	for _, q := range []Query{{State: "DONE"}, {Limit: -1}} {
		if err := q.Validate(); !errors.Is(err, ErrQuery) {
			t.Errorf("%+v: %v, want ErrQuery", q, err)
		}
	}
	e := newEnv(t, false)
	if _, err := e.reader().List(ctxT(t), Query{State: "done"}); !errors.Is(err, ErrQuery) {
		t.Fatalf("List with a bad state: %v", err)
	}
}

// listWorld fills ZooKeeper and the history with jobs whose creation times
// collide to the millisecond, and returns every job a listing must show,
// in listing order.
func listWorld(t *testing.T, e *env) []Job {
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ms := func(m int, us int) time.Time {
		return base.Add(time.Duration(m)*time.Millisecond + time.Duration(us)*time.Microsecond)
	}
	var want []Job
	// Live jobs, three of them in one millisecond.
	for i, at := range []time.Time{ms(10, 100), ms(10, 200), ms(10, 900), ms(7, 0), ms(3, 0), ms(1, 0)} {
		j := e.live(fmt.Sprintf("act%d", i%2), at)
		want = append(want, Job{j, Live})
	}
	// Two live jobs whose indexed copies fell behind: the history has them
	// QUEUED, ZooKeeper RUNNING.
	for _, k := range []int{0, 4} {
		e.index(want[k].Job)
		want[k].Job = e.advance(want[k].ID, jobs.Running)
	}
	// Jobs only in the history, some in the same millisecond as live ones.
	for i, at := range []time.Time{ms(10, 500), ms(9, 0), ms(7, 300), ms(7, 600), ms(5, 0), ms(2, 0), ms(0, 0)} {
		j := indexed(fmt.Sprintf("act%d", i%2), jobs.Success, at)
		e.index(j)
		want = append(want, Job{j, Indexed})
	}
	slices.SortFunc(want, func(a, b Job) int {
		if c := b.Created.UnixMilli() - a.Created.UnixMilli(); c != 0 {
			return int(c)
		}
		return strings.Compare(b.ID, a.ID)
	})
	return want
}

func TestListMergesLiveAndHistory(t *testing.T) {
	e := newEnv(t, true)
	want := listWorld(t, e)
	r := e.reader()
	page, err := r.List(ctxT(t), Query{})
	if err != nil || page.HistoryErr != nil {
		t.Fatal(err, page.HistoryErr)
	}
	if ids(page.Jobs) != ids(want) || page.Next != nil {
		t.Fatalf("List() =\n%s\nwant\n%s (next %v)", ids(page.Jobs), ids(want), page.Next)
	}

	// Filters apply to the live copy: a job RUNNING in ZooKeeper and QUEUED
	// in the history is not QUEUED.
	page, err = r.List(ctxT(t), Query{State: jobs.Queued})
	if err != nil {
		t.Fatal(err)
	}
	var queued []Job
	for _, j := range want {
		if j.State == jobs.Queued {
			queued = append(queued, j)
		}
	}
	if ids(page.Jobs) != ids(queued) {
		t.Fatalf("List(QUEUED) =\n%s\nwant\n%s", ids(page.Jobs), ids(queued))
	}
	page, err = r.List(ctxT(t), Query{State: jobs.Success, Action: "act1", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	var act1 []Job
	for _, j := range want {
		if j.State == jobs.Success && j.Action == "act1" {
			act1 = append(act1, j)
		}
	}
	if len(act1) != 3 || ids(page.Jobs) != ids(act1[:2]) || page.Next == nil || *page.Next != CursorOf(act1[1].Job) {
		t.Fatalf("List(SUCCESS, act1, 2) = %s next %v; want %s", ids(page.Jobs), page.Next, ids(act1))
	}

	// Without the history, or with the history down: the live jobs.
	var live []Job
	for _, j := range want {
		if j.Source == Live {
			live = append(live, j)
		}
	}
	page, err = New(Config{Store: e.store}).List(ctxT(t), Query{})
	if err != nil || page.HistoryErr != nil || ids(page.Jobs) != ids(live) {
		t.Fatalf("List() without history = %s, %v, %v; want %s", ids(page.Jobs), err, page.HistoryErr, ids(live))
	}
	e.es.Down()
	page, err = r.List(ctxT(t), Query{})
	if err != nil || !errors.Is(page.HistoryErr, index.ErrUnavailable) || ids(page.Jobs) != ids(live) {
		t.Fatalf("List() with the history down = %s, %v, history error %v; want the live jobs and the error", ids(page.Jobs), err, page.HistoryErr)
	}
}

// TestListPages pages through the listing with every page size, also with
// a window so small that one page takes several requests to the history:
// the pages, end to end, are the whole listing, each job once.
func TestListPages(t *testing.T) {
	e := newEnv(t, true)
	want := listWorld(t, e)
	for _, window := range []int{index.MaxLimit, 3, 1} {
		for _, limit := range []int{1, 2, 3, 5, len(want) - 1, len(want), len(want) + 1} {
			t.Run(fmt.Sprintf("window %d limit %d", window, limit), func(t *testing.T) {
				r := e.reader()
				r.window = window
				var got []Job
				var after *Cursor
				for pages := 0; ; pages++ {
					if pages > len(want) {
						t.Fatalf("no end after %d pages: %s", pages, ids(got))
					}
					page, err := r.List(ctxT(t), Query{Limit: limit, After: after})
					if err != nil || page.HistoryErr != nil {
						t.Fatal(err, page.HistoryErr)
					}
					got = append(got, page.Jobs...)
					if page.Next == nil {
						break
					}
					if len(page.Jobs) != limit {
						t.Fatalf("page %d has %d jobs and a next page, want %d", pages, len(page.Jobs), limit)
					}
					// A cursor goes through its string form, as users pass it.
					c, err := ParseCursor(page.Next.String())
					if err != nil {
						t.Fatal(err)
					}
					after = &c
				}
				if ids(got) != ids(want) {
					t.Fatalf("pages =\n%s\nwant\n%s", ids(got), ids(want))
				}
			})
		}
	}
}

// TestListWindowFullOfLiveCopies: the history's first answers are all
// indexed copies of live jobs; the jobs only in the history further down
// are still found.
func TestListWindowFullOfLiveCopies(t *testing.T) {
	e := newEnv(t, true)
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var want []Job
	for i := 0; i < 6; i++ {
		j := e.live("a", base.Add(time.Duration(10-i)*time.Second))
		e.index(j)
		want = append(want, Job{j, Live})
	}
	old := indexed("a", jobs.Failed, base)
	e.index(old)
	want = append(want, Job{old, Indexed})
	r := e.reader()
	r.window = 2
	page, err := r.List(ctxT(t), Query{Limit: 7})
	if err != nil || ids(page.Jobs) != ids(want) || page.Next != nil {
		t.Fatalf("List() = %s, %v, next %v; want %s", ids(page.Jobs), err, page.Next, ids(want))
	}
	page, err = r.List(ctxT(t), Query{Limit: 1, After: ptr(CursorOf(want[5].Job))})
	if err != nil || ids(page.Jobs) != ids(want[6:]) || page.Next != nil {
		t.Fatalf("List(after the live jobs) = %s, %v, next %v; want %s", ids(page.Jobs), err, page.Next, ids(want[6:]))
	}
}

// TestListWithoutLimit: a page without a limit holds every live job but
// only so much of the history; it ends where the unread history could hold
// older jobs, and the next page goes on from there.
func TestListWithoutLimit(t *testing.T) {
	e := newEnv(t, true)
	want := listWorld(t, e)
	r := e.reader()
	r.unlimited, r.window = 3, 2
	var got []Job
	var after *Cursor
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatalf("no end after %d pages: %s", pages, ids(got))
		}
		page, err := r.List(ctxT(t), Query{After: after})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, j := range page.Jobs {
			if j.Source == Indexed {
				n++
			}
		}
		if n > r.unlimited {
			t.Fatalf("a page without a limit holds %d jobs from the history, want at most %d", n, r.unlimited)
		}
		got = append(got, page.Jobs...)
		if page.Next == nil {
			break
		}
		after = page.Next
	}
	if ids(got) != ids(want) {
		t.Fatalf("pages =\n%s\nwant\n%s", ids(got), ids(want))
	}
}

func ptr[T any](v T) *T { return &v }
