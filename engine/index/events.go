package index

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jobengine/jobengine/internal/backoff"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
)

// Event types.
const (
	EventState    = "state"    // the job changed state (one per document version)
	EventProgress = "progress" // the action reported progress
	EventStatus   = "status"   // the action set its status message
	EventLog      = "log"      // the action wrote a log line
	// EventAction is a structured event of an action (action.Event): a
	// play, a task or a host's result of an Ansible run. Its message is a
	// line of the job's log.
	EventAction = "action"
)

// MaxEventMessage bounds an event's message, in bytes; longer messages are
// cut on a UTF-8 boundary and end with "…".
const MaxEventMessage = 16 << 10

// Event is one entry of a job's history in the events index.
type Event struct {
	// ID is the document id. State events use "<uuid>-state-<version>", so
	// indexing one twice keeps one copy; other events get a random one.
	ID string `json:"id"`
	// Job is the job id, "job/<uuid>".
	Job string `json:"job"`
	// Line is the identity of the log line this event is in the job's log
	// (jobs.LogLine.ID), for log lines and action events with a message:
	// readers show a line kept both in ZooKeeper and here once.
	Line string    `json:"line,omitempty"`
	Time time.Time `json:"time"`
	// Type is one of EventState, EventProgress, EventStatus, EventLog.
	Type string `json:"type"`
	// Level is the level of a log line ("debug", "info", "warn", "error").
	Level   string `json:"level,omitempty"`
	Message string `json:"message,omitempty"`
	// Fields are a log line's structured fields, kept with the event
	// (not indexed one by one: the mapping is not dynamic).
	Fields   []action.Field `json:"fields,omitempty"`
	State    jobs.State     `json:"state,omitempty"`
	Progress int            `json:"progress,omitempty"`
	Executor string         `json:"executor,omitempty"`
	Attempt  int            `json:"attempt,omitempty"`

	// The fields of an EventAction event; see action.Event.
	Counter    int     `json:"counter,omitempty"`
	Name       string  `json:"event,omitempty"`
	UUID       string  `json:"uuid,omitempty"`
	ParentUUID string  `json:"parent-uuid,omitempty"`
	Playbook   string  `json:"playbook,omitempty"`
	Play       string  `json:"play,omitempty"`
	Task       string  `json:"task,omitempty"`
	TaskAction string  `json:"task-action,omitempty"`
	Host       string  `json:"host,omitempty"`
	Duration   float64 `json:"duration,omitempty"` // seconds
	Changed    bool    `json:"changed,omitempty"`
}

// ActionEvent returns the index event of an action's structured event.
// Its id is derived from the job, the attempt and the counter, so indexing
// it twice keeps one copy.
func ActionEvent(jobID string, attempt int, ev action.Event) Event {
	e := Event{
		Job: jobID, Time: ev.Time, Type: EventAction, Level: ev.Level, Message: ev.Message, Attempt: attempt,
		Counter: ev.Counter, Name: ev.Name, UUID: ev.UUID, ParentUUID: ev.ParentUUID,
		Playbook: ev.Playbook, Play: ev.Play, Task: ev.Task, TaskAction: ev.TaskAction, Host: ev.Host,
		Duration: ev.Duration.Seconds(), Changed: ev.Changed,
	}
	if ev.Counter > 0 {
		e.ID = strings.TrimPrefix(jobID, "job/") + "-" + EventAction + "-" + strconv.Itoa(max(attempt, 1)) + "-" + strconv.Itoa(ev.Counter)
	}
	return e
}

// StateEventID is the id of the state event of a job document version.
func StateEventID(uid string, version int64) string {
	return uid + "-" + EventState + "-" + strconv.FormatInt(version, 10)
}

// StateEvent returns the state event of a job document version.
func StateEvent(j *jobs.Job) Event {
	t := j.TimeOfStatusChange
	if t.IsZero() {
		t = j.Updated
	}
	return Event{
		ID: StateEventID(j.UUID(), j.Version), Job: j.ID, Time: t, Type: EventState,
		Level: "info", Message: j.StatusMessage, State: j.State, Progress: j.Progress,
		Executor: j.Executor, Attempt: j.Attempt,
	}
}

// fill gives an event what indexing needs: a time, an id and a bounded
// message.
func (e *Event) fill(now time.Time) {
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.ID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		e.ID = strings.TrimPrefix(e.Job, "job/") + "-" + e.Type + "-" + hex.EncodeToString(b)
	}
	if len(e.Message) > MaxEventMessage {
		const ell = "…"
		cut := MaxEventMessage - len(ell)
		for cut > 0 && !utf8.RuneStart(e.Message[cut]) {
			cut--
		}
		e.Message = e.Message[:cut] + ell
	}
}

// SinkOptions configure an EventSink. Zero values take the defaults.
type SinkOptions struct {
	// MaxBuffered bounds the events held while Elasticsearch is slow or
	// down (default 10,000; one batch in flight comes on top); beyond it
	// the oldest are dropped and counted.
	MaxBuffered int
	// BatchSize is the number of events per bulk request (default 500).
	BatchSize int
	// FlushInterval is how long an event may wait for a batch to fill
	// (default 1s).
	FlushInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed request
	// (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
}

// SinkStats counts what an EventSink did with its events.
type SinkStats struct {
	Sent     uint64 // acknowledged by Elasticsearch
	Dropped  uint64 // dropped, oldest first, because the buffer was full or the sink closed
	Rejected uint64 // refused by Elasticsearch as invalid
	Buffered int    // waiting now
}

// EventSink sends live job events to Elasticsearch in the background. It
// is best effort: Emit never blocks, memory is bounded, and while
// Elasticsearch is down or refuses the index templates the events wait in
// memory; when that is full the oldest are dropped, counted and logged at
// Error. State changes do not depend on it: they go through the outbox. It
// is a jobs.Observer: attach it to a job store (StoreConfig.Observers) and
// it indexes the log lines and progress reports the store records.
type EventSink struct {
	c    *Client
	log  *zap.Logger
	opts SinkOptions

	mu     sync.Mutex
	buf    ring
	closed bool
	stats  SinkStats
	// dropping is set from the first event dropped for a full buffer
	// until a batch goes through: one log line per series of drops.
	dropping bool
	wake     chan struct{}
	done     chan struct{}
	stopCtx  context.Context
	stop     context.CancelFunc
}

// NewEventSink starts a sink that sends to c.
func NewEventSink(c *Client, log *zap.Logger, opts SinkOptions) *EventSink {
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 10_000
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	s := &EventSink{
		c: c, log: log.Named("events"), opts: opts,
		buf:  ring{max: opts.MaxBuffered},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	go s.run()
	return s
}

// The sink observes the executors' job stores: log lines and progress
// reports become events of the job-events index. State changes do not:
// they are indexed from the outbox, exactly once per document version.
var _ jobs.Observer = (*EventSink)(nil)

// OnState ignores state changes: the index pump indexes each document
// version's state event from the outbox, which a crash cannot lose.
func (s *EventSink) OnState(jobs.StateEvent) {}

// OnLog queues a log line, at the time the action logged it, under the
// line's identity (so a line sent twice is kept once).
func (s *EventSink) OnLog(ev jobs.LogEvent) {
	s.Emit(Event{ID: ev.Line.ID, Line: ev.Line.ID, Job: ev.Job, Time: ev.Line.Time, Type: EventLog, Level: ev.Line.Level, Message: ev.Line.Message, Fields: ev.Line.Fields})
}

// The sink indexes actions' structured events with their fields.
var _ jobs.ActionEventObserver = (*EventSink)(nil)

// OnActionEvent queues an action's structured event (an Ansible job
// event), at the time it happened.
func (s *EventSink) OnActionEvent(ev jobs.ActionEvent) {
	e := ActionEvent(ev.Job, ev.Attempt, ev.Event)
	if e.Message != "" {
		e.Line = ev.Line
	}
	s.Emit(e)
}

// OnProgress queues a progress report, at the time it was written.
func (s *EventSink) OnProgress(ev jobs.ProgressEvent) {
	j := ev.Job
	s.Emit(Event{
		Job: j.ID, Time: j.Updated, Type: EventProgress, Level: "info", Message: j.StatusMessage,
		Progress: j.Progress, Executor: j.Executor, Attempt: j.Attempt,
	})
}

// Emit queues an event. It never blocks; after Close it drops the event.
func (s *EventSink) Emit(ev Event) {
	ev.fill(time.Now())
	s.mu.Lock()
	if s.closed {
		s.stats.Dropped++
		s.mu.Unlock()
		return
	}
	first := false
	if s.buf.push(ev) {
		s.stats.Dropped++
		first, s.dropping = !s.dropping, true
	}
	n := s.buf.len()
	s.mu.Unlock()
	if first {
		s.log.Error("the job event buffer is full while Elasticsearch does not take events; dropping the oldest (counted in the sink's stats)",
			zap.Int("max_buffered", s.opts.MaxBuffered))
	}
	if n == 1 || n >= s.opts.BatchSize {
		s.signal()
	}
}

func (s *EventSink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the sink's counters.
func (s *EventSink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Buffered = s.buf.len()
	return st
}

// Close stops accepting events and sends what is buffered, until ctx ends;
// it returns an error wrapping ErrUnavailable when events were left unsent.
func (s *EventSink) Close(ctx context.Context) error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.signal()
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		s.stop()
		<-s.done
	}
	s.stop()
	s.mu.Lock()
	left := s.buf.len()
	s.buf.clear()
	s.stats.Dropped += uint64(left)
	s.mu.Unlock()
	if left > 0 {
		return fmt.Errorf("%w: %d job events not indexed when the event sink closed", ErrUnavailable, left)
	}
	return nil
}

func (s *EventSink) run() {
	defer close(s.done)
	bo := backoff.New(s.opts.MinBackoff, s.opts.MaxBackoff)
	var deadline time.Time // when the batch being filled must go
	for {
		s.mu.Lock()
		n, closing := s.buf.len(), s.closed
		s.mu.Unlock()
		if n == 0 {
			if closing {
				return
			}
			deadline = time.Time{}
			select {
			case <-s.stopCtx.Done():
				return
			case <-s.wake:
			}
			continue
		}
		if !closing && n < s.opts.BatchSize {
			if deadline.IsZero() {
				deadline = time.Now().Add(s.opts.FlushInterval)
			}
			if d := time.Until(deadline); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-s.stopCtx.Done():
					t.Stop()
					return
				case <-s.wake:
				case <-t.C:
				}
				t.Stop()
				continue
			}
		}
		deadline = time.Time{}
		s.mu.Lock()
		batch := s.buf.take(s.opts.BatchSize)
		s.mu.Unlock()
		if !s.send(batch, bo) {
			return
		}
	}
}

// send indexes a batch and puts the retryable failures back at the front;
// it returns false when the sink must stop.
func (s *EventSink) send(batch []Event, bo *backoff.Backoff) bool {
	ops := make([]bulkOp, len(batch))
	for i, ev := range batch {
		body, _ := json.Marshal(ev) // an Event always encodes
		ops[i] = bulkOp{index: s.c.EventsIndex(), id: ev.ID, body: body}
	}
	if err := s.c.ready(s.stopCtx); err != nil {
		// Nothing was sent: no template, no index with the engine's
		// mappings. The events wait in memory (bounded, oldest dropped
		// and counted) until the templates go in; a refusal needs an
		// operator, an outage only time.
		s.mu.Lock()
		s.stats.Dropped += uint64(s.buf.unshift(batch))
		n := s.buf.len()
		s.mu.Unlock()
		switch {
		case bo.Failures() > 0:
			s.log.Debug("still cannot install the index templates", zap.Int("events", n), zap.Error(err))
		case Retryable(err):
			s.log.Warn("cannot index job events; keeping them in memory and retrying", zap.Int("events", n), zap.Error(err))
		default:
			s.log.Error("elasticsearch refused the index templates; job events are kept in memory and sent once they are installed (fix the cause)",
				zap.Int("events", n), zap.Int("max_buffered", s.opts.MaxBuffered), zap.Error(err))
		}
		return bo.Wait(s.stopCtx)
	}
	results, err := s.c.bulk(s.stopCtx, ops)
	var retry []Event
	var sent, rejected uint64
	var firstRejected error
	for i, r := range results {
		switch {
		case r.Err == nil:
			sent++
		case Retryable(r.Err) || errors.Is(r.Err, ErrAuth):
			retry = append(retry, batch[i])
		default:
			rejected++
			if firstRejected == nil {
				firstRejected = r.Err
			}
		}
	}
	s.mu.Lock()
	if sent > 0 {
		s.dropping = false
	}
	s.stats.Sent += sent
	s.stats.Rejected += rejected
	s.stats.Dropped += uint64(s.buf.unshift(retry))
	s.mu.Unlock()
	if firstRejected != nil {
		s.log.Error("elasticsearch refused job events as invalid; they are dropped",
			zap.Uint64("count", rejected), zap.Error(firstRejected))
	}
	if len(retry) == 0 {
		if bo.Failures() > 0 {
			s.log.Info("job events are indexed again", zap.Int("failed_attempts", bo.Failures()))
		}
		bo.Reset()
		return true
	}
	if bo.Failures() == 0 {
		s.log.Warn("cannot index job events; keeping them in memory and retrying", zap.Int("events", len(retry)), zap.Error(err))
	} else {
		s.log.Debug("still cannot index job events", zap.Int("events", len(retry)), zap.Error(err))
	}
	return bo.Wait(s.stopCtx)
}

// ring is a FIFO of events bounded by max; it grows as needed.
type ring struct {
	max        int
	items      []Event
	head, size int
}

func (r *ring) len() int { return r.size }

// push appends ev, dropping the oldest when full; it reports a drop.
func (r *ring) push(ev Event) bool {
	dropped := false
	if r.size == r.max {
		r.head = (r.head + 1) % len(r.items)
		r.size--
		dropped = true
	}
	if r.size == len(r.items) {
		r.grow()
	}
	r.items[(r.head+r.size)%len(r.items)] = ev
	r.size++
	return dropped
}

func (r *ring) grow() {
	n := min(max(2*len(r.items), 64), r.max)
	items := make([]Event, n)
	for i := 0; i < r.size; i++ {
		items[i] = r.items[(r.head+i)%len(r.items)]
	}
	r.items, r.head = items, 0
}

// take removes and returns up to n events from the front.
func (r *ring) take(n int) []Event {
	n = min(n, r.size)
	out := make([]Event, n)
	for i := range out {
		idx := (r.head + i) % len(r.items)
		out[i] = r.items[idx]
		r.items[idx] = Event{}
	}
	if n > 0 {
		r.head = (r.head + n) % len(r.items)
	}
	r.size -= n
	return out
}

// unshift puts evs back at the front, in order, keeping the newest when
// they do not all fit; it returns the number dropped.
func (r *ring) unshift(evs []Event) int {
	room := r.max - r.size
	drop := 0
	if len(evs) > room {
		drop = len(evs) - room
		evs = evs[drop:]
	}
	for len(r.items) < r.size+len(evs) {
		r.grow()
	}
	for i := len(evs) - 1; i >= 0; i-- {
		r.head = (r.head - 1 + len(r.items)) % len(r.items)
		r.items[r.head] = evs[i]
		r.size++
	}
	return drop
}

func (r *ring) clear() { *r = ring{max: r.max} }
