package systemjob

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// DefaultTimeout is the run time limit of a system job.
const DefaultTimeout = time.Hour

// cleanupBatch is how many jobs cleanup_jobs deletes between two checks
// that it has not been canceled.
const cleanupBatch = 100

// ExpiredPurger deletes expired API tokens and login sessions
// (access.Store).
type ExpiredPurger interface {
	PurgeExpired(ctx context.Context) (int, error)
}

// Options are what system jobs run over: the executor's ZooKeeper
// session and stores.
type Options struct {
	Conn   *zkconn.Conn
	Jobs   *jobs.Store
	Access ExpiredPurger
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *zap.Logger
}

// Definition returns the system_job action. Without a connection and a
// job store (the built-in one registered at init), it fails every job
// saying it must run on an executor, which replaces it with one that can.
func Definition(opts Options) action.Definition {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return action.Definition{
		Name: Action,
		Description: "the cluster's housekeeping, one at a time (system key, impact 5): payload {\"kind\": \"cleanup_jobs\", \"days\": 7} " +
			"or {\"kind\": \"cleanup_tokens\"}; launch with `jobengine system-job launch`",
		DefaultTimeout: DefaultTimeout,
		Runner:         &runner{opts: opts},
	}
}

type runner struct{ opts Options }

func (r *runner) Run(ctx context.Context, j *action.Job, rep action.Reporter) (action.Result, error) {
	p, err := DecodePayload(j.Payload)
	if err != nil {
		return action.Result{}, err
	}
	if r.opts.Conn == nil || r.opts.Jobs == nil {
		return action.Result{}, fmt.Errorf("system job %s: this process cannot run system jobs (run the job on an executor)", p.Kind)
	}
	switch p.Kind {
	case CleanupJobs:
		return r.cleanupJobs(ctx, p.days(), rep)
	case CleanupTokens:
		if r.opts.Access == nil {
			return action.Result{}, fmt.Errorf("system job %s: this process cannot reach the users' store", p.Kind)
		}
		n, err := r.opts.Access.PurgeExpired(ctx)
		if err != nil {
			return action.Result{}, fmt.Errorf("system job %s: %d deleted before: %w", p.Kind, n, err)
		}
		return action.Result{Message: fmt.Sprintf("%s: deleted %d expired API tokens and login sessions", p.Kind, n)}, nil
	}
	return action.Result{}, fmt.Errorf("%w: kind %q has no runner", ErrInvalid, p.Kind)
}

func (r *runner) cleanupJobs(ctx context.Context, days int, rep action.Reporter) (action.Result, error) {
	cutoff := r.opts.Now().Add(-time.Duration(days) * 24 * time.Hour)
	rep.Log("info", fmt.Sprintf("deleting the finished jobs that ended before %s (%d days ago)", cutoff.UTC().Format(time.RFC3339), days))
	cl := Cleaner{Conn: r.opts.Conn, Jobs: r.opts.Jobs, Batch: cleanupBatch, Check: ctx.Err, Logger: r.opts.Logger}
	res, err := cl.FinishedBefore(ctx, cutoff)
	if err != nil {
		return action.Result{}, fmt.Errorf("%s: %d deleted before: %w", CleanupJobs, res.Deleted, err)
	}
	msg := fmt.Sprintf("%s: deleted %d finished jobs older than %d days", CleanupJobs, res.Deleted, days)
	if res.NotIndexed > 0 {
		msg += fmt.Sprintf("; kept %d not yet indexed", res.NotIndexed)
	}
	if res.Changed > 0 {
		msg += fmt.Sprintf("; %d changed meanwhile", res.Changed)
	}
	r.opts.Logger.Info("system job done", zap.String("kind", string(CleanupJobs)), zap.Int("deleted", res.Deleted),
		zap.Int("kept-not-indexed", res.NotIndexed), zap.Int("changed-meanwhile", res.Changed), zap.Int("days", days))
	return action.Result{Message: msg}, nil
}
