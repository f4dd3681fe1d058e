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

// A fenced block of a markdown text: its info string and its text.
type fenced struct {
	lang, text string
}

// fencedBlocks returns the fenced code blocks of a markdown text, in order.
func fencedBlocks(md string) []fenced {
	var blocks []fenced
	var cur []string
	lang, in := "", false
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```"):
			in, lang, cur = true, strings.TrimPrefix(trimmed, "```"), nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, fenced{lang, strings.Join(cur, "\n") + "\n"})
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestWritingActionsGuide follows docs/writing-actions.md as someone
// outside this repository would: in a scratch directory, it runs the
// guide's shell commands one by one against a copy of the SDK where the
// guide clones jobengine, writes the guide's main.go where the guide says,
// installs the binary in a plugin directory and runs the guide's job
// through the host. The Go commands run offline: no module proxy, and a
// checksum database at a closed port, so a step that works only with
// network fails here.
func TestWritingActionsGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	sdkDir, err := filepath.Abs("../../actions/sdk")
	if err != nil {
		t.Fatal(err)
	}
	// Keep the caller's flags (CI's -modcacherw among them).
	goflags := func(f string) string { return "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" "+f) }

	// Fill the module cache the way the guide says ("go mod download in
	// the SDK's directory" or a first tidy with network): through the
	// configured proxy, checked against the SDK's go.sum. This is what a
	// fresh machine (CI's empty module cache) downloads; tidy loads the
	// tests of the SDK's dependencies, as the plugin's tidy will.
	fill := exec.Command("go", "mod", "tidy", "-diff")
	fill.Dir = sdkDir
	fill.Env = append(os.Environ(), "GOWORK=off", goflags(""))
	if out, err := fill.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy -diff in actions/sdk (filling the module cache): %v\n%s", err, out)
	}

	home := t.TempDir() // outside the repository: no go.mod or go.work above it
	pluginDir := t.TempDir()
	var script []string
	var steps []string
	var installed, target, payload string
	sudoInstall := regexp.MustCompile(`^sudo install -m 0755 (\S+) (\S+)$`)
	jobAdd := regexp.MustCompile(`^jobengine job add (\S+) --target (\S+) --payload '([^']*)'$`)
	for _, block := range fencedBlocks(md) {
		switch block.lang {
		case "go":
			if len(steps) == 0 || !strings.HasPrefix(block.text, "package main\n") {
				t.Fatalf("the guide's Go block comes before its shell steps or is not package main")
			}
			// Saved as main.go in the directory the steps are in.
			script = append(script, "cat > main.go <<'GUIDE_EOF'\n"+block.text+"GUIDE_EOF")
			steps = append(steps, "main.go")
			continue
		case "sh":
		default:
			continue
		}
		for _, line := range strings.Split(block.text, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
			case strings.HasPrefix(line, "git clone https://github.com/jobengine/jobengine.git"):
				// The checkout: only the SDK's directory of this
				// repository, copied, which shows it is self-contained.
				if err := os.CopyFS(filepath.Join(home, "jobengine", "actions", "sdk"), os.DirFS(sdkDir)); err != nil {
					t.Fatal(err)
				}
				steps = append(steps, "git clone")
			case sudoInstall.MatchString(line):
				m := sudoInstall.FindStringSubmatch(line)
				if filepath.Dir(m[2]) != pluginhost.DefaultDir {
					t.Fatalf("the guide installs into %s, not the default plugin directory", m[2])
				}
				installed = filepath.Base(m[2])
				script = append(script, `install -m 0755 `+m[1]+` "$PLUGIN_DIR/`+installed+`"`)
				steps = append(steps, "install")
			case f[0] == "mkdir" || f[0] == "cp" || f[0] == "go":
				script = append(script, line)
				steps = append(steps, strings.Join(f[:min(len(f), 3)], " "))
			case jobAdd.MatchString(line):
				m := jobAdd.FindStringSubmatch(line)
				if m[1] != "hello" {
					t.Fatalf("the guide's job runs %q", m[1])
				}
				target, payload = m[2], m[3]
			}
		}
	}
	want := []string{
		"git clone", "mkdir hello-action &&", "go mod init", "go mod edit", "cp ../jobengine/actions/sdk/go.sum .",
		"main.go", "go mod tidy", "go build -trimpath", "install",
	}
	if !slices.Equal(steps, want) || target == "" {
		t.Fatalf("the guide's steps are not the expected ones:\n got %q\nwant %q\n(job target %q)", steps, want, target)
	}

	// One shell, so that cd carries over as it does for the reader.
	sh := exec.Command("sh", "-ex", "-c", strings.Join(script, "\n"))
	sh.Dir = home
	sh.Env = append(os.Environ(), "PLUGIN_DIR="+pluginDir, "GOWORK=off", "GOTOOLCHAIN=local",
		"GOPROXY=off", "GOSUMDB=sum.golang.org http://127.0.0.1:1",
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		goflags("-mod=mod"))
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the guide's steps failed: %v\n%s", err, out)
	}

	// The plugin requires what the SDK needs: nothing of the engine's.
	gomod, err := os.ReadFile(filepath.Join(home, "hello-action", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, engineOnly := range []string{"github.com/go-zookeeper/zk", "github.com/elastic/go-elasticsearch", "go.uber.org/zap", "github.com/urfave/cli", "github.com/stretchr/testify"} {
		if strings.Contains(string(gomod), engineOnly) {
			t.Errorf("the plugin's go.mod requires %s, which the SDK does not need:\n%s", engineOnly, gomod)
		}
	}
	if !strings.Contains(string(gomod), "github.com/hashicorp/go-plugin") {
		t.Errorf("the plugin's go.mod does not require go-plugin:\n%s", gomod)
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

	// Without a name the action returns sdk.ReturnCode(2) with an error:
	// the job fails with return code 2 and the error's text, as the guide
	// says.
	if !strings.Contains(md, "`sdk.ReturnCode(2), err` fails with return code 2") {
		t.Error("the guide no longer says what sdk.ReturnCode(2), err does")
	}
	res, err = runner(t, h, "hello").Run(context.Background(), job("hello", `{}`), &recorder{})
	if err != nil || res.ReturnCode != 2 || !strings.HasPrefix(res.Message, "the payload needs a name") {
		t.Errorf("without a name: result %+v, error %v; want return code 2 with the error's text", res, err)
	}
}
