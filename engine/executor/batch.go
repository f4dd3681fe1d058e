package executor

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// How an executor batches its ZooKeeper writes when the backlog is deep.
//
// Takes: one goroutine (takeLoop) takes for every idle worker at once, in
// one multi (queue.TakeMany), and hands the entries out. One idle worker
// and one entry make a batch of one, taken as soon as the listing shows
// it; eight idle workers and a deep backlog make a batch of eight.
//
// Writes: the RUNNING write and the final write (with the consume of the
// entry; the worker does not wait for it, see finishLater) of every
// worker go to a committer, which collects writes for commitLinger after
// the first and writes them in one multi (jobs.CommitHeld): group commit.
// When that multi fails, each write is committed alone, so one job's
// conflict or lost hold fails no other.

const (
	// staleAhead is how long an entry taken ahead waits for a worker
	// before it is given back (takeLoop).
	staleAhead = 20 * time.Millisecond
	// committers is the number of group-commit transactions in flight at
	// once: one fills while another is written.
	committers = 2
	// maxBatchedChange is the largest change sent through the committer;
	// a larger one (a long log tail) is committed alone, so a batch stays
	// far below ZooKeeper's request limit and a write refused for its size
	// is known as one job's (see commit.go).
	maxBatchedChange = 16 << 10
	// maxBatchItems and maxBatchBytes bound one group commit.
	maxBatchItems = 64
	maxBatchBytes = zkconn.RequestBudget / 4
	// commitLinger is how long a committer waits for more writes
	// before it sends what it has: long enough for the workers' writes
	// to meet, short next to ZooKeeper's latency under load. A write of
	// an executor that holds one job only is sent at once.
	commitLinger = time.Millisecond
	// takeLinger is how long a take waits for more idle workers while
	// the backlog is deep (takeLoop).
	takeLinger = 500 * time.Microsecond
	// maxFinishing bounds, per worker, the outcomes being written after
	// their worker moved on to its next job.
	maxFinishing = 4
)

// taken is an entry handed to a worker, with the consumer that holds it
// and its job document, read by the take loop (see prefetch).
type taken struct {
	from *queue.Consumer
	it   *queue.Item
	doc  fetched
}

// fetched is a job document read ahead for a worker: what Store.Get
// returned, or nothing (ok false) when it was not read.
type fetched struct {
	j   *jobs.Job
	ver int32
	err error
	ok  bool
}

// prefetch reads the job documents of a batch of entries at once (one
// request where the server allows, see jobs.Store.GetMany), so that the
// batch's workers start together and their RUNNING writes meet in one
// group commit instead of trickling in one read apart. A read that fails
// for the connection is left to the worker (ok false).
func (e *Executor) prefetch(items []*queue.Item) []fetched {
	out := make([]fetched, len(items))
	if len(items) == 1 {
		return out // the worker reads it: nothing to line up
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = string(it.Data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.SessionTimeout)
	reads, err := e.store.GetMany(ctx, ids)
	cancel()
	if err != nil {
		return out
	}
	for i, r := range reads {
		out[i] = fetched{j: r.Job, ver: r.Version, err: r.Err, ok: true}
	}
	return out
}

// startTakers starts the take loop; the work channel is closed when it
// has stopped, which ends the workers once they are done.
func (e *Executor) startTakers() {
	e.wg.Add(2) // the goroutine, and takeLoop itself
	go func() { defer e.wg.Done(); e.takeLoop(); close(e.work) }()
}

// takeLoop takes entries for the idle workers, in batches, until the
// executor stops taking.
//
// While the backlog is deep (the last take filled its batch), it takes
// ahead: up to half the workers' number more than are idle, taken and
// read while the workers run, so a worker that finishes finds its next
// job waiting instead of waiting for a take and a read. Entries taken
// ahead stay QUEUED (the RUNNING write is the worker's); one that no
// worker picks up within staleAhead, because the workers run long jobs,
// is given back for other executors. And it waits up to takeLinger after
// the first idle worker for others, whose jobs tend to end together: one
// take for them all. An idle executor's loop is already waiting with
// every worker counted when a job comes, and takes it at once.
func (e *Executor) takeLoop() {
	defer e.wg.Done()
	bo := backoff.New(100*time.Millisecond, e.cfg.MaxBackoff)
	idle := 0 // idle workers not handed an entry; negative: entries waiting
	deep := false
	ahead := max(e.cfg.Threads/2, 1)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer e.giveBackAhead()
	for {
		want := idle
		if deep {
			want += ahead
		}
		if want <= 0 {
			// Enough entries wait for the workers: wait for one to be
			// picked up, or give them back if none is for a while.
			timer.Reset(staleAhead)
			select {
			case <-e.ready:
				idle++
			case <-timer.C:
				idle += e.giveBackAhead()
				deep = false
			case <-e.takeCtx.Done():
				timer.Stop()
				return
			}
			timer.Stop()
			continue
		}
		if deep && want < e.cfg.Threads/2 {
			timer.Reset(takeLinger)
		wait:
			for idle+ahead < e.cfg.Threads/2 {
				select {
				case <-e.ready:
					idle++
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
	more:
		for {
			select {
			case <-e.ready:
				idle++
			default:
				break more
			}
		}
		want = idle
		if deep {
			want += ahead
		}
		if want <= 0 {
			continue
		}
		if idle <= 0 {
			// Taking ahead only: not if the queue has nothing at once.
			if !e.direct.HasCandidates() && !e.consumer.HasCandidates() {
				deep = false
				continue
			}
		}
		items, from, err := queue.TakeMany(e.takeCtx, want, e.direct, e.consumer)
		if err != nil {
			if e.takeCtx.Err() != nil {
				return
			}
			e.log.Warn("taking a job failed; backing off", zap.Error(err))
			bo.Wait(e.takeCtx)
			continue
		}
		bo.Reset()
		deep = len(items) == want && want > 1
		docs := e.prefetch(items)
		for i, it := range items {
			e.work <- taken{from: from, it: it, doc: docs[i]}
			idle--
		}
	}
}

// giveBackAhead releases the entries waiting for a worker and returns how
// many it took back.
func (e *Executor) giveBackAhead() int {
	n := 0
	for {
		select {
		case t := <-e.work:
			n++
			e.release(e.log.With(zap.String(FieldJob, string(t.it.Data))), jobs.Hold{Consumer: t.from, Item: t.it})
		default:
			return n
		}
	}
}

// finishLater writes an outcome (finish) in the background, so the
// worker can take its next job at once, as a database job queue's
// workers hand their completions to a completer. The entry stays held
// until the outcome is written, so nothing else runs the job meanwhile;
// if the session ends first, the job is lost and rerun elsewhere, as it
// would be if the worker waited. A worker waits only when many outcomes
// are being written already (maxFinishing per worker): the outcomes are
// written by a fixed set of finishers (finishLoop), whose stacks have
// grown to what a write needs once, not by a new goroutine per job.
func (e *Executor) finishLater(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, out jobs.Outcome) {
	e.finishes.Add(1)
	e.finishing <- func() { e.finish(log, h, j, ver, out) }
}

// startFinishers starts the finishers; stopFinishers ends them once every
// worker has stopped.
func (e *Executor) startFinishers() {
	e.finishing = make(chan func())
	n := maxFinishing * e.cfg.Threads
	e.finishers.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer e.finishers.Done()
			for f := range e.finishing {
				f()
				e.finishes.Done()
			}
		}()
	}
}

func (e *Executor) stopFinishers() {
	e.finishes.Wait()
	close(e.finishing)
	e.finishers.Wait()
}

// committer commits the writes of the executor's workers in batches.
type committer struct {
	e    *Executor
	reqs chan *commitReq
	stop chan struct{}
	wg   sync.WaitGroup
	// filling is held by the loop that collects a batch: one fills while
	// the others write theirs, so writes that arrive together are not
	// split between loops lingering side by side.
	filling sync.Mutex
}

type commitReq struct {
	h    jobs.Hold
	c    *jobs.Change
	done chan error
}

func newCommitter(e *Executor) *committer {
	k := &committer{e: e, reqs: make(chan *commitReq, maxBatchItems), stop: make(chan struct{})}
	k.wg.Add(committers)
	for i := 0; i < committers; i++ {
		go k.loop()
	}
	return k
}

// commit commits c under h with whatever other writes are waiting, and
// returns what c.Commit would have.
func (k *committer) commit(h jobs.Hold, c *jobs.Change) error {
	r := &commitReq{h: h, c: c, done: make(chan error, 1)}
	k.reqs <- r
	return <-r.done
}

// close stops the committer once no worker writes any more.
func (k *committer) close() {
	close(k.stop)
	k.wg.Wait()
}

func (k *committer) loop() {
	defer k.wg.Done()
	for {
		batch := k.fill()
		if batch == nil {
			return
		}
		k.flush(batch)
	}
}

// fill collects the next batch: the first write, and those that come
// within commitLinger of it. It returns nil when the committer stops.
func (k *committer) fill() []*commitReq {
	k.filling.Lock()
	defer k.filling.Unlock()
	var first *commitReq
	select {
	case first = <-k.reqs:
	case <-k.stop:
		return nil
	}
	batch, size := []*commitReq{first}, first.c.Size()
	if k.e.direct.Held()+k.e.consumer.Held() <= 1 {
		// The executor's one job: no other write is coming, send it now.
		return batch
	}
	linger := time.NewTimer(commitLinger)
	defer linger.Stop()
	for len(batch) < maxBatchItems && size < maxBatchBytes {
		select {
		case r := <-k.reqs:
			batch = append(batch, r)
			size += r.c.Size()
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// flush commits a batch: one multi per consumer (the direct queue's and
// the shared queue's holds are fenced by different owner nodes).
func (k *committer) flush(batch []*commitReq) {
	for len(batch) > 0 {
		var same, rest []*commitReq
		for _, r := range batch {
			if r.h.Consumer == batch[0].h.Consumer {
				same = append(same, r)
			} else {
				rest = append(rest, r)
			}
		}
		cs := make([]*jobs.Change, len(same))
		hs := make([]jobs.Hold, len(same))
		for i, r := range same {
			cs[i], hs[i] = r.c, r.h
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.e.cfg.SessionTimeout)
		errs := jobs.CommitHeld(ctx, cs, hs)
		cancel()
		for i, r := range same {
			r.done <- errs[i]
		}
		batch = rest
	}
}
