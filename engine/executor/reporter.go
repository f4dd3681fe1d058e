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
	"github.com/jobengine/jobengine/engine/zkconn"
)

// reporter collects an action's reports and has them recorded at a bounded
// rate: progress, status message and affected resources into the job
// document (jobs.Store.RecordProgress, committed under the worker's hold,
// so a stale executor never writes), log lines and the messages of
// structured events into the job's log tail. The store tells its observers
// of all of them.
type reporter struct {
	e   *Executor
	log *zap.Logger
	h   jobs.Hold

	mu       sync.Mutex
	job      *jobs.Job // as last written
	ver      int32
	dirty    bool
	progress int
	status   string
	affected []string // reported, not written yet
	lines    []jobs.LogEntry
	// pending is a report whose commit failed with an unknown outcome: it
	// is committed again rather than planned anew, which finds out whether
	// it went through. pendingN counts the affected resources it carries.
	pending  *jobs.Change
	pendingN int
	// drops counts the closed connections of the pending report (see
	// commit.go): a report refused for its size is planned again, trimmed.
	drops   int
	stopped bool

	// ctx ends when the session is lost while the job runs: the outcome
	// is discarded then, and no report is worth waiting for ZooKeeper.
	ctx  context.Context
	stop chan struct{}
	done chan struct{}
}

func newReporter(ctx context.Context, e *Executor, log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32) *reporter {
	return &reporter{e: e, log: log, h: h, job: j, ver: ver, progress: j.Progress, ctx: ctx, stop: make(chan struct{}), done: make(chan struct{})}
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
		// A report whose outcome is unknown gets two more chances: the
		// final write compares with the version it leaves. An executor
		// stopping at once requeues the job: no report is worth the wait.
		// A report refused for its size is planned again: one more.
		for i := 0; i < 4 && (i == 0 || r.unwritten()) && r.e.jobsCtx.Err() == nil && r.ctx.Err() == nil; i++ {
			r.flush()
		}
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
	// Bounded between flushes: a job keeps at most MaxAffected anyway.
	if room := 2*jobs.MaxAffected - len(r.affected); room > 0 {
		r.affected = append(r.affected, hrefs[:min(room, len(hrefs))]...)
	}
	r.dirty = true
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
		r.lines = append(r.lines, jobs.LogEntry{Line: jobs.LogLine{Time: time.Now().UTC(), Level: level, Message: jobs.TruncateStatus(msg)}})
	}
	r.mu.Unlock()
	r.log.Debug("action log", zap.String("level", level), zap.String("line", msg))
}

// LogFields records a log line with structured fields: in the job's log
// as data beside the message, in the executor's log as fields. At most
// maxLineFields fields are kept, each value truncated as a status message.
func (r *reporter) LogFields(level, msg string, fields []action.Field) {
	level = logLevel(level)
	kept := make([]action.Field, 0, min(len(fields), maxLineFields))
	zf := make([]zap.Field, 0, cap(kept))
	for _, f := range fields[:min(len(fields), maxLineFields)] {
		f.Value = jobs.TruncateStatus(f.Value)
		kept = append(kept, f)
		zf = append(zf, zap.String(f.Key, f.Value))
	}
	r.mu.Lock()
	if len(r.lines) < 10_000 { // bounded between flushes
		r.lines = append(r.lines, jobs.LogEntry{Line: jobs.LogLine{Time: time.Now().UTC(), Level: level, Message: jobs.TruncateStatus(msg), Fields: kept}})
	}
	r.mu.Unlock()
	r.log.Debug("action log", zap.String("level", level), zap.String("line", msg), zap.Dict("fields", zf...))
}

// maxLineFields bounds the fields of one line of a job's log.
const maxLineFields = 64

// Event records a structured event: its message goes to the job's log like
// a log line, the event itself to the store's observers of action events
// (the others are told of its message as a log line).
func (r *reporter) Event(ev action.Event) {
	ev.Level = logLevel(ev.Level)
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	r.mu.Lock()
	if len(r.lines) < 10_000 {
		r.lines = append(r.lines, jobs.LogEntry{Line: jobs.LogLine{Time: ev.Time, Level: ev.Level, Message: jobs.TruncateStatus(ev.Message)}, Event: &ev})
	}
	r.mu.Unlock()
}

// unwritten reports whether a report is left to write: one whose outcome
// is unknown, or changes not planned yet.
func (r *reporter) unwritten() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending != nil || r.dirty
}

func (r *reporter) flush() {
	r.mu.Lock()
	lines := r.lines
	r.lines = nil
	c, n := r.pending, r.pendingN
	if c == nil && r.dirty {
		var err error
		n = len(r.affected)
		c, err = r.e.store.RecordProgress(r.job, r.ver, jobs.Progress{Percent: r.progress, Status: r.status, Affected: r.affected[:n:n]})
		if err != nil {
			r.log.Debug("progress not recorded", zap.Error(err))
		}
		r.dirty = false
	}
	r.mu.Unlock()

	if len(lines) > 0 {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		if err := r.e.store.AppendEntries(ctx, r.job.UUID(), r.job.Attempt, lines); err != nil {
			r.log.Debug("writing the job's log tail failed", zap.Error(err))
		}
		cancel()
	}
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.e.cfg.SessionTimeout)
	err := c.Commit(ctx, r.h)
	cancel()
	dropped := err != nil && zkconn.Transient(err) && r.e.dropped(c, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending, r.pendingN = nil, 0
	if dropped {
		r.drops++
	}
	switch {
	case err == nil:
		r.job, r.ver = c.Job(), c.Ver()
		r.affected = append([]string(nil), r.affected[n:]...)
		r.drops = 0
	case errors.Is(err, queue.ErrLockLost):
		r.log.Debug("progress not written: the entry is no longer held")
	case r.drops >= dropsRefused:
		// Not sent again as it was: planned anew from what is not
		// written yet, trimmed to the lowered limit.
		r.drops, r.dirty = 0, true
		r.log.Warn("ZooKeeper refused a progress report; the next one is trimmed", zap.Error(r.e.refuse(c, err)))
	case zkconn.Transient(err):
		r.pending, r.pendingN = c, n
		r.log.Debug("writing progress failed; trying the same report again", zap.Error(err))
	default:
		r.dirty = true // keep the changes for the next flush
		r.log.Debug("writing progress failed", zap.Error(err))
	}
}
