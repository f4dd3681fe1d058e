package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// completionCases are command lines being typed (the last word is the one
// completed) and candidates the shells must offer, or none.
var completionCases = []struct {
	line string
	want []string
}{
	{"jobengine jo", []string{"job"}},
	{"jobengine job l", []string{"list", "logs"}},
	{"jobengine job list --st", []string{"--state"}},
	{"jobengine executor --enable-t", []string{"--enable-test-actions"}},
	{"jobengine --zk-h", []string{"--zk-hosts"}},
	// Hidden commands are not offered.
	{"jobengine comp", nil},
}

// TestShellCompletion runs the scripts of `jobengine completion` (the
// files the packages install) in bash, zsh and fish, with the binary on
// PATH as jobengine.
func TestShellCompletion(t *testing.T) {
	bin, _ := binaries(t)
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "jobengine")); err != nil {
		t.Fatal(err)
	}
	script := func(shell, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(mustRun(t, time.Minute, bin, "completion", shell)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := []string{"PATH=" + dir + ":" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir, "LC_ALL=C.UTF-8"}
	shell := func(t *testing.T, name string) string {
		t.Helper()
		p, err := exec.LookPath(name)
		if err != nil {
			needRoot(t, "installing zsh and fish with scripts/deps.sh shells")
			mustRun(t, 10*time.Minute, filepath.Join(repoRoot, "scripts/deps.sh"), "shells")
			if p, err = exec.LookPath(name); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	check := func(t *testing.T, line, out string, want []string) {
		t.Helper()
		var got []string
		for _, l := range strings.Split(out, "\n") {
			// zsh's name:description, fish's name<TAB>description.
			if w, _, _ := strings.Cut(strings.Split(l, "\t")[0], ":"); w != "" {
				got = append(got, w)
			}
		}
		prefix := line[strings.LastIndex(line, " ")+1:]
		var offered []string
		for _, w := range got {
			if strings.HasPrefix(w, prefix) {
				offered = append(offered, w)
			}
		}
		for _, w := range want {
			if !slices.Contains(offered, w) {
				t.Errorf("%q: %s is not offered; offered %q", line, w, offered)
			}
		}
		if want == nil && len(offered) != 0 {
			t.Errorf("%q: offered %q, want nothing", line, offered)
		}
	}

	t.Run("bash", func(t *testing.T) {
		bash := shell(t, "bash")
		file := script("bash", "jobengine.bash")
		for _, c := range completionCases {
			// As bash fills them for a completion function.
			prog := `source "$1"; read -ra COMP_WORDS <<<"$2"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _jobengine; printf '%s\n' "${COMPREPLY[@]}"`
			out, errOut, code := run(t, time.Minute, env, bash, "--norc", "--noprofile", "-c", prog, "bash", file, c.line)
			if code != 0 {
				t.Fatalf("%q: exit %d\n%s", c.line, code, errOut)
			}
			check(t, c.line, out, c.want)
		}
	})

	t.Run("zsh", func(t *testing.T) {
		zsh := shell(t, "zsh")
		file := script("zsh", "_jobengine")
		// In $fpath, compinit finds the file by its #compdef line.
		fpath := filepath.Dir(file)
		out, errOut, _ := run(t, time.Minute, env, zsh, "-f", "-c", `fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- "$_comps[jobengine]"`, "zsh", fpath)
		if strings.TrimSpace(out) != "_jobengine" {
			t.Errorf("compinit does not bind jobengine to _jobengine: %q %s", out, errOut)
		}
		// Run the function with zsh's completion words, _describe and
		// _files (which need the completion widgets) printing instead.
		for _, c := range completionCases {
			prog := `compdef() { :; }; _describe() { print -rl -- "${(@P)2}"; }; _files() { :; }
source "$1"; words=(${=2}); CURRENT=${#words}; _jobengine`
			out, errOut, code := run(t, time.Minute, env, zsh, "-f", "-c", prog, "zsh", file, c.line)
			if code != 0 {
				t.Fatalf("%q: exit %d\n%s", c.line, code, errOut)
			}
			check(t, c.line, out, c.want)
		}
	})

	t.Run("fish", func(t *testing.T) {
		fish := shell(t, "fish")
		file := script("fish", "jobengine.fish")
		for _, c := range completionCases {
			out, errOut, code := run(t, time.Minute, env, fish, "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`, file, c.line)
			if code != 0 {
				t.Fatalf("%q: exit %d\n%s", c.line, code, errOut)
			}
			check(t, c.line, out, c.want)
		}
	})
}
