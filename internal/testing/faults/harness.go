package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/logging"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/check"
)

// Roles of the processes the harness runs.
const (
	RoleExecutor    = "executor"
	RoleDistributor = "distributor"
)

// DistributorName is the distributor the harness declares.
const DistributorName = "faults"

// Priorities of the jobs: probes jump the workload's queue, so their wait
// measures recovery, not backlog.
const (
	workloadPriority    = 500
	probePriority       = 0
	distributorPriority = 100
)

// The packages Build compiles.
const (
	binPackage      = "github.com/jobengine/jobengine/cmd/jobengine"
	recorderPackage = "github.com/jobengine/jobengine/internal/testing/faults/testdata/recorder"
)

// Build compiles the jobengine binary and the recorder plugin into dir and
// returns the binary's path and the plugin directory.
func Build(dir string) (bin, pluginDir string, err error) {
	bin = filepath.Join(dir, "jobengine")
	pluginDir = filepath.Join(dir, "actions")
	for _, b := range [][2]string{
		{bin, binPackage},
		{filepath.Join(pluginDir, "recorder"), recorderPackage},
	} {
		out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput()
		if err != nil {
			return "", "", fmt.Errorf("faults: go build %s: %v\n%s", b[1], err, out)
		}
	}
	return bin, pluginDir, nil
}

// HasDistributor reports whether the binary has the distributor command.
func HasDistributor(bin string) bool {
	return exec.Command(bin, "distributor", "--help").Run() == nil
}

// Harness plays a Plan against a real ZooKeeper ensemble and real
// executor, distributor and controller processes, then checks the outcome.
type Harness struct {
	Plan *Plan
	// Bin is the jobengine binary; PluginDir holds the recorder plugin.
	Bin, PluginDir string
	// OutDir receives the process logs, the recorder log, the plan and
	// the report; it must exist.
	OutDir string
	// DrainTimeout bounds the wait for every job to end once the workload
	// is over (default 2m).
	DrainTimeout time.Duration
	// Logf receives progress lines.
	Logf func(format string, args ...any)
	// ExtraArgs, when set, returns flags added after the command of each
	// process of the instance (the soak's metrics addresses).
	ExtraArgs func(role, instance string) []string
	// Watch, when set, is called once every process runs, as the workload
	// starts; the function it returns is called when the workload and
	// the faults are over, before the distributors stop (the soak samples
	// the daemons and waits for the queues to drain with it).
	Watch func(ctx context.Context, h *Harness) (stop func())

	zk      *zkserver.Cluster
	peers   *peerLinks     // the proxies between the ZooKeeper nodes
	es      *estest.Server // with Config.Index
	root    string
	conn    *zkconn.Conn
	store   *jobs.Store
	recLog  string
	confDir string
	execs   []*instance
	dists   []*instance
	ctls    []*instance  // with Config.Controllers
	sched   *ScheduleRun // with Config.ScheduleEvery
	recv    *receiver    // with the schedule
	mail    *mailServer  // the SMTP receiver, with Config.Mail
	sshd    *sshd        // the remote node, with Config.Remote
	remote  *instance    // the remote executor, with Config.Remote
	start   time.Time

	mu        sync.Mutex
	submitted map[string]Submission
	events    []FaultEvent
}

// instance is an executor, distributor or controller instance: a name and the
// processes that ran under it, one after the other.
type instance struct {
	role  string
	name  string
	procs []*process // guarded by Harness.mu
	// proxies stand between an executor and each ZooKeeper node, so a
	// partition can cut it off.
	proxies []*zktest.Proxy
}

// process is one running (or ended) process of an instance.
type process struct {
	info Process // guarded by Harness.mu
	cmd  *exec.Cmd
	done chan struct{}
}

func (h *Harness) logf(format string, args ...any) {
	if h.Logf != nil {
		h.Logf(format, args...)
	}
}

// Run plays the plan and returns the checker's report. An error means the
// harness could not play the plan (ZooKeeper would not start, a process
// could not be started again); promises broken by the engine are in the
// report's violations.
func (h *Harness) Run(ctx context.Context) (rep *Report, err error) {
	cfg := h.Plan.Config
	if h.DrainTimeout <= 0 {
		h.DrainTimeout = 2 * time.Minute
	}
	h.submitted = map[string]Submission{}
	h.recLog = filepath.Join(h.OutDir, "recorder.log")
	if _, err := os.Stat(h.recLog); err == nil {
		return nil, fmt.Errorf("faults: %s holds the output of an earlier run; give an empty directory", h.OutDir)
	}
	h.root = "/faults"
	if err := writeJSON(filepath.Join(h.OutDir, "plan.json"), h.Plan); err != nil {
		return nil, err
	}

	h.logf("starting a 3-node ZooKeeper ensemble")
	// The nodes reach each other through proxies, so that one can be
	// partitioned from the others.
	h.peers = &peerLinks{}
	defer h.peers.close()
	h.zk, err = zkserver.Start(zkserver.Options{Servers: 3, PeerAddr: h.peers.addr})
	if err != nil {
		return nil, err
	}
	defer func() {
		h.copyZKLogs()
		h.zk.Close()
	}()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	h.conn, err = zkconn.Dial(dctx, zkconn.Config{Hosts: h.zk.Addrs(), Root: h.root, SessionTimeout: 5 * time.Second})
	cancel()
	if err != nil {
		return nil, err
	}
	defer h.conn.Close()
	storeCfg := jobs.StoreConfig{}
	if cfg.Index {
		stop, err := h.startIndex(ctx)
		if err != nil {
			return nil, err
		}
		defer stop()
		storeCfg.Outbox = index.Outbox(h.conn)
	}
	h.store = jobs.NewStore(h.conn, storeCfg)
	if err := h.store.Ensure(ctx); err != nil {
		return nil, err
	}
	defer h.killAll()

	for i := 0; i < cfg.Executors; i++ {
		in := &instance{role: RoleExecutor, name: fmt.Sprintf("x%d", i+1)}
		for _, addr := range h.zk.Addrs() {
			px, err := zktest.NewProxy(addr)
			if err != nil {
				return nil, err
			}
			defer px.Close()
			in.proxies = append(in.proxies, px)
		}
		h.execs = append(h.execs, in)
	}
	if cfg.Remote {
		// After the others: executor faults, which target an index of
		// the first cfg.Executors, never hit it.
		h.sshd, err = startSSHD(ctx, filepath.Join(h.OutDir, "sshd"))
		if err != nil {
			return nil, err
		}
		defer h.sshd.close()
		h.remote = &instance{role: RoleExecutor, name: "r1"}
		h.execs = append(h.execs, h.remote)
	}
	if err := h.writeDistributorConfig(); err != nil {
		return nil, err
	}
	if cfg.Distributor {
		h.dists = []*instance{{role: RoleDistributor, name: "d1"}, {role: RoleDistributor, name: "d2"}}
	}
	if cfg.Controllers {
		h.ctls = []*instance{{role: RoleController, name: "c1"}, {role: RoleController, name: "c2"}}
	}
	if cfg.ScheduleEvery > 0 {
		stop, err := h.setUpReceiver(ctx)
		if err != nil {
			return nil, err
		}
		defer stop()
		if cfg.Mail {
			stop, err := h.setUpMail(ctx)
			if err != nil {
				return nil, err
			}
			defer stop()
		}
	}
	for _, in := range h.instances() {
		if _, err := h.startProcess(ctx, in); err != nil {
			return nil, err
		}
	}
	h.logf("%d executors, %d distributor and %d controller instances running; playing the workload (%d jobs over %s) and %d faults",
		len(h.execs), len(h.dists), len(h.ctls), h.Plan.Jobs(), cfg.Duration, len(h.Plan.Faults))
	if cfg.ScheduleEvery > 0 {
		if err := h.setUpSchedule(ctx); err != nil {
			return nil, err
		}
	}

	maintained := cfg.Distributor || cfg.Controllers
	workflows := maintained && cfg.Workflows > 0
	if workflows {
		if err := h.setUpWorkflows(ctx); err != nil {
			return nil, err
		}
	}
	sliced := maintained && cfg.Sliced > 0
	if sliced {
		if err := h.setUpSliced(ctx); err != nil {
			return nil, err
		}
	}
	h.start = time.Now()
	stopWatch := func() {}
	if h.Watch != nil {
		stopWatch = h.Watch(ctx, h)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = h.submit(ctx) }()
	go func() { defer wg.Done(); errs[1] = h.playFaults(ctx) }()
	if workflows {
		wg.Add(1)
		go func() { defer wg.Done(); errs[2] = h.submitWorkflows(ctx) }()
	}
	if sliced {
		wg.Add(1)
		go func() { defer wg.Done(); errs[3] = h.submitSliced(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stopWatch()
		return nil, err
	}

	if workflows || sliced {
		// The maintenance hosts run the workflow service, the scheduler
		// that places the slices and the container repair.
		h.waitWorkflows(ctx)
	}
	stopWatch()
	for _, in := range h.dists {
		h.stopProcess(h.current(in))
	}
	if h.sched != nil {
		if err := h.disableSchedule(ctx); err != nil {
			return nil, fmt.Errorf("faults: turning the schedule off: %w", err)
		}
	}
	h.logf("workload and faults done after %s; waiting for the queue to drain", time.Since(h.start).Round(time.Second))
	// The controllers keep running through the drain: their leader
	// places the jobs left PENDING and sends the notices.
	drained := h.drain(ctx)
	if h.recv != nil {
		h.waitNotices(ctx)
	}
	for _, in := range h.ctls {
		h.stopProcess(h.current(in))
	}
	for _, in := range h.execs {
		h.stopProcess(h.current(in))
	}
	ended := time.Now()
	if drained != nil {
		h.logf("%v", drained)
	}
	if h.es != nil {
		if err := h.drainOutbox(ctx); err != nil {
			h.logf("the outbox did not drain: %v", err)
		}
	}
	return h.check(ctx, ended)
}

// cleanEnv is the environment of the test without JOBENGINE_ variables,
// which the commands would read as flags.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JOBENGINE_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

func (h *Harness) writeDistributorConfig() error {
	h.confDir = filepath.Join(h.OutDir, "distributors")
	if err := os.MkdirAll(h.confDir, 0o755); err != nil {
		return err
	}
	// dedup always: a job every tick, with the tick's deterministic id.
	conf := fmt.Sprintf("name: %s\naction: %s\ninterval: %s\npayload:\n  sleep_ms: 50\npriority: %d\ndedup: always\n",
		DistributorName, RecordAction, h.Plan.Config.TickInterval, distributorPriority)
	return os.WriteFile(filepath.Join(h.confDir, DistributorName+".yaml"), []byte(conf), 0o644)
}

// startProcess starts a new process of the instance and waits until it
// has registered (executor) or contends (distributor). A process that
// exits first, e.g. because the session of the process it replaces has not
// expired yet and still holds the name, is started again.
func (h *Harness) startProcess(ctx context.Context, in *instance) (*process, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		p, err := h.launch(in)
		if err != nil {
			return nil, err
		}
		err = h.waitReady(ctx, p, deadline)
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			h.mu.Lock()
			p.info.NotReady = true
			h.mu.Unlock()
		default:
			h.kill(p)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("faults: %s %s did not start: %v (see %s)", in.role, in.name, err, h.logPath(p.info.ID))
		}
		h.logf("%s did not start (%v); starting it again", p.info.ID, err)
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (h *Harness) logPath(id string) string {
	return filepath.Join(h.OutDir, strings.ReplaceAll(id, "#", "-")+".log")
}

func (h *Harness) launch(in *instance) (*process, error) {
	cfg := h.Plan.Config
	h.mu.Lock()
	id := fmt.Sprintf("%s#%d", in.name, len(in.procs)+1)
	h.mu.Unlock()
	hosts := h.zk.ConnectString()
	if len(in.proxies) > 0 {
		addrs := make([]string, len(in.proxies))
		for i, px := range in.proxies {
			addrs[i] = px.Addr()
		}
		hosts = strings.Join(addrs, ",")
	}
	args := []string{"--zk-hosts", hosts, "--zk-root", h.root,
		"--zk-session-timeout", cfg.SessionTimeout.String(), "--log-format", "json"}
	args = append(args, h.indexArgs()...)
	switch in.role {
	case RoleExecutor:
		args = append(args, "executor", "--name", in.name, "--threads", fmt.Sprint(cfg.Threads),
			"--plugin-dir", h.PluginDir, "--shutdown-grace", "20s",
			"--plugin-env", EnvLog, "--plugin-env", EnvExecutor)
		if in == h.remote {
			args = append(args, "--remote-command", h.remoteCommand(id), "--remote-node", RemoteNode)
		}
	case RoleDistributor:
		args = append(args, "distributor", "--config-dir", h.confDir, "--identifier", id)
		if cfg.Controllers {
			args = append(args, "--maintenance=false")
		}
		if h.ExtraArgs != nil {
			args = append(args, h.ExtraArgs(in.role, in.name)...)
		}
		args = append(args, DistributorName)
	case RoleController:
		args = append(args, h.controllerArgs(id)...)
	}
	if h.ExtraArgs != nil && in.role != RoleDistributor {
		args = append(args, h.ExtraArgs(in.role, in.name)...)
	}
	logf, err := os.OpenFile(h.logPath(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(h.Bin, args...)
	cmd.Env = append(cleanEnv(), EnvLog+"="+h.recLog, EnvExecutor+"="+id)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a pause can freeze it with its plugins;
	// killed with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("faults: starting %s: %w", id, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), info: Process{
		ID: id, Instance: in.name, Role: in.role, PID: cmd.Process.Pid, Started: time.Now(),
	}}
	h.mu.Lock()
	in.procs = append(in.procs, p)
	h.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		h.mu.Lock()
		p.info.Exited = time.Now()
		h.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// waitReady polls ZooKeeper until the process shows: an executor's
// membership node with its pid, a distributor's election node with its
// identifier.
func (h *Harness) waitReady(ctx context.Context, p *process, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	exited := fmt.Errorf("%s exited", p.info.ID)
	err := check.Until(ctx, 100*time.Millisecond, func() error {
		select {
		case <-p.done:
			cancel() // no use polling a process that is gone
			return exited
		default:
		}
		switch p.info.Role {
		case RoleExecutor:
			data, _, err := h.conn.Get(h.conn.Path(executor.MembersPath, instanceOf(p.info.ID)))
			if err != nil {
				return err
			}
			var m executor.Member
			if err := json.Unmarshal(data, &m); err != nil {
				return err
			}
			if m.PID != p.info.PID {
				return fmt.Errorf("the name is held by pid %d", m.PID)
			}
			return nil
		default:
			cs, err := election.New(h.conn, electionOf(p.info.Role), "", zap.NewNop()).Contenders(ctx)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Identifier == p.info.ID {
					return nil
				}
			}
			return fmt.Errorf("%s does not contend yet", p.info.ID)
		}
	})
	if err != nil && errors.Is(err, context.Canceled) {
		return exited
	}
	return err
}

func (h *Harness) current(in *instance) *process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return in.procs[len(in.procs)-1]
}

// kill sends SIGKILL to the process (not its group: its plugins must die
// with it on their own) and waits until it has exited.
func (h *Harness) kill(p *process) {
	h.mu.Lock()
	p.info.Killed = time.Now()
	h.mu.Unlock()
	_ = syscall.Kill(p.info.PID, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		h.logf("%s did not exit 10s after SIGKILL", p.info.ID)
	}
}

// stopProcess stops the process gracefully (SIGTERM), or kills it after 45s.
func (h *Harness) stopProcess(p *process) {
	select {
	case <-p.done:
		return
	default:
	}
	h.mu.Lock()
	p.info.Stopped = time.Now()
	h.mu.Unlock()
	_ = syscall.Kill(-p.info.PID, syscall.SIGCONT)
	_ = syscall.Kill(p.info.PID, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		h.logf("%s still running 45s after SIGTERM; killing it", p.info.ID)
		h.kill(p)
	}
}

// instances returns every instance: executors, distributors, controllers.
func (h *Harness) instances() []*instance {
	return slices.Concat(h.execs, h.dists, h.ctls)
}

func (h *Harness) killAll() {
	h.mu.Lock()
	var all []*process
	for _, in := range h.instances() {
		all = append(all, in.procs...)
	}
	h.mu.Unlock()
	for _, p := range all {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.info.PID, syscall.SIGCONT)
			_ = syscall.Kill(-p.info.PID, syscall.SIGKILL)
			<-p.done
		}
	}
}

// pause freezes the process (scope "process") or its whole group with its
// plugins (scope "group").
func (h *Harness) pause(p *process, scope string) time.Time {
	pid := p.info.PID
	if scope == "group" {
		pid = -pid
	}
	now := time.Now()
	h.mu.Lock()
	p.info.Pauses = append(p.info.Pauses, Interval{From: now})
	h.mu.Unlock()
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	return now
}

func (h *Harness) resume(p *process, scope string) time.Time {
	pid := p.info.PID
	if scope == "group" {
		pid = -pid
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
	now := time.Now()
	h.mu.Lock()
	p.info.Pauses[len(p.info.Pauses)-1].To = now
	h.mu.Unlock()
	return now
}

// sleep waits d, or until ctx ends: it paces the workload and holds
// faults; it never stands in for waiting on a condition.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// submit creates the workload's batches at their planned times.
func (h *Harness) submit(ctx context.Context) error {
	for _, b := range h.Plan.Batches {
		if err := sleep(ctx, time.Until(h.start.Add(b.At))); err != nil {
			return err
		}
		ns := make([]jobs.NewJob, len(b.Jobs))
		for i, pj := range b.Jobs {
			payload, _ := json.Marshal(Payload{SleepMS: pj.SleepMS})
			ns[i] = jobs.NewJob{ID: pj.ID, Action: RecordAction, Priority: workloadPriority, Payload: payload, CreatedBy: "faults-workload"}
			if pj.Scheduled {
				ns[i].Launch.InstanceGroups = []string{jobs.DefaultGroup}
			}
		}
		if err := h.create(ctx, ns, SourceWorkload); err != nil {
			return err
		}
	}
	return nil
}

// create creates jobs in one transaction, trying again while ZooKeeper is
// unavailable. A transaction whose answer was lost may have been applied:
// the ids are fixed, so the retry then fails as a duplicate and the first
// job's document tells.
func (h *Harness) create(ctx context.Context, ns []jobs.NewJob, source string) error {
	first := time.Now()
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := h.store.CreateMany(cctx, ns)
		if errors.Is(err, jobs.ErrDuplicate) {
			if _, _, gerr := h.store.Get(cctx, ns[0].ID); gerr == nil {
				err = nil
			}
		}
		cancel()
		if err == nil {
			now := time.Now()
			h.mu.Lock()
			for _, n := range ns {
				h.submitted[n.ID] = Submission{Source: source, At: now}
			}
			h.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt%20 == 0 {
			h.logf("creating %d %s jobs failed for %s, retrying: %v", len(ns), source, time.Since(first).Round(time.Millisecond), err)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// playFaults injects the planned faults at their times, one after the
// other: a fault waits until the previous one's probe job has started, so
// each recovery is measured on its own.
func (h *Harness) playFaults(ctx context.Context) error {
	var probes sync.WaitGroup
	defer probes.Wait()
	prevProbe := ""
	for i, f := range h.Plan.Faults {
		if err := sleep(ctx, time.Until(h.start.Add(f.At))); err != nil {
			return err
		}
		if prevProbe != "" {
			h.waitStarted(ctx, prevProbe, 90*time.Second)
		}
		prevProbe = f.Probe
		e := FaultEvent{N: i + 1, Kind: f.Kind, Scope: f.Scope, Planned: f.At, Probe: f.Probe}
		probe := func() {
			probes.Add(1)
			go func() {
				defer probes.Done()
				payload, _ := json.Marshal(Payload{SleepMS: 0})
				nj := jobs.NewJob{ID: f.Probe, Action: RecordAction, Priority: probePriority, Payload: payload, CreatedBy: "faults-probe"}
				if f.Kind.controllerFault() {
					// Through the scheduler, which the faulted leader ran:
					// the probe starts once another has taken over.
					nj.Launch.InstanceGroups = []string{jobs.DefaultGroup}
				}
				if err := h.create(ctx, []jobs.NewJob{nj}, SourceProbe); err != nil {
					h.logf("probe of fault %d not created: %v", e.N, err)
				}
			}()
		}
		var err error
		switch f.Kind {
		case KillExecutor:
			err = h.killExecutor(ctx, f, &e, probe)
		case PauseExecutor:
			err = h.pauseExecutor(ctx, f, &e, probe)
		case PartitionExecutor:
			err = h.partitionExecutor(ctx, f, &e, probe)
		case SilenceExecutor:
			err = h.silenceExecutor(ctx, f, &e, probe)
		case PauseZK:
			err = h.pauseZK(ctx, f, &e, probe)
		case PartitionZK:
			err = h.partitionZK(ctx, f, &e, probe)
		case ElasticsearchDown:
			err = h.elasticsearchDown(ctx, f, &e, probe)
		case PauseDistributorLeader:
			err = h.pauseDistributorLeader(ctx, f, &e, probe)
		case KillZKLeader:
			err = h.killZKLeader(ctx, f, &e, probe)
		case RestartEnsemble:
			err = h.restartEnsemble(ctx, f, &e, probe)
		case KillDistributorLeader:
			err = h.killDistributorLeader(ctx, f, &e, probe)
		case KillControllerLeader:
			err = h.killControllerLeader(ctx, f, &e, probe)
		case PauseControllerLeader:
			err = h.pauseControllerLeader(ctx, f, &e, probe)
		case ReceiverDown:
			err = h.receiverDown(ctx, f, &e, probe)
		case CutRemoteStream, KillRemoteSSH:
			err = h.cutRemote(ctx, f, &e, probe)
		case SMTPDown:
			err = h.smtpDown(ctx, f, &e, probe)
		default:
			err = fmt.Errorf("faults: unknown fault kind %q", f.Kind)
		}
		if err != nil {
			return fmt.Errorf("fault %d (%s): %w", e.N, f.Kind, err)
		}
		h.logf("fault %d at %s: %s %s %s, healed after %s %s", e.N, e.At.Sub(h.start).Round(100*time.Millisecond), e.Kind, e.Scope, e.Target,
			e.Healed.Sub(e.At).Round(100*time.Millisecond), e.Note)
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}
	if prevProbe != "" {
		h.waitStarted(ctx, prevProbe, 90*time.Second)
	}
	return nil
}

// waitStarted polls until the job has left QUEUED, or wait passes.
func (h *Harness) waitStarted(ctx context.Context, id string, wait time.Duration) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := check.Until(wctx, 100*time.Millisecond, func() error {
		j, _, err := h.store.Get(wctx, id)
		if err != nil {
			return err
		}
		if j.State == jobs.Queued {
			return errors.New("still queued")
		}
		return nil
	})
	if err != nil {
		h.logf("probe %s has not started within %s: %v", id, wait, err)
	}
}

func (h *Harness) killExecutor(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	in := h.execs[f.Target]
	p := h.current(in)
	e.Target = p.info.ID
	e.At = time.Now()
	h.kill(p)
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		return err
	}
	e.HealAt = time.Now()
	np, err := h.startProcess(ctx, in)
	if err != nil {
		return err
	}
	e.Healed, e.Restarted = time.Now(), np.info.ID
	return nil
}

func (h *Harness) pauseExecutor(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	p := h.current(h.execs[f.Target])
	e.Target = p.info.ID
	e.At = h.pause(p, f.Scope)
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		h.resume(p, f.Scope)
		return err
	}
	e.HealAt = h.resume(p, f.Scope)
	e.Healed = e.HealAt
	return nil
}

// partitionExecutor cuts the executor off from every ZooKeeper node: its
// connections are closed and new ones refused until the hold is over.
func (h *Harness) partitionExecutor(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	in := h.execs[f.Target]
	p := h.current(in)
	e.Target = p.info.ID
	e.At = time.Now()
	for _, px := range in.proxies {
		px.Block()
	}
	h.mu.Lock()
	p.info.Partitions = append(p.info.Partitions, Interval{From: e.At})
	h.mu.Unlock()
	probe()
	err := sleep(ctx, f.Hold)
	for _, px := range in.proxies {
		px.Unblock()
	}
	e.HealAt = time.Now()
	e.Healed = e.HealAt
	h.mu.Lock()
	p.info.Partitions[len(p.info.Partitions)-1].To = e.HealAt
	h.mu.Unlock()
	return err
}

// silenceExecutor makes the executor's connections to ZooKeeper go dark
// without closing: its proxies hold what either side sends until the hold
// is over. The checker treats it as a partition: not frozen, the executor
// must stop its actions on its own.
func (h *Harness) silenceExecutor(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	in := h.execs[f.Target]
	p := h.current(in)
	e.Target = p.info.ID
	e.At = time.Now()
	for _, px := range in.proxies {
		px.Silence()
	}
	h.mu.Lock()
	p.info.Partitions = append(p.info.Partitions, Interval{From: e.At})
	h.mu.Unlock()
	probe()
	err := sleep(ctx, f.Hold)
	for _, px := range in.proxies {
		px.Unblock()
	}
	e.HealAt = time.Now()
	e.Healed = e.HealAt
	h.mu.Lock()
	p.info.Partitions[len(p.info.Partitions)-1].To = e.HealAt
	h.mu.Unlock()
	return err
}

// pauseZK freezes a ZooKeeper node, the leader or a follower, with
// SIGSTOP: its connections stay open and go silent, and a frozen leader
// stops the ensemble until the others notice and elect another.
func (h *Harness) pauseZK(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	var target *zkserver.Server
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(lctx, 100*time.Millisecond, func() error {
		leader, err := h.zk.Leader()
		if err != nil {
			return err
		}
		target = leader
		if f.Scope == "follower" {
			for _, s := range h.zk.Servers {
				if s != leader {
					target = s
					break
				}
			}
		}
		return nil
	})
	cancel()
	if err != nil {
		return err
	}
	e.Target = fmt.Sprintf("zk%d", target.ID)
	e.At = time.Now()
	if err := target.Pause(); err != nil {
		_ = target.Resume()
		return err
	}
	probe()
	herr := sleep(ctx, f.Hold)
	e.HealAt = time.Now()
	if err := target.Resume(); err != nil {
		return err
	}
	if herr != nil {
		return herr
	}
	if err := target.WaitServing(90 * time.Second); err != nil {
		return err
	}
	e.Healed = time.Now()
	e.Note = fmt.Sprintf("(serving %s after SIGCONT)", e.Healed.Sub(e.HealAt).Round(10*time.Millisecond))
	return nil
}

func (h *Harness) killZKLeader(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	var leader *zkserver.Server
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(lctx, 100*time.Millisecond, func() error {
		var err error
		leader, err = h.zk.Leader()
		return err
	})
	cancel()
	if err != nil {
		return err
	}
	e.Target = fmt.Sprintf("zk%d", leader.ID)
	e.At = time.Now()
	if err := leader.Kill(); err != nil {
		return err
	}
	probe()
	// How long the two survivors take to elect a leader, apart from how
	// long clients take to find it.
	elected := make(chan string, 1)
	ectx, cancel := context.WithTimeout(ctx, f.Hold)
	go func() {
		err := check.Until(ectx, 20*time.Millisecond, func() error {
			nl, err := h.zk.Leader()
			if err == nil && nl != leader {
				elected <- fmt.Sprintf("zk%d elected after %s", nl.ID, time.Since(e.At).Round(10*time.Millisecond))
				return nil
			}
			return errors.New("no new leader")
		})
		if err != nil {
			elected <- fmt.Sprintf("no leader elected within the hold of %s", f.Hold)
		}
	}()
	err = sleep(ctx, f.Hold)
	cancel()
	e.Note = "(" + <-elected + ")"
	if err != nil {
		return err
	}
	e.HealAt = time.Now()
	if err := leader.Start(); err != nil {
		return err
	}
	if err := leader.WaitServing(90 * time.Second); err != nil {
		return err
	}
	e.Healed = time.Now()
	return nil
}

func (h *Harness) restartEnsemble(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	e.Target = "all nodes"
	e.At = time.Now()
	var wg sync.WaitGroup
	for _, s := range h.zk.Servers {
		wg.Add(1)
		go func(s *zkserver.Server) {
			defer wg.Done()
			if f.Scope == "kill" {
				_ = s.Kill()
			} else {
				_ = s.Stop()
			}
		}(s)
	}
	wg.Wait()
	probe()
	e.Note = fmt.Sprintf("(stopped in %s)", time.Since(e.At).Round(10*time.Millisecond))
	if err := sleep(ctx, f.Hold); err != nil {
		return err
	}
	e.HealAt = time.Now()
	for _, s := range h.zk.Servers {
		if err := s.Start(); err != nil {
			return err
		}
	}
	if err := h.zk.WaitReady(90 * time.Second); err != nil {
		return err
	}
	e.Healed = time.Now()
	return nil
}

// Phases of a distributor tick, as ZooKeeper shows them.
const (
	tickBefore   = "before"   // the tick's job does not exist yet
	tickCreated  = "created"  // the job exists, the tick is not recorded
	tickRecorded = "recorded" // the tick is recorded as done
)

// tickPhase reads how far the distributor got with the tick due at due.
func (h *Harness) tickPhase(ctx context.Context, due time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := schedule.Tick{At: due}
	// Read what the ensemble's leader has, not a lagging follower.
	if err := zkconn.Do(ctx, func() error {
		_, err := h.conn.Sync(distributor.StatePath(h.conn, DistributorName))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	}); err != nil {
		return "", err
	}
	st, _, err := distributor.ReadState(ctx, h.conn, DistributorName)
	if err != nil {
		return "", err
	}
	if st.Tick >= tick.ID() {
		return tickRecorded, nil
	}
	cat, err := distributor.Load(h.confDir)
	if err != nil {
		return "", err
	}
	def, err := cat.Get(DistributorName)
	if err != nil {
		return "", err
	}
	js, err := distributor.TickJobs(def, tick, "", nil)
	if err != nil || len(js) != 1 {
		return "", fmt.Errorf("faults: the tick's job: %v", err)
	}
	_, _, err = h.store.Get(ctx, js[0].ID)
	switch {
	case err == nil:
		return tickCreated, nil
	case errors.Is(err, jobs.ErrNotFound):
		return tickBefore, nil
	}
	return "", err
}

// distributorLeader returns the process that leads the distributor's
// election (and the maintenance services).
func (h *Harness) distributorLeader(ctx context.Context) (*instance, *process, error) {
	var leader string
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(lctx, 50*time.Millisecond, func() error {
		var err error
		leader, err = election.New(h.conn, DistributorName, "", zap.NewNop()).Leader(lctx)
		return err
	})
	cancel()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range h.dists {
		if cur := h.current(d); cur.info.ID == leader {
			return d, cur, nil
		}
	}
	return nil, nil, fmt.Errorf("the distributor leader %q is none of the harness's processes", leader)
}

// pauseDistributorLeader freezes the leading distributor with its
// children, past its session, and continues it.
func (h *Harness) pauseDistributorLeader(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	_, p, err := h.distributorLeader(ctx)
	if err != nil {
		return err
	}
	e.Target = p.info.ID
	e.At = h.pause(p, "group")
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		h.resume(p, "group")
		return err
	}
	e.HealAt = h.resume(p, "group")
	e.Healed = e.HealAt
	return nil
}

// killDistributorLeader kills the instance that leads the distributor's
// election in the middle of a tick (killMidTick), and starts it again
// after the hold.
func (h *Harness) killDistributorLeader(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	in, p, err := h.distributorLeader(ctx)
	if err != nil {
		return err
	}
	if err := h.killMidTick(ctx, p, h.Plan.Config.TickInterval, f.TickOffset, 20*time.Millisecond, h.tickPhase, h.tickJobPath, e); err != nil {
		return err
	}
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		return err
	}
	e.HealAt = time.Now()
	np, err := h.startProcess(ctx, in)
	if err != nil {
		return err
	}
	e.Healed, e.Restarted = time.Now(), np.info.ID
	return nil
}

// tickJobPath is the document path of the distributor's job of the tick
// due at due.
func (h *Harness) tickJobPath(due time.Time) (string, error) {
	cat, err := distributor.Load(h.confDir)
	if err != nil {
		return "", err
	}
	def, err := cat.Get(DistributorName)
	if err != nil {
		return "", err
	}
	js, err := distributor.TickJobs(def, schedule.Tick{At: due}, "", nil)
	if err != nil || len(js) != 1 {
		return "", fmt.Errorf("faults: the tick's job: %v", err)
	}
	uid, _ := strings.CutPrefix(js[0].ID, "job/")
	return h.store.DocPath(uid), nil
}

// killMidTick kills p in the middle of a tick that falls due every
// interval (a distributor's tick, a schedule's occurrence): after the
// tick's job was created and before the tick was recorded, as phase
// reads them from ZooKeeper. It freezes p offset after a tick is due,
// reads the phase, and kills p there if the tick is half done; otherwise
// it lets p go on and tries the next tick a little earlier or later (a
// binary search over the offset, up to window after the tick), up to five
// ticks, then kills p wherever it is. It sets e's target, time, tick
// phase and note.
//
// With jobPath (the ZooKeeper path of the tick's job document) it watches
// that path from just before the tick and freezes p the moment the job
// appears — between the creation and the record, if the watch comes
// quickly enough — and freezes it wherever it is when no job appears
// within half a second.
func (h *Harness) killMidTick(ctx context.Context, p *process, every, offset, window time.Duration,
	phase func(context.Context, time.Time) (string, error), jobPath func(time.Time) (string, error), e *FaultEvent) error {
	// Ticks are due at multiples of the interval since the epoch.
	lo, hi := time.Duration(0), window
	const tries = 5
	for try := 1; ; try++ {
		due := time.Now().Truncate(every).Add(every)
		if time.Until(due) < 500*time.Millisecond {
			due = due.Add(every)
		}
		var created <-chan zk.Event
		if jobPath != nil {
			if err := sleep(ctx, time.Until(due.Add(-200*time.Millisecond))); err != nil {
				return err
			}
			if path, err := jobPath(due); err == nil {
				if ok, _, ch, err := h.conn.ExistsW(path); err == nil && !ok {
					created = ch
				}
			}
		}
		how := "at the offset"
		if created != nil {
			t := time.NewTimer(time.Until(due.Add(max(window, 500*time.Millisecond))))
			select {
			case <-created:
				how = "as its job appeared"
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
			t.Stop()
		} else if err := sleep(ctx, time.Until(due.Add(offset))); err != nil {
			return err
		}
		_ = syscall.Kill(p.info.PID, syscall.SIGSTOP)
		stopped := time.Now()
		// A stopped process sends nothing new, but what it wrote to its
		// socket before still reaches ZooKeeper: let that land first, or
		// a tick seen half done may be recorded a moment later.
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			_ = syscall.Kill(p.info.PID, syscall.SIGCONT)
			return err
		}
		ph, err := phase(ctx, due)
		if err != nil {
			_ = syscall.Kill(p.info.PID, syscall.SIGCONT)
			return err
		}
		if ph == tickCreated || try == tries {
			e.Target = p.info.ID
			e.At = stopped
			h.kill(p) // SIGKILL ends a stopped process too
			e.TickPhase = ph
			e.Note = fmt.Sprintf("(frozen %s %s after the tick due at %s and killed, tick %s; try %d)",
				how, stopped.Sub(due).Round(100*time.Microsecond), due.Format("15:04:05"), ph, try)
			return nil
		}
		_ = syscall.Kill(p.info.PID, syscall.SIGCONT)
		if ph == tickBefore {
			lo = offset
		} else {
			hi = offset
		}
		offset = (lo + hi) / 2
	}
}

// drain waits until every job is final, or DrainTimeout passes.
func (h *Harness) drain(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, h.DrainTimeout)
	defer cancel()
	last := time.Now()
	err := check.Until(dctx, 500*time.Millisecond, func() error {
		h.mu.Lock()
		want := make(map[string]bool, len(h.submitted))
		for id := range h.submitted {
			want[id] = true
		}
		h.mu.Unlock()
		states := map[jobs.State]int{}
		if err := h.store.Walk(dctx, func(j *jobs.Job, _ int32) {
			states[j.State]++
			delete(want, j.ID)
		}); err != nil {
			return err
		}
		open := len(want) + states[jobs.Queued] + states[jobs.Running] + states[jobs.Pending]
		if open == 0 {
			return nil
		}
		err := fmt.Errorf("%d jobs not final (%d queued, %d running, %d submitted jobs without a document)",
			open, states[jobs.Queued], states[jobs.Running], len(want))
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			h.logf("draining: %v", err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the queue did not drain within %s: %w", h.DrainTimeout, err)
	}
	return nil
}

// check gathers what the run left and checks it.
func (h *Harness) check(ctx context.Context, ended time.Time) (*Report, error) {
	var docs []*jobs.Job
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.store.Walk(cctx, func(j *jobs.Job, _ int32) { docs = append(docs, j) }); err != nil {
		return nil, err
	}
	sort.Slice(docs, func(a, b int) bool { return docs[a].ID < docs[b].ID })
	qs, err := h.store.Queue().Stats(cctx)
	if err != nil {
		return nil, err
	}
	direct := map[string]int{}
	for _, in := range h.execs {
		st, err := h.store.NodeQueue(in.name).Stats(cctx)
		if err != nil {
			return nil, err
		}
		direct[in.name] = st.Entries
	}
	recs, err := ReadRecords(h.recLog)
	if err != nil {
		return nil, err
	}
	runs, err := Runs(recs)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	var procs []Process
	for _, in := range h.instances() {
		for _, p := range in.procs {
			procs = append(procs, p.info)
		}
	}
	submitted := make(map[string]Submission, len(h.submitted))
	for k, v := range h.submitted {
		submitted[k] = v
	}
	events := append([]FaultEvent(nil), h.events...)
	h.mu.Unlock()
	finished := map[string]int{}
	resumed := 0
	var leading []time.Time
	var dropped []Interval
	for _, p := range procs {
		if p.Role != RoleExecutor && h.sched != nil {
			d, err := droppedSpans(h.logPath(p.ID))
			if err != nil {
				return nil, err
			}
			dropped = append(dropped, d...)
		}
		if p.Role == RoleController {
			continue
		}
		if p.Role == RoleDistributor {
			n, err := countLines(h.logPath(p.ID), distributor.MsgTickJobExists)
			if err != nil {
				return nil, err
			}
			resumed += n
			ts, err := logTimes(h.logPath(p.ID), distributor.MsgLeading)
			if err != nil {
				return nil, err
			}
			leading = append(leading, ts...)
			continue
		}
		if err := countFinished(h.logPath(p.ID), finished); err != nil {
			return nil, err
		}
	}
	sort.Slice(leading, func(a, b int) bool { return leading[a].Before(leading[b]) })
	for i := range events {
		if !events[i].Kind.distributorFault() {
			continue
		}
		for _, t := range leading {
			if t.After(events[i].At) {
				events[i].NewLeader = t
				break
			}
		}
	}
	total := 0
	for _, n := range finished {
		total += n
	}
	if total == 0 && len(runs) > 0 {
		return nil, fmt.Errorf("faults: the executors' logs have no %q line (executor.MsgJobFinished) for %d runs: is the line still logged, as JSON with the field %q? (double final writes cannot be counted)", executor.MsgJobFinished, len(runs), executor.FieldJob)
	}
	in := Input{
		Plan: h.Plan, Submitted: submitted, Jobs: docs, QueueAvailable: qs.Available, QueueTaken: qs.Taken, DirectQueues: direct,
		Runs: runs, Processes: procs, Finished: finished, Faults: events, Started: h.start, Ended: ended,
		TicksResumed: resumed,
	}
	if h.Plan.Config.Distributor {
		in.Distributor = DistributorName
	}
	if h.es != nil {
		if in.History, err = h.history(cctx); err != nil {
			return nil, err
		}
	}
	if h.sched != nil {
		s := *h.sched
		s.Dropped = dropped
		in.Schedule = &s
	}
	if h.recv != nil {
		if in.Notices, err = h.notices(cctx); err != nil {
			return nil, err
		}
	}
	if qs.Entries != qs.Available+qs.Taken {
		in.QueueAvailable = qs.Entries - qs.Taken
	}
	rep := Check(in)
	if err := rep.WriteJSON(filepath.Join(h.OutDir, "report.json")); err != nil {
		return rep, err
	}
	if err := os.WriteFile(filepath.Join(h.OutDir, "summary.txt"), []byte(rep.Summary()), 0o644); err != nil {
		return rep, err
	}
	return rep, nil
}

// logLine is what the checker reads of one line of a JSON log.
type logLine struct {
	Msg  string
	Time time.Time
	Job  string
	// FirstMissed and Running are the schedule runner's dropped span.
	FirstMissed, Running string
}

// readLog calls fn for every line of a JSON log whose message is one of
// msgs. The keys and messages are the constants of the packages that log
// them, so the checker follows their wording instead of repeating it.
func readLog(path string, fn func(logLine), msgs ...string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var fields map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &fields) != nil {
			continue // a line the process wrote outside its logger (a panic)
		}
		var l logLine
		if json.Unmarshal(fields[logging.MessageKey], &l.Msg) != nil || !slices.Contains(msgs, l.Msg) {
			continue
		}
		_ = json.Unmarshal(fields[logging.TimeKey], &l.Time)
		_ = json.Unmarshal(fields[executor.FieldJob], &l.Job)
		_ = json.Unmarshal(fields[schedules.FieldFirstMissed], &l.FirstMissed)
		_ = json.Unmarshal(fields[schedules.FieldRunning], &l.Running)
		fn(l)
	}
	return sc.Err()
}

// countFinished adds the executor.MsgJobFinished lines of an executor log
// to n, per job.
func countFinished(path string, n map[string]int) error {
	return readLog(path, func(l logLine) {
		if l.Job != "" {
			n[l.Job]++
		}
	}, executor.MsgJobFinished)
}

// logTimes returns the times of the JSON log lines whose message is msg.
func logTimes(path, msg string) ([]time.Time, error) {
	var out []time.Time
	err := readLog(path, func(l logLine) { out = append(out, l.Time) }, msg)
	return out, err
}

// countLines counts the JSON log lines whose message is msg.
func countLines(path, msg string) (int, error) {
	n := 0
	err := readLog(path, func(logLine) { n++ }, msg)
	return n, err
}

// copyZKLogs keeps the ZooKeeper nodes' logs with the run's output.
func (h *Harness) copyZKLogs() {
	for _, s := range h.zk.Servers {
		src, err := os.Open(s.LogPath())
		if err != nil {
			continue
		}
		dst, err := os.Create(filepath.Join(h.OutDir, fmt.Sprintf("zk%d.log", s.ID)))
		if err == nil {
			_, _ = io.Copy(dst, src)
			dst.Close()
		}
		src.Close()
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
