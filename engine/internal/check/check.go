// Package check polls a condition with a deadline, for tests and for the
// places in the engine that wait on an external system.
package check

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Until calls fn every interval until it returns nil or ctx ends, and returns
// the last error of fn (or nil).
func Until(ctx context.Context, every time.Duration, fn func() error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still failing after %v: %v)", ctx.Err(), ctx.Err(), err)
		case <-t.C:
		}
	}
}

// For fails the test unless fn returns nil within wait, polling every every.
func For(t testing.TB, wait, every time.Duration, fn func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := Until(ctx, every, fn); err != nil {
		t.Fatalf("condition not met within %s: %v", wait, err)
	}
}
