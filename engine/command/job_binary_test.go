package command

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkserver"
)

// bin runs the built jobengine binary against the test's root and returns
// what it wrote and its exit code.
func (e *jobEnv) bin(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	g := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "--zk-connect-timeout", "10s"}, e.extra...)
	return runBinary(e.t, nil, append(g, args...)...)
}

// TestUsageErrorsSayWhatToType: a value that does not parse is named with
// what to type instead, in the user's terms — never a Go type, "parse
// error" or the engine's "invalid job" — with exit code 2, whether the flag
// comes before or after the arguments, and nothing is written.
func TestUsageErrorsSayWhatToType(t *testing.T) {
	e := newJobEnv(t)
	for _, tc := range []struct {
		args []string
		want []string // in the error line
	}{
		{[]string{"job", "add", "a", "--payload", "[1,2]"}, []string{"--payload is a JSON array, not an object", `'{"key": "value"}'`}},
		{[]string{"job", "add", "a", "--payload", `"x"`}, []string{"--payload is a JSON string, not an object"}},
		{[]string{"job", "add", "a", "--payload", "{"}, []string{"--payload is not valid JSON", `'{"key": "value"}'`}},
		{[]string{"job", "add", "a", "--timeout", "5"}, []string{`--timeout "5" is not a duration`, "30s"}},
		{[]string{"job", "add", "--timeout", "5", "a"}, []string{`--timeout "5" is not a duration`, "30s"}},
		{[]string{"job", "add", "a", "--timeout", "-5s"}, []string{"--timeout -5s is negative", "0 for the action's default"}},
		{[]string{"job", "wait", "--timeout", "5", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"}, []string{`--timeout "5" is not a duration`}},
		{[]string{"--zk-connect-timeout", "5", "job", "list"}, []string{`--zk-connect-timeout "5" is not a duration`}},
		{[]string{"job", "list", "--state", "DONE"}, []string{`--state "DONE" is not a job state`, "PENDING, QUEUED, RUNNING, SUCCESS, FAILED or CANCELED"}},
		{[]string{"job", "list", "--state=done"}, []string{`--state "done" is not a job state`}},
		{[]string{"job", "add", "a", "--priority", "high"}, []string{`--priority "high" is not a whole number`}},
		{[]string{"job", "add", "--priority", "high", "a"}, []string{`--priority "high" is not a whole number`}},
		{[]string{"job", "add", "a", "--priority", "1000"}, []string{"--priority 1000 is out of range", "0–999"}},
		{[]string{"job", "add", "a/b"}, []string{`action "a/b" is not an action name`, "say_hello"}},
		{[]string{"job", "list", "--limit", "x"}, []string{`--limit "x" is not a whole number`}},
		{[]string{"job", "list", "--limit", "-1"}, []string{"--limit -1 is negative", "0 for no limit"}},
		{[]string{"job", "list", "--after", "yesterday"}, []string{`--after "yesterday" is not a cursor`}},
		{[]string{"job", "show", "nope"}, []string{`"nope" is not a job id`, "job/<uuid>"}},
		{[]string{"job", "show", "--json=maybe", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"}, []string{"--json=maybe is not true or false"}},
		{[]string{"job", "show", "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f", "--json=maybe"}, []string{"--json=maybe is not true or false"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := e.bin(tc.args...)
			first, _, _ := strings.Cut(errOut, "\n")
			if code != 2 || out != "" || !strings.HasPrefix(first, "jobengine: ") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and an error line", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(first, w) {
					t.Errorf("the error line does not say %q: %s", w, first)
				}
			}
			for _, leak := range []string{"Go value", "json.RawMessage", "parse error", "invalid job", "invalid value"} {
				if strings.Contains(first, leak) {
					t.Errorf("the error line leaks %q: %s", leak, first)
				}
			}
			if singleDash.MatchString(first) {
				t.Errorf("the error line names a flag with one dash, which is not how users type it: %s", first)
			}
		})
	}
	if e.exists("/") {
		children, _, _ := e.conn.Children(e.conn.Path("/"))
		t.Fatalf("bad input wrote under the root: %v", children)
	}
}

var singleDash = regexp.MustCompile(`(^|\s)-[a-z]`)

var afterFlag = regexp.MustCompile(`--after (\S+)\n$`)

// TestListSaysThereAreMore: 270 jobs, pages of 100. Each page but the last
// says that more match and what to type for the next one; following it
// lists every job once.
func TestListSaysThereAreMore(t *testing.T) {
	e := newJobEnv(t)
	ns := make([]jobs.NewJob, 270)
	for i := range ns {
		ns[i] = jobs.NewJob{Action: "a", Priority: 100}
	}
	if _, err := e.store.CreateMany(e.ctx(), ns); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var after []string
	for page, want := range []int{100, 100, 70} {
		out, errOut, code := e.bin(append([]string{"job", "list"}, after...)...)
		if code != 0 {
			t.Fatalf("page %d: exit %d, %s", page, code, errOut)
		}
		rows := strings.Split(strings.TrimSpace(out), "\n")[1:]
		if len(rows) != want {
			t.Fatalf("page %d: %d rows, want %d", page, len(rows), want)
		}
		for _, r := range rows {
			seen[strings.Fields(r)[0]]++
		}
		m := afterFlag.FindStringSubmatch(errOut)
		if want < 100 {
			if errOut != "" {
				t.Fatalf("the last page says %q", errOut)
			}
			break
		}
		if m == nil || !strings.Contains(errOut, "100 jobs shown, more match") {
			t.Fatalf("page %d of 3 does not say there are more and how to see them: stderr %q", page, errOut)
		}
		after = []string{"--after", m[1]}
	}
	if len(seen) != 270 {
		t.Fatalf("the pages listed %d distinct jobs, want 270", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s listed %d times", id, n)
		}
	}

	// --json: every job carries its cursor, which continues the listing.
	out, errOut, code := e.bin("job", "list", "--json", "--limit", "200")
	list := decode[[]map[string]any](t, out)
	if code != 0 || len(list) != 200 || !strings.Contains(errOut, "more match") {
		t.Fatalf("job list --json --limit 200: exit %d, %d jobs, stderr %q", code, len(list), errOut)
	}
	cursor, _ := list[199]["cursor"].(string)
	out, errOut, code = e.bin("job", "list", "--json", "--limit", "200", "--after", cursor)
	if rest := decode[[]map[string]any](t, out); code != 0 || len(rest) != 70 || errOut != "" || rest[0]["id"] == list[199]["id"] {
		t.Fatalf("job list --json --after the 200th's cursor: exit %d, %d jobs, stderr %q", code, len(rest), errOut)
	}
	if out, errOut, _ := e.bin("job", "list", "--limit", "0"); strings.Count(out, "\n") != 271 || errOut != "" {
		t.Fatalf("job list --limit 0: %d lines, stderr %q; want every job and no note", strings.Count(out, "\n"), errOut)
	}
}

// TestJSONOutputAndErrors: --json on add, cancel and logs, and errors as a
// JSON object on stderr when --json is given, with a kind to tell them apart.
func TestJSONOutputAndErrors(t *testing.T) {
	e := newJobEnv(t)
	out, errOut, code := e.bin("job", "add", "a", "--json", "--tag", "x")
	added := decode[map[string]any](t, out)
	id, _ := added["id"].(string)
	if code != 0 || !strings.HasPrefix(id, "job/") || added["state"] != "QUEUED" || added["source"] != "zookeeper" || added["created-by"] != "cli" {
		t.Fatalf("job add --json: exit %d, %v, stderr %q", code, added, errOut)
	}
	if _, _, err := e.store.Get(e.ctx(), id); err != nil {
		t.Fatalf("the printed job is not in the store: %v", err)
	}

	uid := strings.TrimPrefix(id, "job/")
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := e.store.AppendLog(e.ctx(), uid, []jobs.LogLine{{Time: at, Level: "info", Message: "one"}, {Time: at.Add(time.Second), Level: "warn", Message: "two\nlines"}}); err != nil {
		t.Fatal(err)
	}
	out, _, code = e.bin("job", "logs", id, "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("job logs --json: exit %d, %q; want one JSON object per line", code, out)
	}
	for i, want := range []jobs.LogLine{{Time: at, Level: "info", Message: "one"}, {Time: at.Add(time.Second), Level: "warn", Message: "two\nlines"}} {
		var l jobs.LogLine
		if err := json.Unmarshal([]byte(lines[i]), &l); err != nil || !l.Time.Equal(want.Time) || l.Level != want.Level || l.Message != want.Message {
			t.Fatalf("job logs --json line %d: %q (%v), want %+v", i, lines[i], err, want)
		}
	}

	out, _, code = e.bin("job", "cancel", "--json", id)
	if v := decode[map[string]any](t, out); code != 0 || v["id"] != id || v["state"] != "CANCELED" || v["cancel-requested"] != false {
		t.Fatalf("job cancel --json of a QUEUED job: exit %d, %v", code, v)
	}
	running := e.add("a")
	e.advance(running, jobs.Running)
	out, _, code = e.bin("job", "cancel", running, "--json")
	if v := decode[map[string]any](t, out); code != 0 || v["state"] != "RUNNING" || v["cancel-requested"] != true {
		t.Fatalf("job cancel --json of a RUNNING job: exit %d, %v", code, v)
	}
	failed := e.add("a")
	e.advance(failed, jobs.Running, jobs.Failed)

	ports, err := zkserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	unknown := "job/0b6f8c5e-3d2a-4c1b-9e8f-7a6b5c4d3e2f"
	for _, tc := range []struct {
		args    []string
		code    int
		kind    string
		message string
		stdout  bool // the command prints its result before failing
	}{
		{[]string{"job", "show", unknown, "--json"}, 1, "not-found", "no such job: " + unknown, false},
		{[]string{"job", "list", "--state", "DONE", "--json"}, 2, "usage", `--state "DONE" is not a job state`, false},
		{[]string{"job", "add", "--json", "--priority", "high", "a"}, 2, "usage", `--priority "high" is not a whole number`, false},
		{[]string{"job", "add", "a", "--payload", "[1]", "--json"}, 2, "usage", "--payload is a JSON array", false},
		{[]string{"job", "logs", "--json", "nope"}, 2, "usage", `"nope" is not a job id`, false},
		{[]string{"job", "cancel", id, "--json"}, 1, "refused", "already CANCELED", false},
		{[]string{"job", "wait", failed, "--json"}, 1, "job-failed", failed + " ended FAILED", true},
		{[]string{"job", "wait", running, "--json", "--timeout", "200ms"}, 3, "timeout", "timed out after 200ms", false},
		{[]string{"--zk-hosts", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--zk-connect-timeout", "300ms", "job", "list", "--json"}, 1, "unavailable", "--zk-hosts", false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := e.bin(tc.args...)
			var v struct {
				Error    string `json:"error"`
				Kind     string `json:"kind"`
				ExitCode int    `json:"exit-code"`
			}
			dec := json.NewDecoder(strings.NewReader(errOut))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&v); err != nil || dec.More() {
				t.Fatalf("stderr is not one JSON error object (%v): %q", err, errOut)
			}
			if code != tc.code || v.ExitCode != tc.code || v.Kind != tc.kind || !strings.Contains(v.Error, tc.message) || (out != "") != tc.stdout {
				t.Fatalf("exit %d, stdout %q, error %+v; want exit %d, kind %q, an error naming %q", code, out, v, tc.code, tc.kind, tc.message)
			}
		})
	}
}
