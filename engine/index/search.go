package index

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// Query limits.
const (
	// DefaultLimit is the number of results when a query does not say.
	DefaultLimit = 20
	// MaxLimit is Elasticsearch's default index.max_result_window.
	MaxLimit = 10_000
)

// JobQuery selects jobs from the history. Empty fields match everything.
type JobQuery struct {
	State  string // a job state, any case ("failed")
	Action string // an action name
	Limit  int    // at most this many (DefaultLimit when 0, at most MaxLimit)
	// Launch selects by template, container, launch type and time.
	Launch jobs.LaunchFilter
	// Text, when set, keeps the jobs it names: a prefix of their id,
	// template, workflow template, action, inventory or creator, every
	// word of it in their status message, or one of TextIDs.
	Text string
	// TextIDs are jobs ("job/<uuid>") that match Text by their log (see
	// JobsWithLogText).
	TextIDs []string
	// After, when set, returns only the jobs that come after this position
	// in the answer's order, so a long listing is read page by page
	// (search_after) with no bound on its depth.
	After *JobPosition
}

// JobPosition is a place in the order of SearchJobs: creation time, newest
// first, then id, greatest first. The index keeps creation times in
// milliseconds, so Created counts only to the millisecond.
type JobPosition struct {
	Created time.Time
	ID      string
}

func limit(n, def int) int {
	switch {
	case n <= 0:
		return def
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// searchHits is the part of a search answer the client reads.
type searchHits struct {
	Hits struct {
		Hits []struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
			Sort   json.RawMessage `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
}

// search runs a search on one index; a missing index is an empty result
// (nothing was indexed yet).
func (c *Client) search(ctx context.Context, what, index string, body any) (*searchHits, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the %s query: %v", ErrConfig, what, err)
	}
	res, err := c.es.Search(
		c.es.Search.WithContext(ctx),
		c.es.Search.WithIndex(index),
		c.es.Search.WithBody(bytes.NewReader(b)),
	)
	if err != nil {
		return nil, c.transportError(what, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, c.transportError(what, err)
	}
	if res.StatusCode == http.StatusNotFound && errType(raw) == "index_not_found_exception" {
		return &searchHits{}, nil
	}
	if res.IsError() {
		return nil, c.statusError(what, res.StatusCode, raw)
	}
	var out searchHits
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%w: %s: unreadable answer from %s: %v", ErrUnavailable, what, c.hosts, err)
	}
	return &out, nil
}

// SearchJobs returns the jobs of the history that match q, newest first
// (by creation time, then by id, greatest first). Recent writes become visible within Elasticsearch's
// refresh interval (1s by default).
func (c *Client) SearchJobs(ctx context.Context, q JobQuery) ([]jobs.Job, error) {
	var filters []any
	if q.State != "" {
		st, err := jobs.ParseState(q.State)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		filters = append(filters, obj{"term": obj{"state": string(st)}})
	}
	if q.Action != "" {
		filters = append(filters, obj{"term": obj{"action": q.Action}})
	}
	filters = append(filters, launchFilters(q.Launch)...)
	if q.Text != "" {
		filters = append(filters, textFilter(q.Text, q.TextIDs))
	}
	query := obj{"match_all": obj{}}
	if len(filters) > 0 {
		query = obj{"bool": obj{"filter": filters}}
	}
	body := obj{
		"query": query,
		"size":  limit(q.Limit, DefaultLimit),
		"sort": []any{
			obj{"created": obj{"order": "desc", "unmapped_type": "date"}},
			obj{"id": obj{"order": "desc", "unmapped_type": "keyword"}},
		},
	}
	if q.After != nil {
		// Sort values of a date field are epoch milliseconds.
		body["search_after"] = []any{q.After.Created.UnixMilli(), q.After.ID}
	}
	hits, err := c.search(ctx, "searching jobs", c.JobsIndex(), body)
	if err != nil {
		return nil, err
	}
	out := make([]jobs.Job, 0, len(hits.Hits.Hits))
	for _, h := range hits.Hits.Hits {
		var j jobs.Job
		if err := json.Unmarshal(h.Source, &j); err != nil {
			return nil, fmt.Errorf("%w: searching jobs: document %s is not a job: %v", ErrRejected, h.ID, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// GetJob returns the newest indexed version of a job ("job/<uuid>" or a
// bare uuid); the error wraps ErrNotFound when it was never indexed.
func (c *Client) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	jid, uid, err := jobs.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	res, err := c.es.Get(c.JobsIndex(), uid, c.es.Get.WithContext(ctx))
	if err != nil {
		return nil, c.transportError("getting "+jid, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, c.transportError("getting "+jid, err)
	}
	if res.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s is not in %s (not indexed yet, or never existed)", ErrNotFound, jid, c.JobsIndex())
	}
	if res.IsError() {
		return nil, c.statusError("getting "+jid, res.StatusCode, raw)
	}
	var doc struct {
		Source json.RawMessage `json:"_source"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: getting %s: unreadable answer: %v", ErrUnavailable, jid, err)
	}
	var j jobs.Job
	if err := json.Unmarshal(doc.Source, &j); err != nil {
		return nil, fmt.Errorf("%w: getting %s: the indexed document is not a job: %v", ErrRejected, jid, err)
	}
	return &j, nil
}

// JobEvents returns up to limit events of a job ("job/<uuid>" or a bare
// uuid) strictly after the given time (all when zero), oldest first. Events
// that share the time of the last one read are not after it: to read a
// job's events page by page use JobEventsPage, which does not skip them.
func (c *Client) JobEvents(ctx context.Context, jobID string, after time.Time, limitN int) ([]Event, error) {
	var filters []any
	if !after.IsZero() {
		filters = append(filters, obj{"range": obj{"time": obj{"gt": after.UTC().Format(time.RFC3339Nano)}}})
	}
	evs, _, err := c.jobEvents(ctx, jobID, filters, nil, limitN)
	return evs, err
}

// EventCursor is a place in the order of a job's events — time, then
// event id — as JobEventsPage hands it out: after the last event of a
// page. The zero value is the start.
type EventCursor struct {
	// after is the sort values of the last event, as Elasticsearch gave
	// them (search_after takes them back verbatim).
	after json.RawMessage
}

// IsZero reports whether the cursor is at the start.
func (c EventCursor) IsZero() bool { return len(c.after) == 0 }

// JobEventsPage returns up to limit events of a job ("job/<uuid>" or a bare
// uuid) after the cursor, ordered by time then by event id, and the cursor
// after the last of them. The order is total, so events sharing one
// timestamp (a burst of state events) are neither skipped nor repeated at
// a page boundary. Fewer than limit events means the end.
func (c *Client) JobEventsPage(ctx context.Context, jobID string, after EventCursor, limitN int) ([]Event, EventCursor, error) {
	return c.jobEvents(ctx, jobID, nil, after.after, limitN)
}

func (c *Client) jobEvents(ctx context.Context, jobID string, filters []any, after json.RawMessage, limitN int) ([]Event, EventCursor, error) {
	jid, _, err := jobs.ParseID(jobID)
	if err != nil {
		return nil, EventCursor{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	filters = append([]any{obj{"term": obj{"job": jid}}}, filters...)
	body := obj{
		"query": obj{"bool": obj{"filter": filters}},
		"size":  limit(limitN, 100),
		"sort": []any{
			obj{"time": obj{"order": "asc", "unmapped_type": "date_nanos"}},
			obj{"id": obj{"order": "asc", "unmapped_type": "keyword"}},
		},
	}
	if len(after) > 0 {
		body["search_after"] = after
	}
	hits, err := c.search(ctx, "reading events of "+jid, c.EventsIndex(), body)
	if err != nil {
		return nil, EventCursor{}, err
	}
	out := make([]Event, 0, len(hits.Hits.Hits))
	var next EventCursor
	for _, h := range hits.Hits.Hits {
		var ev Event
		if err := json.Unmarshal(h.Source, &ev); err != nil {
			return nil, EventCursor{}, fmt.Errorf("%w: reading events of %s: document %s is not an event: %v", ErrRejected, jid, h.ID, err)
		}
		out = append(out, ev)
		next.after = h.Sort
		if len(next.after) == 0 {
			// A server that does not return sort values: the values
			// Elasticsearch gives a date_nanos and a keyword field.
			next.after, _ = json.Marshal([]any{ev.Time.UnixNano(), ev.ID})
		}
	}
	if len(out) == 0 {
		next.after = after
	}
	return out, next, nil
}
