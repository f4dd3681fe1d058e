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
	// takeLoops is the number of takes in flight at once.
	takeLoops = 2
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
	// to meet, short next to ZooKeeper's latency under load.
	commitLinger = time.Millisecond
	// maxFinishing bounds, per worker, the outcomes being written after
	// their worker moved on to its next job.
	maxFinishing = 4
)

// taken is an entry handed to a worker, with the consumer that holds it.
type taken struct {
	from *queue.Consumer
	it   *queue.Item
}

// startTakers starts the take loops; the work channel is closed when the
// last has stopped, which ends the workers once they are done.
func (e *Executor) startTakers() {
	var takers sync.WaitGroup
	takers.Add(takeLoops)
	e.wg.Add(takeLoops + 1)
	for i := 0; i < takeLoops; i++ {
		go func() { defer takers.Done(); e.takeLoop() }()
	}
	go func() { defer e.wg.Done(); takers.Wait(); close(e.work) }()
}

// takeLoop takes entries for the idle workers, in batches, until the
// executor stops taking. Two loops take at once, so that workers that
// become idle while one loop's take is in flight wait for no more than
// the other's.
func (e *Executor) takeLoop() {
	defer e.wg.Done()
	bo := backoff.New(100*time.Millisecond, e.cfg.MaxBackoff)
	idle := 0
	for {
		if idle == 0 {
			select {
			case <-e.ready:
				idle++
			case <-e.takeCtx.Done():
				return
			}
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
		items, from, err := queue.TakeMany(e.takeCtx, idle, e.direct, e.consumer)
		if err != nil {
			if e.takeCtx.Err() != nil {
				return
			}
			e.log.Warn("taking a job failed; backing off", zap.Error(err))
			bo.Wait(e.takeCtx)
			continue
		}
		bo.Reset()
		for _, it := range items {
			e.work <- taken{from: from, it: it}
			idle--
		}
	}
}

// finishLater writes an outcome (finish) in the background, so the
// worker can take its next job at once, as a database job queue's
// workers hand their completions to a completer. The entry stays held
// until the outcome is written, so nothing else runs the job meanwhile;
// if the session ends first, the job is lost and rerun elsewhere, as it
// would be if the worker waited. A worker waits only when many outcomes
// are being written already (maxFinishing per worker).
func (e *Executor) finishLater(log *zap.Logger, h jobs.Hold, j *jobs.Job, ver int32, out jobs.Outcome) {
	e.finishing <- struct{}{}
	e.finishes.Add(1)
	go func() {
		defer func() { <-e.finishing; e.finishes.Done() }()
		e.finish(log, h, j, ver, out)
	}()
}

// committer commits the writes of the executor's workers in batches.
type committer struct {
	e    *Executor
	reqs chan *commitReq
	stop chan struct{}
	wg   sync.WaitGroup
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
		var first *commitReq
		select {
		case first = <-k.reqs:
		case <-k.stop:
			return
		}
		batch, size := []*commitReq{first}, first.c.Size()
		linger := time.NewTimer(commitLinger)
	fill:
		for len(batch) < maxBatchItems && size < maxBatchBytes {
			select {
			case r := <-k.reqs:
				batch = append(batch, r)
				size += r.c.Size()
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		k.flush(batch)
	}
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
