package remote

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// WatchHangup calls onHangup once the reader of f (the worker's stdout: a
// pipe or socket to sshd or the executor) is gone, checking every period
// until ctx ends. A worker whose connection closes then stops its run at
// once, without waiting for its next write to fail.
func WatchHangup(ctx context.Context, f *os.File, every time.Duration, onHangup func()) {
	fd := int(f.Fd())
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return
	}
	if mode := st.Mode & unix.S_IFMT; mode != unix.S_IFIFO && mode != unix.S_IFSOCK {
		return // a file or terminal has no other end to lose
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// No events asked: poll reports only errors and hang-ups;
			// the write end of a pipe whose reader closed gets POLLERR.
			fds := []unix.PollFd{{Fd: int32(fd)}}
			n, err := unix.Poll(fds, 0)
			if err == nil && n > 0 && fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				onHangup()
				return
			}
		}
	}()
}
