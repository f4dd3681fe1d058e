package history

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// LogBatch is a part of a job's log handed to the caller of Logs.
type LogBatch struct {
	// Lines are in time order, each line once.
	Lines []jobs.LogLine
	// HistoryErr is set on the first batch when the job-events index could
	// not be read: the lines are then the ZooKeeper tail only.
	HistoryErr error
}

// Logs hands a job's log to emit: first one batch with everything known —
// the job's events from the history merged with the tail of its log kept
// in ZooKeeper (its last jobs.MaxLogBytes) — then, when follow is set, a
// batch of new lines each time the tail grows, until the job is final. It
// watches ZooKeeper and does not poll. An error of emit ends it and is
// returned; an unknown job's error wraps jobs.ErrNotFound.
func (r *Reader) Logs(ctx context.Context, id string, follow bool, emit func(LogBatch) error) error {
	id, uid, err := jobs.ParseID(id)
	if err != nil {
		return err
	}
	conn := r.store.Conn()
	var shown []jobs.LogLine // the ZooKeeper tail as last handed out
	first := true
	for {
		// Watches first, then reads: a change in between fires the watch.
		var docData []byte
		var docCh, logCh <-chan zk.Event
		docGone := false
		err := zkconn.Do(ctx, func() error {
			var err error
			docData, _, docCh, err = conn.GetW(r.store.DocPath(uid))
			if errors.Is(err, zk.ErrNoNode) {
				docGone, err = true, nil
			}
			if err != nil || !follow {
				return err
			}
			_, _, logCh, err = conn.ExistsW(r.store.LogPath(uid))
			return err
		})
		var tail []jobs.LogLine
		if err == nil {
			tail, err = r.store.Logs(ctx, uid)
		}
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("history: reading the log of %s: %w", id, err)
		}
		var batch LogBatch
		if first {
			first = false
			batch.Lines = tail
			if r.es != nil {
				indexed, err := r.events(ctx, id)
				if err != nil {
					batch.HistoryErr = err
				}
				batch.Lines = mergeLines(indexed, tail)
			}
			if docGone && len(batch.Lines) == 0 {
				// No log and no document: is there such a job at all?
				if _, err := r.get(ctx, id, uid); err != nil {
					return err
				}
			}
		} else {
			batch.Lines = newLines(shown, tail)
		}
		shown = tail
		if len(batch.Lines) > 0 || batch.HistoryErr != nil {
			if err := emit(batch); err != nil {
				return err
			}
		}
		final := docGone
		if !docGone {
			// A document that is not valid will not change for the better:
			// it ends the wait, as a final one does.
			if j, err := jobs.Decode(uid, docData); err != nil || j.State.Final() {
				final = true
			}
		}
		if !follow || final {
			return nil
		}
		select {
		case <-docCh:
		case <-logCh:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// events returns a job's events from the job-events index, oldest first,
// as log lines: log events as written, the others described.
func (r *Reader) events(ctx context.Context, id string) ([]jobs.LogLine, error) {
	var out []jobs.LogLine
	var after index.EventCursor
	for {
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		evs, next, err := r.es.JobEventsPage(qctx, id, after, r.window)
		cancel()
		if err != nil {
			return out, err
		}
		for _, ev := range evs {
			if ev.Type == index.EventAction && ev.Message == "" {
				continue // an event without text (a host starting a task) is not a log line
			}
			out = append(out, EventLine(ev))
		}
		if len(evs) < r.window {
			return out, nil
		}
		after = next
	}
}

// EventLine renders an indexed event as a log line: a log event as it was
// written, the others described ("state RUNNING (executor x, attempt 1)",
// "progress 40%", "status: …").
func EventLine(ev index.Event) jobs.LogLine {
	l := jobs.LogLine{ID: ev.Line, Time: ev.Time, Level: ev.Level, Message: ev.Message, Fields: ev.Fields}
	if l.Level == "" {
		l.Level = "info"
	}
	switch ev.Type {
	case index.EventLog, index.EventAction:
	case index.EventState:
		l.Message = "state " + string(ev.State)
		if ev.Executor != "" {
			l.Message += fmt.Sprintf(" (executor %s, attempt %d)", ev.Executor, ev.Attempt)
		}
		if ev.Message != "" {
			l.Message += ": " + ev.Message
		}
	case index.EventProgress:
		l.Message = fmt.Sprintf("progress %d%%", ev.Progress)
	case index.EventStatus:
		l.Message = "status: " + ev.Message
	default:
		l.Message = ev.Type + ": " + ev.Message
	}
	return l
}

// newLines returns the lines of cur that were not in prev. The tail only
// grows at its end and loses lines at its start, so prev minus some first
// lines is a prefix of cur.
func newLines(prev, cur []jobs.LogLine) []jobs.LogLine {
	for d := 0; d <= len(prev); d++ {
		rest := prev[d:]
		if len(rest) > len(cur) {
			continue
		}
		match := true
		for i := range rest {
			if !sameLine(rest[i], cur[i]) {
				match = false
				break
			}
		}
		if match {
			return cur[len(rest):]
		}
	}
	return cur
}

func sameLine(a, b jobs.LogLine) bool {
	if a.ID != "" || b.ID != "" {
		return a.ID == b.ID
	}
	return a.Time.Equal(b.Time) && a.Level == b.Level && a.Message == b.Message
}

// mergeLines joins the indexed log with the ZooKeeper tail, in time order,
// each line once. Lines are the same by their identity (LogLine.ID), not
// by their time: a history may keep a time with less precision, or have
// been written by a version that stamped lines late. Lines without an
// identity (written before lines had one) are the same by time, level and
// message.
func mergeLines(indexed, tail []jobs.LogLine) []jobs.LogLine {
	type key struct {
		t          int64
		level, msg string
	}
	seenID := map[string]bool{}
	seen := map[key]bool{}
	var out []jobs.LogLine
	for _, ls := range [][]jobs.LogLine{tail, indexed} { // ZooKeeper's copy first: it is never behind
		for _, l := range ls {
			k := key{l.Time.UnixNano(), l.Level, l.Message}
			if l.ID != "" {
				if seenID[l.ID] {
					continue
				}
				seenID[l.ID] = true
			} else if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	return out
}
