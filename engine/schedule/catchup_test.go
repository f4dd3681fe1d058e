package schedule

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestParseCatchUp(t *testing.T) {
	for in, want := range map[string]CatchUp{"": CatchUpLast, "last": CatchUpLast, "none": CatchUpNone} {
		if got, err := ParseCatchUp(in); err != nil || got != want {
			t.Errorf("ParseCatchUp(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseCatchUp("all"); !errors.Is(err, ErrSpec) {
		t.Errorf("ParseCatchUp(all) = %v, want ErrSpec", err)
	}
}

func TestDue(t *testing.T) {
	every15s := Spec{Interval: 15 * time.Second}
	daily := Spec{Cron: "30 2 * * *", TimeZone: "Europe/Zurich"}
	tests := []struct {
		name        string
		spec        Spec
		last, now   string
		policy      CatchUp
		run         string // tick ID to run, "" for none
		firstMissed string // "" for none
		wake        string
	}{
		{
			name: "on time", spec: every15s, policy: CatchUpLast,
			last: "2026-05-04T10:00:00Z", now: "2026-05-04T10:00:15Z",
			run: "2026-05-04T10:00:15Z", wake: "2026-05-04T10:00:30Z",
		},
		{
			name: "on time, none", spec: every15s, policy: CatchUpNone,
			last: "2026-05-04T10:00:00Z", now: "2026-05-04T10:00:16Z",
			run: "2026-05-04T10:00:15Z", wake: "2026-05-04T10:00:30Z",
		},
		{
			name: "nothing due yet", spec: every15s, policy: CatchUpLast,
			last: "2026-05-04T10:00:15Z", now: "2026-05-04T10:00:29Z",
			wake: "2026-05-04T10:00:30Z",
		},
		{
			name: "outage: only the latest missed tick runs", spec: every15s, policy: CatchUpLast,
			last: "2026-05-04T10:00:00Z", now: "2026-05-04T10:05:07Z",
			run: "2026-05-04T10:05:00Z", firstMissed: "2026-05-04T10:00:15Z", wake: "2026-05-04T10:05:15Z",
		},
		{
			name: "outage, none: a tick nearer the next one is missed", spec: every15s, policy: CatchUpNone,
			last: "2026-05-04T10:00:00Z", now: "2026-05-04T10:05:08Z",
			firstMissed: "2026-05-04T10:00:15Z", wake: "2026-05-04T10:05:15Z",
		},
		{
			name: "outage, none: the tick just due still runs", spec: every15s, policy: CatchUpNone,
			last: "2026-05-04T10:00:00Z", now: "2026-05-04T10:05:07Z",
			run: "2026-05-04T10:05:00Z", firstMissed: "2026-05-04T10:00:15Z", wake: "2026-05-04T10:05:15Z",
		},
		{
			name: "never ran: start with the next tick", spec: every15s, policy: CatchUpLast,
			now:  "2026-05-04T10:00:07Z",
			wake: "2026-05-04T10:00:15Z",
		},
		{
			name: "last tick ahead of this clock: never repeated", spec: every15s, policy: CatchUpLast,
			last: "2026-05-04T10:00:30Z", now: "2026-05-04T10:00:28Z",
			wake: "2026-05-04T10:00:45Z",
		},
		{
			name: "daily job down three days: yesterday's tick runs once", spec: daily, policy: CatchUpLast,
			last: "2026-05-01T00:30:00Z", now: "2026-05-04T10:00:00Z",
			run: "2026-05-04T00:30:00Z", firstMissed: "2026-05-02T00:30:00Z", wake: "2026-05-05T00:30:00Z",
		},
		{
			name: "daily job, none: late by hours is missed", spec: daily, policy: CatchUpNone,
			last: "2026-05-03T00:30:00Z", now: "2026-05-04T03:00:00Z",
			firstMissed: "2026-05-04T00:30:00Z", wake: "2026-05-05T00:30:00Z",
		},
		{
			name: "daily job, none: late by less than the grace runs", spec: daily, policy: CatchUpNone,
			last: "2026-05-03T00:30:00Z", now: "2026-05-04T00:30:40Z",
			run: "2026-05-04T00:30:00Z", wake: "2026-05-05T00:30:00Z",
		},
		{
			name: "failover across the spring-forward night", spec: daily, policy: CatchUpLast,
			last: "2026-03-28T01:30:00Z", now: "2026-03-29T01:30:05Z",
			run: "2026-03-29T01:30:00Z", wake: "2026-03-30T00:30:00Z",
		},
		{
			name: "fall-back night: the repeated 02:30 is not due again", spec: daily, policy: CatchUpLast,
			last: "2026-10-25T00:30:00Z", now: "2026-10-25T01:30:05Z",
			wake: "2026-10-26T01:30:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.spec)
			var last time.Time
			if tt.last != "" {
				last = utc(tt.last)
			}
			d := Due(s, last, utc(tt.now), tt.policy)
			var run, missed string
			if d.Run {
				run = d.Tick.ID()
			}
			if !d.FirstMissed.IsZero() {
				missed = (Tick{At: d.FirstMissed}).ID()
			}
			wake := (Tick{At: d.Wake}).ID()
			if run != tt.run || missed != tt.firstMissed || wake != tt.wake {
				t.Fatalf("Due(%s, last %s, now %s, %s) = run %q, first missed %q, wake %s; want run %q, first missed %q, wake %s",
					s, tt.last, tt.now, tt.policy, run, missed, wake, tt.run, tt.firstMissed, tt.wake)
			}
		})
	}
}

// A year-long outage of a per-second schedule costs a few dozen steps.
func TestDueAfterALongOutage(t *testing.T) {
	steps := 0
	s := countingSchedule{mustParse(t, Spec{Cron: "* * * * * *"}), &steps}
	d := Due(s, utc("2025-05-04T10:00:00Z"), utc("2026-05-04T10:00:00.5Z"), CatchUpLast)
	if !d.Run || d.Tick.ID() != "2026-05-04T10:00:00Z" {
		t.Fatalf("Due = %+v", d)
	}
	if steps > 200 {
		t.Fatalf("%d calls of Next for one decision", steps)
	}
}

type countingSchedule struct {
	Schedule
	n *int
}

func (c countingSchedule) Next(t time.Time) time.Time { *c.n++; return c.Schedule.Next(t) }

func TestFakeClockTimers(t *testing.T) {
	start := utc("2026-05-04T10:00:00Z")
	c := NewFakeClock(start)
	a := c.NewTimer(10 * time.Second)
	b := c.After(5 * time.Second)
	stopped := c.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report a pending timer once")
	}
	if c.Timers() != 2 {
		t.Fatalf("%d timers pending, want 2", c.Timers())
	}
	c.Advance(4 * time.Second)
	select {
	case <-b:
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Second)
	if got := <-b; !got.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("After delivered %s", got)
	}
	if a.Reset(time.Minute) != true {
		t.Fatal("Reset of a pending timer should report it pending")
	}
	c.Advance(10 * time.Second)
	select {
	case <-a.C():
		t.Fatal("a reset timer fired at its old time")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	c.Set(start.Add(time.Hour))
	<-a.C()
	if c.Timers() != 0 {
		t.Fatalf("%d timers pending, want 0", c.Timers())
	}
	if !c.Now().Equal(start.Add(time.Hour)) {
		t.Fatalf("Now = %s", c.Now())
	}
}

// The loop a distributor runs, on a fake clock: ticks run in order, an
// outage is made up by one run, and every decision is one wake-up.
func TestLoopOnAFakeClock(t *testing.T) {
	s := mustParse(t, Spec{Interval: time.Minute})
	c := NewFakeClock(utc("2026-05-04T10:00:30Z"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ran := make(chan string, 100)
	last := utc("2026-05-04T10:00:00Z")
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d := Due(s, last, c.Now(), CatchUpLast)
			if d.Run {
				ran <- d.Tick.ID()
				last = d.Tick.At
			}
			if SleepUntil(loopCtx, c, d.Wake) != nil {
				return
			}
		}
	}()
	step := func(to string) {
		if err := c.WaitForTimers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		c.Set(utc(to))
	}
	step("2026-05-04T10:01:00Z")
	step("2026-05-04T10:02:00.2Z")
	step("2026-05-04T13:07:10Z") // three hours without a leader
	step("2026-05-04T13:08:00Z")
	if err := c.WaitForTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	close(ran)
	var got []string
	for id := range ran {
		got = append(got, id)
	}
	want := []string{"2026-05-04T10:01:00Z", "2026-05-04T10:02:00Z", "2026-05-04T13:07:00Z", "2026-05-04T13:08:00Z"}
	if len(got) != len(want) {
		t.Fatalf("ran %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %q, want %q", got, want)
		}
	}
}

func TestSystemClockSleepUntil(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SleepUntil(ctx, System, System.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
		t.Fatalf("SleepUntil with a cancelled context = %v", err)
	}
	if err := SleepUntil(context.Background(), System, System.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SleepUntil a past time = %v", err)
	}
}
