package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Limits of CreateLike.
const (
	// MaxCreateLike bounds the jobs of one CreateLike.
	MaxCreateLike = 1_000_000
	// maxLikeBatch bounds the jobs of one of its transactions, and
	// likeInFlight the transactions sent at once.
	maxLikeBatch = 500
	likeInFlight = 4
)

// CreateLike creates count jobs like n (each with an id of its own), in
// transactions of many jobs each, several in flight at once: the way to
// queue a large batch fast. The notifications attached to n are resolved
// once for all. It checks everything before it writes: n is valid, has no
// unique key and no id (count copies could not share them), and the
// backlog has room for all of them. Each transaction is all or none; on a
// failure midway (ZooKeeper lost, the cap reached by other writers) the
// jobs created so far stay, and created is called with each batch as it
// is written (from one goroutine at a time, batches in no fixed order).
func (s *Store) CreateLike(ctx context.Context, n NewJob, count int, created func([]*Job)) error {
	switch {
	case count < 1 || count > MaxCreateLike:
		return fmt.Errorf("%w: %d jobs: create 1–%d at once", ErrInvalid, count, MaxCreateLike)
	case count > 1 && n.UniqueKey != "":
		return fmt.Errorf("%w: %d jobs with one unique key: only one could be created", ErrInvalid, count)
	case count > 1 && n.ID != "":
		return fmt.Errorf("%w: %d jobs with one id: only one could be created", ErrInvalid, count)
	}
	sample, err := s.build(n)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(sample)
	if err != nil {
		return err
	}
	queued, err := s.q.Len(ctx)
	if err == nil && scheduled([]NewJob{n}) {
		var p int
		p, err = s.PendingCount(ctx)
		queued += p
	}
	if err != nil {
		return fmt.Errorf("jobs: create: %w", err)
	}
	if queued+count > s.cfg.MaxBacklog {
		return fmt.Errorf("%w: %d jobs queued or running and %d more would pass the cap of %d (raise --max-backlog or wait for executors to catch up)", ErrBacklogFull, queued, count, s.cfg.MaxBacklog)
	}
	resolved, err := s.resolveNotifications(ctx, []NewJob{n})
	if err != nil {
		return err
	}
	n = resolved[0]
	// A job costs its document twice (the document and its outbox
	// record) and a few hundred bytes of paths and entries.
	batch := min(max(zkconn.RequestBudget/2/(2*len(doc)+512), 1), maxLikeBatch)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, likeInFlight)
	)
	for done := 0; done < count; done += batch {
		ns := make([]NewJob, min(batch, count-done))
		for i := range ns {
			ns[i] = n
		}
		sem <- struct{}{}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			js, err := s.createFenced(ctx, ns, false)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if created != nil {
				created(js)
			}
		}()
	}
	wg.Wait()
	return firstErr
}
