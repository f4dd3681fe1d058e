package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// RRULE schedules: iCalendar recurrence rules (RFC 5545) in the format AWX
// stores, a DTSTART line with its time zone followed by the rule, on one line
// or several:
//
//	DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO
//
// The expansion is github.com/teambition/rrule-go, a port of python-dateutil's
// rrule, the library AWX uses. Occurrences are wall-clock readings in the
// DTSTART zone. At daylight-saving transitions a reading is the instant RFC
// 5545 (section 3.3.5) says, the same rules as cron schedules here:
//
//   - a reading skipped by a forward transition (02:30 on the spring-forward
//     night) fires once, with the offset in force before the transition:
//     at 03:30 summer time. (rrule-go does the same; AWX, through dateutil,
//     fires it an hour earlier, at 01:30 standard time.)
//   - a reading that occurs twice on a backward transition fires the first
//     time only, in summer time, as in AWX. (rrule-go alone would take the
//     second.) HOURLY and MINUTELY rules count wall-clock hours and minutes,
//     so, as in AWX, they skip the second pass of the repeated hour, and
//     fire once per real hour on the spring-forward night.
//
// Limits, as AWX sets them: DTSTART is required and must say its zone
// (TZID=… or a UTC time ending in Z); FREQ=SECONDLY is refused; COUNT is at
// most 999. EXDATE and RDATE lines are accepted, EXRULE is not (RFC 5545
// deprecates it).

// MaxRRuleCount is the largest COUNT an RRULE may have (AWX's limit).
const MaxRRuleCount = 999

// maxRRuleBytes bounds the text of a rule.
const maxRRuleBytes = 4096

// rruleSchedule is a recurrence set in a zone.
type rruleSchedule struct {
	set  *rrule.Set
	loc  *time.Location
	text string
	// fast is set for a single HOURLY or MINUTELY rule without COUNT: its
	// start is moved forward before each expansion (see after), since
	// expanding every minute since DTSTART takes seconds after a few years.
	fast *rrule.ROption
	// every is the whole number of days by which fast's DTSTART may move
	// without changing the set of wall-clock readings.
	every int
}

func parseRRule(text string) (Schedule, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: rrule %q: %s", ErrSpec, text, fmt.Sprintf(format, args...))
	}
	if len(text) > maxRRuleBytes {
		return nil, fmt.Errorf("%w: rrule of %d bytes is over the %d-byte limit", ErrSpec, len(text), maxRRuleBytes)
	}
	lines := strings.Fields(text) // one property per field, as AWX writes them
	if len(lines) == 0 {
		return nil, bad("empty: give DTSTART and RRULE, e.g. %q", "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO")
	}
	var dtstart string
	var rules, others []string
	for _, l := range lines {
		name := strings.ToUpper(l)
		if i := strings.IndexAny(name, ";:"); i > 0 {
			name = name[:i]
		}
		switch name {
		case "DTSTART":
			if dtstart != "" {
				return nil, bad("more than one DTSTART")
			}
			dtstart = l
		case "RRULE":
			rules = append(rules, l)
		case "EXDATE", "RDATE":
			others = append(others, l)
		case "EXRULE":
			return nil, bad("EXRULE is not supported (RFC 5545 deprecates it): use EXDATE")
		default:
			return nil, bad("unknown property %q: use DTSTART, RRULE, EXDATE or RDATE", l)
		}
	}
	if dtstart == "" {
		return nil, bad("no DTSTART: start the rule with e.g. DTSTART;TZID=Europe/Paris:20270104T090000")
	}
	if !strings.Contains(strings.ToUpper(dtstart), "TZID=") && !strings.HasSuffix(strings.ToUpper(dtstart), "Z") {
		return nil, bad("DTSTART %q has no time zone: write DTSTART;TZID=<zone>:<local time> or DTSTART:<UTC time>Z", dtstart)
	}
	if len(rules) == 0 {
		return nil, bad("no RRULE: add e.g. RRULE:FREQ=DAILY")
	}
	set, err := rrule.StrSliceToRRuleSetInLoc(append(append([]string{dtstart}, rules...), others...), time.UTC)
	if err != nil {
		return nil, bad("%v", err)
	}
	loc := set.GetDTStart().Location()
	if loc.String() == "Local" {
		return nil, bad("time zone Local differs from host to host: name the zone, e.g. TZID=Europe/Paris")
	}
	var opts []*rrule.ROption
	for _, r := range rules {
		o, err := rrule.StrToROptionInLocation(strings.TrimPrefix(r[len("RRULE"):], ":"), loc)
		if err != nil {
			return nil, bad("%s: %v", r, err)
		}
		switch {
		case o.Freq == rrule.SECONDLY:
			return nil, bad("FREQ=SECONDLY is not supported: use MINUTELY or a cron expression with a seconds field")
		case o.Count > MaxRRuleCount:
			return nil, bad("COUNT=%d: at most %d", o.Count, MaxRRuleCount)
		case o.Interval < 0 || o.Count < 0:
			return nil, bad("negative INTERVAL or COUNT")
		}
		opts = append(opts, o)
	}
	s := &rruleSchedule{set: set, loc: loc, text: strings.Join(lines, " ")}
	if o := opts[0]; len(opts) == 1 && len(others) == 0 && o.Count == 0 && len(o.Bysetpos) == 0 &&
		(o.Freq == rrule.HOURLY || o.Freq == rrule.MINUTELY) {
		o.Dtstart = set.GetDTStart()
		interval := max(o.Interval, 1)
		perDay := 24
		if o.Freq == rrule.MINUTELY {
			perDay = 24 * 60
		}
		s.fast, s.every = o, interval/gcd(interval, perDay)
	}
	// A rule that never fires (COUNT used up, UNTIL before DTSTART) is a
	// mistake worth saying at once.
	if s.after(set.GetDTStart().Add(-time.Second)).IsZero() {
		return nil, bad("it never fires (check UNTIL and COUNT against DTSTART)")
	}
	return s, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (r *rruleSchedule) String() string { return "rrule " + r.text }

// Location returns the zone of DTSTART.
func (r *rruleSchedule) Location() *time.Location { return r.loc }

// Next returns the first occurrence strictly after after. A wall-clock
// reading repeated by a backward transition counts at its first instant
// only (the library gives the second; see the comment at the top).
func (r *rruleSchedule) Next(after time.Time) time.Time {
	cur := after
	for range 1000 { // bounded: each round moves past one repeated reading
		t := r.after(cur)
		if t.IsZero() {
			return t
		}
		if first, ok := firstInstant(t); ok {
			if first.After(after) {
				return first
			}
			cur = t // its first instant is past: this reading is done
			continue
		}
		return t
	}
	return time.Time{}
}

// after is the library's first occurrence strictly after t, with an
// HOURLY or MINUTELY rule's start moved forward by whole multiples of its
// period to two days before t, which leaves the readings unchanged.
func (r *rruleSchedule) after(t time.Time) time.Time {
	if r.fast == nil {
		return r.set.After(t, false).In(r.loc)
	}
	start := r.fast.Dtstart
	days := int(t.In(r.loc).Sub(start).Hours()/24) - 2
	for shift := days - days%r.every; shift > 0; shift -= r.every {
		y, m, d := start.Date()
		hh, mm, ss := start.Clock()
		moved := time.Date(y, m, d+shift, hh, mm, ss, 0, r.loc)
		if h2, m2, s2 := moved.Clock(); h2 != hh || m2 != mm || s2 != ss {
			continue // that day skips the start's reading: try a period earlier
		}
		o := *r.fast
		o.Dtstart = moved
		rule, err := rrule.NewRRule(o)
		if err != nil {
			break
		}
		return rule.After(t, false).In(r.loc)
	}
	return r.set.After(t, false).In(r.loc)
}

// firstInstant reports whether t's wall-clock reading occurred once before,
// in the hour a backward transition repeats, and returns that first instant.
func firstInstant(t time.Time) (time.Time, bool) {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return time.Time{}, false
	}
	_, off := t.Zone()
	_, prev := start.Add(-time.Second).In(t.Location()).Zone()
	if prev <= off {
		return time.Time{}, false
	}
	first := t.Add(-time.Duration(prev-off) * time.Second)
	if first.Before(start) && sameWall(first.In(t.Location()), t) {
		return first, true
	}
	return time.Time{}, false
}

func sameWall(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second()
}
