// Package schedule says when a distributor's (or a stored schedule's)
// ticks fall: every fixed interval, by a cron expression in a time zone, or
// by an iCalendar RRULE (rrule.go). Every instance computes
// the same ticks, so a tick has a stable identity (its time in UTC) and a
// new leader after a failover never creates the same tick's job twice.
//
// Interval ticks are aligned to the Unix epoch (a 15s schedule ticks at :00,
// :15, :30 and :45 of every minute), never to when a leader started.
//
// Cron schedules follow wall-clock time in their zone (UTC unless given), with
// the daylight-saving rules of RFC 5545 and classic cron:
//
//   - A wall-clock time skipped by a forward transition (02:30 on the
//     spring-forward night in Europe/Zurich) fires once, at the moment it
//     would have been with the offset in force before the transition
//     (03:30 CEST).
//   - A wall-clock time that occurs twice on a backward transition (02:30 on
//     the fall-back night) fires only the first time.
//   - A schedule that names every hour ("0 * * * *", "*/5 * * * *") follows
//     elapsed time instead: it fires in the repeated hour again and has
//     nothing to make up in the skipped one, so every real hour is covered
//     once.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zones resolve the same on hosts without a zoneinfo database

	"github.com/robfig/cron/v3"
)

// ErrSpec is wrapped by every error about a schedule's specification.
var ErrSpec = errors.New("schedule: bad schedule")

// Spec is a schedule as configured: exactly one of Interval, Cron and
// RRule.
type Spec struct {
	// Interval ticks every Interval, a whole number of seconds (e.g. 15s).
	Interval time.Duration
	// Cron is a cron expression: 5 fields (minute hour day-of-month month
	// day-of-week), or 6 with a leading seconds field, or a descriptor such
	// as @daily, @hourly or @every 10m (the last is the same as Interval).
	// A "CRON_TZ=<zone> " or "TZ=<zone> " prefix sets the time zone.
	Cron string
	// TimeZone is the IANA zone of a cron expression, e.g. Europe/Zurich;
	// UTC when empty.
	TimeZone string
	// RRule is an iCalendar recurrence rule with its DTSTART, in AWX's
	// format: "DTSTART;TZID=Europe/Paris:20270104T090000
	// RRULE:FREQ=WEEKLY;BYDAY=MO" (see rrule.go). Its zone is DTSTART's.
	RRule string
}

// Schedule computes ticks.
type Schedule interface {
	// Next returns the first tick strictly after after, or the zero time if
	// the schedule never fires again.
	Next(after time.Time) time.Time
	// String describes the schedule, e.g. "every 15s" or
	// "cron 30 2 * * * (Europe/Zurich)".
	String() string
}

// Location returns the time zone a schedule counts wall-clock time in:
// the zone of a cron expression or of an rrule's DTSTART, UTC for an
// interval.
func Location(s Schedule) *time.Location {
	if z, ok := s.(interface{ Location() *time.Location }); ok {
		return z.Location()
	}
	return time.UTC
}

// Tick is one firing of a schedule.
type Tick struct {
	// At is the tick's scheduled time.
	At time.Time
}

// ID returns the tick's identity: its scheduled time in UTC, RFC 3339, e.g.
// "2026-03-29T01:30:00Z". Every instance computes the same ID for the same
// tick, whatever its local zone.
func (t Tick) ID() string { return t.At.UTC().Format(time.RFC3339) }

// String returns the ID.
func (t Tick) String() string { return t.ID() }

// ParseTickID parses an ID made by Tick.ID.
func ParseTickID(id string) (Tick, error) {
	at, err := time.Parse(time.RFC3339, id)
	if err != nil {
		return Tick{}, fmt.Errorf("schedule: bad tick id %q: %w", id, err)
	}
	return Tick{At: at.UTC()}, nil
}

// cronParser accepts 5 fields, an optional leading seconds field, and
// descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse checks a Spec and returns its Schedule.
func Parse(spec Spec) (Schedule, error) {
	expr := strings.TrimSpace(spec.Cron)
	if rr := strings.TrimSpace(spec.RRule); rr != "" {
		switch {
		case spec.Interval != 0 || expr != "":
			return nil, fmt.Errorf("%w: an rrule and an interval or cron expression: give one", ErrSpec)
		case spec.TimeZone != "":
			return nil, fmt.Errorf("%w: an rrule takes its time zone from DTSTART (DTSTART;TZID=%s:…), not from a separate time zone", ErrSpec, spec.TimeZone)
		}
		return parseRRule(rr)
	}
	switch {
	case spec.Interval != 0 && expr != "":
		return nil, fmt.Errorf("%w: both an interval (%s) and a cron expression (%q): give one", ErrSpec, spec.Interval, expr)
	case spec.Interval != 0:
		if spec.TimeZone != "" {
			return nil, fmt.Errorf("%w: a time zone (%s) applies to cron expressions only; an interval ticks in elapsed time", ErrSpec, spec.TimeZone)
		}
		return newInterval(spec.Interval)
	case expr == "":
		return nil, fmt.Errorf("%w: no interval, cron expression or rrule: give one, e.g. interval 15s or cron \"*/5 * * * *\"", ErrSpec)
	}

	zone := spec.TimeZone
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if rest, ok := strings.CutPrefix(expr, p); ok {
			z, e, _ := strings.Cut(rest, " ")
			if zone != "" && zone != z {
				return nil, fmt.Errorf("%w: cron expression %q names zone %s but the time zone is %s: give one", ErrSpec, spec.Cron, z, zone)
			}
			zone, expr = z, strings.TrimSpace(e)
			break
		}
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrSpec, spec.Cron, err)
		}
		if zone != "" {
			return nil, fmt.Errorf("%w: %q ticks in elapsed time; a time zone does not apply", ErrSpec, spec.Cron)
		}
		return newInterval(every)
	}
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: cron expression %q: %v", ErrSpec, expr, err)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("%w: cron expression %q is not supported", ErrSpec, expr)
	}
	ss.Location = time.UTC // matched on the wall clock; see cronSchedule
	c := &cronSchedule{wall: ss, loc: loc, expr: expr, allHours: ss.Hour&allHours == allHours}
	// Any real expression fires within four years of any moment (29 Feb);
	// one that does not fire from a fixed reference never fires at all.
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("%w: cron expression %q never fires", ErrSpec, expr)
	}
	return c, nil
}

func loadZone(zone string) (*time.Location, error) {
	switch zone {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("%w: time zone Local differs from host to host: name the zone, e.g. Europe/Zurich", ErrSpec)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: %v (use an IANA name such as Europe/Zurich)", ErrSpec, zone, err)
	}
	return loc, nil
}

// intervalSchedule ticks at every multiple of every since the Unix epoch.
type intervalSchedule struct{ every time.Duration }

// MaxInterval bounds an interval schedule: a rarer tick is a date, which a
// cron expression says better.
const MaxInterval = 366 * 24 * time.Hour

func newInterval(every time.Duration) (Schedule, error) {
	if every < time.Second || every%time.Second != 0 {
		return nil, fmt.Errorf("%w: interval %s: use a whole number of seconds, 1s or more", ErrSpec, every)
	}
	if every > MaxInterval {
		return nil, fmt.Errorf("%w: interval %s is longer than %s: use a cron expression for rarer ticks", ErrSpec, every, MaxInterval)
	}
	return intervalSchedule{every}, nil
}

func (s intervalSchedule) Next(after time.Time) time.Time {
	e := int64(s.every / time.Second)
	u := after.Unix() // rounds down, also before 1970
	k := u / e
	if u%e < 0 {
		k--
	}
	return time.Unix((k+1)*e, 0).UTC()
}

func (s intervalSchedule) String() string { return "every " + s.every.String() }

// allHours is the hour field naming every hour of the day.
const allHours = 1<<24 - 1

// cronSchedule is a cron expression in a zone. robfig/cron matches the
// fields on a wall clock (a schedule in UTC, which has no transitions, so
// its arithmetic is exact); Next maps wall-clock readings to instants one
// zone period (a stretch of constant UTC offset) at a time, applying the
// daylight-saving rules of the package comment at the transitions.
type cronSchedule struct {
	wall     *cron.SpecSchedule
	loc      *time.Location
	expr     string
	allHours bool
}

// Location returns the zone of the expression.
func (c *cronSchedule) Location() *time.Location { return c.loc }

func (c *cronSchedule) String() string {
	return fmt.Sprintf("cron %s (%s)", c.expr, c.loc)
}

// horizon bounds the search of Next: any expression that fires at all fires
// within four years (29 February).
const horizon = 5 * 366 * 24 * time.Hour

func (c *cronSchedule) Next(after time.Time) time.Time {
	after = after.In(c.loc)
	start, end := after.ZoneBounds()
	for {
		if m := c.nextInPeriod(after, start, end); !m.IsZero() {
			return m.In(c.loc)
		}
		if end.IsZero() || end.Sub(after) > horizon {
			return time.Time{}
		}
		start, end = end.In(c.loc).ZoneBounds()
	}
}

// nextInPeriod returns the first tick after after within the zone period
// [start, end) (a zero start or end is unbounded), or the zero time.
func (c *cronSchedule) nextInPeriod(after, start, end time.Time) time.Time {
	later := !start.IsZero() && start.After(after) // a period after the one holding after
	ref := after
	if later {
		ref = start
	}
	_, off := ref.In(c.loc).Zone()
	prev := off
	if !start.IsZero() {
		_, prev = start.Add(-time.Nanosecond).In(c.loc).Zone()
	}
	wallOf := func(t time.Time) time.Time { return time.Unix(t.Unix()+int64(off), 0).UTC() }

	var best time.Time
	from := wallOf(after) // Next is strictly after: a tick at after itself is not next
	if later {
		from = wallOf(start).Add(-time.Second)
	}
	for w := c.wall.Next(from); !w.IsZero(); w = c.wall.Next(w) {
		m := time.Unix(w.Unix()-int64(off), 0)
		if !end.IsZero() && !m.Before(end) {
			break
		}
		// After a backward transition the first prev−off of wall readings
		// repeat ones already seen: a fixed-hour schedule fired then.
		if !c.allHours && prev > off && m.Sub(start) < time.Duration(prev-off)*time.Second {
			continue
		}
		best = m
		break
	}
	// A forward transition at start skipped the wall readings
	// [start+prev, start+off); a fixed-hour schedule makes up each it names
	// at the moment it would have been with the old offset.
	if !c.allHours && off > prev {
		gapFrom := time.Unix(start.Unix()+int64(prev), 0).UTC()
		gapTo := gapFrom.Add(time.Duration(off-prev) * time.Second)
		for w := c.wall.Next(gapFrom.Add(-time.Second)); !w.IsZero() && w.Before(gapTo); w = c.wall.Next(w) {
			if m := start.Add(w.Sub(gapFrom)); m.After(after) {
				if best.IsZero() || m.Before(best) {
					best = m
				}
				break
			}
		}
	}
	return best
}
