package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Files that mark a live run in its private data directory.
const (
	// lockFile is held locked (flock) by the worker for the whole run.
	lockFile = ".jobengine-run.lock"
	// pidFile holds the worker's pid, as ansible-runner writes it.
	pidFile = "pid"
)

// RunLock marks a private data directory as in use by a live run.
type RunLock struct {
	f *os.File
}

// LockRun takes the run lock of dir and writes its pid file. The lock is an
// flock held as long as the process lives, so a run that died — killed,
// its machine rebooted — never looks alive, and a reused pid never makes a
// dead run look alive.
func LockRun(dir string) (*RunLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("private data directory %s is in use by another run", dir)
	}
	_ = os.WriteFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return &RunLock{f: f}, nil
}

// Release ends the run's claim on its directory.
func (l *RunLock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = os.Remove(filepath.Join(filepath.Dir(l.f.Name()), pidFile))
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// Alive reports whether a live run uses dir. With a lock file, the lock
// decides: held means alive (and the caller may not take it). Without one
// (a directory of ansible-runner), the pid file decides: a process that
// exists is alive, including one of another user (EPERM) — ansible-runner
// gets this test backwards and deletes the directories of live runs.
func Alive(dir string) (bool, error) {
	release, alive, err := claimIfDead(dir)
	release()
	return alive, err
}

// claimIfDead checks whether a live run uses dir and, when none does and
// dir has a lock file, holds its lock until release is called, so no run
// starts in it while it is removed.
func claimIfDead(dir string) (release func(), alive bool, err error) {
	release = func() {}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR, 0)
	switch {
	case err == nil:
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return release, true, nil
			}
			return release, true, err
		}
		return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return release, true, err // unknown: keep it
	}
	alive, err = pidAlive(dir)
	return release, alive, err
}

// pidAlive reads ansible-runner's pid file.
func pidAlive(dir string) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false, nil // not a pid: nothing can be running under it
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM), nil
}

// systemDirs are directories a cleanup pattern may never match.
var systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
	"/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/tmp", "/var/lib", "/var/log"}

// ErrCleanupPattern is wrapped by a refused cleanup pattern.
var ErrCleanupPattern = errors.New("cleanup pattern refused")

// CleanupOptions say which private data directories to remove.
type CleanupOptions struct {
	// Pattern is a glob of directories, e.g. /tmp/jobengine-worker-*.
	Pattern string
	// GracePeriod keeps directories modified more recently (0: none kept).
	GracePeriod time.Duration
	// Exclude keeps directories whose path contains one of these strings.
	Exclude []string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CleanupReport says what a cleanup did.
type CleanupReport struct {
	Removed []string // directories removed
	Alive   []string // kept: a live run uses them
	Errors  []error
}

// Changed reports whether anything was removed.
func (r CleanupReport) Changed() bool { return len(r.Removed) > 0 }

// Cleanup removes old private data directories matching a pattern, never a
// system directory, the temporary directory itself, the home directory, or
// the directory of a live run.
func Cleanup(opts CleanupOptions) (CleanupReport, error) {
	var rep CleanupReport
	if opts.Pattern == "" {
		return rep, fmt.Errorf("%w: no pattern (give --file-pattern, e.g. /tmp/jobengine-worker-*)", ErrCleanupPattern)
	}
	if _, err := filepath.Match(opts.Pattern, ""); err != nil {
		return rep, fmt.Errorf("%w: %q is not a glob: %v", ErrCleanupPattern, opts.Pattern, err)
	}
	matches, err := filepath.Glob(opts.Pattern)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrCleanupPattern, err)
	}
	protected := map[string]bool{}
	for _, d := range append(append([]string{}, systemDirs...), os.TempDir(), homeDir()) {
		if d == "" {
			continue
		}
		protected[filepath.Clean(d)] = true
		if r, err := filepath.EvalSymlinks(d); err == nil {
			protected[r] = true
		}
	}
	var bad []string
	for _, m := range matches {
		abs, _ := filepath.Abs(m)
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			real = abs
		}
		if protected[filepath.Clean(abs)] || protected[real] {
			bad = append(bad, m)
		}
	}
	if len(bad) > 0 {
		return rep, fmt.Errorf("%w: %q matches system directories (%s); refusing to delete anything", ErrCleanupPattern, opts.Pattern, strings.Join(bad, ", "))
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	for _, m := range matches {
		if excluded(m, opts.Exclude) {
			continue
		}
		fi, err := os.Lstat(m)
		if err != nil || !fi.IsDir() {
			continue // only directories, never through a link
		}
		if opts.GracePeriod > 0 && fi.ModTime().After(now().Add(-opts.GracePeriod)) {
			continue
		}
		release, alive, err := claimIfDead(m)
		switch {
		case err != nil:
			rep.Errors = append(rep.Errors, fmt.Errorf("%s: %w", m, err))
		case alive:
			rep.Alive = append(rep.Alive, m)
		default:
			if err := os.RemoveAll(m); err != nil {
				rep.Errors = append(rep.Errors, err)
			} else {
				rep.Removed = append(rep.Removed, m)
			}
		}
		release()
	}
	return rep, nil
}

func excluded(path string, exclude []string) bool {
	for _, s := range exclude {
		if s != "" && strings.Contains(path, s) {
			return true
		}
	}
	return false
}

func homeDir() string {
	h, _ := os.UserHomeDir()
	return h
}
