package faults

import (
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
)

const testUID = "6a1f0a3e-8c1b-4d5e-9f00-0123456789ab"

// occurrenceJob is the job a leader launched for the occurrence at t,
// run once on x1, ended SUCCESS, notifying the hook of its outcome.
func occurrenceJob(t time.Time, by string) (*jobs.Job, Run) {
	tick := schedule.Tick{At: t}
	j := doc(schedules.JobID(testUID, tick), jobs.Success, "x1", 1)
	j.Tick, j.CreatedBy, j.Created = tick.ID(), schedules.CreatedBy(scheduleName, by), t
	j.Notifications = &jobs.Notifications{Success: []string{hookName}, Failure: []string{hookName}}
	return j, Run{ID: "run-" + tick.ID(), Job: j.ID, Attempt: 1, Executor: "x1#1", Start: t.UnixNano(), End: t.Add(50 * time.Millisecond).UnixNano(), Outcome: OutcomeDone}
}

// withSchedule gives the clean run a schedule every 5s on from t0 for
// 28s: occurrences at 5s … 25s are due, each launched once.
func withSchedule() Input {
	in := base()
	in.Schedule = &ScheduleRun{Name: scheduleName, UID: testUID, Every: 5 * time.Second, From: t0, Until: at(28_000), Through: at(25_000)}
	for s := 5; s <= 25; s += 5 {
		j, r := occurrenceJob(at(s*1000), "c1#1")
		in.Jobs = append(in.Jobs, j)
		in.Runs = append(in.Runs, r)
		in.Finished[j.ID] = 1
	}
	return in
}

func TestCheckOccurrencesClean(t *testing.T) {
	r := Check(withSchedule())
	if !r.OK() {
		t.Fatalf("violations on a clean run:\n%s", violations(r))
	}
	if o := r.Occurrences; o == nil || o.Due != 5 || o.Launched != 5 || o.Dropped != 0 {
		t.Fatalf("occurrences: %+v", r.Occurrences)
	}
	if r.Jobs.Scheduled != 5 || r.Ticks.Ticks != 0 {
		t.Fatalf("schedule jobs counted as %d, distributor ticks %d", r.Jobs.Scheduled, r.Ticks.Ticks)
	}
	if !strings.Contains(r.Summary(), "5 occurrences due, 5 launched once") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
}

func TestCheckOccurrences(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(in *Input)
		want   string
	}{
		"an occurrence never launched": {func(in *Input) {
			in.Jobs = append(in.Jobs[:3], in.Jobs[4:]...) // 10s
		}, "occurrence 2026-01-02T03:04:15Z was never launched"},
		"an occurrence launched twice": {func(in *Input) {
			j := *in.Jobs[3]
			j.ID = "job/00000000-0000-4000-8000-000000000001"
			in.Jobs = append(in.Jobs, &j)
			in.Submitted[j.ID] = Submission{Source: SourceWorkload}
		}, "occurrence 2026-01-02T03:04:15Z: 2 jobs"},
		"a job without the occurrence's id": {func(in *Input) {
			in.Jobs[2].Tick = schedule.Tick{At: at(7000)}.ID()
		}, "does not have the occurrence's id"},
		"a job of an occurrence not due": {func(in *Input) {
			j, _ := occurrenceJob(at(30_000), "c2#1")
			in.Jobs = append(in.Jobs, j)
		}, "which was not due"},
		"the last occurrence never launched": {func(in *Input) {
			in.Jobs = in.Jobs[:len(in.Jobs)-1] // 25s
		}, "03:04:30Z was never launched"},
	} {
		t.Run(name, func(t *testing.T) {
			in := withSchedule()
			tc.change(&in)
			if got := violations(Check(in)); !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q do not mention %q", got, tc.want)
			}
		})
	}
}

func TestCheckOccurrencesDroppedByCatchUp(t *testing.T) {
	in := withSchedule()
	in.Jobs = append(in.Jobs[:3], in.Jobs[4:]...) // 10s never launched
	// The runner said it dropped 10s and ran 15s: no leader for a while.
	in.Schedule.Dropped = []Interval{{From: at(10_000), To: at(15_000)}}
	r := Check(in)
	if !r.OK() {
		t.Fatalf("a drop the runner logged is a violation:\n%s", violations(r))
	}
	if o := r.Occurrences; o.Dropped != 1 || o.Launched != 4 {
		t.Fatalf("occurrences: %+v", o)
	}
	// The span ends before the occurrence it ran: a later one missing is
	// still a violation.
	in.Jobs = append(in.Jobs[:3], in.Jobs[4:]...) // 15s too
	if got := violations(Check(in)); !strings.Contains(got, "03:04:20Z was never launched") {
		t.Fatalf("violations: %q", got)
	}
}

// withNotices gives withSchedule a receiver that got each outcome once.
func withNotices() Input {
	in := withSchedule()
	in.Notices = &Notices{Hook: hookName}
	for _, j := range in.Jobs {
		if j.Tick != "" {
			in.Notices.Deliveries = append(in.Notices.Deliveries, Delivery{ID: j.ID + "-success", Job: j.ID, Event: jobs.NotifySuccess})
		}
	}
	return in
}

func TestCheckNoticesClean(t *testing.T) {
	in := withNotices()
	// A retry after a lost answer delivers one key twice: counted, named,
	// no violation.
	in.Notices.Deliveries = append(in.Notices.Deliveries, in.Notices.Deliveries[0])
	r := Check(in)
	if !r.OK() {
		t.Fatalf("violations:\n%s", violations(r))
	}
	n := r.Notices
	if n.Expected != 5 || n.Delivered != 5 || n.Deliveries != 6 || n.Duplicates != 1 || len(n.DuplicateKeys) != 1 ||
		!strings.HasPrefix(n.DuplicateKeys[0], in.Notices.Deliveries[0].ID+" ×2") {
		t.Fatalf("notices: %+v", n)
	}
	if !strings.Contains(r.Summary(), "duplicates: 1 ("+in.Notices.Deliveries[0].ID+" ×2)") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
}

func TestCheckNotices(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(in *Input)
		want   string
	}{
		"a notice never delivered": {func(in *Input) {
			in.Notices.Deliveries = in.Notices.Deliveries[1:]
		}, "its success notice never arrived"},
		"two notices for one outcome": {func(in *Input) {
			d := in.Notices.Deliveries[0]
			d.ID += "-again"
			in.Notices.Deliveries = append(in.Notices.Deliveries, d)
		}, "came as 2 notices"},
		"a notice of the wrong outcome": {func(in *Input) {
			in.Notices.Deliveries[0].Event = jobs.NotifyFailure
		}, "which ended SUCCESS"},
		"a notice of a job that does not notify": {func(in *Input) {
			in.Notices.Deliveries = append(in.Notices.Deliveries, Delivery{ID: "k", Job: "job/a", Event: jobs.NotifySuccess})
		}, "does not notify faults-hook"},
		"a notice of no job": {func(in *Input) {
			in.Notices.Deliveries = append(in.Notices.Deliveries, Delivery{ID: "k", Job: "job/zz", Event: jobs.NotifySuccess})
		}, "which does not exist"},
		"left in the outbox": {func(in *Input) { in.Notices.Pending = 2 }, "2 notices left undelivered"},
		"parked":             {func(in *Input) { in.Notices.Parked = 1 }, "1 notices parked"},
		"refused":            {func(in *Input) { in.Notices.Refused = 1 }, "refused 1 requests"},
	} {
		t.Run(name, func(t *testing.T) {
			in := withNotices()
			tc.change(&in)
			if got := violations(Check(in)); !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q do not mention %q", got, tc.want)
			}
		})
	}
}

func TestCheckPartitionedZKNodeStopsServing(t *testing.T) {
	in := base()
	in.Faults = []FaultEvent{{N: 1, Kind: PartitionZK, Scope: "leader", Target: "zk2", At: at(1000), HealAt: at(5000), Healed: at(6000)}}
	if r := Check(in); !r.OK() {
		t.Fatalf("a node that stopped serving: %s", violations(r))
	}
	in.Faults[0].StillServing = true
	if got := violations(Check(in)); !strings.Contains(got, "zk2, cut off from the others for 4s, still served") {
		t.Fatalf("violations: %q", got)
	}
}

func TestCheckProcessThatCrashed(t *testing.T) {
	in := base()
	in.Processes = append(in.Processes,
		Process{ID: "c1#1", Instance: "c1", Role: RoleController, PID: 7, Exited: at(500)},
		Process{ID: "c2#1", Instance: "c2", Role: RoleController, Exited: at(500), Killed: at(499)},
		Process{ID: "c2#2", Instance: "c2", Role: RoleController, Exited: at(900), NotReady: true},
		Process{ID: "c2#3", Instance: "c2", Role: RoleController, Exited: at(9000), Stopped: at(8000)})
	got := violations(Check(in))
	if !strings.Contains(got, "controller c1#1 (pid 7) exited on its own") || strings.Count(got, "exited on its own") != 1 {
		t.Fatalf("violations: %q", got)
	}
}

func TestPlanScheduleNeedsTheControllers(t *testing.T) {
	p, err := NewPlan(Config{Seed: 1, Distributor: true, Index: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Config.ScheduleEvery > 0 {
		t.Fatalf("a schedule every %s without controllers", p.Config.ScheduleEvery)
	}
	for _, f := range p.Faults {
		if f.Kind == ReceiverDown || f.Kind.controllerFault() {
			t.Fatalf("%s without controllers", f.Kind)
		}
	}
	if _, err := NewPlan(Config{Seed: 1, Controllers: true, ScheduleEvery: 7 * time.Second}); err == nil {
		t.Fatal("a schedule every 7s (it does not divide a minute) was accepted")
	}
}
