package maintenance

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/systemjob"
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
var ErrCleanup = systemjob.ErrCleanup

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

func (c *cleanup) pass(ctx context.Context, tick schedule.Tick) error {
	term := election.TermOf(ctx)
	cutoff := c.cfg.Clock.Now().Add(-c.keep)
	cl := systemjob.Cleaner{
		Conn: c.cfg.Conn, Jobs: c.cfg.Store, Batch: c.batch, Logger: c.log,
		Check: term.Check, Fence: func() any { return term.Fence() }, FenceErr: election.ErrNotLeader,
	}
	res, err := cl.FinishedBefore(ctx, cutoff)
	if err != nil {
		return err
	}
	fields := []zap.Field{zap.String("tick", tick.ID()), zap.Int("deleted", res.Deleted), zap.Duration("retention", c.keep),
		zap.Bool("indexing", res.Indexing), zap.Int("kept-not-indexed", res.NotIndexed), zap.Int("changed-meanwhile", res.Changed)}
	if res.Deleted > 0 || res.NotIndexed > 0 {
		c.log.Info("finished jobs cleaned up", fields...)
	} else {
		c.log.Debug("no finished job to clean up", fields...)
	}
	return nil
}
