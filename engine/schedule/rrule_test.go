package schedule

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRRuleAWXFormat(t *testing.T) {
	// "Every Monday at 9 AM" in Paris: CET in winter, CEST in summer.
	s := mustParse(t, Spec{RRule: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"})
	if got := Location(s).String(); got != "Europe/Paris" {
		t.Fatalf("zone %s, want Europe/Paris", got)
	}
	got := ticks(s, utc("2027-03-17T00:00:00Z"), 3)
	want := []string{
		"2027-03-22T08:00:00Z", // 09:00 CET
		"2027-03-29T07:00:00Z", // 09:00 CEST, the day after the change
		"2027-04-05T07:00:00Z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: %q, want %q", s, got, want)
	}
	// Nothing before DTSTART.
	if got := ticks(s, utc("2026-06-01T00:00:00Z"), 1); got[0] != "2027-01-04T08:00:00Z" {
		t.Fatalf("first occurrence %s, want DTSTART", got[0])
	}
	// Lines or spaces, the same rule.
	s2 := mustParse(t, Spec{RRule: "DTSTART;TZID=Europe/Paris:20270104T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO\n"})
	if a, b := s.Next(utc("2027-05-01T00:00:00Z")), s2.Next(utc("2027-05-01T00:00:00Z")); !a.Equal(b) {
		t.Fatalf("%s and %s differ: %s, %s", s, s2, a, b)
	}
	// UTC start, COUNT and UNTIL end the rule.
	c := mustParse(t, Spec{RRule: "DTSTART:20270101T120000Z RRULE:FREQ=DAILY;COUNT=2"})
	if got := ticks(c, utc("2026-12-31T00:00:00Z"), 5); !reflect.DeepEqual(got, []string{"2027-01-01T12:00:00Z", "2027-01-02T12:00:00Z"}) {
		t.Fatalf("COUNT=2: %q", got)
	}
	u := mustParse(t, Spec{RRule: "DTSTART:20270101T120000Z RRULE:FREQ=DAILY;UNTIL=20270102T235959Z"})
	if got := ticks(u, utc("2026-12-31T00:00:00Z"), 5); len(got) != 2 {
		t.Fatalf("UNTIL: %q", got)
	}
	// EXDATE drops an occurrence.
	x := mustParse(t, Spec{RRule: "DTSTART:20270101T120000Z RRULE:FREQ=DAILY EXDATE:20270102T120000Z"})
	if got := ticks(x, utc("2026-12-31T00:00:00Z"), 2); !reflect.DeepEqual(got, []string{"2027-01-01T12:00:00Z", "2027-01-03T12:00:00Z"}) {
		t.Fatalf("EXDATE: %q", got)
	}
}

func TestRRuleRejects(t *testing.T) {
	tests := []struct {
		name, rule, want string
	}{
		{"no dtstart", "RRULE:FREQ=DAILY", "no DTSTART"},
		{"naive dtstart", "DTSTART:20270101T090000 RRULE:FREQ=DAILY", "no time zone"},
		{"two dtstarts", "DTSTART:20270101T090000Z DTSTART:20270102T090000Z RRULE:FREQ=DAILY", "more than one DTSTART"},
		{"no rrule", "DTSTART:20270101T090000Z", "no RRULE"},
		{"secondly", "DTSTART:20270101T090000Z RRULE:FREQ=SECONDLY", "SECONDLY"},
		{"count", "DTSTART:20270101T090000Z RRULE:FREQ=DAILY;COUNT=1000", "at most 999"},
		{"exrule", "DTSTART:20270101T090000Z RRULE:FREQ=DAILY EXRULE:FREQ=WEEKLY", "EXRULE"},
		{"unknown property", "DTSTART:20270101T090000Z RRULE:FREQ=DAILY FOO:1", "unknown property"},
		{"bad frequency", "DTSTART:20270101T090000Z RRULE:FREQ=FORTNIGHTLY", "FORTNIGHTLY"},
		{"unknown zone", "DTSTART;TZID=Mars/Olympus:20270101T090000 RRULE:FREQ=DAILY", "Mars/Olympus"},
		{"never fires", "DTSTART:20270101T090000Z RRULE:FREQ=DAILY;UNTIL=20260101T000000Z", "never fires"},
		{"too long", "DTSTART:20270101T090000Z RRULE:FREQ=DAILY;BYHOUR=" + strings.Repeat("1,", 3000) + "1", "byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Spec{RRule: tt.rule})
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v; want ErrSpec saying %q", tt.rule, err, tt.want)
			}
		})
	}
	for _, spec := range []Spec{
		{RRule: "DTSTART:20270101T090000Z RRULE:FREQ=DAILY", Cron: "* * * * *"},
		{RRule: "DTSTART:20270101T090000Z RRULE:FREQ=DAILY", TimeZone: "Europe/Paris"},
	} {
		if _, err := Parse(spec); !errors.Is(err, ErrSpec) {
			t.Fatalf("Parse(%+v) = %v, want ErrSpec", spec, err)
		}
	}
}

func TestRRuleDaylightSaving(t *testing.T) {
	// Europe/Paris 2027: 28 March 02:00 CET → 03:00 CEST (01:00Z);
	// 31 October 03:00 CEST → 02:00 CET (01:00Z).
	tests := []struct {
		name, rule, from string
		want             []string
	}{
		{
			name: "spring forward: the skipped 02:30 runs at 03:30 CEST",
			rule: "DTSTART;TZID=Europe/Paris:20270101T023000 RRULE:FREQ=DAILY",
			from: "2027-03-26T12:00:00Z",
			want: []string{"2027-03-27T01:30:00Z", "2027-03-28T01:30:00Z", "2027-03-29T00:30:00Z"},
		},
		{
			name: "fall back: the repeated 02:30 runs once, in summer time",
			rule: "DTSTART;TZID=Europe/Paris:20270101T023000 RRULE:FREQ=DAILY",
			from: "2027-10-29T12:00:00Z",
			want: []string{"2027-10-30T00:30:00Z", "2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"},
		},
		{
			name: "spring forward: hourly, once per real hour",
			rule: "DTSTART;TZID=Europe/Paris:20270101T003000 RRULE:FREQ=HOURLY",
			from: "2027-03-27T23:00:00Z",
			want: []string{"2027-03-27T23:30:00Z", "2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z", "2027-03-28T02:30:00Z"},
		},
		{
			name: "fall back: hourly skips the repeated hour's second pass",
			rule: "DTSTART;TZID=Europe/Paris:20270101T003000 RRULE:FREQ=HOURLY",
			from: "2027-10-30T23:00:00Z",
			want: []string{"2027-10-30T23:30:00Z", "2027-10-31T00:30:00Z", "2027-10-31T02:30:00Z", "2027-10-31T03:30:00Z"},
		},
		{
			name: "weekly at 9 across both changes keeps 9 o'clock",
			rule: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO",
			from: "2027-10-24T12:00:00Z",
			want: []string{"2027-10-25T07:00:00Z", "2027-11-01T08:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, Spec{RRule: tt.rule})
			if got := ticks(s, utc(tt.from), len(tt.want)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s from %s: %q, want %q", s, tt.from, got, tt.want)
			}
		})
	}
}

// Moving an HOURLY or MINUTELY rule's start forward gives the occurrences
// the full expansion gives, for intervals that do and do not divide a day,
// across both transitions.
func TestRRuleFastForwardMatchesFullExpansion(t *testing.T) {
	for _, rule := range []string{
		"DTSTART;TZID=Europe/Paris:20270101T003000 RRULE:FREQ=HOURLY",
		"DTSTART;TZID=Europe/Paris:20270101T003000 RRULE:FREQ=HOURLY;INTERVAL=5",
		"DTSTART;TZID=Europe/Paris:20270101T023000 RRULE:FREQ=HOURLY;INTERVAL=7;BYDAY=MO,WE",
		"DTSTART;TZID=America/New_York:20270101T000700 RRULE:FREQ=MINUTELY;INTERVAL=97",
		"DTSTART:20270101T000000Z RRULE:FREQ=MINUTELY;INTERVAL=10;BYHOUR=9",
	} {
		s := mustParse(t, Spec{RRule: rule}).(*rruleSchedule)
		if s.fast == nil {
			t.Fatalf("%s: no fast path", rule)
		}
		for _, from := range []string{"2027-03-20T00:00:00Z", "2027-10-29T13:17:00Z", "2027-06-01T00:00:00Z"} {
			at := utc(from)
			for range 40 {
				fast := s.Next(at)
				full := fullNext(s, at)
				if !fast.Equal(full) {
					t.Fatalf("%s after %s: fast %s, full %s", rule, at, fast, full)
				}
				at = fast
			}
		}
	}
}

// fullNext is Next without the fast path.
func fullNext(s *rruleSchedule, after time.Time) time.Time {
	cp := *s
	cp.fast = nil
	return cp.Next(after)
}

// A minutely rule started years ago answers at once: its start moves
// forward instead of expanding every minute since (which takes seconds).
func TestRRuleOldMinutelyRuleIsCheap(t *testing.T) {
	s := mustParse(t, Spec{RRule: "DTSTART;TZID=Europe/Paris:20200101T000000 RRULE:FREQ=MINUTELY;INTERVAL=1"})
	got := ticks(s, utc("2030-06-01T10:00:30Z"), 2)
	want := []string{"2030-06-01T10:01:00Z", "2030-06-01T10:02:00Z"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

// The catch-up rule works on rrules as on cron: after a long outage one
// occurrence, the latest, is due.
func TestRRuleDue(t *testing.T) {
	s := mustParse(t, Spec{RRule: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"})
	d := Due(s, utc("2027-01-04T08:00:00Z"), utc("2027-03-30T12:00:00Z"), CatchUpLast)
	if !d.Run || d.Tick.ID() != "2027-03-29T07:00:00Z" || d.FirstMissed.IsZero() {
		t.Fatalf("Due after an outage: %+v", d)
	}
	d = Due(s, utc("2027-01-04T08:00:00Z"), utc("2027-03-30T12:00:00Z"), CatchUpNone)
	if d.Run || d.Wake.UTC().Format(time.RFC3339) != "2027-04-05T07:00:00Z" {
		t.Fatalf("Due with catch-up none: %+v", d)
	}
}
