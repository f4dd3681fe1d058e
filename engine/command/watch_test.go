package command

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
)

func TestDrawWatch(t *testing.T) {
	at := time.Date(2026, 11, 30, 18, 20, 1, 0, time.UTC)
	got := drawWatch("jobengine job list", 2*time.Second, at, "ID\tSTATE\n")
	want := clearScreen + "Every 2s: jobengine job list    18:20:01\n\nID\tSTATE\n"
	if got != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
}

// TestWatchUsage: what --watch refuses, before it connects to anything.
func TestWatchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"job", "list", "--watch", "--json"},
		{"queue", "stats", "--watch-interval", "10ms"},
		{"cluster", "status", "--watch", "--watch-interval", "-1s"},
	} {
		_, errOut, code := run(t, append([]string{"--zk-hosts", deadZK}, args...)...)
		if code != ExitUsage || !strings.Contains(errOut, "--watch") {
			t.Errorf("%v: exit %d, want %d naming --watch:\n%s", args, code, ExitUsage, errOut)
		}
	}
}

// snapshots splits what a watch printed into its snapshots (the text
// after each time line).
func snapshots(out string) []string {
	var shots []string
	for _, part := range strings.Split(out, "\n--- ")[1:] {
		if _, body, ok := strings.Cut(part, " ---\n"); ok {
			shots = append(shots, body)
		}
	}
	return shots
}

// waitSnapshot waits until a snapshot after the first n matches every
// pattern (regular expressions), and returns how many snapshots there are.
func waitSnapshot(t *testing.T, p *proc, n int, patterns ...string) int {
	t.Helper()
	var res []*regexp.Regexp
	for _, pat := range patterns {
		res = append(res, regexp.MustCompile(pat))
	}
	var have int
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		shots := snapshots("\n" + p.out.String())
		have = len(shots)
		for _, s := range shots[min(n, len(shots)):] {
			ok := true
			for _, re := range res {
				ok = ok && re.MatchString(s)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("%d snapshots, none after the first %d matching %q", have, n, patterns)
	})
	return have
}

// TestWatchRedraws runs `job list`, `queue stats` and `cluster status`
// with --watch, output to a pipe: snapshots follow one another, each after
// a line with its time, a new job shows in a later one, and SIGTERM or
// SIGINT ends the command with exit 0.
func TestWatchRedraws(t *testing.T) {
	e := newJobEnv(t)
	first := e.add("echo")
	list := startDaemon(t, e.root, "job", "list", "--watch", "--watch-interval", "100ms")
	n := waitSnapshot(t, list, 0, first, "ID", "STATE")
	second := e.add("echo")
	waitSnapshot(t, list, n, first, second)
	list.signal(syscall.SIGTERM)
	if code := list.wait(30 * time.Second); code != 0 {
		t.Fatalf("job list --watch after SIGTERM: exit %d\n%s", code, list.out.String())
	}

	stats := startDaemon(t, e.root, "queue", "stats", "--watch-interval", "100ms")
	n = waitSnapshot(t, stats, 0, `QUEUED +2\n`)
	e.add("echo")
	waitSnapshot(t, stats, n, `QUEUED +3\n`)
	stats.signal(syscall.SIGINT)
	if code := stats.wait(30 * time.Second); code != 0 {
		t.Fatalf("queue stats --watch after SIGINT: exit %d\n%s", code, stats.out.String())
	}

	cs := startDaemon(t, e.root, "cluster", "status", "--watch", "--watch-interval", "100ms")
	n = waitSnapshot(t, cs, 0, "EXECUTOR", "no executor is running")
	waitSnapshot(t, cs, n, "EXECUTOR")
	cs.signal(syscall.SIGINT)
	if code := cs.wait(30 * time.Second); code != 0 {
		t.Fatalf("cluster status --watch after SIGINT: exit %d\n%s", code, cs.out.String())
	}
}

// TestWatchThroughAPI watches `job list` and `cluster status` over the
// API: a job launched meanwhile shows up; SIGTERM ends both. `job wait`
// shows the job's state while it waits.
func TestWatchThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	env := []string{"XDG_CONFIG_HOME=" + e.cfg, "JOBENGINE_ZK_HOSTS=" + deadZK, apiTokenEnv + "=" + e.alice}
	list := startProcess(t, env, "--api", e.url, "job", "list", "--watch", "--watch-interval", "100ms")
	n := waitSnapshot(t, list, 0, "ID", "STATE")
	id := strings.TrimSpace(e.ok(e.alice, "template", "launch", "tpl"))
	waitSnapshot(t, list, n, id)
	// job wait over the API shows the job waiting, off a terminal a line
	// per change on stderr; stdout stays empty when it times out.
	out, errOut, code := e.as(e.alice, "job", "wait", id, "--timeout", "1s")
	if code != ExitTimeout || out != "" || !strings.HasPrefix(errOut, id+" PENDING") {
		t.Fatalf("job wait over the API: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	cs := startProcess(t, env, "--api", e.url, "cluster", "status", "--watch", "--watch-interval", "100ms")
	waitSnapshot(t, cs, 1, "EXECUTOR", "no executor is running")
	for _, p := range []*proc{list, cs} {
		p.signal(syscall.SIGTERM)
		if code := p.wait(30 * time.Second); code != 0 {
			t.Fatalf("--watch over the API after SIGTERM: exit %d\n%s", code, p.out.String())
		}
	}
}
