package index

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/jobengine/jobengine/engine/jobs"
)

// Result is the outcome of one document of a bulk request.
type Result struct {
	// Index and ID name the document.
	Index, ID string
	// Status is the HTTP status Elasticsearch gave the item, or the status
	// of the whole request when that failed (0 when there was no answer).
	Status int
	// Superseded is set when Elasticsearch already held a newer version of a
	// job document (a 409 on an external version): the item counts as done.
	Superseded bool
	// Err is nil when Elasticsearch acknowledged the document; otherwise it
	// wraps ErrUnavailable (retry later) or ErrRejected (the document
	// itself is refused) or ErrAuth.
	Err error
	// Missing is set when Elasticsearch answered the request with a 2xx
	// but its answer held no item for this document (a broken node or
	// proxy): Err wraps ErrUnavailable, and Answer is the start of the
	// answer, for the record.
	Missing bool
	Answer  string
}

// maxAnswer bounds the part of a bulk answer kept with a Missing result.
const maxAnswer = 4 << 10

// bulkOp is one document to index (or, with delete, to remove).
type bulkOp struct {
	index, id string
	body      []byte
	// delete removes the document; one already gone counts as done.
	delete bool
	// external indexes with version_type=external and this version.
	external bool
	version  int64
}

// maxBulkBytes bounds one bulk request; bigger batches are sent as several.
const maxBulkBytes = 8 << 20

// IndexJobs indexes job documents into the jobs index, each under its uuid
// with its Version as external version, so an older version never
// overwrites a newer one (such an item is Superseded, not an error). The
// results are in the order of js; the error is nil when every document was
// acknowledged and otherwise summarises the failures.
func (c *Client) IndexJobs(ctx context.Context, js ...*jobs.Job) ([]Result, error) {
	ops := make([]bulkOp, 0, len(js))
	for _, j := range js {
		body, err := json.Marshal(j)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding %s: %v", ErrRejected, j.ID, err)
		}
		ops = append(ops, bulkOp{index: c.JobsIndex(), id: j.UUID(), body: body, external: true, version: j.Version})
	}
	return c.bulkReady(ctx, ops)
}

// IndexEvents indexes events into the events index under their ids (an
// event without an id gets one). Indexing an event twice keeps one copy.
func (c *Client) IndexEvents(ctx context.Context, evs ...Event) ([]Result, error) {
	ops := make([]bulkOp, 0, len(evs))
	for _, ev := range evs {
		ev.fill(time.Now())
		body, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding event %s: %v", ErrRejected, ev.ID, err)
		}
		ops = append(ops, bulkOp{index: c.EventsIndex(), id: ev.ID, body: body})
	}
	return c.bulkReady(ctx, ops)
}

func (c *Client) bulkReady(ctx context.Context, ops []bulkOp) ([]Result, error) {
	if err := c.ready(ctx); err != nil {
		res := make([]Result, len(ops))
		for i, o := range ops {
			res[i] = Result{Index: o.index, ID: o.id, Err: err}
		}
		return res, err
	}
	return c.bulk(ctx, ops)
}

// statusRecorder wraps the transport to keep the status and body of a
// failed bulk request, which the bulk indexer reports only as text.
type statusRecorder struct {
	t esapi.Transport

	mu     sync.Mutex
	status int
	body   []byte
}

func (r *statusRecorder) Perform(req *http.Request) (*http.Response, error) {
	res, err := r.t.Perform(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body = 0, nil
	switch {
	case err != nil:
	case res.StatusCode >= 300:
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		r.status, r.body = res.StatusCode, b
	default:
		// The whole answer goes on to the bulk indexer; its start is
		// kept in case it lacks items.
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		if rerr != nil {
			return res, rerr
		}
		r.status, r.body = res.StatusCode, b[:min(len(b), maxAnswer)]
	}
	return res, err
}

func (r *statusRecorder) last() (int, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status, r.body
}

// bulk sends ops through the official bulk indexer (one worker, so one
// request per maxBulkBytes) and classifies each item. The request carries
// ctx, so a cancelled caller stops waiting for Elasticsearch at once.
func (c *Client) bulk(ctx context.Context, ops []bulkOp) ([]Result, error) {
	results := make([]Result, len(ops))
	if len(ops) == 0 {
		return results, nil
	}
	size := 1
	for _, o := range ops {
		size += len(o.body) + len(o.index) + len(o.id) + 96
	}
	size = max(min(size, maxBulkBytes), 4096)
	rec := &statusRecorder{t: c.es}

	var mu sync.Mutex
	done := make([]bool, len(ops))
	returned := false
	// The bulk indexer pairs the answer's items with the documents by
	// position; an answer that left an item out would pair the rest with
	// the wrong documents. Items are paired by id instead, in order among
	// documents that share it, the same index first (an alias answers
	// with its backing index's name).
	byID := map[string][]int{}
	for i, o := range ops {
		byID[o.id] = append(byID[o.id], i)
	}
	set := func(pos int, ri esutil.BulkIndexerResponseItem, r func(i int) Result) {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			return
		}
		i := pos
		if ri.DocumentID != "" {
			i = -1
			for _, j := range byID[ri.DocumentID] {
				if !done[j] && (i < 0 || ops[j].index == ri.Index && ops[i].index != ri.Index) {
					i = j
				}
			}
			if i < 0 {
				return // an item for no document of this request
			}
		}
		if !done[i] {
			results[i], done[i] = r(i), true
		}
	}
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:              rec,
		NumWorkers:          1,
		FlushBytes:          size,
		FlushInterval:       time.Hour, // flushed by Close
		QueueSizeMultiplier: len(ops),
		OnFlushStart:        func(context.Context) context.Context { return ctx },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: creating the bulk indexer: %v", ErrConfig, err)
	}
	for i, o := range ops {
		item := esutil.BulkIndexerItem{
			Action:     "index",
			Index:      o.index,
			DocumentID: o.id,
			Body:       bytes.NewReader(o.body),
			OnSuccess: func(_ context.Context, _ esutil.BulkIndexerItem, ri esutil.BulkIndexerResponseItem) {
				set(i, ri, func(j int) Result { return Result{Index: ops[j].index, ID: ops[j].id, Status: ri.Status} })
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, ri esutil.BulkIndexerResponseItem, err error) {
				if err != nil {
					ri.DocumentID = "" // the whole request failed: this document's own result
				}
				set(i, ri, func(j int) Result {
					if ops[j].delete && err == nil && ri.Status == http.StatusNotFound {
						return Result{Index: ops[j].index, ID: ops[j].id, Status: ri.Status}
					}
					return c.itemResult(ops[j], ri, err, rec)
				})
			},
		}
		if o.delete {
			item.Action, item.Body = "delete", nil
		}
		if o.external {
			v := o.version
			item.Version, item.VersionType = &v, "external"
		}
		if err := bi.Add(ctx, item); err != nil {
			break
		}
	}
	closeErr := bi.Close(ctx)

	mu.Lock()
	returned = true
	failed, retry := 0, 0
	var first error
	for i, o := range ops {
		if !done[i] {
			err := closeErr
			if err == nil {
				err = ctx.Err()
			}
			status, body := rec.last()
			switch {
			case err == nil && status >= 200 && status < 300:
				results[i] = Result{Index: o.index, ID: o.id, Status: status, Missing: true, Answer: string(body),
					Err: fmt.Errorf("%w: indexing %s/%s: Elasticsearch answered %d without an item for the document", ErrUnavailable, o.index, o.id, status)}
			case err == nil:
				results[i] = Result{Index: o.index, ID: o.id, Err: c.transportError("bulk", errors.New("the document was not sent"))}
			default:
				results[i] = Result{Index: o.index, ID: o.id, Err: c.transportError("bulk", err)}
			}
		}
		if e := results[i].Err; e != nil {
			failed++
			if Retryable(e) {
				retry++
			}
			if first == nil {
				first = e
			}
		}
	}
	mu.Unlock()
	if failed == 0 {
		return results, nil
	}
	return results, fmt.Errorf("%d of %d documents not indexed (%d can be retried); first: %w", failed, len(ops), retry, first)
}

// itemResult classifies a failed item: err set means the whole request
// failed (transport error or error status), otherwise ri is the item's own
// answer.
func (c *Client) itemResult(o bulkOp, ri esutil.BulkIndexerResponseItem, err error, rec *statusRecorder) Result {
	r := Result{Index: o.index, ID: o.id, Status: ri.Status}
	if err != nil {
		// The whole request failed: that says nothing against this
		// document, so it is retryable unless access was refused.
		status, body := rec.last()
		r.Status = status
		switch {
		case status == 0:
			r.Err = c.transportError("bulk request", err)
		case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests || status >= 500:
			r.Err = c.statusError("bulk request", status, body)
		default:
			var b esErrorBody
			detail := string(body)
			if json.Unmarshal(body, &b) == nil && b.Error.Type != "" {
				detail = b.String()
			}
			r.Err = fmt.Errorf("%w: bulk request: Elasticsearch answered %d %s", ErrUnavailable, status, detail)
		}
		return r
	}
	if o.external && ri.Status == http.StatusConflict && ri.Error.Type == "version_conflict_engine_exception" {
		r.Superseded = true
		return r
	}
	detail := ri.Error.Type + ": " + ri.Error.Reason
	if ri.Error.Cause.Type != "" {
		detail += " (caused by " + ri.Error.Cause.Type + ": " + ri.Error.Cause.Reason + ")"
	}
	what := fmt.Sprintf("indexing %s/%s", o.index, o.id)
	switch {
	case ri.Status == http.StatusTooManyRequests || ri.Status >= 500:
		r.Err = fmt.Errorf("%w: %s: Elasticsearch answered %d %s", ErrUnavailable, what, ri.Status, detail)
	case ri.Status == http.StatusUnauthorized || ri.Status == http.StatusForbidden:
		r.Err = fmt.Errorf("%w: %s: %d %s", ErrAuth, what, ri.Status, detail)
	default:
		r.Err = fmt.Errorf("%w: %s: Elasticsearch answered %d %s", ErrRejected, what, ri.Status, detail)
	}
	return r
}
