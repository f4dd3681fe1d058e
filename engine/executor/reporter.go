package executor

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

// reporter collects an action's reports and writes them at a bounded rate:
// progress, status message and affected resources into the job document
// (a fenced compare-and-set, so a stale executor never writes), log lines
// into the job's log tail and the event sink.
type reporter struct {
	e   *Executor
	log *zap.Logger
	it  *queue.Item

	mu       sync.Mutex
	job      *jobs.Job
	ver      int32
	dirty    bool
	progress int
	status   string
	affected []string
	lines    []logEntry
	stopped  bool

	stop chan struct{}
	done chan struct{}
}

func newReporter(e *Executor, log *zap.Logger, it *queue.Item, j *jobs.Job, ver int32) *reporter {
	return &reporter{e: e, log: log, it: it, job: j, ver: ver, progress: j.Progress, stop: make(chan struct{}), done: make(chan struct{})}
}

// start begins the periodic flush; the returned function stops it, flushes
// what is left and returns the job document and version to write over.
func (r *reporter) start() func() (*jobs.Job, int32) {
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.e.cfg.ReportInterval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.flush()
			}
		}
	}()
	return func() (*jobs.Job, int32) {
		close(r.stop)
		<-r.done
		r.flush()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.stopped = true
		return r.job, r.ver
	}
}

func (r *reporter) Progress(p int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p = jobs.ClampProgress(p); p != r.progress {
		r.progress, r.dirty = p, true
	}
}

func (r *reporter) Status(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.dirty = jobs.TruncateStatus(msg), true
}

func (r *reporter) Affected(hrefs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.affected = append(r.affected, hrefs...)
	r.dirty = true
}

// logEntry is a log line of the action, or a structured event (whose
// message, when it has one, is also a line of the job's log).
type logEntry struct {
	line jobs.LogLine
	ev   *action.Event
}

func logLevel(level string) string {
	switch level {
	case "debug", "info", "warn", "error":
		return level
	}
	return "info"
}

func (r *reporter) Log(level, msg string) {
	level = logLevel(level)
	r.mu.Lock()
	if len(r.lines) < 10_000 { // bounded between flushes
		r.lines = append(r.lines, logEntry{line: jobs.LogLine{Time: time.Now().UTC(), Level: level, Message: jobs.TruncateStatus(msg)}})
	}
	r.mu.Unlock()
	r.log.Debug("action log", zap.String("level", level), zap.String("line", msg))
}

// Event records a structured event: its message goes to the job's log like
// a log line, the event itself to an event sink that indexes structured
// events (one that does not gets the message as a log line).
func (r *reporter) Event(ev action.Event) {
	ev.Level = logLevel(ev.Level)
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	r.mu.Lock()
	if len(r.lines) < 10_000 {
		r.lines = append(r.lines, logEntry{line: jobs.LogLine{Time: ev.Time, Level: ev.Level, Message: jobs.TruncateStatus(ev.Message)}, ev: &ev})
	}
	r.mu.Unlock()
}

func (r *reporter) flush() {
	r.mu.Lock()
	lines := r.lines
	r.lines = nil
	dirty := r.dirty
	var j jobs.Job
	ver := r.ver
	if dirty {
		j = *r.job
		j.Progress = r.progress
		if r.status != "" {
			j.StatusMessage = r.status
		}
		seen := map[string]bool{}
		for _, a := range j.AffectedResources {
			seen[a.Href] = true
		}
		for _, h := range r.affected {
			if !seen[h] && len(j.AffectedResources) < jobs.MaxAffected {
				j.AffectedResources = append(j.AffectedResources, jobs.Resource{Href: h})
				seen[h] = true
			}
		}
		r.affected = nil
		r.dirty = false
	}
	r.mu.Unlock()

	uid := r.job.UUID()
	if len(lines) > 0 {
		tail := make([]jobs.LogLine, 0, len(lines))
		for _, l := range lines {
			if l.line.Message != "" || l.ev == nil {
				tail = append(tail, l.line)
			}
		}
		if len(tail) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := r.e.store.AppendLog(ctx, uid, tail); err != nil {
				r.log.Debug("writing the job's log tail failed", zap.Error(err))
			}
			cancel()
		}
		if r.e.cfg.Events != nil {
			structured, _ := r.e.cfg.Events.(StructuredEvents)
			for _, l := range lines {
				switch {
				case l.ev != nil && structured != nil:
					structured.ActionEvent(r.job.ID, r.job.Attempt, *l.ev)
				case l.line.Message != "" || l.ev == nil:
					r.e.cfg.Events.Event(r.job.ID, "log", l.line.Level, l.line.Message, nil)
				}
			}
		}
	}
	if !dirty {
		return
	}
	ops, err := r.e.store.WriteOps(&j, ver)
	if err != nil {
		return
	}
	err = r.e.multi(append([]interface{}{r.it.FenceOp()}, ops...))
	var me *multiErr
	switch {
	case err == nil:
		r.mu.Lock()
		r.job, r.ver = &j, ver+1
		r.mu.Unlock()
		if r.e.cfg.Events != nil {
			r.e.cfg.Events.Event(j.ID, "progress", "info", j.StatusMessage, map[string]any{"progress": j.Progress})
		}
	case errors.As(err, &me) && me.index == 0:
		r.log.Debug("progress not written: the entry is no longer held")
	default:
		// Keep the changes for the next flush.
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		r.log.Debug("writing progress failed", zap.Error(err))
	}
}
