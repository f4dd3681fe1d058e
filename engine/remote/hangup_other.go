//go:build !linux

package remote

import (
	"context"
	"os"
	"time"
)

// WatchHangup does nothing here: the worker notices a closed stream when
// its next write (a keepalive at the latest) fails.
func WatchHangup(context.Context, *os.File, time.Duration, func()) {}
