package command

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

// installPythonPlugin installs the Python example plugin
// (actions/examples/python) into dir by running the install commands of
// docs/plugin-protocol.md from the repository, with dir for the default
// plugin directory and without sudo: the program as dir/hello-py and its
// stubs, generated from action.proto with Debian's protoc and
// grpc_python_plugin (scripts/deps.sh), in dir/hello-py.d.
func installPythonPlugin(t *testing.T, dir string) (target, payload string) {
	t.Helper()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(repo, "docs/plugin-protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, part := range strings.Split(string(doc), "```sh\n")[1:] {
		if text, _, ok := strings.Cut(part, "```"); ok && strings.Contains(text, "hello-py") {
			block = text
		}
	}
	jobAdd := regexp.MustCompile(`^jobengine job add hello-py --target (\S+) --payload '([^']*)'$`)
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "sudo systemctl "):
		case jobAdd.MatchString(line):
			m := jobAdd.FindStringSubmatch(line)
			target, payload = m[1], m[2]
		case strings.HasPrefix(line, "sudo "):
			line = strings.ReplaceAll(strings.TrimPrefix(line, "sudo "), pluginhost.DefaultDir, dir)
			cmd := exec.Command("sh", "-c", line)
			cmd.Dir = repo
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s\n(protoc and grpc_python_plugin come from protobuf-compiler and protobuf-compiler-grpc: make deps)", line, err, out)
			}
			ran++
		default:
			t.Fatalf("docs/plugin-protocol.md: unexpected install step %q", line)
		}
	}
	if ran != 3 || target == "" {
		t.Fatalf("docs/plugin-protocol.md: the install steps were not found (ran %d, job target %q)", ran, target)
	}
	return target, payload
}

// The real executor loads the Python example plugin and runs its jobs: the
// handshake, Describe, Run with its reports and a log line with fields,
// and an error with a return code.
func TestExecutorRunsPythonPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an executor and a Python plugin")
	}
	root := testRoot(t)
	s := testStore(t, root)
	plugins := t.TempDir()
	target, payload := installPythonPlugin(t, plugins)
	builtBinaries(t)
	x := startDaemon(t, root, "executor", "--name", "x", "--threads", "2", "--plugin-dir", plugins)

	ctx := context.Background()
	j, err := s.Create(ctx, jobs.NewJob{Action: "hello-py", Target: target, Payload: json.RawMessage(payload)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Success))
	if got.StatusMessage != "Hello, Alice! (from Python, user/alice)" || got.Progress != 100 ||
		len(got.AffectedResources) != 1 || got.AffectedResources[0].Href != "user/alice" {
		t.Errorf("hello-py job: %+v", got)
	}
	// The log line's fields are data in the job's log.
	lines, err := s.Logs(ctx, j.UUID())
	if err != nil {
		t.Fatal(err)
	}
	want := []action.Field{{Key: "name", Value: "Alice"}, {Key: "target", Value: "user/alice"}}
	if !slices.ContainsFunc(lines, func(l jobs.LogLine) bool { return l.Message == "greeting" && slices.Equal(l.Fields, want) }) {
		t.Errorf("the job's log has no line \"greeting\" with fields %v: %+v", want, lines)
	}
	// ... and fields of the executor's own log line.
	if !executorLoggedFields(x.out.String(), "greeting", map[string]string{"name": "Alice", "target": "user/alice"}) {
		t.Errorf("the executor's log has no line \"greeting\" with the plugin's fields:\n%s", x.out.String())
	}

	// No name: an error with return code 2.
	j, err = s.Create(ctx, jobs.NewJob{Action: "hello-py", Payload: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	got = waitJob(t, s, j.ID, 30*time.Second, inState(jobs.Failed))
	if got.ReturnCode == nil || *got.ReturnCode != 2 || !strings.HasPrefix(got.StatusMessage, "the payload needs a name") {
		t.Errorf("hello-py job without a name: %+v", got)
	}
}

// executorLoggedFields reports whether a JSON log line with message msg
// holds the given fields under "fields".
func executorLoggedFields(out, msg string, want map[string]string) bool {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string            `json:"msg"`
			Fields map[string]string `json:"fields"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != msg {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && l.Fields[k] == v
		}
		if ok {
			return true
		}
	}
	return false
}
