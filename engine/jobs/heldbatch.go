package jobs

import (
	"context"
	"fmt"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// CommitHeld commits changes, each under its hold (holds[i] is that of
// changes[i]), in as few transactions as it can: one multi for all of
// them when their holds share one consumer, with the consumer's fence and
// what each transition does to its entry (queue.Consumer.ApplyMany).
// When that multi fails — a document changed, a hold is gone, a notice
// directory is missing, or its outcome is unknown — each change is
// committed alone (Commit), so one bad change fails no other, and a
// change the failed multi may have written is read back as Commit does.
// errs[i] is what changes[i].Commit would have returned.
//
// The caller keeps the batch within ZooKeeper's request limit (Size).
func CommitHeld(ctx context.Context, changes []*Change, holds []Hold) []error {
	errs := make([]error, len(changes))
	if len(holds) != len(changes) {
		for i := range errs {
			errs[i] = fmt.Errorf("%w: %d changes and %d holds", ErrIllegalState, len(changes), len(holds))
		}
		return errs
	}
	if !batchable(changes, holds) {
		for i, c := range changes {
			errs[i] = c.Commit(ctx, holds[i])
		}
		return errs
	}
	parts := make([]queue.Part, len(changes))
	for i, c := range changes {
		end := queue.Keep
		switch c.entry {
		case consumeEntry:
			end = queue.Consume
		case releaseEntry:
			end = queue.Release
		}
		parts[i] = queue.Part{Item: holds[i].Item, End: end, Ops: c.ops}
	}
	err := holds[0].Consumer.ApplyMany(ctx, parts)
	if err == nil {
		for _, c := range changes {
			c.committed(ctx)
		}
		return errs
	}
	if zkconn.Transient(err) {
		for _, c := range changes {
			c.uncertain = true
		}
	}
	for i, c := range changes {
		errs[i] = c.Commit(ctx, holds[i])
	}
	return errs
}

// batchable reports whether changes can go in one multi: two or more
// plain document writes under holds of one consumer, none committed or of
// unknown outcome (those are settled alone).
func batchable(changes []*Change, holds []Hold) bool {
	if len(changes) < 2 {
		return false
	}
	for i, c := range changes {
		if c.done || c.uncertain || c.bad != nil || c.entry == noEntry || holds[i].Consumer != holds[0].Consumer {
			return false
		}
	}
	return true
}
