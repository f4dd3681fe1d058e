package command

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// devLockFile is the lock of a `jobengine dev` data directory.
const devLockFile = "dev.lock"

// errDevRunning refuses a second `jobengine dev` in a data directory.
var errDevRunning = errors.New("another jobengine dev runs in this data directory")

// devLock is a held lock on a dev data directory: an flock, which the
// kernel releases when the process ends, even by SIGKILL, so a lock is
// never stale. The file holds the holder's pid, for the message.
type devLock struct{ f *os.File }

// lockDevDir takes the lock of dir, or says which process holds it.
func lockDevDir(dir string) (*devLock, error) {
	path := filepath.Join(dir, devLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking --data-dir %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("pid %d", pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s, data in %s): stop it first (Ctrl-C in its terminal), or give this one another --data-dir", errDevRunning, holder, dir)
		}
		return nil, fmt.Errorf("locking --data-dir %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &devLock{f: f}, nil
}

// release gives the lock up.
func (l *devLock) release() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
