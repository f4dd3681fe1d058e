package history

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// Query selects jobs for List. Empty fields match everything.
type Query struct {
	// State keeps only jobs in this state.
	State jobs.State
	// Action keeps only jobs of this action.
	Action string
	// Limit is the size of a page; 0 asks for every live job and at most
	// index.MaxLimit jobs from the history (Next says when there are more).
	Limit int
	// After, when set, starts the page after this position: pass the Next
	// of the previous page.
	After *Cursor
	// Launch selects by template, container, launch type and time.
	Launch jobs.LaunchFilter
	// Text, when set, keeps the jobs it names (see textMatch), and those
	// with a log line holding every word of it when there is a history.
	Text string

	// logIDs are the jobs whose log matches Text (set by List).
	logIDs map[string]bool
}

// Validate checks a query; its errors wrap ErrQuery.
func (q Query) Validate() error {
	if q.State != "" && !q.State.Valid() {
		return fmt.Errorf("%w: unknown state %q", ErrQuery, q.State)
	}
	if q.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrQuery, q.Limit)
	}
	if len(q.Text) > MaxText {
		return fmt.Errorf("%w: a search text of %d bytes (at most %d)", ErrQuery, len(q.Text), MaxText)
	}
	return nil
}

func (q Query) match(j *jobs.Job) bool {
	return (q.State == "" || j.State == q.State) && (q.Action == "" || j.Action == q.Action) &&
		(q.After == nil || q.After.before(j)) && q.Launch.Match(j) &&
		(q.Text == "" || q.logIDs[j.ID] || textMatch(q.Text, j))
}

// Page is one page of a listing.
type Page struct {
	// Jobs are the jobs of the page, newest first: by creation time (to the
	// millisecond, as the history keeps it), then by id, greatest first.
	Jobs []Job
	// Next is where the next page starts; nil when no more jobs match.
	Next *Cursor
	// HistoryErr is set when the history could not be read: the page then
	// holds live jobs only.
	HistoryErr error
	// Invalid are the live documents that fail validation, whatever the
	// query: they are in no page until an executor (or a cancel)
	// quarantines them.
	Invalid []jobs.InvalidDocument
}

// Cursor is a position in the order of a listing: the creation time (in
// milliseconds) and the id of the last job of a page. It stays valid while
// jobs are created (they come before it) and removed.
type Cursor struct {
	Created time.Time
	ID      string
}

// CursorOf returns the position of j, to list the jobs after it.
func CursorOf(j *jobs.Job) Cursor {
	return Cursor{Created: time.UnixMilli(j.Created.UnixMilli()).UTC(), ID: j.ID}
}

// String is the cursor as users pass it back: "<unix milliseconds>-<uuid>".
func (c Cursor) String() string {
	return strconv.FormatInt(c.Created.UnixMilli(), 10) + "-" + strings.TrimPrefix(c.ID, "job/")
}

// ParseCursor parses the String form of a cursor; its errors wrap ErrQuery.
func ParseCursor(s string) (Cursor, error) {
	ms, uid, ok := strings.Cut(strings.TrimSpace(s), "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n < 0 {
		return Cursor{}, fmt.Errorf("%w: %q is not a cursor (want <unix milliseconds>-<uuid>)", ErrQuery, s)
	}
	id, _, err := jobs.ParseID(uid)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %q is not a cursor (want <unix milliseconds>-<uuid>)", ErrQuery, s)
	}
	return Cursor{Created: time.UnixMilli(n).UTC(), ID: id}, nil
}

// before reports whether j comes after the cursor in a listing.
func (c Cursor) before(j *jobs.Job) bool {
	return compare(c.Created.UnixMilli(), c.ID, j) < 0
}

// compare orders a position against a job as listings do: -1 when the
// position comes first (it is newer, or as new with a greater id).
func compare(ms int64, id string, j *jobs.Job) int {
	jm := j.Created.UnixMilli()
	switch {
	case ms != jm:
		if ms > jm {
			return -1
		}
		return 1
	case id != j.ID:
		if id > j.ID {
			return -1
		}
		return 1
	}
	return 0
}

// order sorts a and b as listings do (newest first).
func order(a, b Job) int { return compare(a.Created.UnixMilli(), a.ID, b.Job) }

// List returns a page of the jobs that match q: the live jobs merged with
// the history, each job once and as it is in ZooKeeper when it is live,
// whatever state its indexed copy is in. It reads every live job document;
// the history is read page by page only as deep as this page needs.
func (r *Reader) List(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	q.Text = strings.TrimSpace(q.Text)
	var page Page
	var logIDs []string
	q.logIDs, logIDs, page.HistoryErr = r.logMatches(ctx, q)
	live := map[string]bool{}
	err := r.store.Scan(ctx, func(j *jobs.Job, _ int32) {
		live[j.ID] = true
		if q.match(j) {
			page.Jobs = append(page.Jobs, Job{j, Live})
		}
	}, func(b *jobs.BadDocumentError) {
		live[b.ID()] = true // its indexed copy is not what ZooKeeper holds
		page.Invalid = append(page.Invalid, b.Summary())
	})
	slices.SortFunc(page.Invalid, func(a, b jobs.InvalidDocument) int { return strings.Compare(a.Path, b.Path) })
	if err != nil {
		return Page{}, err
	}
	// Enough of the history for one page: the first `want` jobs that are
	// not live. With `want` of them in hand, any job further down the
	// history comes after every one of them, so it cannot be on the page.
	want := q.Limit + 1
	if q.Limit == 0 {
		want = r.unlimited + 1
	}
	var hist []Job
	complete := true
	if r.es != nil {
		if page.HistoryErr == nil {
			hist, complete, page.HistoryErr = r.search(ctx, q, logIDs, live, want)
		}
		if page.HistoryErr != nil {
			hist, complete = nil, true
		}
	}
	page.Jobs = append(page.Jobs, hist...)
	slices.SortStableFunc(page.Jobs, order)
	if !complete {
		// Unread history may hold jobs older than the last one read: the
		// page ends there, and later live jobs come with the next page.
		last := hist[len(hist)-1]
		end := slices.IndexFunc(page.Jobs, func(j Job) bool { return j.ID == last.ID && j.Source == Indexed })
		page.Jobs = page.Jobs[:end]
		page.Next = cursorPtr(page.Jobs)
	}
	if q.Limit > 0 && len(page.Jobs) > q.Limit {
		page.Jobs = page.Jobs[:q.Limit]
		page.Next = cursorPtr(page.Jobs)
	}
	if page.Jobs == nil {
		page.Jobs = []Job{}
	}
	return page, nil
}

func cursorPtr(js []Job) *Cursor {
	if len(js) == 0 {
		return nil
	}
	c := CursorOf(js[len(js)-1].Job)
	return &c
}

// search reads the history in order until it has want jobs that are not
// live, or the history ends (complete).
func (r *Reader) search(ctx context.Context, q Query, logIDs []string, live map[string]bool, want int) (out []Job, complete bool, err error) {
	after := q.After
	for {
		// Live jobs' indexed copies come back too and are dropped: ask for
		// as many more as there are live jobs, within Elasticsearch's
		// window.
		size := min(want-len(out)+len(live), r.window)
		iq := index.JobQuery{State: string(q.State), Action: q.Action, Limit: size, Launch: q.Launch, Text: q.Text, TextIDs: logIDs}
		if after != nil {
			iq.After = &index.JobPosition{Created: after.Created, ID: after.ID}
		}
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		got, err := r.es.SearchJobs(qctx, iq)
		cancel()
		if err != nil {
			return nil, false, err
		}
		for i := range got {
			j := &got[i]
			if !live[j.ID] && q.match(j) {
				out = append(out, Job{j, Indexed})
			}
			if len(out) == want {
				return out, false, nil
			}
		}
		if len(got) < size {
			return out, true, nil
		}
		c := CursorOf(&got[len(got)-1])
		after = &c
	}
}
