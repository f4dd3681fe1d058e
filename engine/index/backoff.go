package index

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential back-off with jitter: the n-th wait is
// drawn from [d/2, d) with d = min(max, min·2ⁿ), so waits never shrink to
// nothing (no hot loop) and processes that failed together do not retry in
// step.
type backoff struct {
	min, max time.Duration
	n        int
}

func newBackoff(lo, hi time.Duration) *backoff {
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi < lo {
		hi = lo
	}
	return &backoff{min: lo, max: hi}
}

// next returns the next wait and advances.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.n && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.n++
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// reset starts over after a success.
func (b *backoff) reset() { b.n = 0 }

// failures returns the number of waits since the last reset.
func (b *backoff) failures() int { return b.n }

// wait sleeps for the next back-off; it returns false when ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	return sleep(ctx, b.next())
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
