package remote

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
)

// EventSink indexes job events (index.EventSink).
type EventSink interface {
	Emit(ev index.Event)
}

// JobApplier applies a result stream to a job claimed for it: events become
// lines of the job's log (written once a second) and events of the
// job-events index; the outcome becomes the job's final state.
type JobApplier struct {
	store  *jobs.Store
	events EventSink
	log    *zap.Logger

	// hold is the claimed job's queue entry, held by this process.
	hold jobs.Hold

	mu    sync.Mutex
	job   *jobs.Job
	ver   int32
	lines []jobs.LogLine

	stop chan struct{}
	done chan struct{}
}

// ClaimJob claims a QUEUED job (jobs.Store.HoldJob: its queue entry held
// by this process's session, the job RUNNING) and starts applying to it.
// Every write to the job is fenced by that session: if this process dies,
// the job's lost-job policy applies to it, as to a job whose executor died.
func ClaimJob(ctx context.Context, store *jobs.Store, id, by string, events EventSink, log *zap.Logger) (*JobApplier, error) {
	if log == nil {
		log = zap.NewNop()
	}
	j, ver, hold, err := store.HoldJob(ctx, id, by)
	if err != nil {
		return nil, err
	}
	a := &JobApplier{store: store, events: events, log: log, job: j, ver: ver, hold: hold, stop: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a, nil
}

// Job returns the job as last written.
func (a *JobApplier) Job() *jobs.Job {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.job
}

func (a *JobApplier) loop() {
	defer close(a.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.flush()
		}
	}
}

func (a *JobApplier) flush() {
	a.mu.Lock()
	lines := a.lines
	a.lines = nil
	uid := a.job.UUID()
	a.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.store.AppendLog(ctx, uid, lines); err != nil {
		a.log.Warn("writing the job's log tail failed", zap.Error(err))
	}
}

func (a *JobApplier) line(l jobs.LogLine) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	l.Time, l.Message = l.Time.UTC(), jobs.TruncateStatus(l.Message)
	if len(a.lines) < 10_000 {
		a.lines = append(a.lines, l)
	}
}

// OnEvent applies an event. Its message goes to the log's tail as a line
// with the event's time and the identity the indexed event names, so a
// reader of both shows it once.
func (a *JobApplier) OnEvent(ev ansible.Event) {
	ae := ev.ActionEvent()
	e := index.ActionEvent(a.job.ID, a.job.Attempt, ae)
	if ae.Message != "" {
		e.Line = jobs.NewLineID(a.job.UUID())
		a.line(jobs.LogLine{ID: e.Line, Time: ae.Time, Level: ae.Level, Message: ae.Message})
	}
	if a.events != nil {
		a.events.Emit(e)
	}
}

// OnStatus applies a status: an explanation of a failure is a log line.
func (a *JobApplier) OnStatus(s Status) {
	if s.JobExplanation != "" && Final(s.Status) {
		a.line(jobs.LogLine{Level: "error", Message: s.Status + ": " + s.JobExplanation})
	}
}

// Finish writes the job's final state from the outcome: SUCCESS for a
// successful run, CANCELED for a canceled one, FAILED otherwise (a bad or
// cut stream with its explanation). It stops the applier.
func (a *JobApplier) Finish(ctx context.Context, out Outcome) (*jobs.Job, error) {
	close(a.stop)
	<-a.done
	a.flush()
	state := jobs.Failed
	msg := out.Explanation
	switch out.Status {
	case StatusSuccessful:
		state = jobs.Success
	case StatusCanceled:
		state = jobs.Canceled
		if msg == "" {
			msg = "canceled"
		}
	case StatusTimeout:
		if msg == "" {
			msg = "timed out"
		}
	case StatusError:
		msg = "the result stream was bad: " + msg
	}
	if msg == "" && state == jobs.Failed {
		msg = fmt.Sprintf("%s (rc %d)", out.Status, out.ReturnCode())
	}
	a.mu.Lock()
	j, ver := a.job, a.ver
	a.mu.Unlock()
	rc := out.ReturnCode()
	defer a.hold.Consumer.Close()
	c, err := a.store.Finish(j, ver, j.Executor, jobs.Outcome{State: state, ReturnCode: &rc, Message: msg, HostSummary: out.Hosts, Artifacts: out.Artifacts})
	if err == nil {
		err = c.Commit(ctx, a.hold)
	}
	if err != nil {
		return j, err
	}
	return c.Job(), nil
}
