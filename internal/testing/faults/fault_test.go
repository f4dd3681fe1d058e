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
	flagSeed        = flag.Uint64("faults.seed", 0, "seed of the workload and the fault schedule (0: a random one, printed)")
	flagJobs        = flag.Int("faults.jobs", 0, "workload jobs (default 600)")
	flagExecutors   = flag.Int("faults.executors", 0, "executor processes (default 3)")
	flagThreads     = flag.Int("faults.threads", 0, "workers per executor (default 3)")
	flagDuration    = flag.Duration("faults.duration", 0, "length of the workload and fault schedule (default 3m10s)")
	flagFaults      = flag.Int("faults.faults", 0, "number of faults (default: every kind once)")
	flagOut         = flag.String("faults.out", "", "directory for the logs, recorder log, plan and report, kept (default: a new temporary directory, removed if the run passed)")
	flagDrain       = flag.Duration("faults.drain", 2*time.Minute, "how long the queue may take to drain after the workload")
	flagTick        = flag.Duration("faults.tick", 0, "the distributor's interval (default 4s, longer than a leader failover)")
	flagDistributor = flag.Bool("faults.distributor", true, "run a distributor on two processes and kill its leader")
	flagControllers = flag.Bool("faults.controllers", true, "run two controller processes, which host the maintenance services, and kill and freeze their leader")
	flagSchedule    = flag.Duration("faults.schedule", 0, "interval of the run's schedule, whose jobs notify a webhook receiver the harness stops once (default 5s; negative: none; needs the controllers)")
	flagScheduled   = flag.Float64("faults.scheduled", 0.2, "share of workload jobs launched through the scheduler (PENDING, placed on an executor's direct queue); needs the distributor")
	flagIndex       = flag.Bool("faults.index", true, "index into an in-process Elasticsearch, stop it for a while, and check the history at the end")
	flagWorkflows   = flag.Int("faults.workflows", 0, "workflows launched over the workload, run by the maintenance leader (default 4; -1: none)")
	flagRemote      = flag.Bool("faults.remote", true, "run an executor whose jobs run on a remote node through `jobengine worker` over SSH (a loopback sshd), and cut its streams and connections")
	flagMail        = flag.Bool("faults.mail", true, "the schedule's jobs also notify an e-mail template sent to an SMTP receiver (python3-aiosmtpd) that the harness kills once")
	flagSliced      = flag.Int("faults.sliced", 0, "sliced template launches over the workload, their slices scheduled by the maintenance leader (default 4; -1: none)")
)

// TestFaultInjection plays a seeded workload and fault schedule against a
// 3-node ZooKeeper ensemble and real executor, distributor and controller
// processes, and fails on any broken promise: a job lost or left
// unfinished, a job run by two executors at once (unless the first had
// been frozen past its session), a distributor tick that made two jobs, a
// schedule occurrence launched twice or never, a notice never delivered.
func TestFaultInjection(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64() % 1_000_000_000
	}
	t.Logf("seed %d — run this schedule again with: make test-faults FAULTS_ARGS='-faults.seed=%d'", seed, seed)

	out := *flagOut
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "jobengine-faults-"); err != nil {
			t.Fatal(err)
		}
	} else if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		t.Fatalf("-faults.out %s is not empty: give a new directory (the logs of two runs must not mix)", out)
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("output: %s", out)

	bin, plugins, err := Build(filepath.Join(out, "bin"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Seed: seed, Jobs: *flagJobs, Executors: *flagExecutors, Threads: *flagThreads,
		Duration: *flagDuration, Faults: *flagFaults, TickInterval: *flagTick,
		Distributor: *flagDistributor && HasDistributor(bin), Index: *flagIndex, Scheduled: *flagScheduled,
		Workflows: *flagWorkflows, Sliced: *flagSliced, Remote: *flagRemote && hasSSHD(), Mail: *flagMail && HasSMTP(),
		Controllers: *flagControllers && HasController(bin), ScheduleEvery: *flagSchedule,
	}
	if *flagDistributor && !cfg.Distributor {
		t.Logf("the binary has no distributor command: the distributor fault is left out")
	}
	if *flagControllers && !cfg.Controllers {
		t.Logf("the binary has no controller command: the controller faults are left out")
	}
	if *flagMail && !cfg.Mail {
		t.Logf("no %s with aiosmtpd (python3-aiosmtpd): the e-mail notices and smtp-down are left out", smtpPython)
	}
	if *flagRemote && !cfg.Remote {
		t.Logf("no /usr/sbin/sshd (openssh-server): the remote executor and its faults are left out")
	}
	plan, err := NewPlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := plan.Config
	t.Logf("%d jobs in %d batches, %d executors × %d threads, session timeout %s, workload %s; fault schedule:\n%s",
		plan.Jobs(), len(plan.Batches), c.Executors, c.Threads, c.SessionTimeout, c.Duration, plan)

	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	h := &Harness{Plan: plan, Bin: bin, PluginDir: plugins, OutDir: out, DrainTimeout: *flagDrain, Logf: t.Logf}
	rep, err := h.Run(ctx)
	if rep != nil {
		t.Logf("report (%s):\n%s", filepath.Join(out, "report.json"), rep.Summary())
	}
	if err != nil {
		t.Fatalf("the run could not be played: %v (logs in %s; seed %d)", err, out, seed)
	}
	for _, v := range rep.Violations {
		t.Errorf("violation: %s", v)
	}
	if !rep.OK() {
		t.Errorf("%d violations; evidence in %s (process logs, recorder.log, report.json); seed %d", len(rep.Violations), out, seed)
	}
	// A passing run's report is printed above; its logs and binaries
	// (about 50 MB) are kept only in a directory that was asked for, so
	// that make test, run on every change, does not fill the disk.
	if *flagOut == "" && !t.Failed() {
		if err := os.RemoveAll(out); err != nil {
			t.Logf("removing %s: %v", out, err)
		} else {
			t.Logf("the run passed: %s removed (-faults.out keeps the evidence)", out)
		}
	}
}
