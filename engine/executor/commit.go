package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// How the executor writes: every change is bounded before it is sent (the
// job store trims documents, zkconn refuses a request over its budget), a
// connection failure is retried with a back-off until the write goes
// through or the executor stops at once, and a write that ZooKeeper answers
// by closing the connection is not sent again as it was.
//
// ZooKeeper drops the connection of a request longer than its
// jute.maxbuffer; a server set below the default refuses writes within the
// engine's budget that way. A large write (suspectBytes or more) whose
// connection closed twice, with the server answering at once after each
// time, is taken as refused for its size: the store's document limit is
// lowered below it and the caller plans the change again, trimmed.

const (
	// suspectBytes is the least length of a request taken as refused for
	// its size when its connection closes: no server is set to refuse the
	// 64 KiB log tail of a job.
	suspectBytes = 64 << 10
	// dropsRefused is how many closed connections, with the server
	// answering after each, make a write refused.
	dropsRefused = 2
	// maxReplans bounds how often a final write is planned again after a
	// refusal before the job is quarantined.
	maxReplans = 4
)

// LogQuarantined is the message of the one ERROR line logged for each
// object the executor quarantines (with its kind, path, entry and reason).
const LogQuarantined = "invalid object quarantined; its queue entry is consumed"

// errRefused is wrapped by the error of a write ZooKeeper refused by
// closing the connection: plan it again (the store's document limit was
// lowered), do not send it again.
var errRefused = errors.New("ZooKeeper closed the connection on each attempt of this write")

// commit commits c under h. Connection failures are retried with a
// back-off until the write goes through, fails for good, or the executor
// stops at once (its error then wraps errShutdown). A write refused for
// its size returns errRefused.
func (e *Executor) commit(log *zap.Logger, h jobs.Hold, c *jobs.Change, what string) error {
	bo := backoff.New(200*time.Millisecond, e.cfg.MaxBackoff)
	drops := 0
	for tries := 0; ; tries++ {
		var err error
		if tries == 0 && c.Size() <= maxBatchedChange {
			// The first try shares a transaction with other workers'
			// writes (batch.go); retries go alone.
			err = e.committer.commit(h, c)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
			err = c.Commit(ctx, h)
			cancel()
		}
		if err == nil || !zkconn.Transient(err) {
			return err
		}
		if e.dropped(c, err) {
			if drops++; drops >= dropsRefused {
				return e.refuse(c, err)
			}
		}
		if e.jobsCtx.Err() != nil {
			return fmt.Errorf("%w: %s failed: %w", errShutdown, what, err)
		}
		log.Warn(what+" failed; retrying", zap.Error(err), zap.Int("failures", bo.Failures()+1))
		bo.Wait(e.jobsCtx)
	}
}

// dropped reports whether err is the connection closing on the large
// write c while the server answers: possibly a refusal for its size.
func (e *Executor) dropped(c *jobs.Change, err error) bool {
	if c.Size() < suspectBytes || !errors.Is(err, zk.ErrConnectionClosed) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(e.cfg.SessionTimeout/3, time.Second))
	defer cancel()
	return zkconn.Do(ctx, func() error { _, _, err := e.conn.Exists(e.memberPath()); return err }) == nil
}

// refuse lowers the store's document limit below the refused write c and
// returns its error.
func (e *Executor) refuse(c *jobs.Change, err error) error {
	size := c.Size()
	limit := e.store.LimitDocuments(size * 3 / 8)
	return fmt.Errorf("%w (a request of %d bytes; job documents are now bounded to %d bytes): %w", errRefused, size, limit, err)
}

// settle plans and commits a job's final write. A write refused for its
// size is planned again, trimmed; a document that cannot be written within
// the limits even trimmed fails the job with a message saying so; a job
// whose failure cannot be written either is quarantined.
func (e *Executor) settle(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, plan func() (*jobs.Change, error)) {
	failing := false
	for replans := 0; ; replans++ {
		c, err := plan()
		if err == nil {
			err = e.commitOutcome(log, h, c)
		}
		switch {
		case err == nil:
			return
		case errors.Is(err, errRefused) && replans < maxReplans:
			log.Warn("ZooKeeper refused the job's final write; writing it again, trimmed", zap.Error(err))
			continue
		case (errors.Is(err, zkconn.ErrTooLarge) || errors.Is(err, errRefused)) && !failing:
			failing = true
			msg := "the job's outcome does not fit the limits of a job document: " + err.Error()
			cancel := e.cancelRequested(j.UUID())
			plan = func() (*jobs.Change, error) {
				return e.store.Finish(j, ver, e.cfg.Name, jobs.Outcome{State: jobs.Failed, Message: msg, CancelRequested: cancel})
			}
			continue
		}
		e.quarantineJob(log, h, j, ver, err)
		return
	}
}

// commitOutcome commits a final change, retrying connection failures (see
// commit). It handles every error but a refusal (errRefused) or a write
// too large (zkconn.ErrTooLarge), which it returns for settle.
func (e *Executor) commitOutcome(log *zap.Logger, h jobs.Hold, c *jobs.Change) error {
	j := c.Job()
	err := e.commit(log, h, c, "writing the outcome")
	switch {
	case err == nil:
		fields := []zap.Field{zap.String("state", string(j.State)), zap.Int("attempt", j.Attempt)}
		if j.Duration != nil {
			fields = append(fields, zap.Float64("duration", *j.Duration))
		}
		if j.StatusMessage != "" {
			fields = append(fields, zap.String("message", j.StatusMessage))
		}
		if j.Trimmed != "" {
			fields = append(fields, zap.String("trimmed", j.Trimmed))
		}
		log.Info(MsgJobFinished, fields...)
		e.cfg.Metrics.finished(j)
	case errors.Is(err, errRefused), errors.Is(err, zkconn.ErrTooLarge):
		return err
	case errors.Is(err, queue.ErrLockLost):
		log.Warn("lost the job's entry before writing its outcome (session ended); the outcome is discarded and the job runs elsewhere", zap.String("state", string(j.State)))
	case errors.Is(err, jobs.ErrConflict):
		// The document changed under us: only a concurrent cancel of a
		// QUEUED job racing our take does that. A final state wins.
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
		cur, _, gerr := e.store.Get(ctx, j.ID)
		cancel()
		if gerr == nil && cur.State.Final() {
			log.Info("job was finished elsewhere meanwhile; entry consumed", zap.String("state", string(cur.State)))
			e.consume(log, h)
			return nil
		}
		log.Warn("the job document changed unexpectedly; outcome not written, entry released", zap.Error(err))
		e.release(log, h)
	default:
		log.Error("writing the outcome failed; entry released", zap.Error(err))
		e.release(log, h)
	}
	return nil
}

// quarantine moves a bad object aside, consuming its entry in the same
// transaction, with one ERROR line and a count in the metrics. stepRetry
// means the document changed since it was read.
func (e *Executor) quarantine(log *zap.Logger, h jobs.Hold, bad *jobs.BadDocumentError) step {
	bad.Entry = h.Item.Name
	c, err := e.store.Quarantine(bad, e.cfg.Name)
	if err == nil {
		err = e.commit(log, h, c, "quarantining")
	}
	switch {
	case err == nil:
		log.Error(LogQuarantined, zap.String("kind", bad.Kind), zap.String("path", bad.Path),
			zap.String("entry", bad.Entry), zap.String("reason", bad.Reason), zap.String("quarantine", e.store.QuarantinePath()))
		e.cfg.Metrics.quarantined(bad.Kind)
		return stepDone
	case errors.Is(err, jobs.ErrConflict):
		return stepRetry
	case errors.Is(err, queue.ErrLockLost):
		return stepDone
	}
	log.Warn("quarantining an invalid object failed; entry released", zap.String("reason", bad.Reason), zap.Error(err))
	e.release(log, h)
	return stepBackoff
}

// quarantineJob quarantines a valid job whose document cannot be written:
// one too large for the limits even trimmed. (The writes of a job created
// by the engine always fit; this one came from elsewhere.)
func (e *Executor) quarantineJob(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, why error) {
	data, _ := json.Marshal(j)
	bad := &jobs.BadDocumentError{Kind: jobs.KindDocument, UUID: j.UUID(), Path: e.store.DocPath(j.UUID()), Version: ver, Data: data,
		Reason: "its document cannot be written within the limits: " + why.Error()}
	if e.quarantine(log, h, bad) == stepRetry {
		e.release(log, h) // it changed meanwhile: read again by whoever takes it
	}
}
