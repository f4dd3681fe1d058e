package schedule

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustParse(t *testing.T, spec Spec) Schedule {
	t.Helper()
	s, err := Parse(spec)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", spec, err)
	}
	return s
}

// ticks returns the n ticks after from, as tick IDs.
func ticks(s Schedule, from time.Time, n int) []string {
	var out []string
	for t := from; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, Tick{At: t}.ID())
	}
	return out
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string // part of the message
	}{
		{"nothing", Spec{}, "no interval, cron expression or rrule"},
		{"both", Spec{Interval: time.Minute, Cron: "* * * * *"}, "both"},
		{"sub-second interval", Spec{Interval: 500 * time.Millisecond}, "whole number of seconds"},
		{"fractional interval", Spec{Interval: 1500 * time.Millisecond}, "whole number of seconds"},
		{"negative interval", Spec{Interval: -time.Second}, "whole number of seconds"},
		{"zone on an interval", Spec{Interval: time.Minute, TimeZone: "Europe/Zurich"}, "cron expressions only"},
		{"zone on @every", Spec{Cron: "@every 1m", TimeZone: "Europe/Zurich"}, "elapsed time"},
		{"bad @every", Spec{Cron: "@every soon"}, "bad schedule"},
		{"bad cron", Spec{Cron: "61 * * * *"}, "cron expression"},
		{"too many fields", Spec{Cron: "0 0 0 * * * *"}, "cron expression"},
		{"unknown zone", Spec{Cron: "0 9 * * *", TimeZone: "Mars/Olympus"}, "IANA"},
		{"local zone", Spec{Cron: "0 9 * * *", TimeZone: "Local"}, "differs from host to host"},
		{"two zones", Spec{Cron: "CRON_TZ=Europe/Zurich 0 9 * * *", TimeZone: "Europe/Paris"}, "give one"},
		{"never fires", Spec{Cron: "0 0 30 2 *"}, "never fires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%+v) = %v; want ErrSpec saying %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		from string
		want []string
	}{
		{
			name: "interval aligned to the epoch, strictly after",
			spec: Spec{Interval: 15 * time.Second},
			from: "2026-05-04T10:00:07Z",
			want: []string{"2026-05-04T10:00:15Z", "2026-05-04T10:00:30Z", "2026-05-04T10:00:45Z"},
		},
		{
			name: "interval from a tick",
			spec: Spec{Interval: 15 * time.Second},
			from: "2026-05-04T10:00:15Z",
			want: []string{"2026-05-04T10:00:30Z"},
		},
		{
			name: "interval that does not divide an hour",
			spec: Spec{Interval: 7 * time.Minute},
			from: "2026-05-04T10:00:00Z",
			want: []string{"2026-05-04T10:03:00Z", "2026-05-04T10:10:00Z"}, // the epoch, not the hour, is the anchor
		},
		{
			name: "@every is an interval",
			spec: Spec{Cron: "@every 15s"},
			from: "2026-05-04T10:00:07Z",
			want: []string{"2026-05-04T10:00:15Z", "2026-05-04T10:00:30Z"},
		},
		{
			name: "five fields, UTC by default",
			spec: Spec{Cron: "*/20 9 * * *"},
			from: "2026-05-04T09:30:00Z",
			want: []string{"2026-05-04T09:40:00Z", "2026-05-05T09:00:00Z"},
		},
		{
			name: "six fields: seconds first",
			spec: Spec{Cron: "30 * * * * *"},
			from: "2026-05-04T10:00:30Z",
			want: []string{"2026-05-04T10:01:30Z", "2026-05-04T10:02:30Z"},
		},
		{
			name: "descriptor in a zone",
			spec: Spec{Cron: "@daily", TimeZone: "Europe/Zurich"},
			from: "2026-05-04T10:00:00Z",
			want: []string{"2026-05-04T22:00:00Z", "2026-05-05T22:00:00Z"},
		},
		{
			name: "CRON_TZ prefix, weekdays",
			spec: Spec{Cron: "CRON_TZ=Europe/Zurich 0 9 * * 1-5"},
			from: "2026-05-08T08:00:00Z", // Friday 10:00 in Zurich
			want: []string{"2026-05-11T07:00:00Z", "2026-05-12T07:00:00Z"},
		},
		{
			name: "TZ prefix matching the TimeZone field",
			spec: Spec{Cron: "TZ=America/New_York @hourly", TimeZone: "America/New_York"},
			from: "2026-05-04T10:10:00Z",
			want: []string{"2026-05-04T11:00:00Z"},
		},
		{
			name: "zone in winter and in summer",
			spec: Spec{Cron: "0 12 1 * *", TimeZone: "Europe/Zurich"},
			from: "2026-02-15T00:00:00Z",
			want: []string{"2026-03-01T11:00:00Z", "2026-04-01T10:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.spec)
			if got := ticks(s, utc(tt.from), len(tt.want)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s from %s: %q, want %q", s, tt.from, got, tt.want)
			}
		})
	}
}

func TestDaylightSaving(t *testing.T) {
	// Europe/Zurich 2026: 29 March 02:00 CET → 03:00 CEST (01:00Z);
	// 25 October 03:00 CEST → 02:00 CET (01:00Z).
	// America/New_York 2026: 8 March 02:00 EST → 03:00 EDT (07:00Z).
	tests := []struct {
		name string
		spec Spec
		from string
		want []string
	}{
		{
			name: "spring forward: the skipped 02:30 runs at 03:30 CEST",
			spec: Spec{Cron: "30 2 * * *", TimeZone: "Europe/Zurich"},
			from: "2026-03-27T12:00:00Z",
			want: []string{
				"2026-03-28T01:30:00Z", // 02:30 CET
				"2026-03-29T01:30:00Z", // 03:30 CEST, made up for 02:30
				"2026-03-30T00:30:00Z", // 02:30 CEST
			},
		},
		{
			name: "spring forward: every skipped minute of the hour is made up once",
			spec: Spec{Cron: "*/30 2 * * *", TimeZone: "Europe/Zurich"},
			from: "2026-03-28T12:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"},
		},
		{
			name: "spring forward: a time after the gap is untouched",
			spec: Spec{Cron: "0 3 * * *", TimeZone: "Europe/Zurich"},
			from: "2026-03-28T12:00:00Z",
			want: []string{"2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"},
		},
		{
			name: "spring forward in New York",
			spec: Spec{Cron: "30 2 * * *", TimeZone: "America/New_York"},
			from: "2026-03-07T12:00:00Z",
			want: []string{"2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"},
		},
		{
			name: "fall back: the repeated 02:30 runs once",
			spec: Spec{Cron: "30 2 * * *", TimeZone: "Europe/Zurich"},
			from: "2026-10-24T12:00:00Z",
			want: []string{
				"2026-10-25T00:30:00Z", // 02:30 CEST; not again at 02:30 CET (01:30Z)
				"2026-10-26T01:30:00Z", // 02:30 CET
			},
		},
		{
			name: "fall back: the repeated hour of a fixed-hour job runs once",
			spec: Spec{Cron: "0,30 2 * * *", TimeZone: "Europe/Zurich"},
			from: "2026-10-24T12:00:00Z",
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z"},
		},
		{
			name: "fall back: an hourly job runs every real hour",
			spec: Spec{Cron: "0 * * * *", TimeZone: "Europe/Zurich"},
			from: "2026-10-24T23:30:00Z",
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"},
		},
		{
			name: "spring forward: an hourly job runs every real hour",
			spec: Spec{Cron: "0 * * * *", TimeZone: "Europe/Zurich"},
			from: "2026-03-28T23:30:00Z",
			want: []string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		},
		{
			name: "intervals ignore daylight saving",
			spec: Spec{Interval: time.Hour},
			from: "2026-10-24T23:30:00Z",
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.spec)
			if got := ticks(s, utc(tt.from), len(tt.want)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s from %s: %q, want %q", s, tt.from, got, tt.want)
			}
		})
	}
}

// A daily job runs exactly once on every calendar day of a year with both
// transitions, in several zones, at a strictly increasing time.
func TestDailyJobOncePerDayAllYear(t *testing.T) {
	for _, zone := range []string{"Europe/Zurich", "America/New_York", "Australia/Lord_Howe", "UTC"} {
		for _, expr := range []string{"30 2 * * *", "0 0 * * *", "15 1,2 * * *"} {
			s := mustParse(t, Spec{Cron: expr, TimeZone: zone})
			loc, _ := time.LoadLocation(zone)
			perDay := map[string]int{}
			prev := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
			for t0 := prev; ; {
				n := s.Next(t0)
				if !n.After(t0) {
					t.Fatalf("%s: Next(%s) = %s, not after", s, t0, n)
				}
				if n.Year() > 2026 {
					break
				}
				perDay[n.In(loc).Format("2006-01-02")]++
				t0 = n
			}
			want := 1
			if expr == "15 1,2 * * *" {
				want = 2
			}
			if len(perDay) != 365 {
				t.Errorf("%s: ran on %d days of 2026, want 365", s, len(perDay))
			}
			for day, n := range perDay {
				if n != want {
					t.Errorf("%s: %d runs on %s, want %d", s, n, day, want)
				}
			}
		}
	}
}

func TestTickIdentity(t *testing.T) {
	zurich, _ := time.LoadLocation("Europe/Zurich")
	// Two instances parse the same spec and compute from different moments
	// and zones: the same tick, the same ID.
	a := mustParse(t, Spec{Cron: "30 2 * * *", TimeZone: "Europe/Zurich"})
	b := mustParse(t, Spec{Cron: "CRON_TZ=Europe/Zurich 30 2 * * *"})
	ta := a.Next(time.Date(2026, 3, 28, 23, 0, 0, 0, zurich))
	tb := b.Next(utc("2026-03-29T00:59:59Z").In(time.FixedZone("elsewhere", -7*3600)))
	if (Tick{At: ta}).ID() != (Tick{At: tb}).ID() {
		t.Fatalf("IDs differ: %s and %s", ta, tb)
	}
	if id := (Tick{At: ta}).ID(); id != "2026-03-29T01:30:00Z" {
		t.Fatalf("ID = %s", id)
	}
	back, err := ParseTickID("2026-03-29T01:30:00Z")
	if err != nil || !back.At.Equal(ta) {
		t.Fatalf("ParseTickID = %v, %v; want %s", back, err, ta)
	}
	if _, err := ParseTickID("yesterday"); err == nil {
		t.Fatal("ParseTickID accepted garbage")
	}
}

// Away from transitions the result is robfig/cron's own.
func TestSameAsRobfigAwayFromTransitions(t *testing.T) {
	exprs := []string{"*/7 * * * *", "15 3 * * 1-5", "0 0 1,15 * *", "@weekly", "0 30 9 * * *", "5 4 * 6 sun", "0 12 29 2 *"}
	for _, zone := range []string{"UTC", "Europe/Zurich", "Asia/Kolkata", "America/Sao_Paulo"} {
		loc, _ := time.LoadLocation(zone)
		for _, expr := range exprs {
			ours := mustParse(t, Spec{Cron: expr, TimeZone: zone})
			theirs, err := cronParser.Parse(expr)
			if err != nil {
				t.Fatal(err)
			}
			theirs.(*cron.SpecSchedule).Location = loc
			for from := time.Date(2026, 6, 1, 0, 0, 0, 0, loc); from.Month() == time.June; from = from.Add(97 * time.Minute) {
				a, b := ours.Next(from), theirs.Next(from)
				if !a.Equal(b) {
					t.Fatalf("%s from %s: %s, robfig/cron %s", ours, from, a, b)
				}
			}
		}
	}
}

// A schedule naming every hour fires exactly once per real hour across both
// transitions of a year.
func TestHourlyJobEveryRealHourAllYear(t *testing.T) {
	for _, zone := range []string{"Europe/Zurich", "America/New_York"} {
		s := mustParse(t, Spec{Cron: "0 * * * *", TimeZone: zone})
		prev := s.Next(utc("2025-12-31T23:30:00Z"))
		n := 1
		for {
			next := s.Next(prev)
			if next.UTC().Year() > 2026 {
				break
			}
			if d := next.Sub(prev); d != time.Hour {
				t.Fatalf("%s: %s after %s: %s apart, want 1h", s, next, prev, d)
			}
			prev = next
			n++
		}
		if n != 365*24 {
			t.Errorf("%s: %d ticks in 2026, want %d", s, n, 365*24)
		}
	}
}
