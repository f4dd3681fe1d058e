package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// jobEnv is a test's own root on the shared ZooKeeper, with a store on it
// for setting up and checking what the commands did.
type jobEnv struct {
	t     *testing.T
	root  string
	conn  *zkconn.Conn
	store *jobs.Store
	extra []string // more global flags for every command
}

func newJobEnv(t *testing.T) *jobEnv {
	t.Helper()
	root := testRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: root, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return &jobEnv{t: t, root: root, conn: conn, store: jobs.NewStore(conn, jobs.StoreConfig{})}
}

// run runs a command against the test's root.
func (e *jobEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	g := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "--zk-connect-timeout", "10s"}, e.extra...)
	return run(e.t, append(g, args...)...)
}

// ok runs a command that must succeed and returns its output.
func (e *jobEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("jobengine %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// add creates a job with `job add` and returns its id.
func (e *jobEnv) add(args ...string) string {
	e.t.Helper()
	out := e.ok(append([]string{"job", "add"}, args...)...)
	if !idLine.MatchString(out) {
		e.t.Fatalf("job add printed %q, want the job id alone on a line", out)
	}
	return strings.TrimSpace(out)
}

var idLine = regexp.MustCompile(`^job/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$`)

func (e *jobEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// advance moves a job through the given states, as an executor would.
func (e *jobEnv) advance(id string, states ...jobs.State) {
	e.t.Helper()
	for _, s := range states {
		j, ver, err := e.store.Get(e.ctx(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := j.Transition(s, time.Now()); err != nil {
			e.t.Fatal(err)
		}
		if s.Final() {
			rc := 0
			if s == jobs.Failed {
				rc = 2
			}
			j.ReturnCode = &rc
			j.StatusMessage = "done: " + string(s)
		}
		if _, err := e.store.Update(e.ctx(), j, ver); err != nil {
			e.t.Fatal(err)
		}
	}
}

// exists reports whether a node under the test's root exists.
func (e *jobEnv) exists(p string) bool {
	e.t.Helper()
	ok, _, err := e.conn.Exists(e.conn.Path(p))
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

func TestJobAddShowListCancel(t *testing.T) {
	e := newJobEnv(t)
	id := e.add("say_hello", "--target", "nuvlabox/1", "--priority", "7", "--payload", `{ "name": "x", "n": [1, 2] }`,
		"--timeout", "90s", "--unique-key", "hello-1", "--tag", "a", "--tag", "b")
	j, _, err := e.store.Get(e.ctx(), id)
	if err != nil {
		t.Fatalf("the printed id is not in the store: %v", err)
	}
	if j.State != jobs.Queued || j.Priority != 7 || j.Target() != "nuvlabox/1" || string(j.Payload) != `{"name":"x","n":[1,2]}` ||
		j.Timeout != 90 || j.UniqueKey != "hello-1" || strings.Join(j.Tags, ",") != "a,b" || j.CreatedBy != "cli" {
		t.Fatalf("stored job does not match the flags: %+v", j)
	}
	if n, _ := e.store.Queue().Len(e.ctx()); n != 1 {
		t.Fatalf("%d queue entries, want 1", n)
	}

	// --json: the job document's own field names, plus where it was read.
	shown := decode[map[string]any](t, e.ok("job", "show", id, "--json"))
	for k, want := range map[string]any{"id": id, "action": "say_hello", "state": "QUEUED", "priority": 7.0,
		"unique-key": "hello-1", "created-by": "cli", "timeout": 90.0, "source": "zookeeper"} {
		if shown[k] != want {
			t.Errorf("show --json: %q = %#v, want %#v", k, shown[k], want)
		}
	}
	if tr, _ := shown["target-resource"].(map[string]any); tr["href"] != "nuvlabox/1" {
		t.Errorf("show --json: target-resource = %#v", shown["target-resource"])
	}
	for _, k := range []string{"created", "updated", "time-of-status-change", "payload", "tags", "version"} {
		if _, ok := shown[k]; !ok {
			t.Errorf("show --json: no %q in %v", k, shown)
		}
	}
	// A bare uuid works too, and the text form names the fields.
	text := e.ok("job", "show", strings.TrimPrefix(id, "job/"))
	for _, want := range []string{"id:", id, "state:", "QUEUED", "target-resource:", "nuvlabox/1", "source:", "zookeeper"} {
		if !strings.Contains(text, want) {
			t.Errorf("job show text lacks %q:\n%s", want, text)
		}
	}

	// The unique key refuses a second live job.
	if _, errOut, code := e.run("job", "add", "say_hello", "--unique-key", "hello-1"); code != 1 || !strings.Contains(errOut, "unique key") {
		t.Fatalf("duplicate unique key: exit %d, stderr %q; want 1 naming the key", code, errOut)
	}

	id2 := e.add("other")
	list := decode[[]map[string]any](t, e.ok("job", "list", "--json"))
	if len(list) != 2 || list[0]["id"] != id2 || list[1]["id"] != id || list[0]["source"] != "zookeeper" {
		t.Fatalf("job list --json: want [%s %s] newest first, got %v", id2, id, list)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--action", "say_hello", "--json")); len(l) != 1 || l[0]["id"] != id {
		t.Fatalf("job list --action: %v", l)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--limit", "1", "--json")); len(l) != 1 || l[0]["id"] != id2 {
		t.Fatalf("job list --limit 1: %v", l)
	}
	table := e.ok("job", "list")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") ||
		!strings.Contains(lines[0], "SOURCE") || !strings.Contains(lines[1], id2) || !strings.Contains(lines[2], "zookeeper") {
		t.Fatalf("job list table:\n%s", table)
	}

	if out := e.ok("job", "cancel", id); out != id+" CANCELED\n" {
		t.Fatalf("job cancel printed %q", out)
	}
	if j, _, _ := e.store.Get(e.ctx(), id); j.State != jobs.Canceled {
		t.Fatalf("state after cancel: %s", j.State)
	}
	if n, _ := e.store.Queue().Len(e.ctx()); n != 1 {
		t.Fatalf("%d queue entries after the cancel, want 1 (the other job's)", n)
	}
	if _, errOut, code := e.run("job", "cancel", id); code != 1 || !strings.Contains(errOut, "already CANCELED") {
		t.Fatalf("cancel of a canceled job: exit %d, stderr %q", code, errOut)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--state", "canceled", "--json")); len(l) != 1 || l[0]["id"] != id {
		t.Fatalf("job list --state canceled: %v", l)
	}
	// The key was released with the cancel.
	e.add("say_hello", "--unique-key", "hello-1")

	// A RUNNING job gets a cancel request.
	e.advance(id2, jobs.Running)
	if out := e.ok("job", "cancel", id2); !strings.Contains(out, "cancel requested") {
		t.Fatalf("cancel of a running job printed %q", out)
	}
	if !e.exists("cancel/" + strings.TrimPrefix(id2, "job/")) {
		t.Fatal("no cancel request for the running job")
	}
}

func TestListIsAnEmptyArray(t *testing.T) {
	e := newJobEnv(t)
	if out := e.ok("job", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("job list --json of nothing: %q, want []", out)
	}
	if out := e.ok("queue", "inspect", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("queue inspect --json of nothing: %q, want []", out)
	}
}

func TestNoSuchJob(t *testing.T) {
	e := newJobEnv(t)
	id := "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"
	for _, cmd := range []string{"show", "cancel", "wait", "logs"} {
		out, errOut, code := e.run("job", cmd, id)
		if code != 1 || out != "" || !strings.Contains(errOut, "no such job: "+id) {
			t.Errorf("job %s of an unknown job: exit %d, stdout %q, stderr %q; want 1 and \"no such job: %s\"", cmd, code, out, errOut, id)
		}
	}
}

func TestWaitExitCodes(t *testing.T) {
	e := newJobEnv(t)
	logFile := filepath.Join(t.TempDir(), "wait.log")

	t.Run("success", func(t *testing.T) {
		id := e.add("a")
		type result struct {
			out, errOut string
			code        int
		}
		done := make(chan result, 1)
		go func() {
			out, errOut, code := e.run("--log-level", "debug", "--log-file", logFile, "job", "wait", id, "--timeout", "60s")
			done <- result{out, errOut, code}
		}()
		// Complete the job only once the command watches its document, so
		// the watch is what wakes it.
		poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
			b, _ := os.ReadFile(logFile)
			if !strings.Contains(string(b), "watching job document") || !strings.Contains(string(b), id) {
				return fmt.Errorf("the command does not watch %s yet", id)
			}
			return nil
		})
		e.advance(id, jobs.Running)
		e.advance(id, jobs.Success)
		select {
		case r := <-done:
			if r.code != 0 || r.out != id+" SUCCESS (return code 0): done: SUCCESS\n" {
				t.Fatalf("wait for a job that succeeds: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("job wait did not return after the job succeeded")
		}
		b, _ := os.ReadFile(logFile)
		// One read to start and at most one per change before the final one:
		// the command waits on its watch, it does not poll.
		if n := strings.Count(string(b), "watching job document"); n < 1 || n > 2 {
			t.Fatalf("the document was read %d times before it was final, for 1 change", n)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		id := e.add("a")
		e.ok("job", "cancel", id)
		out, errOut, code := e.run("job", "wait", id)
		if code != 1 || !strings.HasPrefix(out, id+" CANCELED") || !strings.Contains(errOut, "ended CANCELED") {
			t.Fatalf("wait for a canceled job: exit %d, stdout %q, stderr %q; want 1 and the final state", code, out, errOut)
		}
	})

	t.Run("failed-json", func(t *testing.T) {
		id := e.add("a")
		e.advance(id, jobs.Running, jobs.Failed)
		out, _, code := e.run("job", "wait", "--json", id)
		if v := decode[map[string]any](t, out); code != 1 || v["state"] != "FAILED" || v["return-code"] != 2.0 {
			t.Fatalf("wait --json for a failed job: exit %d, %v", code, v)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		id := e.add("a")
		out, errOut, code := e.run("job", "wait", id, "--timeout", "300ms")
		if code != 3 || out != "" || !strings.Contains(errOut, "timed out") || !strings.Contains(errOut, "QUEUED") {
			t.Fatalf("wait that times out: exit %d, stdout %q, stderr %q; want 3", code, out, errOut)
		}
	})
}

func TestLogs(t *testing.T) {
	e := newJobEnv(t)
	id := e.add("a")
	uid := strings.TrimPrefix(id, "job/")
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(i int) jobs.LogLine {
		return jobs.LogLine{Time: t0.Add(time.Duration(i) * time.Second), Level: "info", Message: fmt.Sprintf("line %d", i)}
	}
	if out := e.ok("job", "logs", id); out != "" {
		t.Fatalf("logs of a job without log: %q", out)
	}
	if err := e.store.AppendLog(e.ctx(), uid, []jobs.LogLine{line(1), line(2)}); err != nil {
		t.Fatal(err)
	}
	want := "2025-01-02T03:04:06.000Z INFO  line 1\n2025-01-02T03:04:07.000Z INFO  line 2\n"
	if out := e.ok("job", "logs", id); out != want {
		t.Fatalf("job logs:\n%s\nwant:\n%s", out, want)
	}

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"jobengine", "--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "job", "logs", "--follow", id}, &out, &errOut)
	}()
	for i := 3; i <= 5; i++ {
		poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(out.String(), fmt.Sprintf("line %d\n", i-1)) {
				return fmt.Errorf("line %d not printed yet:\n%s", i-1, out.String())
			}
			return nil
		})
		if err := e.store.AppendLog(e.ctx(), uid, []jobs.LogLine{line(i)}); err != nil {
			t.Fatal(err)
		}
	}
	poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "line 5\n") {
			return fmt.Errorf("line 5 not printed yet:\n%s", out.String())
		}
		return nil
	})
	select {
	case code := <-done:
		t.Fatalf("logs --follow ended (exit %d) while the job is live", code)
	default:
	}
	e.advance(id, jobs.Running, jobs.Success)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("logs --follow: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs --follow did not end when the job became final")
	}
	for i := 1; i <= 5; i++ {
		if n := strings.Count(out.String(), fmt.Sprintf("line %d\n", i)); n != 1 {
			t.Fatalf("line %d printed %d times:\n%s", i, n, out.String())
		}
	}
}

func TestNewLinesAfterTheTailMoves(t *testing.T) {
	l := func(s string) jobs.LogLine { return jobs.LogLine{Level: "info", Message: s} }
	ls := func(ss ...string) []jobs.LogLine {
		out := []jobs.LogLine{}
		for _, s := range ss {
			out = append(out, l(s))
		}
		return out
	}
	for _, tc := range []struct {
		name            string
		prev, cur, want []jobs.LogLine
	}{
		{"first read", nil, ls("a", "b"), ls("a", "b")},
		{"appended", ls("a", "b"), ls("a", "b", "c"), ls("c")},
		{"unchanged", ls("a", "b"), ls("a", "b"), ls()},
		{"oldest dropped", ls("a", "b", "c"), ls("b", "c", "d", "e"), ls("d", "e")},
		{"repeated lines", ls("x", "x"), ls("x", "x", "x"), ls("x")},
		{"all replaced", ls("a", "b"), ls("c", "d"), ls("c", "d")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newLines(tc.prev, tc.cur)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("newLines = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueueStatsInspectRestore(t *testing.T) {
	e := newJobEnv(t)
	a := e.add("a", "--priority", "5")
	b := e.add("b", "--priority", "500")
	c := e.add("c", "--priority", "5")

	// An executor holds the first entry.
	cons := e.store.Queue().NewConsumer(queue.ConsumerOptions{Name: "executor-1"})
	t.Cleanup(cons.Close)
	it, err := cons.Take(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Data) != a {
		t.Fatalf("took %s, want %s first", it.Data, a)
	}
	e.advance(a, jobs.Running)

	type stats struct {
		Entries, Taken, Available, Orphans int
		ByPriority                         map[string]int `json:"by-priority"`
		Jobs                               map[string]int
	}
	st := decode[stats](t, e.ok("queue", "stats", "--json"))
	if st.Entries != 3 || st.Taken != 1 || st.Available != 2 || st.Orphans != 0 || st.ByPriority["5"] != 2 || st.ByPriority["500"] != 1 ||
		st.Jobs["QUEUED"] != 2 || st.Jobs["RUNNING"] != 1 || st.Jobs["SUCCESS"] != 0 || len(st.Jobs) != len(jobs.States) {
		t.Fatalf("queue stats --json: %+v", st)
	}
	text := e.ok("queue", "stats")
	for _, want := range []string{"entries", "taken", "available", "orphans", "PRIORITY", "005", "500", "STATE", "QUEUED", "RUNNING"} {
		if !strings.Contains(text, want) {
			t.Errorf("queue stats text lacks %q:\n%s", want, text)
		}
	}

	type entry struct {
		queue.Entry
		TakerName string `json:"taker-name"`
	}
	entries := decode[[]entry](t, e.ok("queue", "inspect", "--json"))
	if len(entries) != 3 || entries[0].Item != a || entries[1].Item != c || entries[2].Item != b ||
		!entries[0].Taken || entries[0].Taker != string(it.TakerID()) || entries[0].TakerName != "executor-1" ||
		entries[1].Taken || entries[1].TakerName != "" || entries[2].Priority != 500 {
		t.Fatalf("queue inspect --json: %+v", entries)
	}
	if l := decode[[]queue.Entry](t, e.ok("queue", "inspect", "--limit", "1", "--json")); len(l) != 1 || l[0].Item != a {
		t.Fatalf("queue inspect --limit 1: %+v", l)
	}
	text = e.ok("queue", "inspect")
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 4 || !strings.Contains(lines[0], "TAKER") ||
		!strings.Contains(lines[1], "yes") || !strings.Contains(lines[1], "executor-1") || !strings.Contains(lines[3], b) {
		t.Fatalf("queue inspect table:\n%s", text)
	}

	// Break the queue: c loses its entry, b ends without its entry removed.
	for _, en := range entries {
		if en.Item == c {
			if err := e.conn.Delete(e.store.Queue().EntriesPath()+"/"+en.Name, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.advance(b, jobs.Running, jobs.Success)
	type report struct {
		Requeued, Removed []string
		SkippedTaken      []string `json:"skipped-taken"`
	}
	rep := decode[report](t, e.ok("queue", "restore", "--json"))
	if len(rep.Requeued) != 1 || rep.Requeued[0] != c || len(rep.Removed) != 1 || rep.Removed[0] != entries[2].Name || len(rep.SkippedTaken) != 0 {
		t.Fatalf("queue restore: %+v", rep)
	}
	// Idempotent: nothing left to do, and empty lists are [] not null.
	if out := e.ok("queue", "restore", "--json"); !strings.Contains(out, `"requeued": []`) || !strings.Contains(out, `"skipped-taken": []`) {
		t.Fatalf("second queue restore: %s", out)
	}
	if out := e.ok("queue", "restore"); out != "restore: 0 requeued, 0 removed, 0 skipped (taken)\n" {
		t.Fatalf("third queue restore printed %q", out)
	}
	st = decode[stats](t, e.ok("queue", "stats", "--json"))
	if st.Entries != 2 || st.Taken != 1 {
		t.Fatalf("queue stats after restore: %+v", st)
	}
}

func TestBacklogFull(t *testing.T) {
	e := newJobEnv(t)
	e.add("a", "--max-backlog", "1")
	_, errOut, code := e.run("job", "add", "a", "--max-backlog", "1")
	if code != 1 || !strings.Contains(errOut, "backlog full") || !strings.Contains(errOut, "--max-backlog") {
		t.Fatalf("add over the backlog: exit %d, stderr %q", code, errOut)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--json")); len(l) != 1 {
		t.Fatalf("%d jobs after a refused add, want 1", len(l))
	}
}

func TestBadInputExitsTwoAndWritesNothing(t *testing.T) {
	e := newJobEnv(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"x":"`+strings.Repeat("y", jobs.MaxPayloadBytes)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	array := filepath.Join(dir, "array.json")
	if err := os.WriteFile(array, []byte(`[1, 2]`), 0o644); err != nil {
		t.Fatal(err)
	}
	const uuid = "0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"
	for _, tc := range []struct {
		args []string
		want string // in the error line
	}{
		{[]string{"job", "add", "a", "--nope"}, "--nope"},
		{[]string{"job", "add", "--nope", "a"}, "nope"},
		{[]string{"job", "list", "--json", "extra"}, "want no arguments"},
		{[]string{"job", "add"}, "want ACTION"},
		{[]string{"job", "add", "a", "b"}, "want ACTION"},
		{[]string{"job", "add", "has space"}, "action"},
		{[]string{"job", "add", "a", "--payload", `{"a":`}, "not valid JSON"},
		{[]string{"job", "add", "a", "--payload", `not json`}, "not valid JSON"},
		{[]string{"job", "add", "a", "--payload", ""}, "empty"},
		{[]string{"job", "add", "a", "--payload", "@" + array}, "JSON object"},
		{[]string{"job", "add", "a", "--payload", "@" + big}, "limit"},
		{[]string{"job", "add", "a", "--payload", "@" + filepath.Join(dir, "missing.json")}, "missing.json"},
		{[]string{"job", "add", "a", "--priority", "1000"}, "priority 1000"},
		{[]string{"job", "add", "a", "--priority", "-1"}, "priority -1"},
		{[]string{"job", "add", "a", "--priority", "high"}, "priority"},
		{[]string{"job", "add", "a", "--timeout", "soon"}, "timeout"},
		{[]string{"job", "add", "a", "--timeout", "-5s"}, "negative timeout"},
		{[]string{"job", "add", "a", "--tag", ""}, "tag"},
		{[]string{"job", "add", "a", "--max-backlog", "-1"}, "--max-backlog"},
		{[]string{"job", "show", "job/123"}, `"job/123" is not a job id`},
		{[]string{"job", "show", "task/" + uuid}, "is not a job id"},
		{[]string{"job", "show", uuid + "x"}, "is not a job id"},
		{[]string{"job", "cancel", "nope"}, "is not a job id"},
		{[]string{"job", "wait", "nope"}, "is not a job id"},
		{[]string{"job", "wait", uuid, "--timeout", "-1s"}, "--timeout"},
		{[]string{"job", "logs", "nope"}, "is not a job id"},
		{[]string{"job", "list", "--state", "DONE"}, `unknown state "DONE"`},
		{[]string{"job", "list", "--limit", "-1"}, "--limit"},
		{[]string{"queue", "inspect", "--limit", "-2"}, "--limit"},
		{[]string{"queue", "stats", "now"}, "want no arguments"},
		{[]string{"--es-hosts", "ftp://localhost:9200", "job", "list"}, "--es-hosts"},
		{[]string{"--es-hosts", "localhost:9200", "--es-index-prefix", "Upper", "job", "list"}, "lowercase"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := e.run(tc.args...)
			first, _, _ := strings.Cut(errOut, "\n")
			if code != 2 || out != "" || !strings.HasPrefix(first, "jobengine: ") || !strings.Contains(first, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one error line naming %q", code, out, errOut, tc.want)
			}
		})
	}
	if e.exists("/") {
		children, _, _ := e.conn.Children(e.conn.Path("/"))
		t.Fatalf("bad input wrote under the root: %v", children)
	}
}

func TestZooKeeperUnreachable(t *testing.T) {
	ports, err := zkserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", ports[0])
	for _, args := range [][]string{
		{"job", "add", "a"},
		{"job", "list"},
		{"job", "wait", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"},
		{"queue", "stats"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			type result struct {
				out, errOut string
				code        int
			}
			done := make(chan result, 1)
			go func() {
				out, errOut, code := run(t, append([]string{"--zk-hosts", closed, "--zk-connect-timeout", "500ms"}, args...)...)
				done <- result{out, errOut, code}
			}()
			select {
			case r := <-done:
				if r.code != 1 || r.out != "" || !strings.Contains(r.errOut, closed) || !strings.Contains(r.errOut, "--zk-hosts") {
					t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and how to point at ZooKeeper", r.code, r.out, r.errOut)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the command hangs while ZooKeeper is unreachable")
			}
		})
	}
}

// TestLostZooKeeperEndsAWait stops the server a wait is watching through: the
// wait ends with exit 1 once ZooKeeper has been gone for the connect timeout.
func TestLostZooKeeperEndsAWait(t *testing.T) {
	zc := zktest.StartT(t, zkserver.Options{})
	root, hosts := testRoot(t), zc.ConnectString()
	out, errOut, code := run(t, "--zk-hosts", hosts, "--zk-root", root, "job", "add", "a")
	if code != 0 {
		t.Fatalf("job add: exit %d, %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	logFile := filepath.Join(t.TempDir(), "wait.log")
	done := make(chan [2]string, 1)
	go func() {
		_, errOut, code := run(t, "--zk-hosts", hosts, "--zk-root", root, "--zk-connect-timeout", "1s",
			"--log-level", "debug", "--log-file", logFile, "job", "wait", id)
		done <- [2]string{fmt.Sprint(code), errOut}
	}()
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "watching job document") {
			return fmt.Errorf("not watching yet")
		}
		return nil
	})
	if err := zc.Servers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r[0] != "1" || !strings.Contains(r[1], "lost the connection to ZooKeeper") || !strings.Contains(r[1], "--zk-hosts") {
			t.Fatalf("wait through a stopped ZooKeeper: exit %s, stderr %q", r[0], r[1])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("job wait hangs after ZooKeeper stopped")
	}
}

// TestHistoryFromElasticsearch checks that list, show, wait and logs merge
// the live jobs in ZooKeeper with the history in Elasticsearch, the live
// copy winning.
func TestHistoryFromElasticsearch(t *testing.T) {
	es := estest.Start(t, estest.Options{})
	const prefix = "t-history-"
	e := newJobEnv(t)
	e.extra = []string{"--es-hosts", es.URL(), "--es-index-prefix", prefix}
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := e.ctx()
	indexJobs := func(js ...*jobs.Job) {
		t.Helper()
		if _, err := ix.IndexJobs(ctx, js...); err != nil {
			t.Fatal(err)
		}
		if err := ix.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A live job: its creation is recorded in the outbox for the indexer,
	// and its indexed copy falls behind.
	live := e.add("a")
	liveUID := strings.TrimPrefix(live, "job/")
	if !e.exists("index/outbox/" + index.EntryName(liveUID, 1)) {
		t.Fatal("job add with --es-hosts wrote no outbox entry")
	}
	j, _, err := e.store.Get(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	indexJobs(j)
	e.advance(live, jobs.Running)

	// Two jobs that left ZooKeeper and live on in the history.
	old := func(st jobs.State, age time.Duration) *jobs.Job {
		id, _ := jobs.NewID()
		created := time.Now().UTC().Add(-age).Truncate(time.Millisecond)
		rc := 0
		if st == jobs.Failed {
			rc = 1
		}
		return &jobs.Job{ID: id, Action: "a", State: st, Priority: 100, Progress: 100, ReturnCode: &rc, StatusMessage: "was " + string(st),
			Created: created, Updated: created.Add(time.Minute), TimeOfStatusChange: created.Add(time.Minute), Attempt: 1, Version: 3}
	}
	succeeded, failed := old(jobs.Success, time.Hour), old(jobs.Failed, 2*time.Hour)
	indexJobs(succeeded, failed)
	t0 := succeeded.Created
	if _, err := ix.IndexEvents(ctx,
		index.Event{Job: succeeded.ID, Time: t0.Add(2 * time.Second), Type: index.EventLog, Level: "info", Message: "from the index"},
		index.Event{Job: succeeded.ID, Time: t0.Add(time.Second), Type: index.EventState, State: jobs.Running, Executor: "x1", Attempt: 1},
		index.Event{Job: live, Time: time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond), Type: index.EventLog, Level: "warn", Message: "indexed and in the tail"},
	); err != nil {
		t.Fatal(err)
	}
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	list := decode[[]map[string]any](t, e.ok("job", "list", "--json"))
	if len(list) != 3 || list[0]["id"] != live || list[0]["source"] != "zookeeper" || list[0]["state"] != "RUNNING" ||
		list[1]["id"] != succeeded.ID || list[1]["source"] != "elasticsearch" || list[2]["id"] != failed.ID {
		t.Fatalf("job list --json: want the live job from ZooKeeper, then the two from the history; got %v", list)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--state", "QUEUED", "--json")); len(l) != 0 {
		t.Fatalf("the stale indexed copy of a live job was listed: %v", l)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--state", "success", "--json")); len(l) != 1 || l[0]["id"] != succeeded.ID {
		t.Fatalf("job list --state success: %v", l)
	}
	if l := decode[[]map[string]any](t, e.ok("job", "list", "--limit", "2", "--json")); len(l) != 2 || l[1]["id"] != succeeded.ID {
		t.Fatalf("job list --limit 2: %v", l)
	}
	if table := e.ok("job", "list"); strings.Count(table, "elasticsearch") != 2 || strings.Count(table, "zookeeper") != 1 {
		t.Fatalf("job list table:\n%s", table)
	}
	if v := decode[map[string]any](t, e.ok("job", "show", succeeded.ID, "--json")); v["source"] != "elasticsearch" || v["state"] != "SUCCESS" {
		t.Fatalf("show of a job in the history: %v", v)
	}
	if v := decode[map[string]any](t, e.ok("job", "show", live, "--json")); v["source"] != "zookeeper" || v["state"] != "RUNNING" {
		t.Fatalf("show of a live job: %v", v)
	}

	if out, _, code := e.run("job", "wait", succeeded.ID); code != 0 || !strings.HasPrefix(out, succeeded.ID+" SUCCESS") {
		t.Fatalf("wait for a job in the history that succeeded: exit %d, %q", code, out)
	}
	if out, _, code := e.run("job", "wait", failed.ID); code != 1 || !strings.HasPrefix(out, failed.ID+" FAILED") {
		t.Fatalf("wait for a job in the history that failed: exit %d, %q", code, out)
	}

	want := t0.Add(time.Second).Format("2006-01-02T15:04:05.000Z07:00") + " INFO  state RUNNING (executor x1, attempt 1)\n" +
		t0.Add(2*time.Second).Format("2006-01-02T15:04:05.000Z07:00") + " INFO  from the index\n"
	if out := e.ok("job", "logs", succeeded.ID); out != want {
		t.Fatalf("logs from the job-events index:\n%s\nwant:\n%s", out, want)
	}
	// A line both indexed and in the ZooKeeper tail is printed once.
	evs, err := ix.JobEvents(ctx, live, time.Time{}, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events of the live job: %v, %v", evs, err)
	}
	if err := e.store.AppendLog(ctx, liveUID, []jobs.LogLine{{Time: evs[0].Time, Level: "warn", Message: "indexed and in the tail"},
		{Time: time.Now().UTC(), Level: "info", Message: "only in the tail"}}); err != nil {
		t.Fatal(err)
	}
	if out := e.ok("job", "logs", live); strings.Count(out, "indexed and in the tail") != 1 || !strings.HasSuffix(out, "only in the tail\n") {
		t.Fatalf("logs merged from the index and the tail:\n%s", out)
	}

	// The document is removed while a wait watches it (cleaned up after it
	// was indexed as final): the wait finds the final state in the history.
	logFile := filepath.Join(t.TempDir(), "wait.log")
	done := make(chan [2]string, 1)
	go func() {
		out, errOut, code := e.run("--log-level", "debug", "--log-file", logFile, "job", "wait", live, "--timeout", "60s")
		done <- [2]string{fmt.Sprint(code), out + errOut}
	}()
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "watching job document") {
			return fmt.Errorf("not watching yet")
		}
		return nil
	})
	e.advance(live, jobs.Success)
	j, ver, err := e.store.Get(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	indexJobs(j)
	if err := e.store.Delete(ctx, liveUID, ver); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r[0] != "0" || !strings.HasPrefix(r[1], live+" SUCCESS") {
			t.Fatalf("wait for a job removed after indexing: exit %s, output %q", r[0], r[1])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("job wait did not return")
	}

	// Elasticsearch down: live jobs are still listed, with a warning.
	es.Down()
	live2 := e.add("b")
	out, errOut, code := e.run("job", "list", "--json")
	if l := decode[[]map[string]any](t, out); code != 0 || len(l) != 1 || l[0]["id"] != live2 || !strings.Contains(errOut, "history left out") {
		t.Fatalf("job list with Elasticsearch down: exit %d, %v, stderr %q", code, l, errOut)
	}
	if _, errOut, code := e.run("job", "show", succeeded.ID); code != 1 || !strings.Contains(errOut, "history could not be read") {
		t.Fatalf("show of a job in the history with Elasticsearch down: exit %d, stderr %q", code, errOut)
	}
}
