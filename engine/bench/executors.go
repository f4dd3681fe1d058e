package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ExecutorOptions configure the end-to-end benchmark.
type ExecutorOptions struct {
	ZK zkconn.Config
	// Binary is the jobengine binary the executors run as.
	Binary string
	// Counts are the numbers of executor processes to measure (1, 2, 4).
	Counts []int
	// Jobs is the backlog each count drains.
	Jobs int
	// Threads per executor.
	Threads int
	// Probes is the number of jobs timed for claim latency, idle and busy.
	Probes      int
	RawDuration time.Duration
	// Workload is what the jobs do: WorkloadNoop (the default) or
	// WorkloadEcho.
	Workload string
	// ZKPID, when set, is the process id of the ZooKeeper server (on this
	// machine), whose CPU time per job is then reported.
	ZKPID int
}

// Workloads of the end-to-end benchmark.
const (
	// WorkloadNoop jobs do nothing and report nothing: the test action
	// fail with return code 0, which ends SUCCESS at once without a log
	// line or a progress report. What is measured is the engine alone.
	WorkloadNoop = "noop"
	// WorkloadEcho jobs run the test action echo, which writes one log
	// line: one more write per job, to the job's log tail (the workload
	// of the figures before batching).
	WorkloadEcho = "echo"
)

// newJob returns a job of the workload.
func (o ExecutorOptions) newJob() jobs.NewJob {
	if o.Workload == WorkloadEcho {
		return jobs.NewJob{Action: "echo", Priority: 100}
	}
	return jobs.NewJob{Action: "fail", Payload: []byte(`{"code":0}`), Priority: 100}
}

// DrainResult is the drain of a backlog by some executors.
type DrainResult struct {
	Executors int     `json:"executors"`
	Jobs      int     `json:"jobs"`
	Seconds   float64 `json:"seconds"`
	JobsPerS  float64 `json:"jobs_per_s"`
	// RSSMB is the resident memory of each executor after the drain.
	RSSMB []float64 `json:"rss_mb_after_load"`
	// Cost is what the drain cost per job.
	Cost Cost `json:"cost"`
}

// ExecutorResult is what the benchmark prints, as JSON.
type ExecutorResult struct {
	ZKMultiTxnPerS float64       `json:"zk_multi_txn_per_s"`
	Workload       string        `json:"workload"`
	Drains         []DrainResult `json:"drains"`
	IdleRSSMB      float64       `json:"executor_rss_mb_idle"`
	ClaimIdleP50Ms float64       `json:"claim_idle_p50_ms"`
	ClaimIdleP99Ms float64       `json:"claim_idle_p99_ms"`
	ClaimBusyP50Ms float64       `json:"claim_busy_p50_ms"`
	ClaimBusyP99Ms float64       `json:"claim_busy_p99_ms"`
	BusyLoadPerS   float64       `json:"busy_load_jobs_per_s"`
}

// Executors runs the end-to-end benchmark: for each count, start that many
// executor processes, let them drain a backlog of jobs of the workload, and
// compute the rate from the jobs' own timestamps (first start to last
// finish). Then claim latency, created → RUNNING, with the largest count:
// on an idle cluster (probes one at a time) and on a busy one (a stream at
// about 60% of the measured rate).
func Executors(ctx context.Context, o ExecutorOptions) (ExecutorResult, error) {
	var res ExecutorResult
	if o.Binary == "" || len(o.Counts) == 0 || o.Jobs <= 0 {
		return res, errors.New("bench: a binary, executor counts and a job count are required")
	}
	if o.Threads <= 0 {
		o.Threads = 8
	}
	if o.Probes <= 0 {
		o.Probes = 200
	}
	switch o.Workload {
	case "":
		o.Workload = WorkloadNoop
	case WorkloadNoop, WorkloadEcho:
	default:
		return res, fmt.Errorf("bench: workload %q: use %s or %s", o.Workload, WorkloadNoop, WorkloadEcho)
	}
	res.Workload = o.Workload
	base := strings.TrimSuffix(o.ZK.Root, "/") + fmt.Sprintf("/bench-e2e-%d", time.Now().UnixNano())
	rawCfg := o.ZK
	rawCfg.Root = base + "/raw"
	conns := make([]*zkconn.Conn, 4)
	for i := range conns {
		c, err := zkconn.Dial(ctx, rawCfg)
		if err != nil {
			return res, err
		}
		defer c.Close()
		conns[i] = c
	}
	var err error
	if res.ZKMultiTxnPerS, err = rawMulti(ctx, conns, 32, o.RawDuration); err != nil {
		return res, err
	}
	for ci, n := range o.Counts {
		cfg := o.ZK
		cfg.Root = fmt.Sprintf("%s/drain-%d", base, n)
		store, closeStore, err := openStore(ctx, cfg)
		if err != nil {
			return res, err
		}
		ids, err := createBacklog(ctx, store, o.Jobs, o.newJob())
		if err != nil {
			closeStore()
			return res, err
		}
		procs, err := startExecutors(o, cfg, n)
		if err != nil {
			closeStore()
			return res, err
		}
		pids := make([]int, len(procs))
		for i, p := range procs {
			pids[i] = p.Process.Pid
		}
		meter := startCost(cfg.Hosts, o.ZKPID, pids)
		dr, err := drain(ctx, store, ids, meter)
		if err != nil {
			stopExecutors(procs)
			closeStore()
			return res, err
		}
		dr.Executors = n
		for _, p := range procs {
			dr.RSSMB = append(dr.RSSMB, rssMB(p.Process.Pid))
		}
		res.Drains = append(res.Drains, dr)
		if ci == len(o.Counts)-1 {
			if err := claimLatency(ctx, o, store, procs, dr.JobsPerS, &res); err != nil {
				stopExecutors(procs)
				closeStore()
				return res, err
			}
		}
		stopExecutors(procs)
		closeStore()
	}
	return res, nil
}

func openStore(ctx context.Context, cfg zkconn.Config) (*jobs.Store, func(), error) {
	conn, err := zkconn.Dial(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	s := jobs.NewStore(conn, jobs.StoreConfig{MaxBacklog: 1 << 30})
	if err := s.Ensure(ctx); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return s, conn.Close, nil
}

// createBacklog creates n jobs like nj in batches, several at a time.
func createBacklog(ctx context.Context, s *jobs.Store, n int, nj jobs.NewJob) ([]string, error) {
	const batch = 250
	var mu sync.Mutex
	var ids []string
	errc := make(chan error, 1)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := 0; i < n; i += batch {
		ns := make([]jobs.NewJob, min(batch, n-i))
		for j := range ns {
			ns[j] = nj
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			js, err := s.CreateMany(ctx, ns)
			if err != nil {
				select {
				case errc <- err:
				default:
				}
				return
			}
			mu.Lock()
			for _, j := range js {
				ids = append(ids, j.ID)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	return ids, nil
}

func startExecutors(o ExecutorOptions, cfg zkconn.Config, n int) ([]*exec.Cmd, error) {
	var procs []*exec.Cmd
	for i := 0; i < n; i++ {
		cmd := exec.Command(o.Binary, "--zk-hosts", strings.Join(cfg.Hosts, ","), "--zk-root", cfg.Root,
			"--log-level", "warn", "executor", "--name", fmt.Sprintf("bench-%d", i),
			"--threads", strconv.Itoa(o.Threads), "--plugin-dir", os.DevNull+"-none",
			"--enable-test-actions") // the benchmark's jobs run test actions
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			stopExecutors(procs)
			return nil, err
		}
		procs = append(procs, cmd)
	}
	return procs, nil
}

func stopExecutors(procs []*exec.Cmd) {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
}

// drain waits until the queue is empty and computes the rate from the
// jobs' timestamps; the cost is counted up to the empty queue, before the
// reads of the rate's timestamps.
func drain(ctx context.Context, s *jobs.Store, ids []string, meter *costMeter) (DrainResult, error) {
	for {
		n, err := s.Queue().Len(ctx)
		if err != nil {
			return DrainResult{}, err
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return DrainResult{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	cost := meter.stop(len(ids))
	var first, last time.Time
	done := 0
	err := s.Walk(ctx, func(j *jobs.Job, _ int32) {
		if !j.State.Final() || j.Started == nil {
			return
		}
		done++
		if first.IsZero() || j.Started.Before(first) {
			first = *j.Started
		}
		if j.TimeOfStatusChange.After(last) {
			last = j.TimeOfStatusChange
		}
	})
	if err != nil {
		return DrainResult{}, err
	}
	if done != len(ids) {
		return DrainResult{}, fmt.Errorf("bench: %d of %d jobs finished", done, len(ids))
	}
	secs := last.Sub(first).Seconds()
	return DrainResult{Jobs: done, Seconds: secs, JobsPerS: float64(done) / secs, Cost: cost}, nil
}

// claimLatency measures created → RUNNING with the executors idle, then
// under a steady load.
func claimLatency(ctx context.Context, o ExecutorOptions, s *jobs.Store, procs []*exec.Cmd, rate float64, res *ExecutorResult) error {
	res.IdleRSSMB = rssMB(procs[0].Process.Pid)
	var idle []string
	for i := 0; i < o.Probes; i++ {
		j, err := s.Create(ctx, o.newJob())
		if err != nil {
			return err
		}
		idle = append(idle, j.ID)
		if err := waitFinal(ctx, s, j.ID); err != nil {
			return err
		}
	}
	lat, err := claims(ctx, s, idle)
	if err != nil {
		return err
	}
	res.ClaimIdleP50Ms, res.ClaimIdleP99Ms = pct(lat, 50), pct(lat, 99)

	res.BusyLoadPerS = rate * 0.6
	interval := time.Duration(float64(time.Second) / res.BusyLoadPerS)
	total := int(res.BusyLoadPerS * 5)
	var busy []string
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; i < total; i++ {
		<-tick.C
		j, err := s.Create(ctx, o.newJob())
		if err != nil {
			return err
		}
		busy = append(busy, j.ID)
	}
	for _, id := range busy {
		if err := waitFinal(ctx, s, id); err != nil {
			return err
		}
	}
	if lat, err = claims(ctx, s, busy); err != nil {
		return err
	}
	res.ClaimBusyP50Ms, res.ClaimBusyP99Ms = pct(lat, 50), pct(lat, 99)
	return nil
}

func waitFinal(ctx context.Context, s *jobs.Store, id string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		j, _, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if j.State.Final() {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s did not finish within a minute", id)
}

func claims(ctx context.Context, s *jobs.Store, ids []string) ([]time.Duration, error) {
	var out []time.Duration
	for _, id := range ids {
		j, _, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if j.Started != nil {
			out = append(out, j.Started.Sub(j.Created))
		}
	}
	slices.Sort(out)
	return out, nil
}

func pct(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return ms(sorted[min(len(sorted)-1, len(sorted)*p/100)])
}

// rssMB reads a process's resident memory from /proc.
func rssMB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
