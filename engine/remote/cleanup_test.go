package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCleanup: old dead directories go; a directory a live run holds (its
// lock, or ansible-runner's pid file naming a live process), a recent one
// and an excluded one stay; patterns matching system directories are
// refused outright.
func TestCleanup(t *testing.T) {
	base := t.TempDir()
	old := time.Now().Add(-3 * time.Hour)
	mk := func(name string) string {
		d := filepath.Join(base, "run-"+name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	age := func(d string) {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}

	deadLock := mk("dead-lock") // a worker that ended: its lock file, unlocked
	l, err := LockRun(deadLock)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	_ = os.WriteFile(filepath.Join(deadLock, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o600) // a stale pid that happens to be alive

	liveLock := mk("live-lock") // a worker still running
	held, err := LockRun(liveLock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	// ansible-runner's directories: a pid file only.
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := mk("dead-pid")
	_ = os.WriteFile(filepath.Join(deadPid, pidFile), []byte(strconv.Itoa(exited.Process.Pid)), 0o600)
	livePid := mk("live-pid")
	_ = os.WriteFile(filepath.Join(livePid, pidFile), []byte(strconv.Itoa(os.Getpid())), 0o600)
	noPid := mk("no-pid")
	excluded := mk("keep-me")
	recent := mk("recent")
	for _, d := range []string{deadLock, liveLock, deadPid, livePid, noPid, excluded} {
		age(d)
	}

	rep, err := Cleanup(CleanupOptions{Pattern: filepath.Join(base, "run-*"), GracePeriod: time.Hour, Exclude: []string{"keep"}})
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, d := range rep.Removed {
		gone[d] = true
	}
	for d, want := range map[string]bool{deadLock: true, deadPid: true, noPid: true, liveLock: false, livePid: false, excluded: false, recent: false} {
		_, statErr := os.Stat(d)
		if gone[d] != want || (statErr == nil) == want {
			t.Errorf("%s: removed %v (exists: %v), want removed %v", filepath.Base(d), gone[d], statErr == nil, want)
		}
	}
	if !rep.Changed() || len(rep.Alive) != 2 {
		t.Errorf("report %+v", rep)
	}
	again, err := Cleanup(CleanupOptions{Pattern: filepath.Join(base, "run-*"), GracePeriod: time.Hour, Exclude: []string{"keep"}})
	if err != nil || again.Changed() {
		t.Errorf("second cleanup changed something: %+v %v", again, err)
	}

	// The live run is still able to hold its lock and nobody stole it.
	if err := syscall.Flock(int(held.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Errorf("the live run lost its lock: %v", err)
	}

	for _, pattern := range []string{"/", "/*", "/usr", "/et?", os.TempDir(), filepath.Dir(os.TempDir() + "/x")} {
		_, err := Cleanup(CleanupOptions{Pattern: pattern})
		if !errors.Is(err, ErrCleanupPattern) || !strings.Contains(err.Error(), "system directories") {
			t.Errorf("pattern %q: %v", pattern, err)
		}
	}
	if _, err := Cleanup(CleanupOptions{Pattern: "["}); !errors.Is(err, ErrCleanupPattern) {
		t.Errorf("bad glob: %v", err)
	}
}

func TestNodeInfo(t *testing.T) {
	f := filepath.Join(t.TempDir(), "uuid")
	a := NodeInfo("v1", f)
	b := NodeInfo("v1", f)
	if a.UUID == "" || a.UUID != b.UUID || len(a.Errors) != 0 {
		t.Fatalf("uuid not persistent: %+v %+v", a, b)
	}
	if a.CPUCount < 1 || a.MemInBytes <= 0 || a.Capacity < a.CPUCapacity || a.Capacity < a.MemCapacity || a.RunnerVersion != "v1" {
		t.Fatalf("info %+v", a)
	}
	if cpu, mem, total := Capacity(2, 4<<30); cpu != 8 || mem != 20 || total != 20 {
		t.Errorf("Capacity(2 CPUs, 4 GiB) = %d, %d, %d; want 8, 20, 20", cpu, mem, total)
	}
}
