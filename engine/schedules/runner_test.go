package schedules

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
)

// "Every Monday at 9 AM Europe/Paris", as an RRULE and as a cron
// expression, fires once per occurrence on a fake clock, at 9:00 in Paris
// before and after the change to summer time (28 March 2027), across a
// leader that is killed: the new leader launches the next occurrence, and
// nothing twice.
func TestEveryMondayAt9ParisAcrossAFailoverAndDST(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   Schedule
	}{
		{"rrule", Schedule{RRule: "DTSTART;TZID=Europe/Paris:20270104T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"}},
		{"cron", Schedule{Cron: "0 9 * * 1", TimeZone: "Europe/Paris"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, utc("2027-03-18T12:00:00Z"))
			sc := tc.sc
			sc.Name, sc.Enabled, sc.Launch = "weekly", true, jobSpec("report")
			if err := e.store.Create(e.ctx(), &sc); err != nil {
				t.Fatal(err)
			}
			a := e.start("a")
			a.waitLeading()
			b := e.start("b")
			e.settle()

			e.clock.Set(utc("2027-03-22T08:00:00Z")) // 09:00 CET
			e.waitJobs("weekly", "2027-03-22T08:00:00Z QUEUED")
			e.settle()

			a.kill()
			b.waitLeading()
			e.settle()
			e.clock.Set(utc("2027-03-29T07:00:00Z")) // 09:00 CEST
			e.waitJobs("weekly", "2027-03-22T08:00:00Z QUEUED", "2027-03-29T07:00:00Z QUEUED")
			e.settle()
			e.clock.Set(utc("2027-04-05T07:00:30Z"))
			e.waitJobs("weekly", "2027-03-22T08:00:00Z QUEUED", "2027-03-29T07:00:00Z QUEUED", "2027-04-05T07:00:00Z QUEUED")

			got, _, _ := e.jobs.Get(e.ctx(), JobID(sc.UID, schedule.Tick{At: utc("2027-03-29T07:00:00Z")}))
			if got == nil || got.Action != "report" || !strings.HasPrefix(got.CreatedBy, "schedule:weekly@b") {
				t.Fatalf("the job of 29 March: %+v", got)
			}
			st, _, _ := e.store.ReadState(e.ctx(), "weekly")
			if st.Tick != "2027-04-05T07:00:00Z" || st.By != "b" || st.Job == "" || st.Error != "" {
				t.Fatalf("state %+v", st)
			}
		})
	}
}

// A leader that created an occurrence's job and died before recording it:
// the next leader finds the job by its id and creates no second one.
func TestOccurrenceCreatedButNotRecorded(t *testing.T) {
	e := newEnv(t, utc("2027-03-18T12:00:00Z"))
	sc := Schedule{Name: "daily", Enabled: true, Cron: "0 6 * * *", Launch: jobSpec("report")}
	if err := e.store.Create(e.ctx(), &sc); err != nil {
		t.Fatal(err)
	}
	tick := schedule.Tick{At: utc("2027-03-19T06:00:00Z")}
	if _, err := e.jobs.Create(e.ctx(), jobs.NewJob{ID: JobID(sc.UID, tick), Action: "report", CreatedBy: "schedule:daily@dead", Tick: tick.ID()}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(utc("2027-03-19T06:00:05Z"))
	e.start("b").waitLeading()
	poll := func() string { st, _, _ := e.store.ReadState(e.ctx(), "daily"); return st.Tick }
	e.waitJobs("daily", "2027-03-19T06:00:00Z QUEUED")
	e.settle()
	if got := poll(); got != tick.ID() {
		t.Fatalf("state tick %q", got)
	}
}

// After an outage, catch-up "last" launches the latest missed occurrence
// once; "none" launches nothing until the next one.
func TestCatchUpAfterAnOutage(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	last := Schedule{Name: "last", Enabled: true, Cron: "0 * * * *", Launch: jobSpec("a")}
	none := Schedule{Name: "none", Enabled: true, Cron: "0 * * * *", CatchUp: schedule.CatchUpNone, Launch: jobSpec("a")}
	for _, sc := range []*Schedule{&last, &none} {
		if err := e.store.Create(e.ctx(), sc); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Set(utc("2027-03-01T05:30:00Z")) // five occurrences passed with no leader
	e.start("a").waitLeading()
	e.waitJobs("last", "2027-03-01T05:00:00Z QUEUED")
	e.settle()
	if got := e.scheduledJobs("none"); len(got) != 0 {
		t.Fatalf("catch-up none launched %q", got)
	}
	st, _, _ := e.store.ReadState(e.ctx(), "none")
	if !strings.Contains(st.Error, "skipped") {
		t.Fatalf("the skipped occurrences are not recorded: %+v", st)
	}
	e.clock.Set(utc("2027-03-01T06:00:00Z"))
	e.waitJobs("none", "2027-03-01T06:00:00Z QUEUED")
	e.waitJobs("last", "2027-03-01T05:00:00Z QUEUED", "2027-03-01T06:00:00Z QUEUED")
}

// A disabled schedule launches nothing; enabled again, it makes up nothing
// of the time it was disabled.
func TestDisabledScheduleDoesNotRun(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	sc := Schedule{Name: "hourly", Enabled: false, Cron: "0 * * * *", Launch: jobSpec("a")}
	if err := e.store.Create(e.ctx(), &sc); err != nil {
		t.Fatal(err)
	}
	e.start("a").waitLeading()
	e.settle()
	e.clock.Set(utc("2027-03-01T03:00:00Z"))
	e.settle()
	if got := e.scheduledJobs("hourly"); len(got) != 0 {
		t.Fatalf("a disabled schedule launched %q", got)
	}
	got, ver, err := e.store.Get(e.ctx(), "hourly")
	if err != nil {
		t.Fatal(err)
	}
	got.Enabled = true
	if err := e.store.Update(e.ctx(), got, ver); err != nil {
		t.Fatal(err)
	}
	e.settle()
	e.clock.Set(utc("2027-03-01T03:30:00Z"))
	e.settle()
	if got := e.scheduledJobs("hourly"); len(got) != 0 {
		t.Fatalf("enabling made up %q", got)
	}
	e.clock.Set(utc("2027-03-01T04:00:00Z"))
	e.waitJobs("hourly", "2027-03-01T04:00:00Z QUEUED")
}

// A launch that cannot be made — the template cannot be launched here — is
// a FAILED job per occurrence, saying why; it is not retried in a loop.
func TestRefusedLaunchLeavesAFailedJob(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	sc := Schedule{Name: "deploy", Enabled: true, Cron: "0 * * * *", Launch: Launch{Template: "gone", Values: json.RawMessage(`{"limit":"web"}`)}}
	if err := e.store.Create(e.ctx(), &sc); err != nil {
		t.Fatal(err)
	}
	e.start("a").waitLeading()
	e.settle()
	e.clock.Set(utc("2027-03-01T01:00:00Z"))
	e.waitJobs("deploy", "2027-03-01T01:00:00Z FAILED")
	e.settle()
	j, _, err := e.jobs.Get(e.ctx(), JobID(sc.UID, schedule.Tick{At: utc("2027-03-01T01:00:00Z")}))
	if err != nil || j.Action != RefusedAction || j.Target() != "template/gone" || !strings.Contains(j.StatusMessage, "template gone") {
		t.Fatalf("refused job: %+v, %v", j, err)
	}
	st, _, _ := e.store.ReadState(e.ctx(), "deploy")
	if st.Tick != "2027-03-01T01:00:00Z" || !strings.Contains(st.Error, "launch refused") {
		t.Fatalf("state %+v", st)
	}
	e.clock.Set(utc("2027-03-01T02:00:00Z"))
	e.waitJobs("deploy", "2027-03-01T01:00:00Z FAILED", "2027-03-01T02:00:00Z FAILED")
}

// Launch values are merged over a job spec's payload.
func TestJobSpecWithLaunchValues(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	prio := 7
	sc := Schedule{Name: "vals", Enabled: true, Cron: "*/10 * * * *", Launch: Launch{
		Job:    &JobSpec{Action: "deploy", Target: "site/1", Priority: &prio, Payload: json.RawMessage(`{"env":"staging","v":1}`), Timeout: "90s", Tags: []string{"nightly"}},
		Values: json.RawMessage(`{"env":"prod"}`),
	}}
	if err := e.store.Create(e.ctx(), &sc); err != nil {
		t.Fatal(err)
	}
	e.start("a").waitLeading()
	e.settle()
	e.clock.Set(utc("2027-03-01T00:10:00Z"))
	e.waitJobs("vals", "2027-03-01T00:10:00Z QUEUED")
	j, _, _ := e.jobs.Get(e.ctx(), JobID(sc.UID, schedule.Tick{At: utc("2027-03-01T00:10:00Z")}))
	var p map[string]any
	_ = json.Unmarshal(j.Payload, &p)
	if p["env"] != "prod" || p["v"] != 1.0 || j.Priority != 7 || j.Target() != "site/1" || j.Timeout != 90 || j.Tags[0] != "nightly" {
		t.Fatalf("job %+v payload %s", j, j.Payload)
	}
}

// TestScheduledSystemJob: a schedule's job of the system action is a
// system job: PENDING, holding the key system, weighing 5.
func TestScheduledSystemJob(t *testing.T) {
	e := newEnv(t, utc("2027-03-01T00:00:00Z"))
	sc := Schedule{Name: "weekly-cleanup", Enabled: true, Cron: "0 3 * * 0", Launch: Launch{
		Job: &JobSpec{Action: jobs.SystemAction, Payload: json.RawMessage(`{"kind": "cleanup_jobs", "days": 30}`)},
	}}
	if err := e.store.Create(e.ctx(), &sc); err != nil {
		t.Fatal(err)
	}
	e.start("a").waitLeading()
	e.settle()
	e.clock.Set(utc("2027-03-07T03:00:00Z"))
	e.waitJobs("weekly-cleanup", "2027-03-07T03:00:00Z PENDING")
	j, _, err := e.jobs.Get(e.ctx(), JobID(sc.UID, schedule.Tick{At: utc("2027-03-07T03:00:00Z")}))
	if err != nil {
		t.Fatal(err)
	}
	if j.Impact != jobs.SystemImpact || len(j.ConcurrencyKeys) != 1 || j.ConcurrencyKeys[0] != jobs.SystemKey {
		t.Fatalf("scheduled system job: impact %d, keys %v", j.Impact, j.ConcurrencyKeys)
	}
}
