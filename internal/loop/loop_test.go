package loop

import (
	"context"
	"testing"
)

func TestStartStop(t *testing.T) {
	var l Loop
	l.Stop() // nothing runs: a no-op
	started := make(chan struct{})
	ended := make(chan struct{})
	if !l.Start(context.Background(), func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		close(ended)
	}) {
		t.Fatal("the first Start refused")
	}
	<-started
	if l.Start(context.Background(), func(context.Context) { t.Error("a second loop ran") }) {
		t.Fatal("a second Start while running was accepted")
	}
	l.Stop()
	select {
	case <-ended:
	default:
		t.Fatal("Stop returned before the loop did")
	}
	l.Stop()
	again := make(chan struct{})
	if !l.Start(context.Background(), func(context.Context) { close(again) }) {
		t.Fatal("Start after Stop refused")
	}
	<-again
	l.Stop()
}
