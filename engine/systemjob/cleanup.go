package systemjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrCleanup is wrapped by the errors of a cleanup of finished jobs.
var ErrCleanup = errors.New("cleanup of finished jobs")

// Cleaner deletes finished jobs: the cleanup service of the maintenance
// leader (with its retention, fenced by its term) and the cleanup_jobs
// system job (with its days) share it.
type Cleaner struct {
	Conn *zkconn.Conn
	Jobs *jobs.Store
	// Batch is how many jobs are deleted between two calls of Check (at
	// least 1).
	Batch int
	// Check, when set, runs before each batch; its error ends the cleanup
	// (a leader checks that it still leads).
	Check func() error
	// Fence, when set, returns an operation that joins every deletion;
	// when it fails, the cleanup ends with an error wrapping FenceErr.
	Fence    func() any
	FenceErr error
	Logger   *zap.Logger
}

// Cleaned says what a cleanup did.
type Cleaned struct {
	// Deleted counts the jobs deleted.
	Deleted int
	// Indexing says whether the cluster indexes its jobs (the outbox
	// exists); NotIndexed counts the jobs kept because their last
	// version is not in Elasticsearch yet.
	Indexing   bool
	NotIndexed int
	// Changed counts the jobs that changed or went while the cleanup ran.
	Changed int
}

// candidate is a finished job old enough to go.
type candidate struct {
	id, uid, action string
	ver             int32
}

// FinishedBefore deletes the finished jobs whose final state is older than
// cutoff and that the indexer has sent to Elasticsearch (no outbox entry
// left). When the outbox directory does not exist, indexing is off and
// the age alone decides. Each deletion is a compare-and-set on the version
// read, so a job that changed meanwhile stays.
func (c Cleaner) FinishedBefore(ctx context.Context, cutoff time.Time) (Cleaned, error) {
	var out Cleaned
	log := c.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// The walk comes before the outbox listing: a job seen final here had
	// its final version's outbox entry written with that state, so the
	// listing that follows shows it unless it is indexed already.
	var cands []candidate
	err := c.Jobs.Walk(ctx, func(j *jobs.Job, ver int32) {
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
		return out, fmt.Errorf("%w: %v", ErrCleanup, err)
	}
	if err := zkconn.Do(ctx, func() error {
		var err error
		out.Indexing, _, err = c.Conn.Exists(index.OutboxPath(c.Conn))
		return err
	}); err != nil {
		return out, fmt.Errorf("%w: looking for the index outbox: %v", ErrCleanup, err)
	}
	pending := map[string]bool{}
	if out.Indexing {
		if pending, err = index.Pending(ctx, c.Conn); err != nil {
			return out, fmt.Errorf("%w: %v", ErrCleanup, err)
		}
	}
	batch := max(c.Batch, 1)
	for i := 0; i < len(cands); i += batch {
		if c.Check != nil {
			if err := c.Check(); err != nil {
				return out, err
			}
		}
		for _, cd := range cands[i:min(i+batch, len(cands))] {
			if pending[cd.uid] {
				out.NotIndexed++
				continue
			}
			gone, err := c.deleteJob(ctx, cd, log)
			switch {
			case err != nil:
				return out, err
			case gone:
				out.Deleted++
				log.Debug("finished job deleted", zap.String("job", cd.id), zap.String("action", cd.action))
			default:
				out.Changed++
			}
		}
	}
	return out, nil
}

// deleteJob deletes a job document, if still at the version read (in a
// multi with the fence, when there is one), then its log tail and cancel
// request. It reports whether the document was deleted; false when it
// changed or went meanwhile.
func (c Cleaner) deleteJob(ctx context.Context, cd candidate, log *zap.Logger) (bool, error) {
	var ops []any
	if c.Fence != nil {
		ops = append(ops, c.Fence())
	}
	ops = append(ops, &zk.DeleteRequest{Path: c.Jobs.DocPath(cd.uid), Version: cd.ver})
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = c.Conn.Multi(ops...)
		return err
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case c.Fence != nil && i == 0:
			return false, fmt.Errorf("%w: the fence failed: %v", c.FenceErr, opErr)
		case i == len(ops)-1 && (errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNoNode)):
			return false, nil
		}
		return false, fmt.Errorf("%w: deleting %s: %v", ErrCleanup, cd.id, opErr)
	}
	// What belonged to the job goes too; a leftover is harmless and the
	// next cleanup does not see it again, so failures are only logged.
	for _, p := range []string{c.Jobs.LogPath(cd.uid), c.Jobs.CancelPath(cd.uid)} {
		err := zkconn.Do(ctx, func() error { return c.Conn.Delete(p, -1) })
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			log.Warn("could not delete a deleted job's node", zap.String("job", cd.id), zap.String("action", cd.action), zap.String("path", p), zap.Error(err))
		}
	}
	return true, nil
}
