package pluginhost_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/pluginhost"
)

const guide = "../../docs/writing-actions.md"

// fencedBlocks returns the code blocks of a markdown text fenced with the
// given info string.
func fencedBlocks(md, lang string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```"+lang:
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestWritingActionsGuide follows docs/writing-actions.md: it builds the
// guide's Go code in a new module with the guide's commands (the SDK
// replaced by this repository), installs the binary in a plugin directory
// and runs the guide's job through the host.
func TestWritingActionsGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	goBlocks := fencedBlocks(md, "go")
	if len(goBlocks) != 1 || !strings.HasPrefix(goBlocks[0], "package main\n") {
		t.Fatalf("want one Go block, main.go, in the guide; found %d", len(goBlocks))
	}
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.go"), []byte(goBlocks[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	pluginDir := t.TempDir()
	// Keep the caller's flags (CI's -modcacherw among them).
	goflags := func(f string) string { return "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" "+f) }

	// A module that requires this one loads the whole module graph,
	// including go.mod files of old dependencies that building this
	// repository never reads (it loads its graph lazily). Fetch them here,
	// through the configured module proxy and checked against go.sum, so
	// the guide's steps below can run offline on a fresh machine.
	graph := exec.Command("go", "list", "-m", "all")
	graph.Dir = repo
	graph.Env = append(os.Environ(), "GOWORK=off", goflags("-mod=readonly"))
	if out, err := graph.CombinedOutput(); err != nil {
		t.Fatalf("go list -m all (the module graph a plugin module loads): %v\n%s", err, out)
	}

	goCmd := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = work
		// Offline: every module the SDK needs is in the module cache, as
		// this package was built with them, and the module proxy must not
		// be asked about an unreleased github.com/jobengine/jobengine. The
		// checksums come from the repository's go.sum (copied below), not
		// from the checksum database: GOSUMDB points at a closed local
		// port, so a missing line fails here, as on a machine that cannot
		// reach the database, unless the module cache holds its tiles
		// from earlier downloads (CI's fresh module cache does not).
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOPROXY=off",
			"GOSUMDB=sum.golang.org http://127.0.0.1:1", goflags("-mod=mod"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var ran []string
	var installed, target, payload string
	jobAdd := regexp.MustCompile(`^jobengine job add (\S+) --target (\S+) --payload '([^']*)'$`)
	for _, block := range fencedBlocks(md, "sh") {
		for _, line := range strings.Split(block, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[0] == "go" && f[1] == "get":
				// The SDK comes from this repository, not a release.
				goCmd("mod", "edit", "-require=github.com/jobengine/jobengine@v0.0.0", "-replace=github.com/jobengine/jobengine="+repo)
				// The hashes a download would have verified: the
				// repository's go.sum holds one line for every module
				// the SDK can need.
				sums, err := os.ReadFile(filepath.Join(repo, "go.sum"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(work, "go.sum"), sums, 0o644); err != nil {
					t.Fatal(err)
				}
				goCmd(f[1:]...)
				ran = append(ran, "go get")
			case len(f) >= 2 && f[0] == "go":
				goCmd(f[1:]...)
				ran = append(ran, "go "+f[1])
			case len(f) >= 3 && f[0] == "sudo" && f[1] == "install":
				// sudo install -m 0755 hello /usr/libexec/jobengine/actions/hello
				src, dst := f[len(f)-2], f[len(f)-1]
				if filepath.Dir(dst) != pluginhost.DefaultDir {
					t.Fatalf("the guide installs into %s, not the default plugin directory", dst)
				}
				installed = filepath.Base(dst)
				install(t, filepath.Join(work, src), filepath.Join(pluginDir, installed))
			case jobAdd.MatchString(line):
				m := jobAdd.FindStringSubmatch(line)
				if m[1] != "hello" {
					t.Fatalf("the guide's job runs %q", m[1])
				}
				target, payload = m[2], m[3]
			}
		}
	}
	if !slices.Equal(ran, []string{"go mod", "go get", "go build"}) || installed == "" || target == "" {
		t.Fatalf("the guide's steps were not all found: ran %v, installed %q, job target %q", ran, installed, target)
	}

	h, _ := load(t, pluginhost.Options{Dir: pluginDir})
	if got := h.Plugins(); len(got) != 1 || got[0].Name != installed || got[0].Version != "0.1.0" {
		t.Fatalf("plugins = %+v, skipped %+v", got, h.Skipped())
	}
	j := job("hello", payload)
	j.Target = target
	rec := &recorder{}
	res, err := runner(t, h, "hello").Run(context.Background(), j, rec)
	if err != nil {
		t.Fatal(err)
	}
	// The guide tells what the job shows; check it does.
	got := rec.snapshot()
	for _, want := range []string{res.Message, got.logs[0][len("info: "):], target} {
		if !strings.Contains(md, want) {
			t.Errorf("the guide does not show %q", want)
		}
	}
	if res.Message != "Hello, Alice! (from user/alice)" || res.ReturnCode != 0 {
		t.Errorf("result = %+v", res)
	}
	if !slices.Equal(got.progress, []int{33, 66, 100}) || !slices.Equal(got.affected, []string{target}) {
		t.Errorf("reports = %+v", got)
	}
}
