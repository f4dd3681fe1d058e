// Package backoff is the engine's one retry back-off: capped, exponential,
// jittered, so a failing dependency never causes a hot loop and processes
// that failed together do not retry in step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential back-off with jitter: the n-th wait is
// drawn from [d/2, d] with d = min(Max, Min·2ⁿ). Not safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	n        int
}

// New returns a back-off between lo (250ms when not positive) and hi.
func New(lo, hi time.Duration) *Backoff {
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	return &Backoff{min: lo, max: hi}
}

// Next returns the next wait and advances.
func (b *Backoff) Next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Failures returns the number of waits since the last Reset.
func (b *Backoff) Failures() int { return b.n }

// Wait sleeps for the next back-off; it returns false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d or until ctx ends; it returns false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter returns a duration drawn from [d/2, 3d/2).
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}
