package command

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
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
		{[]string{"job", "list", "extra"}, "want no arguments"},
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
		{[]string{"job", "add", "a", "--timeout", "-5s"}, "--timeout -5s is negative"},
		{[]string{"job", "add", "a", "--tag", ""}, "tag"},
		{[]string{"job", "add", "a", "--max-backlog", "-1"}, "--max-backlog"},
		{[]string{"job", "add", "a", "--impact", "-1"}, "--impact -1"},
		{[]string{"job", "add", "a", "--group", "a/b"}, `--group "a/b"`},
		{[]string{"job", "add", "a", "--group", "edge", "--group", "edge"}, "twice"},
		{[]string{"job", "add", "a", "--concurrency-key", "two words"}, "--concurrency-key"},
		{[]string{"job", "add", "a", "--depends-on", "job/12"}, `--depends-on "job/12"`},
		{[]string{"job", "add", "a", "--fanout", "--concurrency-key", "k"}, "--fanout"},
		{[]string{"job", "add", "a", "--fanout", "--group", "a", "--group", "b"}, "--fanout"},
		{[]string{"job", "show", "job/123"}, `"job/123" is not a job id`},
		{[]string{"job", "show", "task/" + uuid}, "is not a job id"},
		{[]string{"job", "show", uuid + "x"}, "is not a job id"},
		{[]string{"job", "cancel", "nope"}, "is not a job id"},
		{[]string{"job", "wait", "nope"}, "is not a job id"},
		{[]string{"job", "wait", uuid, "--timeout", "-1s"}, "--timeout"},
		{[]string{"job", "logs", "nope"}, "is not a job id"},
		{[]string{"job", "list", "--state", "DONE"}, `--state "DONE" is not a job state`},
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

// A job with scheduling needs is created PENDING, in the pending index;
// `job show` prints its scheduling fields.
func TestJobAddPending(t *testing.T) {
	e := newJobEnv(t)
	first := e.add("a")
	id := e.add("a", "--concurrency-key", "template:deploy", "--group", "edge", "--group", "default",
		"--impact", "6", "--depends-on", first)
	j, _, err := e.store.Get(context.Background(), id)
	if err != nil || j.State != jobs.Pending || j.Impact != 6 || len(j.InstanceGroups) != 2 || j.DependsOn[0] != first {
		t.Fatalf("created %+v %v", j, err)
	}
	if n, _ := e.store.PendingCount(context.Background()); n != 1 {
		t.Fatalf("%d pending nodes, want 1", n)
	}
	out := e.ok("job", "show", id)
	for _, want := range []string{"PENDING", "concurrency-keys:", "template:deploy", "instance-groups:", "edge, default", "impact:", "depends-on:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("job show lacks %q:\n%s", want, out)
		}
	}
	_, errOut, code := e.run("job", "add", "a", "--depends-on", "0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f")
	if code != 2 || !strings.Contains(errOut, "no such live job") {
		t.Fatalf("dependency on a missing job: exit %d %q", code, errOut)
	}
}
