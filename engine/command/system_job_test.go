package command

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestSystemJobs launches system jobs with the real binary against a
// controller and an executor of capacity 6: they hold the key `system`
// (a user's job holding it blocks them, and the second waits for the
// first), weigh 5 (they wait while only 4 are free), run one after the
// other, and cleanup_jobs deletes the finished jobs.
func TestSystemJobs(t *testing.T) {
	e := newJobEnv(t)
	startDaemon(t, e.root, "executor", "--name", "x", "--threads", "4", "--capacity", "6", "--enable-test-actions", "--plugin-dir", t.TempDir())
	startController(t, e.root)

	var done []string
	for range 2 {
		done = append(done, strings.TrimSpace(e.binOK("job", "add", "echo", "--payload", `{"a": 1}`)))
	}
	waitState(e, jobs.Success, done...)
	blocker := strings.TrimSpace(e.binOK("job", "add", "sleep", "--payload", `{"duration": "5m"}`, "--concurrency-key", "system"))
	filler := strings.TrimSpace(e.binOK("job", "add", "sleep", "--payload", `{"duration": "5m"}`, "--impact", "2"))
	waitState(e, jobs.Running, blocker, filler)

	first := strings.TrimSpace(e.binOK("system-job", "launch", "cleanup_jobs", "--days", "0"))
	second := strings.TrimSpace(e.binOK("system-job", "launch", "cleanup_tokens"))
	j := state(e, first)
	if j.Action != jobs.SystemAction || j.Impact != jobs.SystemImpact || !slices.Equal(j.ConcurrencyKeys, []string{jobs.SystemKey}) {
		t.Fatalf("system job %s: action %s, impact %d, keys %v", first, j.Action, j.Impact, j.ConcurrencyKeys)
	}
	waitExplained(e, map[string]string{
		first:  fmt.Sprintf("waiting for %s to finish (system)", blocker),
		second: fmt.Sprintf("waiting for %s to finish (system)", first),
	})

	// The key is free; 4 of 6 are, and a system job weighs 5.
	e.binOK("job", "cancel", blocker)
	waitExplained(e, map[string]string{
		first:  "no capacity in group default: needs 5, most free 4",
		second: fmt.Sprintf("waiting for %s to finish (system)", first),
	})

	e.binOK("job", "cancel", filler)
	waitState(e, jobs.Success, first, second)
	a, b := state(e, first), state(e, second)
	if !strings.Contains(a.StatusMessage, "cleanup_jobs: deleted ") || !strings.Contains(b.StatusMessage, "cleanup_tokens: deleted 0 ") {
		t.Errorf("messages: %q, %q", a.StatusMessage, b.StatusMessage)
	}
	if b.Started == nil || b.Started.Before(a.TimeOfStatusChange) {
		t.Errorf("%s started at %v, before %s ended at %v", second, b.Started, first, a.TimeOfStatusChange)
	}
	for _, id := range append(done, blocker, filler) {
		if _, _, err := e.store.Get(e.ctx(), id); !errors.Is(err, jobs.ErrNotFound) {
			t.Errorf("finished job %s was not cleaned up: %v", id, err)
		}
	}
}

// TestSystemJobUsage: the kinds are listed; an unknown kind and days for a
// kind that takes none are usage errors that create nothing.
func TestSystemJobUsage(t *testing.T) {
	e := newJobEnv(t)
	out := e.binOK("system-job", "list")
	for _, k := range []string{"cleanup_jobs", "cleanup_tokens"} {
		if !strings.Contains(out, k) {
			t.Errorf("list lacks %s:\n%s", k, out)
		}
	}
	for args, want := range map[string]string{
		"launch cleanup_everything":      `no system job kind "cleanup_everything"`,
		"launch cleanup_tokens --days 3": "cleanup_tokens takes no days",
		"launch cleanup_jobs --days -1":  "give a whole number 0–36500",
		"launch":                         "KIND",
	} {
		_, errOut, code := e.bin(append([]string{"system-job"}, strings.Fields(args)...)...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("system-job %s: exit %d, want 2 and %q in:\n%s", args, code, want, errOut)
		}
	}
	var n int
	if err := e.store.Walk(e.ctx(), func(*jobs.Job, int32) { n++ }); err != nil && !errors.Is(err, jobs.ErrNotFound) {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d jobs created by refused launches", n)
	}
}

// waitState waits until every job is in state s.
func waitState(e *jobEnv, s jobs.State, ids ...string) {
	e.t.Helper()
	poll.For(e.t, 60*time.Second, 50*time.Millisecond, func() error {
		for _, id := range ids {
			if j := state(e, id); j.State != s {
				return fmt.Errorf("%s is %s (%s %s), want %s", id, j.State, j.Explanation, j.StatusMessage, s)
			}
		}
		return nil
	})
}

// waitExplained waits until each pending job says why as given.
func waitExplained(e *jobEnv, want map[string]string) {
	e.t.Helper()
	poll.For(e.t, 30*time.Second, 50*time.Millisecond, func() error {
		for id, why := range want {
			if j := state(e, id); j.State != jobs.Pending || j.Explanation != why {
				return fmt.Errorf("%s: %s %q, want PENDING %q", id, j.State, j.Explanation, why)
			}
		}
		return nil
	})
}
