package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// pendingJob is a PENDING job as the scheduler keeps it between passes:
// its uuid (its node in the index of PENDING jobs), its document and the
// document's znode version. A job is read once, when it first shows in the
// index; the scheduler's own writes keep the copy current, and a write
// that finds the document changed makes the next pass read it again.
type pendingJob struct {
	uid string
	job *jobs.Job
	ver int32
}

// Report says what a pass did.
type Report struct {
	// Pending is the number of pending jobs the pass saw.
	Pending int
	// Placed, Failed and Ended count the jobs queued on executors, failed
	// (a dependency failed, or invalid fields) and fan-out parents ended.
	Placed, Failed, Ended int
	// Blocked counts the jobs left waiting for other jobs (keys,
	// dependencies), NoCapacity those left waiting for room.
	Blocked, NoCapacity int
	// Explained counts the explanations written (only changed ones are).
	Explained int
	// Dropped counts stale pending nodes removed (their job had ended).
	Dropped int
	// Cut says the pass stopped at MaxStarts or its deadline with jobs
	// left undecided or explanations unwritten.
	Cut bool
	// Duration is how long the pass took; Phases how long each part took.
	Duration time.Duration
	Phases   Phases
}

// Phases are the durations of a pass's parts.
type Phases struct {
	// Read is reading the executors, the pending jobs and the jobs waited
	// on; Decide is deciding for every job, in memory.
	Read, Decide time.Duration
	// Place, Final and Explain are committing the placements, the
	// failures and ends, and the explanations.
	Place, Final, Explain time.Duration
}

// Pass runs one scheduler pass under term. It returns an error wrapping
// ErrNotLeader once the term has ended (nothing more was written), or
// another error when ZooKeeper failed (what was committed stays; the next
// pass reads again).
func (s *Scheduler) Pass(ctx context.Context, term Term) (rep Report, err error) {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	start := time.Now()
	deadline := start.Add(s.cfg.PassDeadline)
	defer func() { rep.Duration = time.Since(start) }()
	if err := term.Check(); err != nil {
		return rep, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	snap, err := s.clust.Read(ctx)
	if err != nil {
		return rep, err
	}
	s.logProblems(snap.Problems)
	pending, stale, err := s.readPending(ctx)
	if err != nil {
		return rep, err
	}
	if rep.Dropped, err = s.dropStale(ctx, term, stale); err != nil {
		return rep, err
	}
	rep.Pending = len(pending)
	deps, err := s.resolve(ctx, pending, snap)
	if err != nil {
		return rep, err
	}
	mark := time.Now()
	rep.Phases.Read = mark.Sub(start)
	phase := func(d *time.Duration) {
		now := time.Now()
		*d, mark = now.Sub(mark), now
	}
	m := newModel(snap)
	list := make([]*jobs.Job, len(pending))
	for i, p := range pending {
		list[i] = p.job
	}
	decisions := decideAll(m, list, deps, func(placed int) bool {
		return placed >= s.cfg.MaxStarts || time.Now().After(deadline)
	})
	rep.Cut = len(decisions) < len(pending)

	// What matters most is committed first: placements, then failures and
	// ends, then explanations while the deadline allows.
	var places, finals, explains []item
	for i, d := range decisions {
		p := pending[i]
		var c *jobs.Change
		var err error
		list := &finals
		switch d.verdict {
		case vPlace:
			c, err = s.store.Place(p.job, p.ver, d.node.name, d.group)
			list = &places
		case vFail, vInvalid:
			c, err = s.store.FailPending(p.job, p.ver, d.text)
		case vEnd:
			c, err = s.store.EndFanout(p.job, p.ver, d.state, d.text)
		case vWait:
			if d.blocked {
				rep.Blocked++
			} else {
				rep.NoCapacity++
			}
			if jobs.TruncateExplanation(d.text) == p.job.Explanation {
				continue
			}
			c, err = s.store.Explain(p.job, p.ver, d.text)
			list = &explains
		}
		if err != nil {
			// The cached copy is not what the rules expect: read it again.
			s.log.Warn("cannot plan the job's next state; reading it again next pass", zap.String("job", p.job.ID), zap.Error(err))
			s.forget(p)
			continue
		}
		*list = append(*list, item{p, c, d})
	}
	phase(&rep.Phases.Decide)
	if err := s.commit(ctx, term, places, time.Time{}, &rep); err != nil {
		return rep, err
	}
	phase(&rep.Phases.Place)
	if err := s.commit(ctx, term, finals, time.Time{}, &rep); err != nil {
		return rep, err
	}
	phase(&rep.Phases.Final)
	if err := s.commit(ctx, term, explains, deadline, &rep); err != nil {
		return rep, err
	}
	phase(&rep.Phases.Explain)
	if rep.Placed+rep.Failed+rep.Ended > 0 || rep.Cut {
		s.log.Debug("pass", zap.Int("pending", rep.Pending), zap.Int("placed", rep.Placed), zap.Int("failed", rep.Failed),
			zap.Int("ended", rep.Ended), zap.Int("blocked", rep.Blocked), zap.Int("no-capacity", rep.NoCapacity),
			zap.Int("explained", rep.Explained), zap.Bool("cut", rep.Cut), zap.Duration("took", time.Since(start)))
	}
	return rep, nil
}

// item is one planned write of a pass.
type item struct {
	p *pendingJob
	c *jobs.Change
	d decision
}

// commit writes items in batches within BatchBytes, each fenced by the
// term, and counts what was written in rep. A change whose job changed
// meanwhile is left out (and read again next pass). With a non-zero until,
// it stops at that time, and the pass is cut.
func (s *Scheduler) commit(ctx context.Context, term Term, items []item, until time.Time, rep *Report) error {
	for len(items) > 0 {
		if !until.IsZero() && time.Now().After(until) {
			rep.Cut = true
			return nil
		}
		var batch []item
		size := 0
		for len(items) > 0 && (len(batch) == 0 || size+items[0].c.Size() <= s.cfg.BatchBytes) {
			batch = append(batch, items[0])
			size += items[0].c.Size()
			items = items[1:]
		}
		for len(batch) > 0 {
			changes := make([]*jobs.Change, len(batch))
			for i, it := range batch {
				changes[i] = it.c
			}
			err := s.store.CommitBatch(ctx, changes, term.Fence())
			var be *jobs.BatchError
			switch {
			case err == nil:
				for _, it := range batch {
					s.committed(it, rep)
				}
				batch = nil
			case errors.As(err, &be):
				it := batch[be.Index]
				s.log.Debug("job changed under the scheduler; reading it again next pass", zap.String("job", it.p.job.ID), zap.Error(be.Err))
				s.forget(it.p)
				batch = append(batch[:be.Index], batch[be.Index+1:]...)
			case errors.Is(err, jobs.ErrFenceLost):
				return fmt.Errorf("%w: %v", ErrNotLeader, err)
			default:
				// Unknown outcome: read every job of the batch again.
				for _, it := range batch {
					s.forget(it.p)
				}
				return err
			}
		}
	}
	return nil
}

// committed updates the cache and the report after a write.
func (s *Scheduler) committed(it item, rep *Report) {
	switch it.d.verdict {
	case vWait:
		rep.Explained++
		it.p.job, it.p.ver = it.c.Job(), it.c.Ver()
	case vPlace:
		rep.Placed++
		delete(s.pending, it.p.uid)
		s.log.Debug("job placed", zap.String("job", it.p.job.ID), zap.String("executor", it.d.node.name), zap.String("group", it.d.group))
	default:
		if it.d.verdict == vEnd {
			rep.Ended++
		} else {
			rep.Failed++
		}
		delete(s.pending, it.p.uid)
		s.log.Info("pending job ended", zap.String("job", it.p.job.ID), zap.String("state", string(it.c.Job().State)), zap.String("reason", it.d.text))
	}
}

// forget drops a pending job from the cache: the next pass reads it again.
func (s *Scheduler) forget(p *pendingJob) { delete(s.pending, p.uid) }

// fetchParallel bounds the reads of a pass in flight at once: the first
// pass over a new backlog reads one document per job, and the deeper the
// pipeline of reads on the session, the less each waits for a round trip.
const fetchParallel = 128

// parallel runs fn(0..n-1) on at most fetchParallel goroutines and returns
// their errors joined. The goroutines are a pool: a goroutine per call
// would grow a fresh stack for every document it decodes.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, fetchParallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// readPending lists the index of PENDING jobs (watching it) and reads the
// jobs new to it. It returns the pending jobs in order (see before) and
// the stale ones: listed, but gone, not valid, or no longer PENDING.
func (s *Scheduler) readPending(ctx context.Context) ([]*pendingJob, []string, error) {
	dir := s.store.PendingDir()
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, err = s.watch.Children(dir)
		if errors.Is(err, zk.ErrNoNode) {
			names, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scheduler: listing pending jobs: %w", err)
	}
	present := make(map[string]bool, len(names))
	var fresh []string
	for _, n := range names {
		present[n] = true
		if s.pending[n] == nil {
			fresh = append(fresh, n)
		}
	}
	for n := range s.pending {
		if !present[n] {
			delete(s.pending, n)
		}
	}
	read := make([]*pendingJob, len(fresh))
	isStale := make([]bool, len(fresh))
	stores := s.readers(ctx, dir, len(fresh))
	// The documents are read in chunks, each in one request (GetMany),
	// the chunks shared among the stores.
	chunks := (len(fresh) + readChunk - 1) / readChunk
	err = parallel(chunks, func(c int) error {
		st := stores[c%len(stores)]
		ids := fresh[c*readChunk : min((c+1)*readChunk, len(fresh))]
		reads, err := st.GetMany(ctx, ids)
		if err != nil {
			return err
		}
		for k, r := range reads {
			i := c*readChunk + k
			j, ver, err := r.Job, r.Version, r.Err
			if st != s.store && (err != nil || j.UUID() != fresh[i] || j.State != jobs.Pending) {
				// Only the session that listed the job decides it is stale:
				// another may answer from a server not yet as far along.
				j, ver, err = s.store.Get(ctx, fresh[i])
			}
			switch {
			case errors.Is(err, jobs.ErrNotFound), errors.Is(err, jobs.ErrInvalid):
				isStale[i] = true
				continue
			case err != nil:
				return err
			case j.UUID() != fresh[i] || j.State != jobs.Pending:
				isStale[i] = true
				continue
			}
			read[i] = &pendingJob{uid: fresh[i], job: j, ver: ver}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scheduler: reading pending jobs: %w", err)
	}
	var stale []string
	for i, p := range read {
		switch {
		case isStale[i]:
			stale = append(stale, fresh[i])
		case p != nil:
			s.pending[p.uid] = p
		}
	}
	out := make([]*pendingJob, 0, len(s.pending))
	for _, p := range s.pending {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return before(out[i], out[j]) })
	return out, stale, nil
}

// readers returns the stores that share n reads of new pending jobs: the
// scheduler's own, and the configured readers that could be brought up to
// date with the leader (a sync of dir) when n is large enough to gain.
func (s *Scheduler) readers(ctx context.Context, dir string, n int) []*jobs.Store {
	stores := []*jobs.Store{s.store}
	if n < minSharedReads {
		return stores
	}
	for _, r := range s.cfg.Readers {
		err := zkconn.Do(ctx, func() error {
			_, err := r.Conn().Sync(dir)
			return err
		})
		if err != nil {
			s.log.Debug("a read session is not available this pass", zap.Error(err))
			continue
		}
		stores = append(stores, r)
	}
	return stores
}

// readChunk is the number of documents read in one request.
const readChunk = 32

// minSharedReads is the number of new pending jobs from which a pass
// shares its reads with the other read sessions.
const minSharedReads = 256

// before orders pending jobs: priority, then creation time, then id. A
// job that comes back to PENDING (its executor was lost, or requeued it)
// keeps its place by creation, ahead of the jobs that waited behind it.
func before(a, b *pendingJob) bool {
	if a.job.Priority != b.job.Priority {
		return a.job.Priority < b.job.Priority
	}
	if !a.job.Created.Equal(b.job.Created) {
		return a.job.Created.Before(b.job.Created)
	}
	return a.uid < b.uid
}

// dropStale takes out of the index of PENDING jobs those whose job is gone
// or has moved on (a cancel that could not remove its node), each under
// the term's fence.
func (s *Scheduler) dropStale(ctx context.Context, term Term, stale []string) (int, error) {
	dropped := 0
	for _, e := range stale {
		p := s.store.PendingDir() + "/" + e
		var res []zk.MultiResponse
		err := zkconn.Do(ctx, func() error {
			var err error
			res, err = s.store.Conn().Multi(&zk.DeleteRequest{Path: p, Version: -1}, term.Fence())
			return err
		})
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case err == nil:
			dropped++
			s.log.Info("stale pending node removed: its job has ended or is gone", zap.String("job", "job/"+e))
		case i == 0 && errors.Is(opErr, zk.ErrNoNode):
			// Removed meanwhile (by the cancel that ended its job).
		case i == 1:
			return dropped, fmt.Errorf("%w: %v", ErrNotLeader, opErr)
		default:
			return dropped, fmt.Errorf("scheduler: removing stale pending node of job/%s: %w", e, opErr)
		}
	}
	return dropped, nil
}

// resolve says what the pass knows of the jobs pending jobs wait on (their
// dependencies, a fan-out parent's children): pending or active ones are
// waited on; others are read (and watched until they end; a final state
// is kept, since it never changes).
func (s *Scheduler) resolve(ctx context.Context, pending []*pendingJob, snap *instance.Cluster) (map[string]depState, error) {
	known := map[string]bool{}
	for _, p := range pending {
		known[p.job.ID] = true
	}
	for _, e := range snap.Executors {
		for _, pl := range e.Placed {
			known[pl.Job] = true
		}
	}
	want := map[string]bool{}
	for _, p := range pending {
		for _, id := range p.job.DependsOn {
			want[id] = true
		}
		if p.job.IsFanoutParent() {
			for _, id := range p.job.NestedJobs {
				want[id] = true
			}
		}
	}
	out := make(map[string]depState, len(want))
	var fetch []string
	for id := range want {
		switch st, ok := s.finals[id]; {
		case ok:
			out[id] = depState{final: st}
		case known[id]:
			out[id] = depState{}
		default:
			fetch = append(fetch, id)
		}
	}
	for id := range s.finals {
		if !want[id] {
			delete(s.finals, id)
		}
	}
	states := make([]depState, len(fetch))
	err := parallel(len(fetch), func(i int) error {
		_, uid, err := jobs.ParseID(fetch[i])
		if err != nil {
			states[i] = depState{missing: true}
			return nil
		}
		var data []byte
		err = zkconn.Do(ctx, func() error {
			var err error
			data, err = s.watch.Get(s.store.DocPath(uid))
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			states[i] = depState{missing: true}
			return nil
		}
		if err != nil {
			return err
		}
		var j jobs.Job
		if json.Unmarshal(data, &j) != nil || j.ID != fetch[i] || !j.State.Valid() {
			states[i] = depState{missing: true}
			return nil
		}
		if j.State.Final() {
			states[i] = depState{final: j.State}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler: reading the jobs waited on: %w", err)
	}
	for i, id := range fetch {
		out[id] = states[i]
		if states[i].final.Final() {
			s.finals[id] = states[i].final
		}
	}
	return out, nil
}

// logProblems logs each bad object of the cluster once per scheduler.
func (s *Scheduler) logProblems(problems []error) {
	for _, p := range problems {
		msg := p.Error()
		if s.seenProblems == nil {
			s.seenProblems = map[string]bool{}
		}
		if s.seenProblems[msg] || len(s.seenProblems) > 1000 {
			continue
		}
		s.seenProblems[msg] = true
		s.log.Warn("bad object in ZooKeeper left out of scheduling", zap.Error(p))
	}
}
