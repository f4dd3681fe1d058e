//go:build faults

package faults

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var (
	flagSoak         = flag.Bool("soak", false, "run TestSoak (make test-soak sets it)")
	flagSoakDuration = flag.Duration("soak.duration", time.Hour, "length of the soak's workload and fault schedule")
	flagSoakRate     = flag.Float64("soak.rate", SoakRate, "workload jobs submitted per second (default: half the measured throughput of 3 executors × 3 threads)")
	flagSoakEvery    = flag.Duration("soak.every", 30*time.Second, "one fault in every slot of this length, the kinds in turn")
	flagSoakSample   = flag.Duration("soak.sample", time.Minute, "how often every daemon's memory and goroutines are sampled")
)

// SoakRate is the soak's default workload, in jobs per second: half the
// throughput measured with the fault workload's job mix on 3 executors ×
// 3 threads (docs/faults.md, "The soak").
const SoakRate = 7.0

// TestSoak plays a long workload at half the measured throughput with a
// fault in every -soak.every slot, the kinds in turn, and samples every
// daemon's memory and goroutines every -soak.sample. It fails on what
// TestFaultInjection fails on, and on a daemon whose memory or goroutines
// grew (SoakResult: not flat), or queues not drained at the end.
func TestSoak(t *testing.T) {
	if !*flagSoak {
		t.Skip("the soak runs with -soak (make test-soak)")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64() % 1_000_000_000
	}
	t.Logf("soak seed %d — run it again with: make test-soak SOAK_ARGS='-faults.seed=%d'", seed, seed)
	out := *flagOut
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "jobengine-soak-"); err != nil {
			t.Fatal(err)
		}
	} else if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		t.Fatalf("-faults.out %s is not empty: give a new directory", out)
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("output: %s (kept)", out)

	bin, plugins, err := Build(filepath.Join(out, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	d := *flagSoakDuration
	every := *flagSoakEvery
	nf := int((d - leadIn) / every)
	window := d * 9 / 10
	// A workflow and a sliced launch every two minutes or so.
	launches := max(1, int(d/(2*time.Minute)))
	cfg := Config{
		Seed: seed, Jobs: int(*flagSoakRate * window.Seconds()), Executors: *flagExecutors, Threads: *flagThreads,
		Duration: d, Faults: nf, Cycle: true, Distributor: HasDistributor(bin), Index: *flagIndex,
		Scheduled: *flagScheduled, Workflows: launches, Sliced: launches,
		Controllers: *flagControllers && HasController(bin), ScheduleEvery: *flagSchedule,
		Remote: *flagRemote && hasSSHD(), Mail: *flagMail && HasSMTP(),
	}
	if *flagWorkflows != 0 {
		cfg.Workflows = *flagWorkflows
	}
	if *flagSliced != 0 {
		cfg.Sliced = *flagSliced
	}
	plan, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// x1 is never killed, so one executor lives the whole soak and its
	// memory and goroutines are judged over all of it; it is still
	// paused, partitioned and silenced in its turn.
	c := plan.Config
	for i := range plan.Faults {
		if f := &plan.Faults[i]; f.Kind == KillExecutor && f.Target == 0 {
			f.Target = 1 + i%(c.Executors-1)
		}
	}
	// One fault in each slot of -soak.every, at a seeded point of it,
	// so that they come at a steady rate over the hour.
	jr := rand.New(rand.NewPCG(seed, 5))
	for i := range plan.Faults {
		f := &plan.Faults[i]
		room := every - f.Hold - settleTime
		if room < 0 {
			t.Fatalf("a %s fault (hold %s) does not fit in a slot of %s with %s to recover: give a longer -soak.every", f.Kind, f.Hold, every, settleTime)
		}
		f.At = leadIn + time.Duration(i)*every + between(jr, 0, room)
	}
	plan.RemoteWhileWorking()
	t.Logf("soak: %d jobs (%.1f/s) over %s, %d faults (one per %s, kinds in turn), %d workflows, %d sliced launches, samples every %s",
		plan.Jobs(), *flagSoakRate, d, len(plan.Faults), every, c.Workflows, c.Sliced, *flagSoakSample)

	var remote []string
	if c.Remote {
		remote = []string{"r1"} // the remote executor (harness.go)
	}
	soak, err := NewSoak(c.Executors, *flagSoakSample, remote...)
	if err != nil {
		t.Fatal(err)
	}
	soak.Logf = t.Logf
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	h := &Harness{Plan: plan, Bin: bin, PluginDir: plugins, OutDir: out, DrainTimeout: *flagDrain, Logf: t.Logf,
		ExtraArgs: soak.Args, Watch: soak.Watch}
	rep, err := h.Run(ctx)
	res := soak.Result()
	if werr := res.WriteJSON(filepath.Join(out, "soak.json")); werr != nil {
		t.Error(werr)
	}
	sum := res.Summary()
	if werr := os.WriteFile(filepath.Join(out, "soak.txt"), []byte(sum), 0o644); werr != nil {
		t.Error(werr)
	}
	if rep != nil {
		t.Logf("report (%s):\n%s", filepath.Join(out, "report.json"), rep.Summary())
	}
	t.Logf("soak (%s):\n%s", filepath.Join(out, "soak.json"), sum)
	if err != nil {
		t.Fatalf("the soak could not be played: %v (logs in %s; seed %d)", err, out, seed)
	}
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	for _, p := range res.Problems {
		t.Errorf("soak: %s", p)
	}
	if len(res.Trends) == 0 {
		t.Errorf("soak: no daemon was sampled %d times: run longer or sample more often (-soak.sample)", FlatMinSamples)
	}
}
