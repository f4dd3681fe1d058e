// Package loop runs one goroutine that a service starts and stops: the
// shape of every leader-run service (its work under the leader's context,
// Stop waiting for it), written once.
package loop

import (
	"context"
	"sync"
)

// Loop is one goroutine at a time. The zero value is ready to use.
type Loop struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs fn in a goroutine under a context derived from ctx, and
// returns false (running nothing) when the previous one was not stopped.
func (l *Loop) Start(ctx context.Context, fn func(ctx context.Context)) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cancel != nil {
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.cancel, l.done = cancel, done
	go func() {
		defer close(done) // not l.done: a Stop may have cleared it already
		fn(ctx)
	}()
	return true
}

// Stop cancels the goroutine's context and returns once fn has returned.
// It is safe to call when nothing runs, and from several goroutines.
func (l *Loop) Stop() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
