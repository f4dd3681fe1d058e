package faults

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/jobs"
)

// Sources of submitted jobs.
const (
	SourceWorkload    = "workload"    // the batches of the plan
	SourceProbe       = "probe"       // the job submitted when a fault is injected
	SourceDistributor = "distributor" // a distributor tick
	SourceWorkflow    = "workflow"    // a workflow job of the workload, and its node jobs
	SourceSliced      = "sliced"      // a sliced container of the workload, and its slices
	SourceSchedule    = "schedule"    // an occurrence of the run's schedule
)

// Submission is a job the run created, with when it was created.
type Submission struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

// Interval is a span of time; a zero To means it had not ended.
type Interval struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Process is one executor, distributor or controller process (an incarnation of an
// instance: a restart is a new process with the same instance name).
type Process struct {
	ID       string    `json:"id"`       // "x1#2": instance name, #, incarnation
	Instance string    `json:"instance"` // the --name it ran with
	Role     string    `json:"role"`     // "executor", "distributor" or "controller"
	PID      int       `json:"pid"`
	Started  time.Time `json:"started"`
	Exited   time.Time `json:"exited"` // zero while running
	Killed   time.Time `json:"killed"` // when SIGKILL was sent, if it was
	// Stopped is when the harness sent SIGTERM; NotReady marks a process
	// that exited before it was ready (the name it takes was still held)
	// and was started again. A process that exited otherwise crashed.
	Stopped  time.Time  `json:"stopped"`
	NotReady bool       `json:"not_ready,omitempty"`
	Pauses   []Interval `json:"pauses,omitempty"`
	// Partitions are the times the process was cut off from ZooKeeper;
	// unlike pauses they never excuse an overlap.
	Partitions []Interval `json:"partitions,omitempty"`
}

// FaultEvent is a fault as it was played.
type FaultEvent struct {
	N       int           `json:"n"`
	Kind    Kind          `json:"kind"`
	Scope   string        `json:"scope,omitempty"`
	Planned time.Duration `json:"planned"`
	// At is when the fault was injected; HealAt when healing began
	// (restart, SIGCONT, node start); Healed when it was done (the
	// process registered again, the nodes serve).
	At     time.Time `json:"at"`
	HealAt time.Time `json:"heal_at"`
	Healed time.Time `json:"healed"`
	// Target names what was hit: a process id, a ZooKeeper node.
	Target string `json:"target"`
	// Restarted is the process that replaced a killed one.
	Restarted string `json:"restarted,omitempty"`
	Probe     string `json:"probe"`
	Note      string `json:"note,omitempty"`
	// NewLeader is when another distributor instance said it leads,
	// after a distributor kill; after a controller fault, when another
	// controller led the maintenance election.
	NewLeader time.Time `json:"new_leader,omitempty"`
	// StillServing: a ZooKeeper node partitioned from the others still
	// served at the end of the hold.
	StillServing bool `json:"still_serving,omitempty"`
	// TickPhase is where a distributor kill found its tick: "created"
	// (the job made, the tick not recorded: mid-tick), "before" or
	// "recorded".
	TickPhase string `json:"tick_phase,omitempty"`
	// Job and Run name the job and the recorder run a remote fault cut,
	// Executor the executor process that ran it; RunGone is when the
	// run's plugin process was seen gone.
	Job      string    `json:"job,omitempty"`
	Run      string    `json:"run,omitempty"`
	Executor string    `json:"executor,omitempty"`
	RunGone  time.Time `json:"run_gone,omitempty"`
}

// Input is everything the checker looks at.
type Input struct {
	Plan *Plan
	// Submitted are the jobs the harness created (workload and probes);
	// distributor jobs are found among Jobs by their tick.
	Submitted map[string]Submission
	// Jobs are every job document at the end.
	Jobs []*jobs.Job
	// QueueAvailable and QueueTaken count the queue's entries at the end.
	QueueAvailable, QueueTaken int
	// DirectQueues counts the entries left in each executor's direct
	// queue (where the scheduler places jobs) at the end.
	DirectQueues map[string]int
	// Runs are the recorder's runs.
	Runs      []Run
	Processes []Process
	// Finished counts the executor.MsgJobFinished lines of the executors'
	// logs per job: each is one final write that went through.
	Finished map[string]int
	Faults   []FaultEvent
	// Distributor is the distributor's name, when one ran.
	Distributor string
	// TicksResumed counts ticks a new leader found half done: their job
	// created by a leader that was killed before it recorded the tick.
	TicksResumed int
	// Started and Ended bound the run; a run with no end line whose
	// process did not exit ends at Ended.
	Started, Ended time.Time
	// History is what Elasticsearch held at the end, when the run
	// indexed; nil otherwise.
	History *History
	// Schedule is the run's schedule, Notices what its jobs notified;
	// nil when the run had none.
	Schedule *ScheduleRun
	Notices  *Notices
}

// History is the Elasticsearch history at the end of a run, after the
// outbox was drained.
type History struct {
	// Outbox and Failed count the entries left in the outbox and in its
	// failed/ directory.
	Outbox, Failed int
	// Indexed is the version of each job's document in the jobs index.
	Indexed map[string]int64
	// States counts the state events in the job-events index per job and
	// document version.
	States map[string]map[int64]int
}

// Millis is a duration written as milliseconds in JSON and reports.
type Millis time.Duration

// MarshalJSON writes the duration in milliseconds, -1 for "not measured".
func (m Millis) MarshalJSON() ([]byte, error) {
	if m < 0 {
		return []byte("-1"), nil
	}
	return json.Marshal(time.Duration(m).Milliseconds())
}

// String is the duration to 10ms, or "-" when not measured.
func (m Millis) String() string {
	if m < 0 {
		return "-"
	}
	return time.Duration(m).Round(10 * time.Millisecond).String()
}

// notMeasured marks a recovery time that does not apply or was not seen.
const notMeasured = Millis(-1)

// FaultResult is a played fault with its measured effects.
type FaultResult struct {
	FaultEvent
	// Offset is when the fault was injected, from the start of the workload.
	Offset Millis `json:"offset_ms"`
	// Probe: from injection until the job submitted at that moment started.
	ProbeRecovery Millis `json:"probe_recovery_ms"`
	// InFlight is the number of runs the faulted executor had going;
	// Rerun how many of their jobs ran again (on any executor, the same
	// one included after a pause or partition); RerunAfter the time from
	// injection until the last of them started again.
	InFlight   int    `json:"in_flight"`
	Rerun      int    `json:"rerun"`
	RerunAfter Millis `json:"rerun_after_ms"`
	// Rejoin: from the heal until the faulted executor (or its
	// replacement) started a job again.
	Rejoin Millis `json:"rejoin_ms"`
	// NewLeader: from a distributor or controller fault until another
	// instance led.
	NewLeader Millis `json:"new_leader_ms"`
	// NextTick: from injection until a distributor job (a controller
	// fault: a job of the schedule's) was created again.
	NextTick Millis `json:"next_tick_ms"`
	// Canceled counts runs that ended canceled between this fault and the
	// next (actions stopped on session loss).
	Canceled int `json:"canceled_runs"`
}

// Overlap is two runs of one job whose times intersect.
type Overlap struct {
	Job     string `json:"job"`
	First   Run    `json:"first"`
	Second  Run    `json:"second"`
	Allowed bool   `json:"allowed"`
	// Evidence explains the verdict: the freeze of the first executor and
	// the session timeout, or why no fault explains it.
	Evidence string `json:"evidence"`
}

// JobCounts sums up the jobs.
type JobCounts struct {
	Submitted   int `json:"submitted"`
	Workload    int `json:"workload"`
	Probes      int `json:"probes"`
	Distributor int `json:"distributor"`
	Workflow    int `json:"workflow"`
	Sliced      int `json:"sliced"`
	Scheduled   int `json:"scheduled"`
	// Containers counts the sliced containers by final state;
	// SliceEndSpreads is, per container whose slices all succeeded, how
	// far apart their completed runs ended (how close to "the same
	// moment" the container's writers came).
	Containers      map[string]int `json:"containers,omitempty"`
	SliceEndSpreads []Millis       `json:"slice_end_spreads_ms,omitempty"`
	Final           map[string]int `json:"final"`
	// Placed counts the jobs the scheduler placed on an executor's
	// direct queue (their instance group is set).
	Placed int `json:"placed"`
	// NotFinal are jobs left QUEUED or RUNNING (or missing) at the end.
	NotFinal []string `json:"not_final,omitempty"`
	// Unsuccessful lists jobs that ended FAILED or CANCELED, with why.
	Unsuccessful []string `json:"unsuccessful,omitempty"`
}

// RunCounts sums up the recorder's runs.
type RunCounts struct {
	Total int `json:"total"`
	// Reruns are runs after a job's first, on JobsRerun jobs (a job
	// requeued because its executor's session was in doubt runs again
	// with the same attempt number).
	Reruns     int `json:"reruns"`
	JobsRerun  int `json:"jobs_rerun"`
	MaxAttempt int `json:"max_attempt"`
	// Unfinished runs left no end line (their process was killed).
	Unfinished int `json:"unfinished"`
	Canceled   int `json:"canceled"`
}

// TickCounts sums up the distributor's ticks.
type TickCounts struct {
	Ticks int `json:"ticks"`
	// MidTickKills counts distributor leaders killed in the middle of a
	// tick: its job created, the tick not recorded.
	MidTickKills int `json:"mid_tick_kills"`
	// Resumed counts ticks whose job a new leader found already created
	// by the leader killed in the middle of the tick.
	Resumed int `json:"resumed"`
	// Duplicates lists ticks that made more than one job.
	Duplicates []string `json:"duplicates,omitempty"`
}

// HistoryCounts sums up the Elasticsearch history at the end.
type HistoryCounts struct {
	// Versions are the job document versions found indexed, each with
	// its state event, exactly once.
	Versions int `json:"versions"`
	// Outbox and Failed are the entries left in the outbox and failed/.
	Outbox int `json:"outbox"`
	Failed int `json:"failed"`
}

// Report is the checker's verdict and the run's numbers.
type Report struct {
	Seed      uint64        `json:"seed"`
	Config    Config        `json:"config"`
	Started   time.Time     `json:"started"`
	Elapsed   Millis        `json:"elapsed_ms"`
	Jobs      JobCounts     `json:"jobs"`
	Runs      RunCounts     `json:"runs"`
	Ticks     TickCounts    `json:"ticks"`
	Faults    []FaultResult `json:"faults"`
	Overlaps  []Overlap     `json:"overlaps"`
	Processes []Process     `json:"processes"`
	// History is set when the run indexed into Elasticsearch.
	History *HistoryCounts `json:"history,omitempty"`
	// Occurrences and Notices are set when the run had a schedule.
	Occurrences *OccurrenceCounts `json:"occurrences,omitempty"`
	Notices     *NoticeCounts     `json:"notices,omitempty"`
	// Mail counts the e-mail notices, when the run had the SMTP receiver.
	Mail *NoticeCounts `json:"mail,omitempty"`
	// Violations are broken promises; the run fails when there is any.
	Violations []string `json:"violations"`
}

// OK reports whether every promise held.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// instanceOf returns the instance name of a process id ("x1#2" → "x1").
func instanceOf(id string) string {
	name, _, _ := strings.Cut(id, "#")
	return name
}

// Check checks the promises on in and measures the faults.
func Check(in Input) *Report {
	r := &Report{Started: in.Started, Elapsed: Millis(in.Ended.Sub(in.Started)), Processes: in.Processes}
	var s time.Duration
	if in.Plan != nil {
		r.Seed, r.Config = in.Plan.Config.Seed, in.Plan.Config
		s = in.Plan.Config.SessionTimeout
	}
	docs := make(map[string]*jobs.Job, len(in.Jobs))
	for _, j := range in.Jobs {
		docs[j.ID] = j
	}
	procs := make(map[string]*Process, len(in.Processes))
	for i := range in.Processes {
		procs[in.Processes[i].ID] = &in.Processes[i]
	}
	runsByJob := map[string][]Run{}
	for _, run := range in.Runs {
		runsByJob[run.Job] = append(runsByJob[run.Job], run)
	}

	checkJobs(r, in, docs, runsByJob)
	checkWorkflows(r, in, docs)
	checkSliced(r, in, docs, runsByJob)
	checkRuns(r, in, procs, runsByJob, s)
	checkProcesses(r, in)
	checkTicks(r, in)
	for _, e := range in.Faults {
		if e.Kind == PartitionZK && e.StillServing {
			r.violate("fault %d: ZooKeeper node %s, cut off from the others for %s, still served at the end (a minority answering its clients)", e.N, e.Target, e.HealAt.Sub(e.At).Round(10*time.Millisecond))
		}
	}
	checkHistory(r, in)
	checkOccurrences(r, in)
	checkNotices(r, in, docs)
	measureFaults(r, in, runsByJob)
	return r
}

// checkHistory: once the outbox is drained, every version of every job
// document is in the history exactly once — the newest in the jobs index,
// each with its state event — and nothing was refused.
func checkHistory(r *Report, in Input) {
	h := in.History
	if h == nil {
		return
	}
	r.History = &HistoryCounts{Outbox: h.Outbox, Failed: h.Failed}
	if h.Outbox != 0 {
		r.violate("history: %d outbox entries left after the drain", h.Outbox)
	}
	if h.Failed != 0 {
		r.violate("history: %d outbox entries refused by Elasticsearch (in failed/)", h.Failed)
	}
	for _, j := range in.Jobs {
		if got := h.Indexed[j.ID]; got != j.Version {
			r.violate("history: %s is at version %d in ZooKeeper and %d in the jobs index", j.ID, j.Version, got)
		}
		states := h.States[j.ID]
		for v := int64(1); v <= j.Version; v++ {
			switch n := states[v]; {
			case n == 1:
				r.History.Versions++
			case n == 0:
				r.violate("history: version %d of %s has no state event", v, j.ID)
			default:
				r.violate("history: version %d of %s has %d state events", v, j.ID, n)
			}
		}
		for v := range states {
			if v < 1 || v > j.Version {
				r.violate("history: %s has a state event of version %d, beyond its %d versions", j.ID, v, j.Version)
			}
		}
	}
}

// checkJobs: every submitted job reached exactly one final state, nothing
// is left queued or running, and nothing appeared that nobody submitted.
func checkJobs(r *Report, in Input, docs map[string]*jobs.Job, runsByJob map[string][]Run) {
	r.Jobs.Final = map[string]int{}
	submitted := make(map[string]string, len(in.Submitted))
	for id, sub := range in.Submitted {
		submitted[id] = sub.Source
	}
	for _, j := range in.Jobs {
		switch {
		case j.Tick != "" && isScheduled(j):
			submitted[j.ID] = SourceSchedule
		case j.Tick != "":
			submitted[j.ID] = SourceDistributor
		}
		// A workflow's node jobs are the workflow service's, with the ids
		// the workflow job names.
		if in.Submitted[j.ParentJob].Source == SourceWorkflow {
			submitted[j.ID] = SourceWorkflow
			if j.ID != jobs.NodeJobID(j.ParentJob, j.WorkflowNode) {
				r.violate("job %s of workflow %s (node %q) does not have its node's id", j.ID, j.ParentJob, j.WorkflowNode)
			}
		}
		// A sliced container's slices are created with it.
		if in.Submitted[j.ParentJob].Source == SourceSliced {
			submitted[j.ID] = SourceSliced
		}
	}
	ids := make([]string, 0, len(submitted))
	for id := range submitted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		switch submitted[id] {
		case SourceWorkload:
			r.Jobs.Workload++
		case SourceProbe:
			r.Jobs.Probes++
		case SourceDistributor:
			r.Jobs.Distributor++
		case SourceWorkflow:
			r.Jobs.Workflow++
		case SourceSliced:
			r.Jobs.Sliced++
		case SourceSchedule:
			r.Jobs.Scheduled++
		}
		r.Jobs.Submitted++
		j, ok := docs[id]
		if !ok {
			r.Jobs.NotFinal = append(r.Jobs.NotFinal, id+" MISSING")
			r.violate("job lost: %s (%s) was created but has no document at the end", id, submitted[id])
			continue
		}
		r.Jobs.Final[string(j.State)]++
		if j.InstanceGroup != "" {
			r.Jobs.Placed++
		}
		if !j.State.Final() {
			r.Jobs.NotFinal = append(r.Jobs.NotFinal, fmt.Sprintf("%s %s executor=%q attempt=%d explanation=%q", id, j.State, j.Executor, j.Attempt, j.Explanation))
			r.violate("job left %s: %s (executor %q, attempt %d, %d runs recorded)", j.State, id, j.Executor, j.Attempt, len(runsByJob[id]))
			continue
		}
		if n := in.Finished[id]; n > 1 {
			r.violate("job %s: %d final writes went through (executor logs say %q %d times)", id, n, executor.MsgJobFinished, n)
		}
		if j.State != jobs.Success {
			r.Jobs.Unsuccessful = append(r.Jobs.Unsuccessful, fmt.Sprintf("%s %s attempt %d: %s", id, j.State, j.Attempt, j.StatusMessage))
			continue
		}
		if j.IsContainer() {
			continue // it runs nothing: checkWorkflows and checkSliced check it
		}
		// A SUCCESS must come from a run of that attempt, on that executor,
		// that completed.
		found := false
		for _, run := range runsByJob[id] {
			if run.Attempt == j.Attempt && instanceOf(run.Executor) == j.Executor && run.Outcome == OutcomeDone {
				found = true
				break
			}
		}
		if !found {
			r.violate("job %s is SUCCESS by %s attempt %d, but no run of that attempt on that executor completed", id, j.Executor, j.Attempt)
		}
	}
	for _, j := range in.Jobs {
		if _, ok := submitted[j.ID]; !ok {
			r.violate("job %s (%s, created by %q) was never submitted", j.ID, j.State, j.CreatedBy)
		}
	}
	if in.QueueAvailable != 0 || in.QueueTaken != 0 {
		r.violate("queue not empty at the end: %d entries available, %d taken", in.QueueAvailable, in.QueueTaken)
	}
	names := make([]string, 0, len(in.DirectQueues))
	for name := range in.DirectQueues {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if n := in.DirectQueues[name]; n != 0 {
			r.violate("the direct queue of executor %s holds %d entries at the end (a job placed and never consumed, or placed twice)", name, n)
		}
	}
}

// checkProcesses: no process exited on its own — every exit is the
// harness's doing (SIGKILL, SIGTERM) or a start refused while the name was
// held.
func checkProcesses(r *Report, in Input) {
	for _, p := range in.Processes {
		if !p.Exited.IsZero() && p.Killed.IsZero() && p.Stopped.IsZero() && !p.NotReady {
			r.violate("%s %s (pid %d) exited on its own at %s: a crash (see its log)", p.Role, p.ID, p.PID, stamp(p.Exited))
		}
	}
}

// checkRuns counts the runs and finds overlapping runs of one job.
func checkRuns(r *Report, in Input, procs map[string]*Process, runsByJob map[string][]Run, s time.Duration) {
	for _, run := range in.Runs {
		r.Runs.Total++
		r.Runs.MaxAttempt = max(r.Runs.MaxAttempt, run.Attempt)
		if !run.Finished() {
			r.Runs.Unfinished++
		}
		if run.Outcome == OutcomeCanceled {
			r.Runs.Canceled++
		}
		if _, ok := procs[run.Executor]; !ok {
			r.violate("run %s of %s names executor process %q, which the harness did not start", run.ID, run.Job, run.Executor)
		}
	}
	// A remote run cut by a fault ends, when it left no end line, when
	// its plugin process was seen gone.
	cut := map[string]time.Time{}
	for _, e := range in.Faults {
		if e.Kind.remoteFault() && e.Run != "" && !e.RunGone.IsZero() {
			cut[e.Run] = e.RunGone
		}
	}
	checkRemoteCuts(r, in, runsByJob)
	jobIDs := make([]string, 0, len(runsByJob))
	for id := range runsByJob {
		jobIDs = append(jobIDs, id)
	}
	sort.Strings(jobIDs)
	for _, id := range jobIDs {
		runs := runsByJob[id]
		if len(runs) > 1 {
			r.Runs.JobsRerun++
			r.Runs.Reruns += len(runs) - 1
		}
		for a := 0; a < len(runs); a++ {
			for b := a + 1; b < len(runs); b++ {
				// The first run is the job's earlier owner: the lower
				// attempt. A frozen executor may start its action late,
				// after the next owner's (runs[] is in start order).
				first, second := runs[a], runs[b]
				if second.Attempt < first.Attempt {
					first, second = second, first
				}
				end, why := effectiveEnd(first, procs, cut, in.Ended)
				end2, _ := effectiveEnd(second, procs, cut, in.Ended)
				if second.Start >= end || first.Start >= end2 {
					continue
				}
				o := Overlap{Job: id, First: first, Second: second}
				o.Allowed, o.Evidence = explainOverlap(first, second, procs[first.Executor], s)
				if why != "" {
					o.Evidence = why + "; " + o.Evidence
				}
				r.Overlaps = append(r.Overlaps, o)
				if !o.Allowed {
					r.violate("job %s ran on two executors at once: %s", id, o.Evidence)
				}
			}
		}
	}
}

// effectiveEnd is when a run ended: its end line, else when a remote
// fault that cut it saw its plugin gone, else the exit of its process
// (killed), else the end of the run (an upper bound).
func effectiveEnd(run Run, procs map[string]*Process, cut map[string]time.Time, ended time.Time) (int64, string) {
	if run.Finished() {
		return run.End, ""
	}
	if t, ok := cut[run.ID]; ok {
		return t.UnixNano(), fmt.Sprintf("the first run left no end line; a remote fault cut it and its plugin was gone at %s", stamp(t))
	}
	if p := procs[run.Executor]; p != nil && !p.Exited.IsZero() {
		return p.Exited.UnixNano(), fmt.Sprintf("the first run left no end line; it ended at the latest when %s exited at %s", p.ID, stamp(p.Exited))
	}
	return ended.UnixNano(), "the first run left no end line and its process did not exit; counted as running until the end"
}

// explainOverlap decides whether an overlap is the allowed case: the first
// run's executor was frozen long enough that the session it ran the job
// under expired before the second run began. With session timeout S the
// server expires a session S after the last packet it heard, and a client
// sends one at least every S/3, so the earliest expiry is 2S/3 after the
// freeze began; a freeze longer than S always ends in expiry.
//
// The freeze must be the one that ended the first run's session: the run
// started before the freeze, or it is a stale start right after it (the
// process resumed where it stopped and started an action it had been given
// before the freeze). A run the executor started after the freeze under a
// new session could only lose its job when that session ended, at least
// 2S/3 after the resume; a second run that began sooner, with a higher
// attempt (it took the job over after the first), shows that the first
// was started under the frozen session.
func explainOverlap(first, second Run, p *Process, s time.Duration) (bool, string) {
	desc := fmt.Sprintf("run %s (attempt %d on %s, %s–%s) and run %s (attempt %d on %s, from %s)",
		first.ID, first.Attempt, first.Executor, stampNS(first.Start), stampNS(first.End),
		second.ID, second.Attempt, second.Executor, stampNS(second.Start))
	if p == nil {
		return false, desc + "; the first executor is unknown"
	}
	for _, pz := range p.Pauses {
		from := pz.From.UnixNano()
		held := s + 1 // still paused at the end: longer than anything
		resumed := int64(math.MaxInt64)
		if !pz.To.IsZero() {
			held = pz.To.Sub(pz.From)
			resumed = pz.To.UnixNano()
		}
		if held <= s || second.Start < from+int64(s*2/3) {
			continue
		}
		switch {
		case first.Start <= from:
			return true, fmt.Sprintf("%s; %s was frozen (SIGSTOP) from %s for %s, longer than the session timeout %s, while it ran the first, and the second began %s after the freeze: the first session had expired",
				desc, p.ID, stamp(pz.From), held.Round(time.Millisecond), s, time.Duration(second.Start-from).Round(time.Millisecond))
		case first.Start >= resumed && second.Attempt > first.Attempt && second.Start < resumed+int64(s*2/3):
			return true, fmt.Sprintf("%s; %s was frozen (SIGSTOP) from %s for %s, longer than the session timeout %s, and started the first run stale, %s after it resumed; the second began %s after the freeze: the first session had expired",
				desc, p.ID, stamp(pz.From), held.Round(time.Millisecond), s, time.Duration(first.Start-resumed).Round(time.Millisecond), time.Duration(second.Start-from).Round(time.Millisecond))
		}
	}
	return false, desc + "; no freeze of " + p.ID + " explains it (the session the first run belonged to was alive)"
}

// checkTicks: no distributor tick made more than one job.
func checkTicks(r *Report, in Input) {
	perTick := map[string][]string{}
	for _, j := range in.Jobs {
		if j.Tick == "" || isScheduled(j) {
			continue // checkOccurrences checks a schedule's
		}
		name, _, _ := strings.Cut(j.CreatedBy, "@")
		k := name + " " + j.Tick
		perTick[k] = append(perTick[k], j.ID+" by "+j.CreatedBy)
	}
	keys := make([]string, 0, len(perTick))
	for k := range perTick {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r.Ticks.Ticks = len(perTick)
	r.Ticks.Resumed = in.TicksResumed
	for _, e := range in.Faults {
		if e.Kind == KillDistributorLeader && e.TickPhase == tickCreated {
			r.Ticks.MidTickKills++
		}
	}
	for _, k := range keys {
		if js := perTick[k]; len(js) > 1 {
			d := fmt.Sprintf("tick %s: %d jobs: %s", k, len(js), strings.Join(js, ", "))
			r.Ticks.Duplicates = append(r.Ticks.Duplicates, d)
			r.violate("a distributor tick created more than one job: %s", d)
		}
	}
}

// checkRemoteCuts: a remote run cut mid-job is run again (the recorder's
// lost-job policy is rerun), by a higher attempt, unless it had ended
// before the cut landed.
func checkRemoteCuts(r *Report, in Input, runsByJob map[string][]Run) {
	for _, e := range in.Faults {
		if !e.Kind.remoteFault() || e.Run == "" {
			continue
		}
		var cutRun *Run
		for i, run := range runsByJob[e.Job] {
			if run.ID == e.Run {
				cutRun = &runsByJob[e.Job][i]
			}
		}
		if cutRun == nil {
			r.violate("fault %d (%s) cut run %s of %s, which the recorder log does not hold", e.N, e.Kind, e.Run, e.Job)
			continue
		}
		if cutRun.Finished() && cutRun.Outcome == OutcomeDone && cutRun.End <= e.At.UnixNano() {
			continue // it was over before the cut: nothing was lost
		}
		again := false
		for _, run := range runsByJob[e.Job] {
			if run.Start > e.At.UnixNano() && run.Attempt > cutRun.Attempt {
				again = true
			}
		}
		if !again {
			r.violate("fault %d (%s) cut run %s (attempt %d) of %s, and the job never ran again: the lost-job policy (rerun) was not applied", e.N, e.Kind, e.Run, cutRun.Attempt, e.Job)
		}
	}
}

// measureFaults computes each fault's recovery times.
func measureFaults(r *Report, in Input, runsByJob map[string][]Run) {
	var tickTimes, occTimes []time.Time
	for _, j := range in.Jobs {
		switch {
		case j.Tick != "" && isScheduled(j):
			occTimes = append(occTimes, j.Created)
		case j.Tick != "":
			tickTimes = append(tickTimes, j.Created)
		}
	}
	sort.Slice(tickTimes, func(a, b int) bool { return tickTimes[a].Before(tickTimes[b]) })
	sort.Slice(occTimes, func(a, b int) bool { return occTimes[a].Before(occTimes[b]) })
	for i, e := range in.Faults {
		fr := FaultResult{FaultEvent: e, Offset: Millis(e.At.Sub(in.Started)), ProbeRecovery: notMeasured, RerunAfter: notMeasured, Rejoin: notMeasured, NextTick: notMeasured, NewLeader: notMeasured}
		at := e.At.UnixNano()
		if runs := runsByJob[e.Probe]; len(runs) > 0 {
			fr.ProbeRecovery = Millis(runs[0].Start - at)
		}
		windowEnd := in.Ended.UnixNano()
		if i+1 < len(in.Faults) {
			windowEnd = in.Faults[i+1].At.UnixNano()
		}
		for _, run := range in.Runs {
			if run.Outcome == OutcomeCanceled && run.End >= at && run.End < windowEnd {
				fr.Canceled++
			}
		}
		switch {
		case e.Kind.executorFault():
			var worst int64 = -1
			for _, run := range in.Runs {
				if run.Executor != e.Target || run.Start >= at || (run.Finished() && run.End <= at) {
					continue
				}
				fr.InFlight++
				for _, later := range runsByJob[run.Job] {
					if later.Start > at && later.ID != run.ID {
						fr.Rerun++
						worst = max(worst, later.Start-at)
						break
					}
				}
			}
			if worst >= 0 {
				fr.RerunAfter = Millis(worst)
			}
			who, since := e.Target, e.HealAt
			if e.Kind == KillExecutor {
				who = e.Restarted
			}
			for _, run := range in.Runs {
				if run.Executor == who && run.Start >= since.UnixNano() {
					fr.Rejoin = Millis(run.Start - since.UnixNano())
					break
				}
			}
		case e.Kind.remoteFault():
			// The cut job: when it ran again; the node: when the remote
			// executor next started a run after the cut run was gone.
			if e.Job != "" {
				fr.InFlight = 1
				for _, later := range runsByJob[e.Job] {
					if later.Start > at && later.ID != e.Run {
						fr.Rerun = 1
						fr.RerunAfter = Millis(later.Start - at)
						break
					}
				}
			}
			for _, run := range in.Runs {
				if run.Executor == e.Executor && run.Start >= e.HealAt.UnixNano() && !e.HealAt.IsZero() {
					fr.Rejoin = Millis(run.Start - e.HealAt.UnixNano())
					break
				}
			}
		case e.Kind.distributorFault() || e.Kind.controllerFault():
			if !e.NewLeader.IsZero() {
				fr.NewLeader = Millis(e.NewLeader.Sub(e.At))
			}
			// A controller's next tick is the schedule's next occurrence.
			ticks := tickTimes
			if e.Kind.controllerFault() {
				ticks = occTimes
			}
			for _, t := range ticks {
				if t.After(e.At) {
					fr.NextTick = Millis(t.Sub(e.At))
					break
				}
			}
		}
		r.Faults = append(r.Faults, fr)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}

func stampNS(ns int64) string {
	if ns == 0 {
		return "(no end)"
	}
	return stamp(time.Unix(0, ns))
}
