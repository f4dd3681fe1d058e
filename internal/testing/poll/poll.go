// Package poll is the tests' way to wait: poll a condition with a deadline
// instead of sleeping.
package poll

import (
	"context"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/check"
)

// For fails the test unless fn returns nil within wait, polling every every.
func For(t testing.TB, wait, every time.Duration, fn func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := check.Until(ctx, every, fn); err != nil {
		t.Fatalf("condition not met within %s: %v", wait, err)
	}
}
