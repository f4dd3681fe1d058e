package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

func createJobs(t *testing.T, s *Store, n int) {
	t.Helper()
	var batch []NewJob
	for i := 0; i < 200; i++ {
		batch = append(batch, NewJob{Action: "a"})
	}
	for i := 0; i < n/200; i++ {
		if _, err := s.CreateMany(ctxT(t), batch); err != nil {
			t.Fatal(err)
		}
	}
}

// A scan whose connection is cut in the middle ends with an error rather
// than passing a partial listing off as complete, which Restore would
// read as jobs that are gone (and remove their queue entries).
func TestScanConnectionCutMidway(t *testing.T) {
	proxy, err := zktest.NewProxy(zkc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	fresh := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	createJobs(t, fresh, 1200)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(dctx, zkconn.Config{Hosts: []string{proxy.Addr()}, Root: fresh.Conn().Root(), SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cut := NewStore(conn, StoreConfig{})

	sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
	defer scancel()
	var once sync.Once
	n := 0
	err = cut.Walk(sctx, func(*Job, int32) {
		n++
		once.Do(proxy.Block)
	})
	proxy.Unblock()
	if err == nil && n != 1200 {
		t.Fatalf("the scan saw %d of 1200 jobs and reported no error", n)
	}
	t.Logf("the cut scan ended with %v after %d jobs", err, n)
}
