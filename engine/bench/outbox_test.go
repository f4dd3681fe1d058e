package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// BenchmarkOutboxDepth runs OUTBOX_JOBS (default 100,000) no-op jobs with
// indexing on — every document version recorded in the outbox in the
// transaction that writes it, an index pump moving the outbox to the
// in-process Elasticsearch server — through two executors of 8 workers
// while they are being created, and reports how deep the outbox got:
// whether the history keeps up with the jobs. Run it once:
//
//	go test -run '^$' -bench OutboxDepth -benchtime 1x ./engine/bench
func BenchmarkOutboxDepth(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("OUTBOX_JOBS")); err == nil && v > 0 {
		n = v
	}
	// Sessions of up to 40 s ride out the fsync stalls of a shared disk
	// (ZooKeeper allows 20 ticks); the heap of a production server, since
	// ZooKeeper keeps its last 500 transactions in memory too, and those
	// of job add --count are large.
	zkc := zktest.StartT(b, zkserver.Options{TickTime: 2 * time.Second, HeapMB: 1024})
	es := estest.Start(b, estest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dial := func() *zkconn.Conn {
		c, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: "/outbox-bench", SessionTimeout: 40 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Close)
		return c
	}
	conn := dial()
	if err := index.EnsurePaths(ctx, conn); err != nil {
		b.Fatal(err)
	}
	store := jobs.NewStore(conn, jobs.StoreConfig{MaxBacklog: 1 << 30, Outbox: index.Outbox(conn)})
	if err := store.Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: "bench-"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ix.EnsureTemplates(ctx); err != nil {
		b.Fatal(err)
	}
	pump := index.NewPump(dial(), ix, nil, index.PumpOptions{Name: "bench"})
	pctx, stopPump := context.WithCancel(ctx)
	pumped := make(chan error, 1)
	go func() { pumped <- pump.Run(pctx) }()
	defer func() { stopPump(); <-pumped }()
	for i := 0; i < 2; i++ {
		c := dial()
		x, err := executor.Start(ctx, c, executor.Config{
			Name: fmt.Sprintf("bench-%d", i), Threads: 8, Registry: action.BuiltinsWithTests(),
			Store: jobs.NewStore(c, jobs.StoreConfig{Outbox: index.Outbox(c)}),
		})
		if err != nil {
			b.Fatal(err)
		}
		defer x.Stop()
	}

	// The depth of the outbox and of the queue, every 250 ms.
	type sample struct {
		at            time.Duration
		outbox, queue int
	}
	var mu sync.Mutex
	var samples []sample
	start := time.Now()
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			_, st, err := conn.Exists(index.OutboxPath(conn))
			q, qerr := store.Queue().Len(sctx)
			if err == nil && qerr == nil {
				mu.Lock()
				samples = append(samples, sample{time.Since(start), int(st.NumChildren), q})
				mu.Unlock()
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	b.ResetTimer()
	// In calls of 5,000 (as many `job add --count 5000`): a call that
	// fails midway (a connection lost to a stall of the disk) is counted
	// for what it created, and the run goes on.
	made, failures := 0, 0
	for made < n && failures < 5 {
		err := store.CreateLike(ctx, jobs.NewJob{Action: "fail", Payload: []byte(`{"code":0}`), Priority: 100}, min(5000, n-made),
			func(js []*jobs.Job) { made += len(js) })
		if err != nil {
			failures++
			b.Logf("creating jobs: %v (%d created so far)", err, made)
		}
	}
	if made == 0 {
		b.Fatal("no job created")
	}
	n = made
	created := time.Since(start)
	var drained, emptied time.Duration
	for drained == 0 || emptied == 0 {
		if ctx.Err() != nil {
			b.Fatal("the run did not end within 30 minutes")
		}
		q, err := store.Queue().Len(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if q == 0 && drained == 0 {
			drained = time.Since(start)
		}
		_, st, err := conn.Exists(index.OutboxPath(conn))
		if err != nil {
			b.Fatal(err)
		}
		if drained != 0 && st.NumChildren == 0 {
			emptied = time.Since(start)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	stopSampling()
	<-sampled
	b.StopTimer()
	maxDepth, maxAt := 0, time.Duration(0)
	for _, s := range samples {
		if s.outbox > maxDepth {
			maxDepth, maxAt = s.outbox, s.at
		}
	}
	st := pump.Stats()
	b.ReportMetric(float64(n)/drained.Seconds(), "jobs/s")
	b.ReportMetric(float64(maxDepth), "max-outbox")
	b.ReportMetric((emptied - drained).Seconds(), "s-outbox-behind")
	b.ReportMetric(float64(st.Indexed), "indexed")
	b.Logf("%d jobs: created in %.1fs, all finished after %.1fs, outbox empty after %.1fs; deepest outbox %d entries at %.1fs; %d entries indexed, %d failed",
		n, created.Seconds(), drained.Seconds(), emptied.Seconds(), maxDepth, maxAt.Seconds(), st.Indexed, st.Failed)
	step := max(len(samples)/20, 1)
	for i := 0; i < len(samples); i += step {
		s := samples[i]
		b.Logf("t=%5.1fs queue %7d outbox %7d", s.at.Seconds(), s.queue, s.outbox)
	}
}
