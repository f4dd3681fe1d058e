package schedule

import (
	"fmt"
	"time"
)

// CatchUp says what a distributor does about ticks that fell while no
// leader was running.
type CatchUp string

const (
	// CatchUpLast runs the most recent missed tick once and drops the older
	// ones: work that was due is done, and never a storm. The default.
	CatchUpLast CatchUp = "last"
	// CatchUpNone drops every missed tick and waits for the next one.
	CatchUpNone CatchUp = "none"
)

// ParseCatchUp parses a catch-up policy; empty means CatchUpLast.
func ParseCatchUp(s string) (CatchUp, error) {
	switch CatchUp(s) {
	case "", CatchUpLast:
		return CatchUpLast, nil
	case CatchUpNone:
		return CatchUpNone, nil
	}
	return "", fmt.Errorf("%w: catch-up %q: use %q (run the latest missed tick once) or %q (skip missed ticks)", ErrSpec, s, CatchUpLast, CatchUpNone)
}

// Grace is how late a tick may be found and still count as on time, not
// missed, under CatchUpNone: a late wake-up or a quick failover never drops
// a tick. It is capped at half the gap to the following tick, so for short
// intervals a tick is on time only while it is nearer to its own time than
// to the next.
const Grace = time.Minute

// Decision is what a leader should do now.
type Decision struct {
	// Run is true when Tick is due now.
	Run bool
	// Tick is the tick to run (create a job for) now, when Run.
	Tick Tick
	// FirstMissed is the earliest tick that was missed and will never run,
	// for the log; zero when none was dropped.
	FirstMissed time.Time
	// Wake is when to decide again: the first tick after now.
	Wake time.Time
}

// Due decides what to run now, given the last tick whose job was created
// (persisted by the distributor; zero if none ever was) and the catch-up
// policy. At most one tick is due at a time. A schedule with no completed
// tick starts with the next tick after now: nothing is made up for the time
// before it existed. A last tick later than now (a previous leader's clock
// ran ahead) is never repeated: the next tick is the first after it.
func Due(s Schedule, last, now time.Time, policy CatchUp) Decision {
	var d Decision
	if last.IsZero() {
		d.Wake = s.Next(now)
		return d
	}
	from := now
	if last.After(now) {
		from = last
	}
	d.Wake = s.Next(from)
	latest := latestTick(s, last, now)
	if latest.IsZero() {
		return d
	}
	run := true
	if policy == CatchUpNone {
		grace := Grace
		if n := s.Next(latest); !n.IsZero() && n.Sub(latest)/2 < grace {
			grace = n.Sub(latest) / 2
		}
		run = now.Sub(latest) < grace
	}
	if first := s.Next(last); first.Before(latest) || !run {
		d.FirstMissed = first
	}
	if run {
		d.Run, d.Tick = true, Tick{At: latest}
	}
	return d
}

// latestTick returns the last tick t with after < t <= upTo, or the zero
// time. It walks forward from a point found by doubling the look-back from
// upTo, so a long outage costs a few dozen steps, not one per missed tick.
func latestTick(s Schedule, after, upTo time.Time) time.Time {
	if !after.Before(upTo) {
		return time.Time{}
	}
	if first := s.Next(after); first.IsZero() || first.After(upTo) {
		return time.Time{}
	}
	for back := time.Second; ; back *= 2 {
		start := upTo.Add(-back)
		if !start.After(after) {
			start = after
		}
		t := s.Next(start)
		if t.IsZero() || t.After(upTo) {
			continue // nothing in (start, upTo]: look further back
		}
		for {
			n := s.Next(t)
			if n.IsZero() || n.After(upTo) {
				return t
			}
			t = n
		}
	}
}
