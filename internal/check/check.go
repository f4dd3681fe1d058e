// Package check polls a condition with a deadline, for the places in the
// engine that wait on an external system (tests use internal/testing/poll).
package check

import (
	"context"
	"fmt"
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
