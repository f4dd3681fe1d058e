package index_test

import (
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"go.uber.org/goleak"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// TestStopsCleanly checks that a pump and an event sink leave no goroutine
// behind once stopped and their connections closed.
func TestStopsCleanly(t *testing.T) {
	zookeeper(t) // the shared server's own goroutines are not ours
	before := goleak.IgnoreCurrent()
	func() {
		s, err := estest.New(estest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		es, err := index.New(index.Config{Hosts: []string{s.URL()}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer es.Close(ctxT(t, 5*time.Second))
		c := dial(t, "", root(t), 0)
		defer c.Close()
		p, stop := runPump(t, c, es, nil, "p1")
		sink := index.NewEventSink(es, nil, index.SinkOptions{})
		j := newJob("deploy", 0)
		write(t, c, j)
		sink.Emit(index.StateEvent(j))
		indexedAt(t, s, es, j)
		poll.For(t, wait, 10*time.Millisecond, func() error { return errorIf(!p.Active(), "not active") })
		if err := sink.Close(ctxT(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		stop()
	}()
	goleak.VerifyNone(t, before)
}
