package jobs

import (
	"context"
	"testing"
)

// TestScanStoppedMidwayWaitsForItsReaders: a scan whose context ends
// between two shards stops listing, and its readers of the shards listed
// so far still deliver into the channel: it must not be closed under them
// (a controller panicked there, "send on closed channel", when ZooKeeper
// went away in the middle of a scan).
func TestScanStoppedMidwayWaitsForItsReaders(t *testing.T) {
	s := newStore(t, StoreConfig{})
	var batch []NewJob
	for i := 0; i < 400; i++ {
		batch = append(batch, NewJob{Action: "ok"})
	}
	for len(batch) > 0 {
		n := min(len(batch), 100)
		if _, err := s.CreateMany(ctxT(t), batch[:n]); err != nil {
			t.Fatal(err)
		}
		batch = batch[n:]
	}
	for try := 0; try < 20; try++ {
		ctx, cancel := context.WithCancel(ctxT(t))
		seen := 0
		err := s.Scan(ctx, func(*Job, int32) {
			if seen++; seen == 1 {
				cancel()
			}
		}, nil)
		cancel()
		if err == nil {
			t.Fatalf("try %d: a scan whose context ended returned no error after %d documents", try, seen)
		}
	}
}
