package schedule

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is the time source of schedule users, so tests can drive time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) Timer
	// After returns a channel that receives the time once after d.
	After(d time.Duration) <-chan time.Time
}

// Timer is a one-shot timer of a Clock, like time.Timer.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was
	// pending.
	Stop() bool
	// Reset makes the timer fire after d; it reports whether it was
	// pending.
	Reset(d time.Duration) bool
}

// System is the real clock.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (systemClock) NewTimer(d time.Duration) Timer         { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// SleepUntil waits until the clock reads at least t, or ctx ends (then it
// returns ctx's error).
func SleepUntil(ctx context.Context, c Clock, t time.Time) error {
	timer := c.NewTimer(t.Sub(c.Now()))
	defer timer.Stop()
	select {
	case <-timer.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// FakeClock is a Clock for tests: time stands still until Advance or Set
// moves it, which fires the timers that are due, in order.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is added
}

// NewFakeClock returns a fake clock reading now.
func NewFakeClock(now time.Time) *FakeClock {
	return &FakeClock{now: now, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and fires the timers that are due.
func (f *FakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	t := f.now.Add(d)
	f.mu.Unlock()
	f.Set(t)
}

// Set moves the clock to t, forward or backward (a wall-clock step), and
// fires the timers whose deadline (creation time plus duration) is not
// after t.
func (f *FakeClock) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
	keep := f.timers[:0]
	for _, tm := range f.timers {
		if tm.at.After(t) {
			keep = append(keep, tm)
			continue
		}
		tm.pending = false
		select {
		case tm.c <- t:
		default:
		}
	}
	f.timers = keep
}

// Timers returns the number of pending timers.
func (f *FakeClock) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitForTimers waits until at least n timers are pending (the code under
// test has gone to sleep), or ctx ends.
func (f *FakeClock) WaitForTimers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		count, changed := len(f.timers), f.changed
		f.mu.Unlock()
		if count >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// NewTimer returns a timer that fires when the clock reaches Now()+d.
func (f *FakeClock) NewTimer(d time.Duration) Timer {
	tm := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	tm.Reset(d)
	return tm
}

// After returns a channel that receives the time when the clock reaches
// Now()+d.
func (f *FakeClock) After(d time.Duration) <-chan time.Time { return f.NewTimer(d).C() }

type fakeTimer struct {
	f       *FakeClock
	c       chan time.Time
	at      time.Time
	pending bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.remove()
}

// remove takes the timer off the clock; f.mu is held.
func (t *fakeTimer) remove() bool {
	was := t.pending
	t.pending = false
	for i, o := range t.f.timers {
		if o == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			break
		}
	}
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	defer f.mu.Unlock()
	was := t.remove()
	select { // like time.Timer since Go 1.23: no stale value after Reset
	case <-t.c:
	default:
	}
	t.at = f.now.Add(d)
	if d <= 0 {
		t.c <- f.now
		return was
	}
	t.pending = true
	f.timers = append(f.timers, t)
	close(f.changed)
	f.changed = make(chan struct{})
	return was
}
