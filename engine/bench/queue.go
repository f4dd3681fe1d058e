// Package bench measures the engine against the ZooKeeper it runs on: the
// raw transaction ceiling and the queue's throughput and latency, in the same
// run, so the numbers can be compared.
package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// QueueOptions configure the queue benchmark.
type QueueOptions struct {
	ZK          zkconn.Config
	Jobs        int           // entries taken and consumed in the throughput phase
	Depth       int           // entries left in the queue while it is measured
	Workers     int           // workers in all
	Connections int           // ZooKeeper connections (one consumer each)
	RawDuration time.Duration // how long the raw ZooKeeper phase runs
	// Batch is the number of entries a worker takes and consumes per
	// multi (queue.TakeMany, ApplyMany); 1 takes one at a time (Take).
	Batch int
	// SkipLatency leaves out the latency phase, which first drains the
	// whole queue (minutes at a depth of a million).
	SkipLatency bool
	Logger      *zap.Logger
}

// QueueResult is what the benchmark prints, as JSON.
type QueueResult struct {
	Jobs           int     `json:"jobs"`
	Depth          int     `json:"depth"`
	Workers        int     `json:"workers"`
	Batch          int     `json:"batch"`
	Connections    int     `json:"connections"`
	Seconds        float64 `json:"seconds"`
	JobsPerS       float64 `json:"jobs_per_s"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	LatencySamples int     `json:"latency_samples"`
	ZKMultiTxnPerS float64 `json:"zk_multi_txn_per_s"`
	// Ratio is jobs_per_s / (zk_multi_txn_per_s / 3): a job costs about
	// three transactions' worth of work (put, take, consume).
	Ratio float64 `json:"ratio"`
	// Contended counts takes lost to another consumer, Listings the
	// listings of the queue, over all consumers.
	Contended int64 `json:"contended_takes"`
	Listings  int64 `json:"listings"`
	// FillPerS is the rate at which the queue was filled (PutMany, 1,000
	// entries a call, four in flight).
	FillPerS float64 `json:"fill_per_s"`
	// HeapMB and RSSMB are the memory of this process, which holds the
	// listings of all its consumers, after the throughput phase.
	HeapMB float64 `json:"heap_mb_after_takes"`
	RSSMB  float64 `json:"rss_mb_after_takes"`
	// LoadAverage is the machine's one-minute load average at the end.
	LoadAverage float64 `json:"load_average"`
}

// Queue runs the benchmark under a fresh root and removes nothing: point it
// at a scratch ZooKeeper or a scratch root.
func Queue(ctx context.Context, o QueueOptions) (QueueResult, error) {
	if o.Jobs <= 0 || o.Workers <= 0 || o.Connections <= 0 || o.Depth < 0 {
		return QueueResult{}, errors.New("bench: jobs, workers and connections must be positive, depth not negative")
	}
	if o.RawDuration <= 0 {
		o.RawDuration = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	o.Batch = max(o.Batch, 1)
	o.ZK.Root = fmt.Sprintf("%s/bench-%d", strings.TrimSuffix(o.ZK.Root, "/"), time.Now().UnixNano())
	conns := make([]*zkconn.Conn, o.Connections)
	for i := range conns {
		c, err := zkconn.Dial(ctx, o.ZK)
		if err != nil {
			return QueueResult{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	res := QueueResult{Jobs: o.Jobs, Depth: o.Depth, Workers: o.Workers, Connections: o.Connections, Batch: o.Batch}
	var err error
	if res.ZKMultiTxnPerS, err = rawMulti(ctx, conns, o.Workers, o.RawDuration); err != nil {
		return res, fmt.Errorf("bench: raw ZooKeeper phase: %w", err)
	}
	q := queue.New(conns[0], "job")
	if err := q.Ensure(ctx); err != nil {
		return res, err
	}
	fillStart := time.Now()
	if err := fill(ctx, q, o.Depth+o.Jobs); err != nil {
		return res, fmt.Errorf("bench: filling the queue: %w", err)
	}
	res.FillPerS = float64(o.Depth+o.Jobs) / time.Since(fillStart).Seconds()
	consumers := make([]*queue.Consumer, len(conns))
	for i, c := range conns {
		consumers[i] = queue.New(c, "job").NewConsumer(queue.ConsumerOptions{Name: fmt.Sprintf("bench-%d", i), Logger: o.Logger})
		defer consumers[i].Close()
	}
	// Throughput: consume Jobs entries while Depth entries stay queued.
	var left atomic.Int64
	left.Store(int64(o.Jobs))
	start := time.Now()
	if err := work(ctx, consumers, o.Workers, o.Batch, &left, nil); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.JobsPerS = float64(o.Jobs) / res.Seconds
	res.Ratio = res.JobsPerS / (res.ZKMultiTxnPerS / 3)
	for _, c := range consumers {
		st := c.Stats()
		res.Contended += st.Contended
		res.Listings += st.Listings
	}
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	res.HeapMB = float64(mem.HeapInuse) / (1 << 20)
	res.RSSMB = rssMB(os.Getpid())
	res.LoadAverage = loadAverage()
	if o.SkipLatency {
		return res, nil
	}

	// Latency: drain what is left, then put paced single entries at half the
	// measured rate (at most 2,000/s) and time each from put to take.
	drainCtx, cancel := context.WithCancel(ctx)
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = work(drainCtx, consumers, o.Workers, o.Batch, nil, func(data []byte) {
			if ts, ok := strings.CutPrefix(string(data), "lat/"); ok {
				if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
					mu.Lock()
					lat = append(lat, time.Since(time.Unix(0, n)))
					mu.Unlock()
				}
			}
		})
	}()
	for {
		n, err := q.Len(ctx)
		if err != nil {
			cancel()
			return res, err
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rate := min(res.JobsPerS/2, 2000)
	samples := int(rate * 2)
	interval := time.Duration(float64(time.Second) / rate)
	tick := time.NewTicker(interval)
	for i := 0; i < samples; i++ {
		<-tick.C
		if _, err := q.Put(ctx, fmt.Appendf(nil, "lat/%d", time.Now().UnixNano()), 100); err != nil {
			tick.Stop()
			cancel()
			return res, err
		}
	}
	tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= samples || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	slices.Sort(lat)
	res.LatencySamples = len(lat)
	if len(lat) > 0 {
		res.P50Ms = ms(lat[len(lat)/2])
		res.P99Ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// work runs workers spread over the consumers; each takes and consumes up
// to batch entries per multi, until left (nil: no limit) runs out,
// calling seen with each item.
func work(ctx context.Context, consumers []*queue.Consumer, workers, batch int, left *atomic.Int64, seen func([]byte)) error {
	grant := func(n int) int {
		for left != nil {
			l := left.Load()
			g := min(int64(n), l)
			if g <= 0 {
				return 0
			}
			if left.CompareAndSwap(l, l-g) {
				return int(g)
			}
		}
		return n
	}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		c := consumers[w%len(consumers)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := grant(batch); n > 0; n = grant(batch) {
				var its []*queue.Item
				var err error
				if batch == 1 {
					var it *queue.Item
					if it, err = c.Take(ctx); err == nil {
						its = []*queue.Item{it}
					}
				} else {
					its, _, err = queue.TakeMany(ctx, n, c)
				}
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				parts := make([]queue.Part, len(its))
				for i, it := range its {
					if seen != nil {
						seen(it.Data)
					}
					parts[i] = queue.Part{Item: it, End: queue.Consume}
				}
				if err := c.ApplyMany(ctx, parts); err != nil {
					errc <- err
					return
				}
				// Entries granted and not taken (a short batch) go back.
				if short := n - len(its); short > 0 && left != nil {
					left.Add(int64(short))
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// fill puts n entries in batches, several batches at a time.
func fill(ctx context.Context, q *queue.Queue, n int) error {
	const batch = 1000
	sem := make(chan struct{}, 4)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for i := 0; i < n; i += batch {
		items := make([][]byte, min(batch, n-i))
		for j := range items {
			items[j] = fmt.Appendf(nil, "job/bench-%09d", i+j)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := q.PutMany(ctx, items, 100); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// rawMulti measures concurrent multi{check, delete, create} transactions per
// second over the given connections, with the given concurrency.
func rawMulti(ctx context.Context, conns []*zkconn.Conn, workers int, d time.Duration) (float64, error) {
	base := conns[0].Path("raw")
	if err := conns[0].EnsurePath(ctx, base); err != nil {
		return 0, err
	}
	var count atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	stop := time.Now().Add(d)
	for w := 0; w < workers; w++ {
		c := conns[w%len(conns)]
		node := fmt.Sprintf("%s/n%d", base, w)
		if _, err := c.Create(node, nil, 0, zkconn.ACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				_, err := c.Multi(
					&zk.CheckVersionRequest{Path: base, Version: -1},
					&zk.DeleteRequest{Path: node, Version: -1},
					&zk.CreateRequest{Path: node, Acl: zkconn.ACL},
				)
				if err != nil {
					errc <- err
					return
				}
				count.Add(1)
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}
