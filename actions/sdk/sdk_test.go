package sdk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
)

func nop(context.Context, *Job) (Result, error) { return Result{}, nil }

func TestCheck(t *testing.T) {
	ok := Action{Name: "hello", Run: nop}
	for _, tc := range []struct {
		name string
		p    Plugin
		want string
	}{
		{"valid", Plugin{Version: "1.0.0", Actions: []Action{ok, {Name: "b", Run: nop, LostPolicy: Fail, MaxAttempts: 2, DefaultTimeout: time.Second}}}, ""},
		{"no version", Plugin{Actions: []Action{ok}}, "Version is empty"},
		{"no action", Plugin{Version: "1"}, "at least one action"},
		{"bad name", Plugin{Version: "1", Actions: []Action{{Name: "Hello World", Run: nop}}}, "must be 1-64 characters"},
		{"twice", Plugin{Version: "1", Actions: []Action{ok, ok}}, "listed twice"},
		{"no run", Plugin{Version: "1", Actions: []Action{{Name: "x"}}}, "no Run function"},
		{"negative timeout", Plugin{Version: "1", Actions: []Action{{Name: "x", Run: nop, DefaultTimeout: -1}}}, "negative"},
		{"negative attempts", Plugin{Version: "1", Actions: []Action{{Name: "x", Run: nop, MaxAttempts: -1}}}, "negative"},
		{"bad policy", Plugin{Version: "1", Actions: []Action{{Name: "x", Run: nop, LostPolicy: "retry"}}}, "sdk.Rerun or sdk.Fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// fieldsOf renders fields as "k=v" strings.
func fieldsOf(fs []*actionv1.Field) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.GetKey()+"="+f.GetValue())
	}
	return out
}

// Key/value pairs travel as fields, apart from the message.
func TestLogLine(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		kv   []any
		want []string
	}{
		{"plain", nil, nil},
		{"greeting", []any{"name", "world", "n", 3}, []string{"name=world", "n=3"}},
		{"spaces", []any{"who", "two words", "empty", ""}, []string{"who=two words", "empty="}},
		{"odd", []any{"key"}, []string{"key=(missing)"}},
		{"empty key", []any{"", 1}, []string{"_=1"}},
	} {
		msg, fields := logLine(tc.msg, tc.kv)
		if msg != tc.msg || !slices.Equal(fieldsOf(fields), tc.want) {
			t.Errorf("logLine(%q, %v) = %q, %q; want the message and %q", tc.msg, tc.kv, msg, fieldsOf(fields), tc.want)
		}
	}
}

// A line keeps within the protocol's limits whatever it is given.
func TestLogLineLimits(t *testing.T) {
	var kv []any
	for i := range 200 {
		kv = append(kv, strings.Repeat("k", 100)+strconv.Itoa(i), strings.Repeat("v", 2000))
	}
	msg, fields := logLine(strings.Repeat("m", actionv1.MaxLogBytes), kv)
	total := len(msg)
	for _, f := range fields {
		if k := len(f.GetKey()); k == 0 || k > actionv1.MaxFieldKeyBytes {
			t.Errorf("key of %d bytes", k)
		}
		total += len(f.GetKey()) + len(f.GetValue())
	}
	if len(fields) > actionv1.MaxLogFields || total > actionv1.MaxLogBytes {
		t.Errorf("%d fields, %d bytes; limits %d and %d", len(fields), total, actionv1.MaxLogFields, actionv1.MaxLogBytes)
	}
	if last := fields[len(fields)-1]; last.GetKey() != "dropped-fields" || last.GetValue() == "0" {
		t.Errorf("the dropped fields are not counted: last field %v", last)
	}
}

func TestValidText(t *testing.T) {
	long := strings.Repeat("é", actionv1.MaxStatusBytes) // 2 bytes each
	got := validText(long, actionv1.MaxStatusBytes)
	if len(got) > actionv1.MaxStatusBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncated to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if got := validText("a\xffb", 10); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 became %q", got)
	}
}

func TestDecode(t *testing.T) {
	var v struct{ Name string }
	v.Name = "default"
	j := &Job{ID: "job/1"}
	if err := j.Decode(&v); err != nil || v.Name != "default" {
		t.Errorf("empty payload: %v, %+v", err, v)
	}
	j.Payload = []byte(`{"Name": "x"}`)
	if err := j.Decode(&v); err != nil || v.Name != "x" {
		t.Errorf("payload: %v, %+v", err, v)
	}
	j.Payload = []byte(`{"Name": 3}`)
	if err := j.Decode(&v); err == nil || !strings.Contains(err.Error(), "payload of job job/1") {
		t.Errorf("bad payload: %v", err)
	}
}

// buildHello builds the plugin of testdata/hello.
func buildHello(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/hello")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestStartedByHandExplainsItself(t *testing.T) {
	var stderr bytes.Buffer
	cmd := exec.Command(buildHello(t))
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "This binary is a plugin") {
		t.Errorf("run by hand: %v, stderr %q", err, stderr.String())
	}
}

// A plugin exits by itself when its parent dies, even where the kernel does
// not kill it: here a shell started it (no parent-death signal) and is
// SIGKILLed.
func TestExitsWhenItsParentIsGone(t *testing.T) {
	hello := buildHello(t)
	sh := exec.Command("sh", "-c", `"$0" & echo "pid $!"; wait`, hello)
	sh.Env = append(os.Environ(), actionv1.CookieKey+"="+actionv1.CookieValue, "PLUGIN_PROTOCOL_VERSIONS=1")
	stdout, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sh.Process.Kill(); _ = sh.Wait() }()

	pid, handshake := 0, false
	sc := bufio.NewScanner(stdout)
	for (pid == 0 || !handshake) && sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "pid "); ok {
			pid, _ = strconv.Atoi(n)
		}
		handshake = handshake || strings.Contains(line, "|grpc")
	}
	if pid == 0 || !handshake {
		t.Fatalf("no plugin pid or handshake (pid %d)", pid)
	}
	go func() {
		for sc.Scan() { // keep the pipe drained
		}
	}()
	if !alive(pid) {
		t.Fatal("the plugin is not running")
	}
	if err := sh.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if alive(pid) {
			return fmt.Errorf("plugin %d still runs", pid)
		}
		return nil
	})
}

// alive reports whether pid is a running process; a zombie is not.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return !(i > 0 && i+2 < len(stat) && stat[i+2] == 'Z')
}

// waitFor polls fn until it returns nil, failing the test after wait
// (engine/internal/check is not importable from here).
func waitFor(t *testing.T, wait time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", wait, err)
		}
		<-tick.C
	}
}
