package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Server-sent events (text/event-stream). A followed log or job sends:
//
//	event: log    data: a log line {"time", "level", "message"}
//	event: job    data: the job document, each time it changes (events only)
//	event: end    data: the job as it ended {"id", "state"}
//	event: error  data: {"error": …} when following failed
//
// and a comment line every KeepAlive so that proxies keep the connection.

// KeepAlive is the interval of keep-alive comments on event streams.
var KeepAlive = 15 * time.Second

// sse writes server-sent events; safe for concurrent use.
type sse struct {
	mu sync.Mutex
	w  http.ResponseWriter
	f  http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, error) {
	f, ok := w.(http.Flusher)
	if !ok {
		return nil, errorf(http.StatusInternalServerError, "streaming is not supported by this server")
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w: w, f: f}, nil
}

func (s *sse) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}

func (s *sse) comment(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprintf(s.w, ": %s\n\n", text)
	s.f.Flush()
}

// keepAlive sends comments until ctx ends.
func (s *sse) keepAlive(ctx context.Context) {
	t := time.NewTicker(KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.comment("keep-alive")
		}
	}
}

// streamError reports a failure after the stream started (the status is
// already 200).
func (s *sse) fail(err error) {
	_ = s.send("error", toError(err))
}

// jobEnd is the data of the end event.
type jobEnd struct {
	ID    string     `json:"id"`
	State jobs.State `json:"state"`
}

// logLines is the answer of GET /jobs/{id}/logs without follow.
type logLines struct {
	Items []jobs.LogLine `json:"items"`
	// HistoryError says why only the tail kept in ZooKeeper is shown.
	HistoryError string `json:"history-error,omitempty"`
}

func (s *Server) jobLogs(rq *request) error {
	if err := rq.query("follow"); err != nil {
		return err
	}
	follow, err := rq.boolParam("follow")
	if err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	if !rq.wantsStream(follow) {
		ctx, cancel := context.WithTimeout(rq.ctx, s.cfg.RequestTimeout)
		defer cancel()
		out := logLines{Items: []jobs.LogLine{}}
		err := s.history.Logs(ctx, j.ID, false, func(b history.LogBatch) error {
			out.Items = append(out.Items, b.Lines...)
			if b.HistoryErr != nil {
				out.HistoryError = b.HistoryErr.Error()
			}
			return nil
		})
		if err != nil {
			return err
		}
		return rq.reply(http.StatusOK, out)
	}
	st, err := startSSE(rq.w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(rq.ctx)
	defer cancel()
	go st.keepAlive(ctx)
	err = s.history.Logs(ctx, j.ID, true, func(b history.LogBatch) error {
		for _, l := range b.Lines {
			if err := st.send("log", l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			st.fail(err)
		}
		return nil
	}
	st.end(ctx, s, j.ID)
	return nil
}

// end sends the end event with the job's final state.
func (st *sse) end(ctx context.Context, s *Server, id string) {
	v, err := s.history.Get(ctx, id)
	if err != nil {
		st.fail(err)
		return
	}
	_ = st.send("end", jobEnd{ID: v.ID, State: v.State})
}

// eventList is the answer of GET /jobs/{id}/events without follow.
type eventList struct {
	Items []index.Event `json:"items"`
	// HistoryError says why there are no events (no history, or it could
	// not be read).
	HistoryError string `json:"history-error,omitempty"`
}

func (s *Server) jobEvents(rq *request) error {
	if err := rq.query("follow"); err != nil {
		return err
	}
	follow, err := rq.boolParam("follow")
	if err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	if !rq.wantsStream(follow) {
		out := eventList{Items: []index.Event{}}
		if s.cfg.Index == nil {
			out.HistoryError = "no Elasticsearch history is configured: job events are indexed only with one (follow the job to see its changes live)"
			return rq.reply(http.StatusOK, out)
		}
		var after index.EventCursor
		for len(out.Items) < index.MaxLimit {
			evs, next, err := s.cfg.Index.JobEventsPage(rq.ctx, j.ID, after, 1000)
			if err != nil {
				out.HistoryError = err.Error()
				break
			}
			out.Items = append(out.Items, evs...)
			if len(evs) < 1000 {
				break
			}
			after = next
		}
		return rq.reply(http.StatusOK, out)
	}
	st, err := startSSE(rq.w)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(rq.ctx)
	defer cancel()
	go st.keepAlive(ctx)
	// The log lines and the document's changes, side by side, until the
	// job is final.
	logsDone := make(chan error, 1)
	go func() {
		logsDone <- s.history.Logs(ctx, j.ID, true, func(b history.LogBatch) error {
			for _, l := range b.Lines {
				if err := st.send("log", l); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	werr := s.watchJob(ctx, j.ID, func(j *jobs.Job) error { return st.send("job", j) })
	var lerr error
	if werr == nil {
		lerr = <-logsDone
	}
	cancel()
	switch {
	case werr != nil && rq.ctx.Err() == nil:
		st.fail(werr)
	case lerr != nil && rq.ctx.Err() == nil:
		st.fail(lerr)
	case werr == nil && lerr == nil:
		st.end(rq.ctx, s, j.ID)
	}
	return nil
}

// watchJob hands the job document to emit now and after each change,
// until the job is final (or gone: its last indexed copy is handed then).
// It watches ZooKeeper and does not poll.
func (s *Server) watchJob(ctx context.Context, id string, emit func(*jobs.Job) error) error {
	_, uid, err := jobs.ParseID(id)
	if err != nil {
		return err
	}
	conn, p := s.cfg.Conn, s.cfg.Jobs.DocPath(uid)
	var lastVersion int64 = -1
	for {
		var data []byte
		var ch <-chan zk.Event
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, ch, err = conn.GetW(p)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			v, err := s.history.Get(ctx, id)
			if err != nil {
				return err
			}
			if v.Version != lastVersion {
				return emit(v.Job)
			}
			return nil
		}
		if err != nil {
			return err
		}
		var j jobs.Job
		if err := json.Unmarshal(data, &j); err != nil {
			return fmt.Errorf("the document of %s is not valid JSON: %w", id, err)
		}
		if j.Version != lastVersion {
			lastVersion = j.Version
			if err := emit(&j); err != nil {
				return err
			}
		}
		if j.State.Final() {
			return nil
		}
		var resync <-chan time.Time
		if j.IsContainer() {
			// A container's state follows its slices: derive it again now
			// and then in case a slice's writer died before writing it.
			resync = time.After(history.ContainerResync)
		}
		select {
		case <-ch:
		case <-resync:
			_, _ = s.cfg.Jobs.SyncContainer(ctx, id)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
