package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/check"
)

// A schedule in the run: a stored schedule fires every few seconds
// (Config.ScheduleEvery, a cron expression with seconds), each occurrence
// a recorder job that notifies the harness's webhook receiver of its
// outcome. The schedule runner runs on the maintenance leader, so the
// controller faults land around occurrences; the kill lands in the middle
// of one (its job created, the schedule's state not yet written). Every
// occurrence due while the schedule was on must be launched exactly once.

// scheduleName names the run's schedule.
const scheduleName = "faults-every"

// ScheduleRun is what the checker needs of the run's schedule.
type ScheduleRun struct {
	Name  string        `json:"name"`
	UID   string        `json:"uid"`
	Every time.Duration `json:"every"`
	// From is when the schedule was created, Until when the harness
	// turned it off; no occurrence outside is due. Through is the last
	// occurrence due before it was turned off, which the harness waited
	// for the runner to handle: every occurrence after From up to
	// Through must be launched.
	From, Until, Through time.Time
	// Dropped are the spans of occurrences the runner said it dropped by
	// its catch-up policy (schedules.MsgOccurrencesDropped): missed while
	// no leader ran, from the first dropped up to the one run instead.
	Dropped []Interval `json:"dropped,omitempty"`
}

// OccurrenceCounts sums up the schedule's occurrences.
type OccurrenceCounts struct {
	// Due counts the occurrences due while the schedule was on; Launched
	// those launched exactly once; Dropped those the runner said it
	// dropped by catch-up (no leader ran for more than an interval).
	Due      int `json:"due"`
	Launched int `json:"launched"`
	Dropped  int `json:"dropped"`
	// Missed are occurrences due and never launched, Doubled occurrences
	// launched more than once: both violations.
	Missed  []string `json:"missed,omitempty"`
	Doubled []string `json:"doubled,omitempty"`
}

// checkScheduleEvery checks the interval a schedule of the run can have:
// whole seconds that divide a minute, so that a cron expression with
// seconds fires at multiples of it since the epoch.
func checkScheduleEvery(d time.Duration) error {
	if d%time.Second != 0 || d < time.Second || time.Minute%d != 0 {
		return fmt.Errorf("%w: schedule interval %s: give whole seconds that divide a minute (1s, 2s, 3s, 5s, 10s, …)", ErrConfig, d)
	}
	return nil
}

// setUpSchedule stores the notification template (setUpReceiver) and the
// schedule.
func (h *Harness) setUpSchedule(ctx context.Context) error {
	every := h.Plan.Config.ScheduleEvery
	payload, _ := json.Marshal(Payload{SleepMS: 50})
	notices := []string{hookName}
	if h.mail != nil {
		notices = append(notices, mailName)
	}
	prio := distributorPriority
	sc := &schedules.Schedule{
		Name: scheduleName, Enabled: true, Cron: fmt.Sprintf("*/%d * * * * *", int(every/time.Second)), TimeZone: "UTC",
		Launch: schedules.Launch{Job: &schedules.JobSpec{Action: RecordAction, Priority: &prio, Payload: payload,
			Notifications: jobs.Notifications{Success: notices, Failure: notices}}},
	}
	if err := schedules.NewStore(h.conn).Create(ctx, sc); err != nil {
		return fmt.Errorf("faults: the schedule: %w", err)
	}
	h.sched = &ScheduleRun{Name: sc.Name, UID: sc.UID, Every: every, From: sc.Created}
	return nil
}

// disableSchedule turns the schedule off before the drain, so that no
// occurrence is launched once the harness waits for every job to end.
// It first waits (30s at most) until the runner has handled the last
// occurrence due, so that one a late failover has not launched yet is
// not turned off under it; the checker reports it if it never is.
func (h *Harness) disableSchedule(ctx context.Context) error {
	store := schedules.NewStore(h.conn)
	h.sched.Through = time.Now().Truncate(h.sched.Every)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(wctx, 100*time.Millisecond, func() error {
		st, _, err := store.ReadState(wctx, scheduleName)
		if err != nil {
			return err
		}
		if st.UID != h.sched.UID || st.LastTick().Before(h.sched.Through) {
			return fmt.Errorf("the runner has handled up to %s", st.Tick)
		}
		return nil
	})
	wcancel()
	if err != nil {
		h.logf("the schedule runner did not handle the occurrence of %s within 30s: %v", h.sched.Through.Format(time.RFC3339), err)
	}
	h.sched.Until = time.Now()
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return check.Until(dctx, 200*time.Millisecond, func() error {
		sc, ver, err := store.Get(dctx, scheduleName)
		if err != nil {
			return err
		}
		if !sc.Enabled {
			return nil
		}
		sc.Enabled = false
		return store.Update(dctx, sc, ver)
	})
}

// occurrencePhase reads how far the schedule runner got with the
// occurrence due at due: its job not created, created with the state not
// written, or recorded.
func (h *Harness) occurrencePhase(ctx context.Context, due time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	store := schedules.NewStore(h.conn)
	// Read what the ensemble's leader has, not a lagging follower.
	if err := zkconn.Do(ctx, func() error {
		_, err := h.conn.Sync(store.Dir())
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	}); err != nil {
		return "", err
	}
	st, _, err := store.ReadState(ctx, scheduleName)
	if err != nil {
		return "", err
	}
	if st.UID == h.sched.UID && !st.LastTick().Before(due) {
		return tickRecorded, nil
	}
	_, _, err = h.store.Get(ctx, schedules.JobID(h.sched.UID, schedule.Tick{At: due}))
	switch {
	case err == nil:
		return tickCreated, nil
	case errors.Is(err, jobs.ErrNotFound):
		return tickBefore, nil
	}
	return "", err
}

// occurrenceJobPath is the document path of the job of the occurrence due
// at due.
func (h *Harness) occurrenceJobPath(due time.Time) (string, error) {
	uid, _ := strings.CutPrefix(schedules.JobID(h.sched.UID, schedule.Tick{At: due}), "job/")
	return h.store.DocPath(uid), nil
}

// droppedSpans reads the runner's lines that say occurrences were dropped
// by catch-up from a maintenance host's log.
func droppedSpans(path string) ([]Interval, error) {
	var out []Interval
	err := readLog(path, func(l logLine) {
		from, err1 := schedule.ParseTickID(l.FirstMissed)
		to, err2 := schedule.ParseTickID(l.Running)
		if err1 == nil && err2 == nil {
			out = append(out, Interval{From: from.At, To: to.At})
		}
	}, schedules.MsgOccurrencesDropped)
	return out, err
}

// isScheduled reports whether a job was launched by a schedule.
func isScheduled(j *jobs.Job) bool {
	return strings.HasPrefix(j.CreatedBy, schedules.CreatedBy("", ""))
}

// checkOccurrences: every occurrence of the run's schedule due while it
// was on (up to Through) was launched exactly once — one job, of the occurrence's
// deterministic id — unless the runner said it dropped it by catch-up (no
// leader for more than an interval: counted, not a violation); and no job
// was launched for an occurrence that was not due.
func checkOccurrences(r *Report, in Input) {
	s := in.Schedule
	if s == nil {
		return
	}
	r.Occurrences = &OccurrenceCounts{}
	oc := r.Occurrences
	byTick := map[string][]*jobs.Job{}
	for _, j := range in.Jobs {
		if name, _, _ := strings.Cut(strings.TrimPrefix(j.CreatedBy, "schedule:"), "@"); !isScheduled(j) || name != s.Name {
			continue
		}
		byTick[j.Tick] = append(byTick[j.Tick], j)
		t, err := schedule.ParseTickID(j.Tick)
		switch {
		case err != nil:
			r.violate("schedule %s: job %s has no occurrence (tick %q)", s.Name, j.ID, j.Tick)
		case j.ID != schedules.JobID(s.UID, t):
			r.violate("schedule %s: job %s of occurrence %s does not have the occurrence's id %s", s.Name, j.ID, j.Tick, schedules.JobID(s.UID, t))
		case !t.At.After(s.From) || t.At.After(s.Until) || t.At.Sub(t.At.Truncate(s.Every)) != 0:
			r.violate("schedule %s: job %s launched for %s, which was not due (schedule on from %s to %s, every %s)", s.Name, j.ID, j.Tick, stamp(s.From), stamp(s.Until), s.Every)
		}
	}
	// Occurrences due: after the creation, up to the last one before the
	// schedule was turned off.
	for t := s.From.Truncate(s.Every).Add(s.Every); !t.After(s.Through); t = t.Add(s.Every) {
		id := schedule.Tick{At: t}.ID()
		oc.Due++
		switch n := len(byTick[id]); {
		case n == 1:
			oc.Launched++
		case n > 1:
			ids := make([]string, n)
			for i, j := range byTick[id] {
				ids[i] = j.ID + " by " + j.CreatedBy
			}
			d := fmt.Sprintf("%s: %d jobs: %s", id, n, strings.Join(ids, ", "))
			oc.Doubled = append(oc.Doubled, d)
			r.violate("schedule %s: occurrence %s", s.Name, d)
		case dropped(s.Dropped, t):
			oc.Dropped++
		default:
			oc.Missed = append(oc.Missed, id)
			r.violate("schedule %s: occurrence %s was never launched, and the runner did not say it dropped it", s.Name, id)
		}
	}
	sort.Strings(oc.Missed)
}

// dropped reports whether t is in a span the runner said it dropped:
// from the first missed occurrence up to, not including, the one it ran.
func dropped(spans []Interval, t time.Time) bool {
	for _, sp := range spans {
		if !t.Before(sp.From) && t.Before(sp.To) {
			return true
		}
	}
	return false
}
