package jobs

import (
	"context"
	"fmt"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// CommitHeld commits changes, each under its hold (holds[i] is that of
// changes[i]), in as few transactions as it can: one multi for all of
// the plain document writes under one consumer's holds, with the
// consumer's fence and what each transition does to its entry
// (queue.Consumer.ApplyMany); the others (a quarantine, another
// consumer's, one of unknown outcome) are committed alone.
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
	// The changes that can share a multi: those under the first sharable
	// change's consumer. The others are committed alone.
	var group []int
	for i, c := range changes {
		if sharable(c) && (len(group) == 0 || holds[i].Consumer == holds[group[0]].Consumer) {
			group = append(group, i)
		}
	}
	if len(group) < 2 {
		group = nil
	}
	inGroup := make([]bool, len(changes))
	for _, i := range group {
		inGroup[i] = true
	}
	for i, c := range changes {
		if !inGroup[i] {
			errs[i] = c.Commit(ctx, holds[i])
		}
	}
	if group == nil {
		return errs
	}
	parts := make([]queue.Part, len(group))
	for k, i := range group {
		c := changes[i]
		end := queue.Keep
		switch c.entry {
		case consumeEntry:
			end = queue.Consume
		case releaseEntry:
			end = queue.Release
		}
		parts[k] = queue.Part{Item: holds[i].Item, End: end, Ops: c.ops}
	}
	err := holds[group[0]].Consumer.ApplyMany(ctx, parts)
	if err == nil {
		for _, i := range group {
			changes[i].committed(ctx)
		}
		return errs
	}
	if zkconn.Transient(err) {
		for _, i := range group {
			changes[i].uncertain = true
		}
	}
	for _, i := range group {
		errs[i] = changes[i].Commit(ctx, holds[i])
	}
	return errs
}

// sharable reports whether a change can share a multi with others: a
// plain document write under a hold, neither committed nor of unknown
// outcome (those are settled alone).
func sharable(c *Change) bool {
	return !c.done && !c.uncertain && c.bad == nil && c.entry != noEntry
}
