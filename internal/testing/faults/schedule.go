package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Kind is a kind of fault.
type Kind string

// The faults the suite injects.
const (
	// KillExecutor kills an executor with SIGKILL and starts it again, with
	// the same name, after Hold.
	KillExecutor Kind = "kill-executor"
	// PauseExecutor stops an executor with SIGSTOP for Hold (longer than the
	// session timeout), then continues it. Scope "process" stops the
	// executor alone (its plugin processes keep running, as in a long GC
	// pause); "group" stops it with its plugins (a frozen machine).
	PauseExecutor Kind = "pause-executor"
	// PartitionExecutor cuts an executor off from every ZooKeeper node for
	// Hold (between 0.7 and 1 session timeout plus 3s: sometimes the
	// session survives, mostly it expires while the executor runs on).
	// The executor must stop its actions on its own: unlike a frozen one,
	// it may never run a job at the same time as another executor.
	PartitionExecutor Kind = "partition-executor"
	// KillZKLeader kills the ZooKeeper leader with SIGKILL and starts it
	// again after Hold.
	KillZKLeader Kind = "kill-zk-leader"
	// RestartEnsemble stops every ZooKeeper node, waits Hold and starts
	// them again. Scope "stop" stops them with SIGTERM, "kill" with SIGKILL.
	RestartEnsemble Kind = "restart-ensemble"
	// KillDistributorLeader kills the leading distributor instance with
	// SIGKILL in the middle of its tick interval and starts it again after
	// Hold.
	KillDistributorLeader Kind = "kill-distributor-leader"
	// SilenceExecutor makes every connection of an executor to ZooKeeper
	// go silent for Hold without closing (its proxies hold what either
	// side sends): the case where a client notices last, by its own
	// timeouts. Like a partition, the executor must stop its actions on
	// its own.
	SilenceExecutor Kind = "silence-executor"
	// PartitionZK cuts one ZooKeeper node — scope "leader" or "follower"
	// — off from the other members for Hold (its peer connections go
	// through the harness's proxies, which close them and refuse new
	// ones), while its clients still reach it: alone, it must stop
	// serving, and serve again once it rejoins.
	PartitionZK Kind = "partition-zk"
	// PauseZK freezes one ZooKeeper node with SIGSTOP for Hold, then
	// continues it. Scope "leader" freezes the leader (the others elect a
	// new one), "follower" a follower (its clients move to another node).
	PauseZK Kind = "pause-zk"
	// ElasticsearchDown stops the in-process Elasticsearch for Hold
	// (connections refused) while the engine indexes, then starts it
	// again: the outbox must keep every job version and deliver it.
	ElasticsearchDown Kind = "es-down"
	// PauseDistributorLeader freezes the leading distributor instance —
	// which also leads the maintenance services: cleanup, index pump,
	// scheduler, reaper — with SIGSTOP for Hold (longer than the session
	// timeout), then continues it: it must find it no longer leads and
	// neither double a tick nor write on behalf of a lost leadership.
	PauseDistributorLeader Kind = "pause-distributor-leader"
	// KillControllerLeader kills the controller process that leads the
	// maintenance services (scheduler, reaper, workflow service, schedule
	// runner, notification sender, index pump) with SIGKILL in the middle
	// of a schedule occurrence — the occurrence's job created, the
	// schedule's state not yet written — and starts it again after Hold.
	KillControllerLeader Kind = "kill-controller-leader"
	// PauseControllerLeader freezes the leading controller with SIGSTOP for
	// Hold (longer than the session timeout), then continues it: the other
	// controller takes the services over, the frozen one must find it no
	// longer leads.
	PauseControllerLeader Kind = "pause-controller-leader"
	// ReceiverDown stops the harness's webhook receiver for Hold
	// (connections refused), then starts it again on the same address: the
	// notification sender must deliver every notice at least once.
	ReceiverDown Kind = "receiver-down"
	// CutRemoteStream kills the worker of a job the remote executor runs
	// on its node over SSH, mid-job: the stream ends without its final
	// record (the recorder plugin dies with its worker). The executor must
	// apply the action's lost-job policy (the recorder's: run it again),
	// and only once the cut run has stopped.
	CutRemoteStream Kind = "cut-remote-stream"
	// KillRemoteSSH kills the sshd processes serving the connection of a
	// job the remote executor runs, mid-job: the executor's ssh client
	// sees the connection close, the worker its stream; the job is
	// handled as after CutRemoteStream, and the worker must stop the
	// orphaned run before the job runs again.
	KillRemoteSSH Kind = "kill-remote-ssh"
	// SMTPDown kills the harness's SMTP receiver for Hold (connections
	// refused), then starts it again on the same port: the notification
	// sender must deliver every e-mail notice at least once.
	SMTPDown Kind = "smtp-down"
)

// Kinds lists every kind of fault.
var Kinds = []Kind{KillExecutor, PauseExecutor, PartitionExecutor, SilenceExecutor, KillZKLeader, PauseZK, PartitionZK, RestartEnsemble,
	KillDistributorLeader, PauseDistributorLeader, ElasticsearchDown, KillControllerLeader, PauseControllerLeader, ReceiverDown,
	CutRemoteStream, KillRemoteSSH, SMTPDown}

// remoteFault reports whether k is aimed at the remote executor's node.
func (k Kind) remoteFault() bool {
	return k == CutRemoteStream || k == KillRemoteSSH
}

// distributorFault reports whether k is aimed at the distributor.
func (k Kind) distributorFault() bool {
	return k == KillDistributorLeader || k == PauseDistributorLeader
}

// controllerFault reports whether k is aimed at the controllers.
func (k Kind) controllerFault() bool {
	return k == KillControllerLeader || k == PauseControllerLeader
}

// executorFault reports whether k is aimed at one executor.
func (k Kind) executorFault() bool {
	return k == KillExecutor || k == PauseExecutor || k == PartitionExecutor || k == SilenceExecutor
}

// Config sizes a fault run. The zero value of a field means its default.
type Config struct {
	// Seed makes the run reproducible: the jobs, their durations and the
	// fault schedule follow from it.
	Seed uint64
	// Jobs is the number of workload jobs (default 600).
	Jobs int
	// Executors is the number of executor processes (default 3).
	Executors int
	// Threads is the number of workers of each executor (default 3).
	Threads int
	// Duration is the length of the workload, during which jobs are
	// submitted and faults injected (default 3m10s).
	Duration time.Duration
	// Faults is the number of faults (default: every kind that applies
	// once); the schedule holds every kind at least once when there is
	// room.
	Faults int
	// SessionTimeout is the executors' ZooKeeper session timeout (default 2s).
	SessionTimeout time.Duration
	// Distributor adds a distributor on two processes and its fault.
	Distributor bool
	// Controllers adds two `jobengine controller` processes, contending
	// for the maintenance services, and their faults; the distributor
	// processes then host no maintenance.
	Controllers bool
	// ScheduleEvery is the interval of the schedule the run stores
	// (default 5s; negative: none): its occurrences launch recorder jobs
	// that notify the harness's webhook receiver, which adds the
	// receiver's fault. It needs the controllers.
	ScheduleEvery time.Duration
	// Index runs the engine with indexing on, into an in-process
	// Elasticsearch (estest), adds its fault and checks at the end that
	// every job version is in the history exactly once.
	Index bool
	// TickInterval is the distributor's interval (default 4s). It is
	// longer than a leader failover (the session timeout and a little), so
	// that the new leader runs the tick its predecessor was killed in the
	// middle of and finds its job already created; with a shorter interval
	// the catch-up policy drops that tick, and the path that keeps a tick
	// from making two jobs goes untested.
	TickInterval time.Duration
	// LongJobs is the share of jobs that run for 1–4s instead of 20–400ms
	// (default 0.15), so that faults catch jobs in the middle of a run.
	LongJobs float64
	// Scheduled is the share of workload jobs launched through the
	// scheduler (created PENDING for the default instance group and
	// placed on an executor's direct queue by the maintenance leader),
	// so that faults catch jobs placed and not started; 0 for none. It
	// needs the distributor, whose elected instance runs the scheduler.
	Scheduled float64
	// Workflows is the number of workflows launched over the workload
	// (default 4; negative: none). They need the distributor, whose
	// processes host the workflow service.
	Workflows int
	// Sliced is the number of sliced template launches over the workload
	// (default 4; negative: none), each a container and SlicedCount
	// slices. They need the distributor, whose elected instance runs the
	// scheduler and the container repair.
	Sliced int
	// Remote adds an executor that runs its jobs on a remote node through
	// `jobengine worker` over SSH (the harness's loopback sshd; the node's
	// plugin directory holds the recorder), and the remote faults.
	Remote bool `json:"remote,omitempty"`
	// Mail has the schedule's jobs also notify an e-mail template sent to
	// an SMTP receiver the harness runs (python3-aiosmtpd), which adds
	// its fault. It needs the schedule.
	Mail bool `json:"mail,omitempty"`
	// Cycle plays the kinds in turn (every kind once, then again, in the
	// order of Kinds) instead of every kind once and a random mix: the
	// soak's schedule, where each kind comes back at a steady rate.
	Cycle bool `json:"cycle,omitempty"`
}

// ErrConfig is wrapped by the errors of a Config that cannot be played.
var ErrConfig = errors.New("faults: bad configuration")

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Jobs <= 0 {
		c.Jobs = 600
	}
	if c.Executors <= 0 {
		c.Executors = 3
	}
	if c.Threads <= 0 {
		c.Threads = 3
	}
	if c.Duration <= 0 {
		c.Duration = 190 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 2 * time.Second
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 4 * time.Second
	}
	if c.LongJobs <= 0 {
		c.LongJobs = 0.15
	}
	if c.ScheduleEvery == 0 {
		c.ScheduleEvery = 5 * time.Second
	}
	switch {
	case c.Workflows == 0:
		c.Workflows = 4
	case c.Workflows < 0:
		c.Workflows = 0
	}
	switch {
	case c.Sliced == 0:
		c.Sliced = 4
	case c.Sliced < 0:
		c.Sliced = 0
	}
	return c
}

// Fault is one planned fault.
type Fault struct {
	Kind Kind `json:"kind"`
	// At is when the fault is injected, from the start of the workload.
	At time.Duration `json:"at"`
	// Hold is how long the fault lasts before it is healed (process
	// restarted, continued, node started).
	Hold time.Duration `json:"hold"`
	// Target is the index of the executor or distributor instance hit
	// (executor faults; the distributor leader is whichever leads then).
	Target int `json:"target,omitempty"`
	// Scope refines the kind: "process" or "group" for a pause, "stop" or
	// "kill" for an ensemble restart, "leader" or "follower" for a frozen
	// ZooKeeper node.
	Scope string `json:"scope,omitempty"`
	// Probe is the id of the job submitted the moment the fault is
	// injected: the time until it starts is the fault's recovery time.
	Probe string `json:"probe"`
	// TickOffset is where a distributor kill first looks for the middle of
	// a tick: this long after the tick is due.
	TickOffset time.Duration `json:"tick_offset,omitempty"`
}

// PlannedJob is one workload job.
type PlannedJob struct {
	ID      string `json:"id"`
	SleepMS int    `json:"sleep_ms"`
	// Scheduled jobs are created PENDING, for the scheduler to place.
	Scheduled bool `json:"scheduled,omitempty"`
}

// Batch is a set of jobs created in one transaction at a point of the
// workload.
type Batch struct {
	At   time.Duration `json:"at"`
	Jobs []PlannedJob  `json:"jobs"`
}

// Plan is everything a seed decides: the workload and the fault schedule.
type Plan struct {
	Config  Config  `json:"config"`
	Batches []Batch `json:"batches"`
	Faults  []Fault `json:"faults"`
}

// Time of the workload around the faults.
const (
	leadIn     = 5 * time.Second // the first fault comes after the workload settled
	settleTime = 6 * time.Second // room left after a fault's hold to recover before the next
	batchEvery = 500 * time.Millisecond
)

// NewPlan draws the workload and the fault schedule from cfg.Seed. The
// workload and the schedule use separate random streams: changing the
// number of jobs keeps the faults, and the other way round.
func NewPlan(cfg Config) (*Plan, error) {
	cfg = cfg.WithDefaults()
	if cfg.Executors < 2 {
		return nil, fmt.Errorf("%w: %d executors; at least 2, so that one survives a fault", ErrConfig, cfg.Executors)
	}
	if cfg.ScheduleEvery > 0 {
		if err := checkScheduleEvery(cfg.ScheduleEvery); err != nil {
			return nil, err
		}
	}
	p := &Plan{Config: cfg}
	jr := rand.New(rand.NewPCG(cfg.Seed, 1))
	fr := rand.New(rand.NewPCG(cfg.Seed, 2))
	tr := rand.New(rand.NewPCG(cfg.Seed, 3))
	sr := rand.New(rand.NewPCG(cfg.Seed, 4)) // its own stream: older plans stay as they were
	if !cfg.Distributor && !cfg.Controllers {
		p.Config.Scheduled, cfg.Scheduled = 0, 0
	}
	// The schedule's runner and the notification sender run until the
	// end of the drain, on the controllers: distributor processes that
	// host them would make ticks through the drain.
	if !cfg.Controllers {
		p.Config.ScheduleEvery, cfg.ScheduleEvery = -1, -1
	}
	if cfg.ScheduleEvery <= 0 {
		p.Config.Mail, cfg.Mail = false, false
	}

	// Jobs are submitted in batches spread over the first 90% of the
	// workload, leaving its end for the queue to drain.
	window := cfg.Duration * 9 / 10
	nb := max(1, int(window/batchEvery))
	ids := idSource(jr)
	for i := 0; i < cfg.Jobs; i++ {
		b := i * nb / cfg.Jobs
		if len(p.Batches) <= b {
			for len(p.Batches) <= b {
				p.Batches = append(p.Batches, Batch{At: time.Duration(len(p.Batches)) * window / time.Duration(nb)})
			}
		}
		sleep := 20 + jr.IntN(381)
		if jr.Float64() < cfg.LongJobs {
			sleep = 1000 + jr.IntN(3001)
		}
		p.Batches[b].Jobs = append(p.Batches[b].Jobs, PlannedJob{ID: ids(), SleepMS: sleep, Scheduled: sr.Float64() < cfg.Scheduled})
	}
	var kept []Batch
	for _, b := range p.Batches {
		if len(b.Jobs) > 0 {
			kept = append(kept, b)
		}
	}
	p.Batches = kept

	kinds := make([]Kind, 0, len(Kinds))
	for _, k := range Kinds {
		if (!k.distributorFault() || cfg.Distributor) && (k != ElasticsearchDown || cfg.Index) &&
			(!k.controllerFault() || cfg.Controllers) && (k != ReceiverDown || cfg.ScheduleEvery > 0) && (!k.remoteFault() || cfg.Remote) &&
			(k != SMTPDown || cfg.Mail && cfg.ScheduleEvery > 0) {
			kinds = append(kinds, k)
		}
	}
	if cfg.Faults <= 0 {
		cfg.Faults = len(kinds)
		p.Config.Faults = cfg.Faults
	}
	// Every kind once, then executor faults (the common case in the field)
	// and the odd ZooKeeper fault, in a random order.
	plan := append([]Kind(nil), kinds...)
	if cfg.Faults < len(plan) {
		fr.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
		plan = plan[:cfg.Faults]
	}
	extra := []Kind{KillExecutor, KillExecutor, PauseExecutor, PauseExecutor, PartitionExecutor, PartitionExecutor, SilenceExecutor, KillZKLeader, PauseZK, PartitionZK}
	if cfg.Distributor {
		extra = append(extra, KillDistributorLeader)
	}
	if cfg.Index {
		extra = append(extra, ElasticsearchDown)
	}
	if cfg.Controllers {
		extra = append(extra, KillControllerLeader, PauseControllerLeader)
	}
	if cfg.ScheduleEvery > 0 {
		extra = append(extra, ReceiverDown)
	}
	if cfg.Remote {
		extra = append(extra, CutRemoteStream, KillRemoteSSH)
	}
	if cfg.Mail && cfg.ScheduleEvery > 0 {
		extra = append(extra, SMTPDown)
	}
	for len(plan) < cfg.Faults {
		plan = append(plan, extra[fr.IntN(len(extra))])
	}
	fr.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	if cfg.Cycle {
		plan = plan[:0]
		for i := 0; i < cfg.Faults; i++ {
			plan = append(plan, kinds[i%len(kinds)])
		}
	}

	// Each fault gets its hold and settleTime; what is left of the
	// duration is shared out at random between them, so the faults still
	// come at unforeseeable times.
	fids := idSource(fr)
	need := time.Duration(0)
	for _, k := range plan {
		f := Fault{Kind: k, Probe: fids()}
		switch k {
		case KillExecutor:
			f.Target = fr.IntN(cfg.Executors)
			f.Hold = between(fr, time.Second, 4*time.Second)
		case PauseExecutor:
			f.Target = fr.IntN(cfg.Executors)
			f.Hold = cfg.SessionTimeout + between(fr, 500*time.Millisecond, 3*time.Second)
			f.Scope = []string{"process", "group"}[fr.IntN(2)]
		case PartitionExecutor:
			f.Target = fr.IntN(cfg.Executors)
			f.Hold = between(fr, cfg.SessionTimeout*7/10, cfg.SessionTimeout+3*time.Second)
		case SilenceExecutor:
			f.Target = fr.IntN(cfg.Executors)
			f.Hold = between(fr, cfg.SessionTimeout*7/10, cfg.SessionTimeout+3*time.Second)
		case PauseZK:
			f.Hold = between(fr, 2*time.Second, 5*time.Second)
			f.Scope = []string{"leader", "follower"}[fr.IntN(2)]
		case PartitionZK:
			f.Hold = between(fr, 3*time.Second, 5*time.Second)
			f.Scope = []string{"leader", "follower"}[fr.IntN(2)]
		case ElasticsearchDown:
			f.Hold = between(fr, 3*time.Second, 6*time.Second)
		case PauseDistributorLeader, PauseControllerLeader:
			f.Hold = cfg.SessionTimeout + between(fr, 500*time.Millisecond, 3*time.Second)
		case KillZKLeader:
			f.Hold = between(fr, 2*time.Second, 6*time.Second)
		case RestartEnsemble:
			f.Hold = between(fr, time.Second, 3*time.Second)
			f.Scope = []string{"stop", "kill"}[fr.IntN(2)]
		case KillDistributorLeader, KillControllerLeader:
			f.Hold = between(fr, 2*time.Second, 5*time.Second)
			f.TickOffset = time.Duration(tr.IntN(20_000)) * time.Microsecond
		case ReceiverDown:
			f.Hold = between(fr, 3*time.Second, 6*time.Second)
		case SMTPDown:
			// Longer than the schedule's interval (5s by default), so
			// that an occurrence's e-mail is due while it is down.
			f.Hold = cfg.ScheduleEvery + between(fr, time.Second, 3*time.Second)
		case CutRemoteStream, KillRemoteSSH:
			// Not a hold: the time the cut job is held for the node's
			// orphan bound (3.25s) and a little, planned so that the next
			// fault comes after it runs again.
			f.Hold = 4 * time.Second
		}
		need += f.Hold + settleTime
		p.Faults = append(p.Faults, f)
	}
	slack := cfg.Duration - leadIn - need
	if slack < 0 {
		return nil, fmt.Errorf("%w: %d faults do not fit in %s (each needs its hold plus %s to recover: %s in all); give a longer duration or fewer faults", ErrConfig, len(plan), cfg.Duration, settleTime, need.Round(time.Second))
	}
	// Cut the slack at len(plan) random points: fault i waits the i-th
	// piece before it comes.
	cuts := make([]time.Duration, len(plan))
	for i := range cuts {
		cuts[i] = between(fr, 0, slack)
	}
	slices.Sort(cuts)
	at := leadIn
	prev := time.Duration(0)
	for i := range p.Faults {
		at += cuts[i] - prev
		prev = cuts[i]
		p.Faults[i].At = at
		at += p.Faults[i].Hold + settleTime
	}
	p.RemoteWhileWorking()
	return p, nil
}

// remoteLead is how long before the last workload batch a remote fault
// comes at the latest: it waits for a run of the remote executor, and
// once the workload is all submitted that executor soon has none.
const remoteLead = 10 * time.Second

// RemoteWhileWorking swaps each remote fault planned later than remoteLead
// before the last workload batch with the latest other fault planned
// before then whose place each fits (its hold and the time to recover
// before the next fault, or the end): each place keeps its time, the
// fault moves whole. Call it again after changing the faults' times.
func (p *Plan) RemoteWhileWorking() {
	if len(p.Batches) == 0 {
		return
	}
	last := p.Batches[len(p.Batches)-1].At - remoteLead
	fits := func(f Fault, at time.Duration, k int) bool {
		next := p.Config.Duration
		if k+1 < len(p.Faults) {
			next = p.Faults[k+1].At
		}
		return at+f.Hold+settleTime <= next
	}
	for i := len(p.Faults) - 1; i >= 0; i-- {
		if !p.Faults[i].Kind.remoteFault() || p.Faults[i].At <= last {
			continue
		}
		for j := i - 1; j >= 0; j-- {
			g := p.Faults[j]
			if g.Kind.remoteFault() || g.At > last || !fits(p.Faults[i], g.At, j) || !fits(g, p.Faults[i].At, i) {
				continue
			}
			fi, fj := p.Faults[i].At, g.At
			p.Faults[i], p.Faults[j] = g, p.Faults[i]
			p.Faults[i].At, p.Faults[j].At = fi, fj
			break
		}
	}
}

// between returns a duration in [lo, hi], rounded to milliseconds.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return (lo + time.Duration(r.Int64N(int64(hi-lo)+1))).Round(time.Millisecond)
}

// idSource returns a function drawing job ids from r.
func idSource(r *rand.Rand) func() string {
	return func() string {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:8], r.Uint64())
		binary.LittleEndian.PutUint64(b[8:], r.Uint64())
		u, _ := uuid.NewRandomFromReader(strings.NewReader(string(b[:])))
		return "job/" + u.String()
	}
}

// Jobs returns the number of planned workload jobs.
func (p *Plan) Jobs() int {
	n := 0
	for _, b := range p.Batches {
		n += len(b.Jobs)
	}
	return n
}

// String describes the fault schedule, one line per fault.
func (p *Plan) String() string {
	var b strings.Builder
	for i, f := range p.Faults {
		fmt.Fprintf(&b, "  %2d. at %-8s %-24s hold %-7s", i+1, f.At.Round(100*time.Millisecond), f.Kind, f.Hold.Round(100*time.Millisecond))
		switch f.Kind {
		case KillExecutor, PauseExecutor, PartitionExecutor, SilenceExecutor:
			fmt.Fprintf(&b, " executor %d", f.Target+1)
		}
		if f.Scope != "" {
			fmt.Fprintf(&b, " (%s)", f.Scope)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
