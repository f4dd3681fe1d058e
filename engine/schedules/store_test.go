package schedules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/zkconn"
)

func TestValidate(t *testing.T) {
	base := func() Schedule {
		return Schedule{Name: "s", UID: "0b9c2f4e-5a7b-4c1d-9e8f-0123456789ab", Cron: "0 9 * * 1", TimeZone: "Europe/Paris", Launch: jobSpec("report")}
	}
	ok := base()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Schedule)
		want string
	}{
		{"bad name", func(s *Schedule) { s.Name = "a/b" }, "name"},
		{"no rule", func(s *Schedule) { s.Cron = "" }, "one of the two"},
		{"two rules", func(s *Schedule) { s.RRule = "DTSTART:20270101T000000Z RRULE:FREQ=DAILY" }, "one of the two"},
		{"bad cron", func(s *Schedule) { s.Cron = "61 * * * *" }, "cron expression"},
		{"bad zone", func(s *Schedule) { s.TimeZone = "Mars/Olympus" }, "IANA"},
		{"naive rrule", func(s *Schedule) { s.Cron, s.TimeZone, s.RRule = "", "", "DTSTART:20270101T090000 RRULE:FREQ=DAILY" }, "no time zone"},
		{"catch-up", func(s *Schedule) { s.CatchUp = "all" }, "catch-up"},
		{"no launch", func(s *Schedule) { s.Launch = Launch{} }, "a workflow or a job"},
		{"both launches", func(s *Schedule) { s.Launch.Template = "t" }, "a workflow or a job"},
		{"bad template", func(s *Schedule) { s.Launch = Launch{Template: "a b"} }, "template name"},
		{"values not an object", func(s *Schedule) { s.Launch.Values = json.RawMessage(`[1]`) }, "JSON object"},
		{"bad action", func(s *Schedule) { s.Launch.Job.Action = "a b" }, "action"},
		{"bad timeout", func(s *Schedule) { s.Launch.Job.Timeout = "soon" }, "timeout"},
		{"bad priority", func(s *Schedule) { p := 5000; s.Launch.Job.Priority = &p }, "priority"},
		{"bad uid", func(s *Schedule) { s.UID = "x" }, "uid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			j := *s.Launch.Job
			s.Launch.Job = &j
			tt.edit(&s)
			err := s.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
}

func TestStore(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	ctx := e.ctx()
	sc := &Schedule{Name: "nightly", Cron: "0 2 * * *", Launch: jobSpec("backup")}
	if err := e.store.Create(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Create(ctx, &Schedule{Name: "nightly", Cron: "0 2 * * *", Launch: jobSpec("backup")}); !errors.Is(err, ErrExists) {
		t.Fatalf("creating twice: %v", err)
	}
	got, ver, err := e.store.Get(ctx, "nightly")
	if err != nil || got.UID == "" || got.Enabled || !got.Since.Equal(utc("2027-03-01T00:00:00Z")) {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// Every write changes the directory's data: one watch sees them all.
	_, before, _ := e.conn.Get(e.store.Dir())
	e.clock.Set(utc("2027-03-02T00:00:00Z"))
	got.Description = "backups"
	if err := e.store.Update(ctx, got, ver); err != nil {
		t.Fatal(err)
	}
	_, after, _ := e.conn.Get(e.store.Dir())
	if after.Version == before.Version {
		t.Fatal("an update did not touch the directory")
	}
	if err := e.store.Update(ctx, got, ver); !errors.Is(err, ErrConflict) {
		t.Fatalf("an update of a stale read: %v", err)
	}
	got, ver, _ = e.store.Get(ctx, "nightly")
	if !got.Since.Equal(utc("2027-03-01T00:00:00Z")) {
		t.Fatalf("a description change moved Since to %s", got.Since)
	}
	got.Enabled = true
	_ = e.store.Update(ctx, got, ver)
	got, ver, _ = e.store.Get(ctx, "nightly")
	if !got.Since.Equal(utc("2027-03-02T00:00:00Z")) {
		t.Fatalf("enabling did not move Since: %s", got.Since)
	}
	got.UID = "0b9c2f4e-5a7b-4c1d-9e8f-0123456789ab"
	if err := e.store.Update(ctx, got, ver); !errors.Is(err, ErrInvalid) {
		t.Fatalf("changing the uid: %v", err)
	}

	// What is stored by hand is validated on read.
	if _, err := e.conn.Create(e.store.path("broken"), []byte(`{"name":"broken"}`), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.Create(e.store.path("unknown-field"), []byte(`{"name":"unknown-field","bogus":1}`), 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	list, problems, err := e.store.List(ctx)
	if err != nil || len(list) != 1 || len(problems) != 2 {
		t.Fatalf("List = %d, %+v, %v", len(list), problems, err)
	}
	if err := e.store.Delete(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Delete(ctx, "nightly"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	// A schedule created again under the same name is a new schedule.
	again := &Schedule{Name: "nightly", Cron: "0 2 * * *", Launch: jobSpec("backup")}
	if err := e.store.Create(ctx, again); err != nil || again.UID == sc.UID {
		t.Fatalf("created again: uid %s (was %s), %v", again.UID, sc.UID, err)
	}
}

func TestNextOccurrences(t *testing.T) {
	sc := Schedule{RRule: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"}
	got := sc.Next(utc("2027-03-17T00:00:00Z"), 5)
	if len(got) != 5 || !got[0].Equal(utc("2027-03-22T08:00:00Z")) || !got[1].Equal(utc("2027-03-29T07:00:00Z")) {
		t.Fatalf("Next = %v", got)
	}
	if got[1].Location().String() != "Europe/Paris" || got[1].Hour() != 9 {
		t.Fatalf("occurrences are not in the schedule's zone: %s", got[1])
	}
	once := Schedule{RRule: "DTSTART:20270101T000000Z RRULE:FREQ=DAILY;COUNT=2"}
	if got := once.Next(utc("2026-01-01T00:00:00Z"), 5); len(got) != 2 {
		t.Fatalf("a rule with COUNT=2 has %d occurrences", len(got))
	}
}
