package distributors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Options of jobs_cleanup.
const (
	// OptRetention is how long a finished job stays in ZooKeeper after it
	// reached its final state: a duration such as 7d or 36h.
	OptRetention = "retention"
	// OptBatch is how many jobs are deleted between two leadership checks.
	OptBatch = "batch"
	// DefaultRetention is the retention unless configured.
	DefaultRetention = "7d"
	defaultBatchText = "100"
)

// ErrCleanup is wrapped by the errors of jobs_cleanup.
var ErrCleanup = errors.New("jobs_cleanup")

func checkCleanupOptions(opts map[string]string) error {
	for k := range opts {
		if k != OptRetention && k != OptBatch {
			return fmt.Errorf("unknown option %q (jobs_cleanup has %s and %s)", k, OptRetention, OptBatch)
		}
	}
	if _, err := retention(opts); err != nil {
		return err
	}
	_, err := batchSize(opts)
	return err
}

func retention(opts map[string]string) (time.Duration, error) {
	v := opts[OptRetention]
	if v == "" {
		v = DefaultRetention
	}
	d, err := distributor.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("retention %q: want a positive duration such as 7d or 36h", v)
	}
	return d, nil
}

func batchSize(opts map[string]string) (int, error) {
	v := opts[OptBatch]
	if v == "" {
		v = defaultBatchText
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("batch %q: want a whole number 1–10000", v)
	}
	return n, nil
}

// candidate is a finished job old enough to go.
type candidate struct {
	id, uid, action string
	ver             int32
}

// cleanup is jobs_cleanup's generator: it deletes the finished jobs whose
// final state is older than the retention and that the indexer has sent to
// Elasticsearch (no outbox entry left), and creates no job. When the outbox
// directory does not exist, indexing is off and the retention alone
// decides. Every batch starts with a leadership check and every deletion
// carries the election fence, so a stale leader deletes nothing.
func cleanup(ctx context.Context, tick schedule.Tick, env *distributor.Env) ([]jobs.NewJob, error) {
	term := election.TermOf(ctx)
	keep, err := retention(env.Options)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCleanup, err)
	}
	batch, err := batchSize(env.Options)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCleanup, err)
	}
	cutoff := env.Clock.Now().Add(-keep)

	// The walk comes before the outbox listing: a job seen final here had
	// its final version's outbox entry written with that state, so the
	// listing that follows shows it unless it is indexed already.
	var cands []candidate
	err = env.Store.Walk(ctx, func(j *jobs.Job, ver int32) {
		if !j.State.Final() {
			return
		}
		at := j.TimeOfStatusChange
		if at.IsZero() {
			at = j.Updated
		}
		if at.Before(cutoff) {
			cands = append(cands, candidate{id: j.ID, uid: j.UUID(), action: j.Action, ver: ver})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCleanup, err)
	}
	var indexing bool
	if err := zkconn.Do(ctx, func() error {
		var err error
		indexing, _, err = env.Conn.Exists(index.OutboxPath(env.Conn))
		return err
	}); err != nil {
		return nil, fmt.Errorf("%w: looking for the index outbox: %v", ErrCleanup, err)
	}
	pending := map[string]bool{}
	if indexing {
		if pending, err = index.Pending(ctx, env.Conn); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCleanup, err)
		}
	}

	deleted, unindexed, changed := 0, 0, 0
	for i := 0; i < len(cands); i += batch {
		if err := term.Check(); err != nil {
			return nil, err
		}
		for _, c := range cands[i:min(i+batch, len(cands))] {
			if pending[c.uid] {
				unindexed++
				continue
			}
			gone, err := deleteJob(ctx, env, term, c)
			switch {
			case err != nil:
				return nil, err
			case gone:
				deleted++
				env.Log.Debug("finished job deleted", zap.String("job", c.id), zap.String("action", c.action))
			default:
				changed++
			}
		}
	}
	fields := []zap.Field{zap.String("tick", tick.ID()), zap.Int("deleted", deleted), zap.Duration("retention", keep),
		zap.Bool("indexing", indexing), zap.Int("kept-not-indexed", unindexed), zap.Int("changed-meanwhile", changed)}
	if deleted > 0 || unindexed > 0 {
		env.Log.Info("finished jobs cleaned up", fields...)
	} else {
		env.Log.Debug("no finished job to clean up", fields...)
	}
	return nil, nil
}

// deleteJob deletes a job document, if still at the version read, in a
// multi with the election fence, then its log tail and cancel request. It
// reports whether the document was deleted; false when it changed or went
// meanwhile.
func deleteJob(ctx context.Context, env *distributor.Env, term *election.Term, c candidate) (bool, error) {
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = env.Conn.Multi(term.Fence(), &zk.DeleteRequest{Path: env.Store.DocPath(c.uid), Version: c.ver})
		return err
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i == 0:
			return false, fmt.Errorf("%w: the election fence failed: %v", election.ErrNotLeader, opErr)
		case i == 1 && (errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNoNode)):
			return false, nil
		}
		return false, fmt.Errorf("%w: deleting %s: %v", ErrCleanup, c.id, opErr)
	}
	// What belonged to the job goes too; a leftover is harmless and the
	// next cleanup does not see it again, so failures are only logged.
	for _, p := range []string{env.Store.LogPath(c.uid), env.Store.CancelPath(c.uid)} {
		err := zkconn.Do(ctx, func() error { return env.Conn.Delete(p, -1) })
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			env.Log.Warn("could not delete a deleted job's node", zap.String("job", c.id), zap.String("action", c.action), zap.String("path", p), zap.Error(err))
		}
	}
	return true, nil
}
