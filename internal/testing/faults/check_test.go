package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at returns t0 + ms milliseconds.
func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func ns(ms int) int64 { return at(ms).UnixNano() }

func run(id, job string, attempt int, exec string, start, end int) Run {
	r := Run{ID: id, Job: job, Attempt: attempt, Executor: exec, Start: ns(start)}
	if end >= 0 {
		r.End, r.Outcome = ns(end), OutcomeDone
	}
	return r
}

func doc(id string, st jobs.State, exec string, attempt int) *jobs.Job {
	return &jobs.Job{ID: id, State: st, Executor: exec, Attempt: attempt}
}

// base is a clean run: two jobs, each run once, both SUCCESS.
func base() Input {
	return Input{
		Plan:      &Plan{Config: Config{SessionTimeout: 2 * time.Second}.WithDefaults()},
		Submitted: map[string]Submission{"job/a": {Source: SourceWorkload, At: at(0)}, "job/b": {Source: SourceProbe, At: at(0)}},
		Jobs:      []*jobs.Job{doc("job/a", jobs.Success, "x1", 1), doc("job/b", jobs.Success, "x2", 1)},
		Runs:      []Run{run("r1", "job/a", 1, "x1#1", 100, 200), run("r2", "job/b", 1, "x2#1", 150, 300)},
		Processes: []Process{{ID: "x1#1", Instance: "x1", Role: RoleExecutor}, {ID: "x2#1", Instance: "x2", Role: RoleExecutor}},
		Finished:  map[string]int{"job/a": 1, "job/b": 1},
		Started:   at(0), Ended: at(60_000),
	}
}

func violations(r *Report) string { return strings.Join(r.Violations, "\n") }

func TestCheckCleanRun(t *testing.T) {
	r := Check(base())
	if !r.OK() {
		t.Fatalf("violations on a clean run:\n%s", violations(r))
	}
	if r.Jobs.Submitted != 2 || r.Jobs.Workload != 1 || r.Jobs.Probes != 1 || r.Jobs.Final["SUCCESS"] != 2 || r.Runs.Total != 2 || r.Runs.Reruns != 0 {
		t.Fatalf("counts: %+v %+v", r.Jobs, r.Runs)
	}
	if !strings.Contains(r.Summary(), "no job lost") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
}

func TestCheckJobPromises(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(in *Input)
		want   string
	}{
		"missing document":                {func(in *Input) { in.Jobs = in.Jobs[:1] }, "job lost: job/b"},
		"left running":                    {func(in *Input) { in.Jobs[1].State = jobs.Running }, "job left RUNNING: job/b"},
		"left queued":                     {func(in *Input) { in.Jobs[1].State = jobs.Queued }, "job left QUEUED: job/b"},
		"two final writes":                {func(in *Input) { in.Finished["job/a"] = 2 }, "job/a: 2 final writes"},
		"success without a completed run": {func(in *Input) { in.Jobs[0].Attempt = 2 }, "no run of that attempt"},
		"success by another executor":     {func(in *Input) { in.Jobs[0].Executor = "x3" }, "no run of that attempt"},
		"canceled run is no success": {func(in *Input) {
			in.Runs[0].Outcome = OutcomeCanceled
		}, "no run of that attempt"},
		"job nobody submitted": {func(in *Input) {
			in.Jobs = append(in.Jobs, doc("job/c", jobs.Success, "x1", 1))
		}, "job/c (SUCCESS, created by \"\") was never submitted"},
		"queue not empty": {func(in *Input) { in.QueueTaken = 1 }, "queue not empty"},
		"direct queue not empty": {func(in *Input) {
			in.DirectQueues = map[string]int{"x1": 0, "x2": 2}
		}, "direct queue of executor x2 holds 2 entries"},
		"unknown executor": {func(in *Input) {
			in.Runs = append(in.Runs, run("r9", "job/a", 1, "ghost#1", 500, 600))
		}, "\"ghost#1\", which the harness did not start"},
	} {
		t.Run(name, func(t *testing.T) {
			in := base()
			tc.change(&in)
			r := Check(in)
			if !strings.Contains(violations(r), tc.want) {
				t.Fatalf("want a violation with %q, got:\n%s", tc.want, violations(r))
			}
		})
	}
}

func TestCheckFailedJobIsFinalNotViolation(t *testing.T) {
	in := base()
	in.Jobs[0].State, in.Jobs[0].StatusMessage = jobs.Failed, "executor lost (x1, attempt 3 of 3)"
	r := Check(in)
	if !r.OK() || len(r.Jobs.Unsuccessful) != 1 || !strings.Contains(r.Jobs.Unsuccessful[0], "attempt 3 of 3") {
		t.Fatalf("violations %v, unsuccessful %v", r.Violations, r.Jobs.Unsuccessful)
	}
}

func TestCheckOverlaps(t *testing.T) {
	const S = 2000
	for name, tc := range map[string]struct {
		first, second Run
		pauses        []Interval // of x1#1
		exited        int        // of x1#1, ms; 0: still running
		overlap       bool
		allowed       bool
	}{
		"one after the other": {
			first: run("r1", "job/a", 1, "x1#1", 100, 200), second: run("r2", "job/a", 2, "x2#1", 200, 300),
		},
		"at once, nothing explains it": {
			first: run("r1", "job/a", 1, "x1#1", 100, 5000), second: run("r2", "job/a", 2, "x2#1", 3000, 3100),
			overlap: true,
		},
		"first frozen past its session": {
			first: run("r1", "job/a", 1, "x1#1", 100, 5000), second: run("r2", "job/a", 2, "x2#1", 1000+S, 3100),
			pauses:  []Interval{{From: at(1000), To: at(1000 + S + 1000)}},
			overlap: true, allowed: true,
		},
		"first still frozen at the end": {
			first: run("r1", "job/a", 1, "x1#1", 100, 5000), second: run("r2", "job/a", 2, "x2#1", 1000+S, 3100),
			pauses:  []Interval{{From: at(1000)}},
			overlap: true, allowed: true,
		},
		"second began before the session could expire": {
			first: run("r1", "job/a", 1, "x1#1", 100, 5000), second: run("r2", "job/a", 2, "x2#1", 1500, 3100),
			pauses:  []Interval{{From: at(1000), To: at(1000 + S + 1000)}},
			overlap: true,
		},
		"freeze shorter than the session timeout": {
			first: run("r1", "job/a", 1, "x1#1", 100, 5000), second: run("r2", "job/a", 2, "x2#1", 2900, 3100),
			pauses:  []Interval{{From: at(1000), To: at(1000 + S - 100)}},
			overlap: true,
		},
		"freeze after the second began": {
			first: run("r1", "job/a", 1, "x1#1", 100, 9000), second: run("r2", "job/a", 2, "x2#1", 500, 600),
			pauses:  []Interval{{From: at(1000), To: at(1000 + S + 1000)}},
			overlap: true,
		},
		"frozen executor starts its run late, after the next owner's": {
			first: run("r2", "job/a", 2, "x2#1", 2900, 3100), second: run("r1", "job/a", 1, "x1#1", 3000, 3050),
			pauses:  []Interval{{From: at(500), To: at(3000)}},
			overlap: true, allowed: true,
		},
		"run started long after an earlier freeze": {
			first: run("r1", "job/a", 1, "x1#1", 10000, 15000), second: run("r2", "job/a", 2, "x2#1", 12000, 12100),
			pauses:  []Interval{{From: at(500), To: at(3000)}},
			overlap: true,
		},
		"run started after a freeze, second too late to be explained by it": {
			first: run("r1", "job/a", 1, "x1#1", 3010, 4500), second: run("r2", "job/a", 2, "x2#1", 4400, 5000),
			pauses:  []Interval{{From: at(500), To: at(3000)}},
			overlap: true,
		},
		"late start of a stale run nothing explains": {
			first: run("r2", "job/a", 2, "x2#1", 2900, 3100), second: run("r1", "job/a", 1, "x1#1", 3000, 3050),
			overlap: true,
		},
		"killed run, rerun after the kill": {
			first: run("r1", "job/a", 1, "x1#1", 100, -1), second: run("r2", "job/a", 2, "x2#1", 4000, 4100),
			exited: 1500,
		},
		"killed run, rerun before the kill": {
			first: run("r1", "job/a", 1, "x1#1", 100, -1), second: run("r2", "job/a", 2, "x2#1", 1000, 1100),
			exited: 1500, overlap: true,
		},
		"run with no end whose process lives": {
			first: run("r1", "job/a", 1, "x1#1", 100, -1), second: run("r2", "job/a", 2, "x2#1", 4000, 4100),
			overlap: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := base()
			in.Runs = []Run{tc.first, tc.second, in.Runs[1]}
			in.Jobs[0].Executor, in.Jobs[0].Attempt = "x2", 2
			in.Processes[0].Pauses = tc.pauses
			if tc.exited > 0 {
				in.Processes[0].Exited, in.Processes[0].Killed = at(tc.exited), at(tc.exited-1)
			}
			r := Check(in)
			if !tc.overlap {
				if len(r.Overlaps) != 0 || !r.OK() {
					t.Fatalf("overlaps %+v, violations:\n%s", r.Overlaps, violations(r))
				}
				return
			}
			if len(r.Overlaps) != 1 {
				t.Fatalf("want one overlap, got %+v", r.Overlaps)
			}
			o := r.Overlaps[0]
			// The first is the earlier owner, attempt 1, whatever started first.
			if o.Allowed != tc.allowed || o.Job != "job/a" || o.First.ID != "r1" || o.Second.ID != "r2" {
				t.Fatalf("overlap %+v", o)
			}
			if r.OK() != tc.allowed {
				t.Fatalf("OK() = %v with allowed = %v: %v", r.OK(), tc.allowed, r.Violations)
			}
			if !strings.Contains(r.Summary(), o.Evidence) {
				t.Fatalf("the summary does not report the overlap:\n%s", r.Summary())
			}
		})
	}
}

func TestCheckTicks(t *testing.T) {
	in := base()
	tick := func(id, tick, by string) *jobs.Job {
		j := doc(id, jobs.Success, "x1", 1)
		j.Tick, j.CreatedBy, j.Created = tick, by, at(5000)
		in.Runs = append(in.Runs, run("r-"+id, id, 1, "x1#1", 6000, 6100))
		return j
	}
	in.Jobs = append(in.Jobs, tick("job/t1", "T1", "faults@d1#1"), tick("job/t2", "T2", "faults@d1#1"))
	in.Faults = []FaultEvent{{N: 1, Kind: KillDistributorLeader, At: at(4000), TickPhase: tickCreated, Target: "d1#1", NewLeader: at(6300)}}
	in.TicksResumed = 1
	if r := Check(in); !r.OK() || r.Ticks.Ticks != 2 || r.Jobs.Distributor != 2 || r.Ticks.MidTickKills != 1 || r.Ticks.Resumed != 1 ||
		r.Faults[0].NextTick != Millis(time.Second) || r.Faults[0].NewLeader != Millis(2300*time.Millisecond) {
		t.Fatalf("ticks %+v, faults %+v, violations:\n%s", r.Ticks, r.Faults, violations(r))
	}
	in.Jobs = append(in.Jobs, tick("job/t3", "T2", "faults@d2#1"))
	r := Check(in)
	if len(r.Ticks.Duplicates) != 1 || !strings.Contains(violations(r), "tick faults T2: 2 jobs") {
		t.Fatalf("ticks %+v, violations:\n%s", r.Ticks, violations(r))
	}
}

func TestMeasureFaults(t *testing.T) {
	in := base()
	// x1#1 is killed at 1000 while running job/a; job/a runs again on x2
	// at 3500; the probe job/b starts at 1200; x1#2 starts at 4200 after
	// the restart at 4000.
	in.Runs = []Run{
		run("r1", "job/a", 1, "x1#1", 500, -1),
		run("r2", "job/b", 1, "x2#1", 1200, 1300),
		run("r3", "job/a", 2, "x2#1", 3500, 3600),
		run("r4", "job/c", 1, "x1#2", 4200, 4300),
	}
	in.Submitted["job/c"] = Submission{Source: SourceWorkload}
	in.Jobs = []*jobs.Job{doc("job/a", jobs.Success, "x2", 2), doc("job/b", jobs.Success, "x2", 1), doc("job/c", jobs.Success, "x1", 1)}
	in.Finished["job/c"] = 1
	in.Processes[0].Exited, in.Processes[0].Killed = at(1010), at(1000)
	in.Processes = append(in.Processes, Process{ID: "x1#2", Instance: "x1", Role: RoleExecutor})
	in.Faults = []FaultEvent{{N: 1, Kind: KillExecutor, At: at(1000), HealAt: at(4000), Healed: at(4100), Target: "x1#1", Restarted: "x1#2", Probe: "job/b"}}
	r := Check(in)
	if !r.OK() {
		t.Fatalf("violations:\n%s", violations(r))
	}
	f := r.Faults[0]
	if f.ProbeRecovery != Millis(200*time.Millisecond) || f.InFlight != 1 || f.Rerun != 1 ||
		f.RerunAfter != Millis(2500*time.Millisecond) || f.Rejoin != Millis(200*time.Millisecond) || f.NextTick != notMeasured {
		t.Fatalf("fault result %+v", f)
	}
	if r.Runs.Reruns != 1 || r.Runs.Unfinished != 1 || r.Runs.JobsRerun != 1 {
		t.Fatalf("runs %+v", r.Runs)
	}
}

func TestReadRecords(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rec.log")
	lines := `{"ev":"start","run":"a","job":"job/1","attempt":1,"executor":"x1#1","pid":1,"t":100}
{"ev":"start","run":"b","job":"job/1","attempt":2,"executor":"x2#1","pid":2,"t":300}
{"ev":"end","run":"a","job":"job/1","attempt":1,"executor":"x1#1","pid":1,"t":200,"outcome":"done"}
{"ev":"start","run":"c","job":"job/2","attempt":1,"ex`
	if err := os.WriteFile(p, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadRecords(p)
	if err != nil {
		t.Fatal(err) // a torn last line is a killed writer, not an error
	}
	runs, err := Runs(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Run{
		{ID: "a", Job: "job/1", Attempt: 1, Executor: "x1#1", Start: 100, End: 200, Outcome: OutcomeDone},
		{ID: "b", Job: "job/1", Attempt: 2, Executor: "x2#1", Start: 300},
	}
	if !reflect.DeepEqual(runs, want) {
		t.Fatalf("runs %+v", runs)
	}
	if err := os.WriteFile(p, []byte("garbage\n"+lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecords(p); !errors.Is(err, ErrRecord) {
		t.Fatalf("a bad line in the middle: %v", err)
	}
	if _, err := Runs([]Record{{Event: EventEnd, Run: "z", Job: "job/1"}}); !errors.Is(err, ErrRecord) {
		t.Fatalf("an end without a start: %v", err)
	}
}

func TestPlanIsReproducible(t *testing.T) {
	cfg := Config{Seed: 42, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true}
	a, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewPlan(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two plans")
	}
	c, _ := NewPlan(Config{Seed: 43, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true})
	if reflect.DeepEqual(a.Faults, c.Faults) {
		t.Fatal("two seeds gave the same faults")
	}
	if a.Jobs() != 600 || len(a.Faults) != len(Kinds) {
		t.Fatalf("%d jobs, %d faults", a.Jobs(), len(a.Faults))
	}
	kinds := map[Kind]bool{}
	ids := map[string]bool{}
	for i, f := range a.Faults {
		kinds[f.Kind] = true
		ids[f.Probe] = true
		if i > 0 && f.At < a.Faults[i-1].At+a.Faults[i-1].Hold+settleTime {
			t.Fatalf("fault %d at %s leaves the one before no time to recover", i+1, f.At)
		}
		if f.At+f.Hold+settleTime > a.Config.Duration {
			t.Fatalf("fault %d at %s, held %s, does not end within the workload of %s", i+1, f.At, f.Hold, a.Config.Duration)
		}
		if f.Kind == PauseExecutor && f.Hold <= a.Config.SessionTimeout {
			t.Fatalf("a pause of %s is not longer than the session timeout", f.Hold)
		}
	}
	// Remote faults come while the workload is submitted: they wait for a
	// run of the remote executor, and there is none once it has drained.
	for seed := uint64(1); seed <= 400; seed++ {
		p, err := NewPlan(Config{Seed: seed, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true, Faults: 30, Duration: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		last := p.Batches[len(p.Batches)-1].At
		for i, f := range p.Faults {
			if f.Kind.remoteFault() && f.At > last-remoteLead {
				t.Fatalf("seed %d: fault %d (%s) at %s, after the workload's last batch at %s less %s", seed, i+1, f.Kind, f.At, last, remoteLead)
			}
			if i > 0 && f.At < p.Faults[i-1].At+p.Faults[i-1].Hold+settleTime {
				t.Fatalf("seed %d: fault %d at %s leaves the one before no time to recover", seed, i+1, f.At)
			}
		}
	}
	for _, k := range Kinds {
		if !kinds[k] {
			t.Fatalf("no %s in %v", k, a.Faults)
		}
	}
	for _, b := range a.Batches {
		for _, j := range b.Jobs {
			ids[j.ID] = true
		}
	}
	if len(ids) != 600+len(Kinds) {
		t.Fatalf("%d distinct ids for 600 jobs and %d probes", len(ids), len(Kinds))
	}
	// More jobs leave the faults as they were.
	d, _ := NewPlan(Config{Seed: 42, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true, Jobs: 5000})
	if !reflect.DeepEqual(a.Faults, d.Faults) {
		t.Fatal("the number of jobs changed the fault schedule")
	}
	if _, err := NewPlan(Config{Seed: 1, Faults: 20, Duration: time.Minute}); !errors.Is(err, ErrConfig) {
		t.Fatalf("20 faults in a minute: %v", err)
	}
	if _, err := NewPlan(Config{Seed: 1, Executors: 1}); !errors.Is(err, ErrConfig) {
		t.Fatalf("one executor: %v", err)
	}
}

// withHistory gives the clean run a history that holds every version once.
func withHistory() Input {
	in := base()
	in.Jobs[0].Version, in.Jobs[1].Version = 3, 2
	in.History = &History{
		Indexed: map[string]int64{"job/a": 3, "job/b": 2},
		States:  map[string]map[int64]int{"job/a": {1: 1, 2: 1, 3: 1}, "job/b": {1: 1, 2: 1}},
	}
	return in
}

func TestCheckHistory(t *testing.T) {
	r := Check(withHistory())
	if !r.OK() || r.History == nil || r.History.Versions != 5 {
		t.Fatalf("a complete history: %+v\n%s", r.History, violations(r))
	}
	if !strings.Contains(r.Summary(), "5 job versions") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
	for name, tc := range map[string]struct {
		change func(h *History)
		want   string
	}{
		"outbox left":         {func(h *History) { h.Outbox = 2 }, "2 outbox entries left"},
		"refused":             {func(h *History) { h.Failed = 1 }, "1 outbox entries refused"},
		"stale document":      {func(h *History) { h.Indexed["job/a"] = 2 }, "job/a is at version 3 in ZooKeeper and 2 in the jobs index"},
		"never indexed":       {func(h *History) { delete(h.Indexed, "job/b") }, "job/b is at version 2 in ZooKeeper and 0"},
		"version missing":     {func(h *History) { delete(h.States["job/a"], 2) }, "version 2 of job/a has no state event"},
		"version twice":       {func(h *History) { h.States["job/b"][1] = 2 }, "version 1 of job/b has 2 state events"},
		"version from beyond": {func(h *History) { h.States["job/b"][7] = 1 }, "state event of version 7"},
	} {
		t.Run(name, func(t *testing.T) {
			in := withHistory()
			tc.change(in.History)
			if v := violations(Check(in)); !strings.Contains(v, tc.want) {
				t.Fatalf("violations:\n%s\nwant one with %q", v, tc.want)
			}
		})
	}
}

// A workflow of the workload: its node jobs count as submitted, must have
// their nodes' ids and succeed, and the workflow must succeed.
func TestCheckWorkflows(t *testing.T) {
	wfID := "job/00000000-0000-4000-8000-000000000001"
	mk := func(state jobs.State, nodeIDs map[string]string) Input {
		in := base()
		in.Submitted[wfID] = Submission{Source: SourceWorkflow, At: at(0)}
		wf := &jobs.Job{ID: wfID, State: state, Launch: jobs.Launch{Kind: jobs.KindWorkflow,
			Workflow: &jobs.Workflow{Nodes: []jobs.WorkflowNode{{ID: "a", Template: "t", Success: []string{"b"}}, {ID: "b", Template: "t"}}}}}
		in.Jobs = append(in.Jobs, wf)
		for i, node := range []string{"a", "b"} {
			id := nodeIDs[node]
			if id == "" {
				id = jobs.NodeJobID(wfID, node)
			}
			in.Jobs = append(in.Jobs, &jobs.Job{ID: id, State: jobs.Success, Executor: "x1", Attempt: 1, ParentJob: wfID,
				Launch: jobs.Launch{WorkflowNode: node}})
			in.Runs = append(in.Runs, run(fmt.Sprintf("w%d", i), id, 1, "x1#1", 400+i*100, 450+i*100))
			in.Finished[id] = 1
		}
		return in
	}
	if r := Check(mk(jobs.Success, nil)); !r.OK() || r.Jobs.Workflow != 3 {
		t.Fatalf("a clean workflow: %d workflow jobs counted, violations:\n%s", r.Jobs.Workflow, violations(r))
	}
	if r := Check(mk(jobs.Failed, nil)); !strings.Contains(violations(r), "ended FAILED") {
		t.Fatalf("a failed workflow:\n%s", violations(r))
	}
	r := Check(mk(jobs.Success, map[string]string{"b": "job/00000000-0000-4000-8000-0000000000bb"}))
	if v := violations(r); !strings.Contains(v, "does not have its node's id") || !strings.Contains(v, "node b has no job") {
		t.Fatalf("a node job with another id:\n%s", v)
	}
}

// TestDefaultPlansFit: with every kind on, the default duration (and the
// release size's) holds every seed's schedule (each fault's hold plus its time to recover).
func TestDefaultPlansFit(t *testing.T) {
	for seed := uint64(1); seed <= 2000; seed++ {
		if _, err := NewPlan(Config{Seed: seed, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true}); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// The release size: 30 faults over 10 minutes.
		if _, err := NewPlan(Config{Seed: seed, Distributor: true, Index: true, Controllers: true, Remote: true, Mail: true,
			Jobs: 50, Executors: 5, Duration: 10 * time.Minute, Faults: 30}); err != nil {
			t.Fatalf("release size, seed %d: %v", seed, err)
		}
	}
}

// TestCheckRemoteCuts: a remote run cut mid-job must be run again, with a
// higher attempt; a cut run with no end line ends when its plugin was
// seen gone, so a rerun after that is no overlap, and one before it is.
func TestCheckRemoteCuts(t *testing.T) {
	cutAt := 150
	remote := func(rerunStart int, gone int) Input {
		in := base()
		in.Processes = append(in.Processes, Process{ID: "r1#1", Instance: "r1", Role: RoleExecutor})
		in.Jobs[0] = doc("job/a", jobs.Success, "x1", 2)
		in.Runs = []Run{run("cut", "job/a", 1, "r1#1", 100, -1), run("again", "job/a", 2, "x1#1", rerunStart, rerunStart+100), in.Runs[1]}
		in.Finished["job/a"] = 1
		in.Faults = []FaultEvent{{N: 1, Kind: CutRemoteStream, At: at(cutAt), HealAt: at(gone), Healed: at(rerunStart), Job: "job/a", Run: "cut", Executor: "r1#1", RunGone: at(gone)}}
		return in
	}
	r := Check(remote(3500, 160))
	if !r.OK() {
		t.Fatalf("a cut run rerun after its plugin was gone:\n%s", violations(r))
	}
	if len(r.Faults) != 1 || r.Faults[0].Rerun != 1 || r.Faults[0].RerunAfter != Millis(time.Duration(3500-cutAt)*time.Millisecond) {
		t.Fatalf("figures: %+v", r.Faults)
	}
	// The rerun began before the cut run's plugin was gone: two at once.
	if r := Check(remote(155, 160)); !strings.Contains(violations(r), "ran on two executors at once") {
		t.Fatalf("an overlap with a cut run went unseen:\n%s", violations(r))
	}
	// Never run again: the lost-job policy was not applied.
	in := remote(3500, 160)
	in.Runs = []Run{in.Runs[0], in.Runs[2]}
	in.Jobs[0] = doc("job/a", jobs.Failed, "r1", 1)
	if r := Check(in); !strings.Contains(violations(r), "never ran again") {
		t.Fatalf("a cut job that never ran again went unseen:\n%s", violations(r))
	}
	// A run that was over before the cut lost nothing.
	in = remote(3500, 160)
	in.Runs = []Run{run("cut", "job/a", 1, "r1#1", 100, 120), in.Runs[2]}
	in.Jobs[0] = doc("job/a", jobs.Success, "r1", 1)
	if r := Check(in); !r.OK() {
		t.Fatalf("a run over before the cut:\n%s", violations(r))
	}
}
