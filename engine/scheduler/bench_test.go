package scheduler

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
)

// The benchmark of docs/benchmarks.md: 10,000 pending jobs across 20
// groups and 500 concurrency keys, on 100 executors (5 per group) with
// room for all of them; at most 500 can be active at once (one per key).
const (
	benchJobs      = 10_000
	benchGroups    = 20
	benchKeys      = 500
	benchPerGroup  = 5
	benchBatchSize = 400
)

// benchCluster sets up the backlog; keys false gives every job no key,
// so a pass may start them all.
func benchCluster(b *testing.B, keys bool) *cluster {
	b.Helper()
	c := newCluster(b)
	for g := range benchGroups {
		for i := range benchPerGroup {
			c.join(fmt.Sprintf("x%d-%d", g, i), 10_000, 10_000, fmt.Sprintf("g%d", g))
		}
	}
	var batch []jobs.NewJob
	for i := range benchJobs {
		sc := jobs.Scheduling{Impact: 1 + i%4}
		if keys {
			sc.ConcurrencyKeys = []string{jobs.TemplateKey(fmt.Sprintf("t%d", i%benchKeys))}
		}
		batch = append(batch, jobs.NewJob{Action: "bench", Scheduling: sc, Launch: jobs.Launch{InstanceGroups: []string{fmt.Sprintf("g%d", i%benchGroups)}}})
		if len(batch) == benchBatchSize || i == benchJobs-1 {
			if _, err := c.store.CreateMany(ctxT(b), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return c
}

// cpuTimes returns the CPU time used so far by this process and by the
// ZooKeeper server: on a machine shared with other work, the wall time
// of a pass says more about the machine than about the pass.
func cpuTimes(b *testing.B) (self, server time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", zkc.Servers[0].PID()))
	if err != nil {
		return self, 0 // not Linux: no server figure
	}
	// utime and stime are fields 14 and 15, after the command's ")".
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return self, time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// measuredPass runs one pass and reports the CPU both sides used in it.
func measuredPass(b *testing.B, c *cluster, s *Scheduler, cpu *[2]time.Duration) Report {
	self0, server0 := cpuTimes(b)
	r := c.pass(s)
	self1, server1 := cpuTimes(b)
	cpu[0] += self1 - self0
	cpu[1] += server1 - server0
	return r
}

func reportCPU(b *testing.B, cpu [2]time.Duration, passes int) {
	b.ReportMetric(cpu[0].Seconds()/float64(passes), "client-cpu-s/pass")
	b.ReportMetric(cpu[1].Seconds()/float64(passes), "zk-cpu-s/pass")
}

func reportPass(b *testing.B, reps []Report) {
	var total, place time.Duration
	placed, explained := 0, 0
	for _, r := range reps {
		total += r.Duration
		place += r.Phases.Place
		placed += r.Placed
		explained += r.Explained
	}
	n := float64(len(reps))
	b.ReportMetric(total.Seconds()/n, "s/pass")
	b.ReportMetric(float64(placed)/n, "placed/pass")
	b.ReportMetric(float64(explained)/n, "explained/pass")
	if place > 0 {
		b.ReportMetric(float64(placed)/place.Seconds(), "starts/s")
	}
	for _, r := range reps {
		b.Logf("pass: %d pending, %d placed, %d blocked, %d explained, cut %v in %s (read %s, decide %s, place %s, explain %s)",
			r.Pending, r.Placed, r.Blocked, r.Explained, r.Cut, r.Duration.Round(time.Millisecond), r.Phases.Read.Round(time.Millisecond),
			r.Phases.Decide.Round(time.Millisecond), r.Phases.Place.Round(time.Millisecond), r.Phases.Explain.Round(time.Millisecond))
	}
}

// BenchmarkPass measures passes over the backlog: the first one (it reads
// every job, places one job per key and writes 9,500 explanations), the
// next one once those 500 jobs have ended (it places the next 500; the
// others' explanations still hold), and a steady one (nothing changed: it
// writes nothing). Without keys, one pass places all 10,000 jobs.
func BenchmarkPass(b *testing.B) {
	for _, tc := range []struct {
		name string
		keys bool
	}{{"500-keys", true}, {"no-keys", false}} {
		b.Run(tc.name+"/first", func(b *testing.B) {
			var reps []Report
			var cpu [2]time.Duration
			for range b.N {
				b.StopTimer()
				c := benchCluster(b, tc.keys)
				s := c.scheduler(func(cfg *Config) { cfg.MaxStarts = benchJobs; cfg.PassDeadline = time.Minute }, c.readSession)
				b.StartTimer()
				reps = append(reps, measuredPass(b, c, s, &cpu))
				b.StopTimer()
				c.close()
			}
			reportPass(b, reps)
			reportCPU(b, cpu, b.N)
		})
		if !tc.keys {
			continue
		}
		b.Run(tc.name+"/next", func(b *testing.B) {
			var reps []Report
			for range b.N {
				b.StopTimer()
				c := benchCluster(b, tc.keys)
				s := c.scheduler(func(cfg *Config) { cfg.MaxStarts = benchJobs; cfg.PassDeadline = time.Minute }, c.readSession)
				c.pass(s)
				finishPlaced(b, c)
				b.StartTimer()
				reps = append(reps, c.pass(s))
				b.StopTimer()
				c.close()
			}
			reportPass(b, reps)
		})
		b.Run(tc.name+"/steady", func(b *testing.B) {
			b.StopTimer()
			c := benchCluster(b, tc.keys)
			s := c.scheduler(func(cfg *Config) { cfg.MaxStarts = benchJobs; cfg.PassDeadline = time.Minute }, c.readSession)
			c.pass(s)
			var reps []Report
			b.StartTimer()
			for range b.N {
				reps = append(reps, c.pass(s))
			}
			reportPass(b, reps)
		})
	}
}

// finishPlaced runs every job on the executors' direct queues to its end.
func finishPlaced(b *testing.B, c *cluster) {
	b.Helper()
	snap, err := instance.NewReader(c.store, nil).Read(ctxT(b))
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, e := range snap.Executors {
		x := c.execs[e.Name]
		n := len(e.Placed)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				x.runOne(jobs.Success)
			}
		}()
	}
	wg.Wait()
}
