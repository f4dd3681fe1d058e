//go:build unix

package executor

import (
	"errors"
	"syscall"
)

// processExists reports whether a process with this pid exists (signal 0:
// EPERM means it exists under another user).
func processExists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
