package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// Bad input at the edges of the real binary: each is a usage error (exit
// 2) that says what was wrong, read with a bound, never echoed raw, and
// nothing is written. The first three ran out of memory or hung before.
func TestBadInputAtTheEdges(t *testing.T) {
	e := newJobEnv(t)
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:$y$j9T$c2VjcmV0aGFzaA:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"payload from /dev/zero", nil, []string{"job", "add", "echo", "--payload", "@/dev/zero"}, "--payload: /dev/zero holds more than"},
		{"ESC in the action", nil, []string{"job", "add", "a\x1b[2Jb"}, `"a\x1b[2Jb" is not an action name`},
		{"CR in the action", nil, []string{"job", "add", "a\rb"}, "is not an action name"},
		{"action ..", nil, []string{"job", "add", ".."}, "is not an action name"},
		{"action not UTF-8", nil, []string{"job", "add", "a\xffb"}, `"a\xffb" is not an action name`},
		{"null payload", nil, []string{"job", "add", "echo", "--payload", "null"}, "not an object"},
		{"payload not UTF-8", nil, []string{"job", "add", "echo", "--payload", "{\"a\":\"\xff\"}"}, "not valid UTF-8"},
		{"escape in the target", nil, []string{"job", "add", "echo", "--target", "x\x1b]0;owned\x07"}, "control character"},
		{"negative connect timeout", nil, []string{"--zk-connect-timeout", "-1s", "job", "list"}, "--zk-connect-timeout -1s is out of range"},
		{"threads from the environment", []string{"JOBENGINE_THREADS=100000000"}, []string{"executor", "--plugin-dir", t.TempDir()}, "--threads 100000000 is out of range: type 1–1024"},
		{"threads", nil, []string{"executor", "--threads", "5000", "--plugin-dir", t.TempDir()}, "--threads 5000 is out of range"},
		{"list limit", nil, []string{"job", "list", "--limit", "2000000000"}, "--limit 2000000000 is out of range"},
		{"log backups", nil, []string{"--log-max-backups", "1000000", "job", "list"}, "--log-max-backups 1000000 is out of range"},
		{"executor named ..", nil, []string{"executor", "--name", "..", "--plugin-dir", t.TempDir()}, `name ".."`},
		{"a secret as checksums file", nil, []string{"executor", "--plugin-checksums", secret, "--plugin-dir", t.TempDir()}, "is not \"HEX  NAME\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := []string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root}
			_, stderr, code := runBinary(t, tc.env, append(g, tc.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want 2 with %q; stderr:\n%s", code, tc.want, stderr)
			}
			if strings.ContainsAny(stderr, "\x1b\r\x07") || strings.Contains(stderr, "c2VjcmV0") || strings.Contains(stderr, "fatal error") {
				t.Fatalf("stderr holds a raw control character, the secret, or a crash:\n%q", stderr)
			}
		})
	}
	if e.exists("/") {
		children, _, _ := e.conn.Children(e.conn.Path("/"))
		t.Fatalf("bad input wrote under the root: %v", children)
	}
}

// What a job holds — a status message an action wrote, a target or tags
// written by anyone with access to ZooKeeper — reaches a terminal escaped.
func TestControlCharactersAreEscaped(t *testing.T) {
	e := newJobEnv(t)
	id := e.add("echo")
	_, uid, _ := jobs.ParseID(id)
	data, _, err := e.conn.Get(e.store.DocPath(uid))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	m["target-resource"] = map[string]string{"href": "x\x1b]0;owned\x07"}
	m["tags"] = []string{"abc\u202edcba", "bad\xffbyte"}
	m["status-message"] = "\x1b[31mred\r\x1b[2K"
	data, _ = json.Marshal(m)
	if _, err := e.conn.Set(e.store.DocPath(uid), data, -1); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"job", "list"}, {"job", "show", id}} {
		out := e.ok(args...)
		if strings.ContainsAny(out, "\x1b\r\x07\u202e") {
			t.Fatalf("jobengine %s printed control characters raw:\n%q", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, `x\x1b]0;owned\x07`) {
			t.Fatalf("jobengine %s does not show the target escaped:\n%s", strings.Join(args, " "), out)
		}
	}
	show := e.ok("job", "show", id)
	for _, want := range []string{`abc\u202edcba`, `\x1b[31mred\r\x1b[2K`} {
		if !strings.Contains(show, want) {
			t.Errorf("job show lacks %q:\n%s", want, show)
		}
	}
}

// A document that fails validation is visible: `job list` and `queue
// stats` show it, `queue restore` skips and reports it, `job cancel` moves
// it to the quarantine and says so; then `queue inspect`, `job list`,
// `job show` and `queue stats` show it quarantined.
func TestInvalidDocumentsAreShownAndQuarantinedByCancel(t *testing.T) {
	e := newJobEnv(t)
	bogus := e.add("echo")
	prio := e.add("echo")
	stranded := e.add("echo")
	edit := func(id, key string, v any) {
		_, uid, _ := jobs.ParseID(id)
		data, _, _ := e.conn.Get(e.store.DocPath(uid))
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		m[key] = v
		data, _ = json.Marshal(m)
		if _, err := e.conn.Set(e.store.DocPath(uid), data, -1); err != nil {
			t.Fatal(err)
		}
	}
	edit(bogus, "state", "BOGUS")
	edit(prio, "priority", 5000)
	entries, _ := e.store.Queue().Entries(e.ctx())
	for _, en := range entries {
		if en.Item == stranded {
			if err := e.store.Queue().Remove(e.ctx(), en.Name); err != nil {
				t.Fatal(err)
			}
		}
	}

	list := e.ok("job", "list")
	if !strings.Contains(list, "INVALID") || !strings.Contains(list, bogus) || !strings.Contains(list, `unknown state "BOGUS"`) || !strings.Contains(list, "priority 5000") {
		t.Fatalf("job list does not show the invalid documents:\n%s", list)
	}
	type stats struct{ Invalid, Quarantined int }
	if st := decode[stats](t, e.ok("queue", "stats", "--json")); st.Invalid != 2 || st.Quarantined != 0 {
		t.Fatalf("queue stats: %+v", st)
	}
	restore := e.ok("queue", "restore")
	if !strings.Contains(restore, "requeued "+stranded) || !strings.Contains(restore, "2 skipped (invalid)") || !strings.Contains(restore, "priority 5000") {
		t.Fatalf("queue restore:\n%s", restore)
	}

	_, stderr, code := e.run("job", "cancel", bogus)
	if code != ExitFailure || !strings.Contains(stderr, "quarantined") || !strings.Contains(stderr, "BOGUS") {
		t.Fatalf("job cancel of an invalid job: exit %d\n%s", code, stderr)
	}
	_, stderr, code = e.run("job", "cancel", bogus, "--json")
	if code != ExitFailure || decode[jsonError](t, stderr).Kind != kindQuarantined {
		t.Fatalf("job cancel --json of a quarantined job: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := e.run("job", "show", bogus); code != ExitFailure || !strings.Contains(stderr, "quarantined") {
		t.Fatalf("job show of a quarantined job: exit %d\n%s", code, stderr)
	}
	if st := decode[stats](t, e.ok("queue", "stats", "--json")); st.Invalid != 1 || st.Quarantined != 1 {
		t.Fatalf("queue stats after the quarantine: %+v", st)
	}
	inspect := e.ok("queue", "inspect")
	if !strings.Contains(inspect, "QUARANTINED") || !strings.Contains(inspect, bogus) {
		t.Fatalf("queue inspect does not show the quarantined job:\n%s", inspect)
	}
	records := decode[[]jobs.Quarantined](t, e.ok("queue", "inspect", "--quarantined", "--json"))
	if len(records) != 1 || records[0].Job != bogus || !strings.Contains(records[0].Text, `"BOGUS"`) || records[0].By != "cli" {
		t.Fatalf("queue inspect --quarantined: %+v", records)
	}
	if list := e.ok("job", "list"); !strings.Contains(list, "QUARANTINED") || !strings.Contains(list, bogus) {
		t.Fatalf("job list does not show the quarantined job:\n%s", list)
	}
}

// A distributor directory holding a FIFO, a symlink to /dev/zero and a
// 300 MB file is validated at once: each is refused without being read
// (a FIFO hung `distributor validate` before, the others ran out of
// memory); an interval that overflows and an alias bomb are reported as
// what they are.
func TestDistributorFilesAreReadWithABound(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	huge, err := os.Create(filepath.Join(dir, "huge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := huge.Truncate(300 << 20); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	huge.Close()
	files := map[string]string{
		"overflow.yaml": "action: echo\ninterval: 36028797018963969\n",
		"bomb.yaml":     "action: echo\ninterval: 10s\npayload:\n" + aliasBomb(),
		"ok.yaml":       "action: echo\ninterval: 10s\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, code := runBinary(t, nil, "distributor", "validate", "--config-dir", dir)
	if code != ExitUsage || !strings.Contains(stdout, "ok.yaml") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"fifo.yaml: cannot read: not a regular file (a FIFO)",
		"zero.yaml: cannot read: not a regular file (a character device)",
		fmt.Sprintf("huge.yaml: cannot read: %d bytes, over the", 300<<20),
		"overflow.yaml:2: interval: 36028797018963969 seconds is out of range",
		"bomb.yaml:4: payload cannot be read: document contains excessive aliasing",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func aliasBomb() string {
	var b strings.Builder
	b.WriteString("  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		fmt.Fprintf(&b, "  %s: &%s [%s]\n", n, n, strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ","))
		prev = n
	}
	return b.String()
}

// An action that reports 1,000 affected resources of 1 KB (a plugin, within
// the protocol's limits) gets its job finished, its affected resources
// trimmed with a note; before, the final write was over ZooKeeper's request
// limit, the job stayed RUNNING and two SIGTERMs did not stop the
// executor. Then the executor stops on two signals.
func TestPluginReportingAThousandAffectedResources(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	plugins := filepath.Join(builtBinaries(t), "testplugins")
	x := startDaemon(t, root, "executor", "--enable-test-actions", "--name", "x", "--threads", "2", "--plugin-dir", plugins, "--shutdown-grace", "1h")
	x.waitLog(20*time.Second, "executor started", "affect-many")
	j := createJob(t, s, "affect-many", `{"count":1000,"size":1024}`)
	got := waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Success))
	if n := len(got.AffectedResources); n == 0 || n >= 1000 || got.Trimmed == "" {
		t.Fatalf("%d affected resources, note %q", n, got.Trimmed)
	}
	if show := decode[map[string]any](t, e0(t, root).ok("job", "show", j.ID, "--json")); show["trimmed"] == nil {
		t.Fatalf("job show --json has no note: %v", show)
	}
	x.signal(syscall.SIGTERM)
	x.signal(syscall.SIGTERM)
	if code := x.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit code %d after two signals", code)
	}
}

// e0 is a jobEnv on an existing root.
func e0(t *testing.T, root string) *jobEnv {
	e := newJobEnv(t)
	e.root = root
	return e
}

// Two signals stop an executor whose outcome write cannot reach ZooKeeper:
// the retries end with the second signal.
func TestSecondSignalEndsTheRetries(t *testing.T) {
	root := testRoot(t)
	s := testStore(t, root)
	proxy, err := zktest.NewProxy(testZK.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	x := startProcess(t, nil, "--zk-hosts", proxy.Addr(), "--zk-root", root, "--zk-session-timeout", "10s", "--log-format", "json",
		"executor", "--enable-test-actions", "--name", "x", "--threads", "1", "--plugin-dir", t.TempDir(), "--shutdown-grace", "1h")
	j := createJob(t, s, "sleep", `{"duration":"1s"}`)
	waitJob(t, s, j.ID, 15*time.Second, inState(jobs.Running))
	proxy.Block()
	// The outcome's write, or the RUNNING write when the block came
	// before its answer: either is retried until the second signal.
	x.waitLog(20*time.Second, "failed; retrying")
	x.signal(syscall.SIGTERM)
	x.waitLog(5*time.Second, "draining")
	x.signal(syscall.SIGTERM)
	if code := x.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d after two signals", code)
	}
}

// Every number and duration flag of every command has a range, and every
// one whose 0 means something says what to type instead of a negative
// value: a new flag without them fails here, not in production.
func TestEveryNumberFlagIsBounded(t *testing.T) {
	app := NewApp(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(path string, flags []cli.Flag, cmds []*cli.Command)
	walk = func(path string, flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			name := f.Names()[0]
			zero := false
			switch f.(type) {
			case *cli.IntFlag:
				b, ok := intBounds[name]
				if !ok || b[0] > b[1] {
					t.Errorf("%s --%s has no range", path, name)
				}
				zero = b[0] == 0
			case *cli.IntSliceFlag:
				if _, ok := intSliceBounds[name]; !ok {
					t.Errorf("%s --%s has no range", path, name)
				}
			case *cli.DurationFlag:
				b, ok := durationBounds[name]
				if !ok {
					t.Errorf("%s --%s has no range", path, name)
				}
				zero = b.zero
			}
			_, hinted := negativeHints[strings.TrimPrefix(path, "jobengine ")+" --"+name]
			if _, ok := negativeHints[name]; zero && !ok && !hinted {
				t.Errorf("%s --%s: 0 is allowed but no hint says what to type instead of a negative value", path, name)
			}
		}
		for _, c := range cmds {
			walk(path+" "+c.Name, c.Flags, c.Subcommands)
		}
	}
	walk("jobengine", app.Flags, app.Commands)
}
