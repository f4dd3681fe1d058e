package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// CleanupName names the cleanup service (its log lines, its state node).
const CleanupName = "cleanup"

// Defaults of the cleanup.
const (
	DefaultCleanupRetention = 7 * 24 * time.Hour
	DefaultCleanupBatch     = 100
	// MaxCleanupBatch bounds the deletions between two leadership checks.
	MaxCleanupBatch = 10000
)

// DefaultCleanupSchedule is daily at 00:00 UTC.
var DefaultCleanupSchedule = schedule.Spec{Cron: "@daily"}

// ErrCleanup is wrapped by the errors of a cleanup pass.
var ErrCleanup = errors.New("maintenance: cleanup")

// CleanupConfig configures the cleanup of finished jobs. Zero values take
// the defaults.
type CleanupConfig struct {
	// Disabled turns the cleanup off: finished jobs stay in ZooKeeper.
	Disabled bool
	// Schedule is when it runs (default DefaultCleanupSchedule).
	Schedule schedule.Spec
	// CatchUp is what a new leader does about a pass missed while no
	// member led: schedule.CatchUpLast (the default) runs it once.
	CatchUp schedule.CatchUp
	// Retention is how long a finished job stays after its final state
	// (default DefaultCleanupRetention).
	Retention time.Duration
	// Batch is how many jobs are deleted between two leadership checks
	// (default DefaultCleanupBatch, at most MaxCleanupBatch).
	Batch int
}

// Normalized returns c with its defaults filled in.
func (c CleanupConfig) Normalized() CleanupConfig {
	if c.Schedule == (schedule.Spec{}) {
		c.Schedule = DefaultCleanupSchedule
	}
	if c.CatchUp == "" {
		c.CatchUp = schedule.CatchUpLast
	}
	if c.Retention == 0 {
		c.Retention = DefaultCleanupRetention
	}
	if c.Batch == 0 {
		c.Batch = DefaultCleanupBatch
	}
	return c
}

// Validate reports what is wrong with c, if anything (after defaults).
func (c CleanupConfig) Validate() error {
	c = c.Normalized()
	if _, err := schedule.Parse(c.Schedule); err != nil {
		return fmt.Errorf("%w: cleanup schedule: %v", ErrConfig, err)
	}
	if _, err := schedule.ParseCatchUp(string(c.CatchUp)); err != nil {
		return fmt.Errorf("%w: cleanup: %v", ErrConfig, err)
	}
	if c.Retention < 0 {
		return fmt.Errorf("%w: cleanup retention %s: want a positive duration such as 7d or 36h", ErrConfig, c.Retention)
	}
	if c.Batch < 1 || c.Batch > MaxCleanupBatch {
		return fmt.Errorf("%w: cleanup batch %d: want a whole number 1–%d", ErrConfig, c.Batch, MaxCleanupBatch)
	}
	return nil
}

func init() { register(CleanupName, newCleanup) }

func newCleanup(cfg Config) (Service, error) {
	c := cfg.Cleanup
	if c.Disabled {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.Normalized()
	cl := &cleanup{cfg: cfg, keep: c.Retention, batch: c.Batch}
	p, err := newPeriodic(cfg, periodicSpec{name: CleanupName, schedule: c.Schedule, catchUp: c.CatchUp, remember: true, pass: cl.pass})
	if err != nil {
		return nil, err
	}
	cl.log = p.log
	return p, nil
}

// cleanup deletes the finished jobs whose final state is older than the
// retention and that the indexer has sent to Elasticsearch (no outbox
// entry left). When the outbox directory does not exist, indexing is off
// and the retention alone decides. Every batch starts with a leadership
// check and every deletion carries the election fence, so a stale leader
// deletes nothing.
type cleanup struct {
	cfg   Config
	keep  time.Duration
	batch int
	log   *zap.Logger
}

// candidate is a finished job old enough to go.
type candidate struct {
	id, uid, action string
	ver             int32
}

func (c *cleanup) pass(ctx context.Context, tick schedule.Tick) error {
	term := election.TermOf(ctx)
	conn, store := c.cfg.Conn, c.cfg.Store
	cutoff := c.cfg.Clock.Now().Add(-c.keep)

	// The walk comes before the outbox listing: a job seen final here had
	// its final version's outbox entry written with that state, so the
	// listing that follows shows it unless it is indexed already.
	var cands []candidate
	err := store.Walk(ctx, func(j *jobs.Job, ver int32) {
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
		return fmt.Errorf("%w: %v", ErrCleanup, err)
	}
	var indexing bool
	if err := zkconn.Do(ctx, func() error {
		var err error
		indexing, _, err = conn.Exists(index.OutboxPath(conn))
		return err
	}); err != nil {
		return fmt.Errorf("%w: looking for the index outbox: %v", ErrCleanup, err)
	}
	pending := map[string]bool{}
	if indexing {
		if pending, err = index.Pending(ctx, conn); err != nil {
			return fmt.Errorf("%w: %v", ErrCleanup, err)
		}
	}

	deleted, unindexed, changed := 0, 0, 0
	for i := 0; i < len(cands); i += c.batch {
		if err := term.Check(); err != nil {
			return err
		}
		for _, cd := range cands[i:min(i+c.batch, len(cands))] {
			if pending[cd.uid] {
				unindexed++
				continue
			}
			gone, err := c.deleteJob(ctx, term, cd)
			switch {
			case err != nil:
				return err
			case gone:
				deleted++
				c.log.Debug("finished job deleted", zap.String("job", cd.id), zap.String("action", cd.action))
			default:
				changed++
			}
		}
	}
	fields := []zap.Field{zap.String("tick", tick.ID()), zap.Int("deleted", deleted), zap.Duration("retention", c.keep),
		zap.Bool("indexing", indexing), zap.Int("kept-not-indexed", unindexed), zap.Int("changed-meanwhile", changed)}
	if deleted > 0 || unindexed > 0 {
		c.log.Info("finished jobs cleaned up", fields...)
	} else {
		c.log.Debug("no finished job to clean up", fields...)
	}
	return nil
}

// deleteJob deletes a job document, if still at the version read, in a
// multi with the election fence, then its log tail and cancel request. It
// reports whether the document was deleted; false when it changed or went
// meanwhile.
func (c *cleanup) deleteJob(ctx context.Context, term *election.Term, cd candidate) (bool, error) {
	conn, store := c.cfg.Conn, c.cfg.Store
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = conn.Multi(term.Fence(), &zk.DeleteRequest{Path: store.DocPath(cd.uid), Version: cd.ver})
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
		return false, fmt.Errorf("%w: deleting %s: %v", ErrCleanup, cd.id, opErr)
	}
	// What belonged to the job goes too; a leftover is harmless and the
	// next cleanup does not see it again, so failures are only logged.
	for _, p := range []string{store.LogPath(cd.uid), store.CancelPath(cd.uid)} {
		err := zkconn.Do(ctx, func() error { return conn.Delete(p, -1) })
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			c.log.Warn("could not delete a deleted job's node", zap.String("job", cd.id), zap.String("action", cd.action), zap.String("path", p), zap.Error(err))
		}
	}
	return true, nil
}
