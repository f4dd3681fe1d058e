package command

import (
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPage checks that jobengine(1) is roff for section 1 and covers
// every visible command, every environment variable and the exit codes.
func TestManPage(t *testing.T) {
	page, errOut, code := run(t, "man")
	if code != 0 {
		t.Fatalf("man: exit %d\n%s", code, errOut)
	}
	if !strings.HasPrefix(page, ".nh\n.TH jobengine 1 ") {
		t.Errorf("man does not start with a section 1 title:\n%.200s", page)
	}
	app := NewApp(io.Discard, io.Discard)
	for _, c := range app.VisibleCommands() {
		if !strings.Contains(page, "\n.SH "+c.Name+"\n") && !strings.Contains(page, "\n.SH "+c.Name+", ") {
			t.Errorf("the manual page has no entry for the command %s", c.Name)
		}
	}
	for _, s := range []string{"EXIT STATUS", "ENVIRONMENT", "FILES", "SEE ALSO",
		"JOBENGINE_ZK_HOSTS", "JOBENGINE_ENABLE_TEST_ACTIONS", "/etc/sysconfig/jobengine-executor"} {
		if !strings.Contains(page, s) {
			t.Errorf("the manual page lacks %q", s)
		}
	}
	for _, hidden := range []string{"completion", "generate\\-bash\\-completion"} {
		if strings.Contains(page, hidden) {
			t.Errorf("the manual page shows the hidden %q", hidden)
		}
	}
}

// TestCompletionScripts checks what each shell gets and the usage errors;
// packaging/completion_test.go runs the scripts in the real shells.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -F _jobengine jobengine",
		"zsh":  "#compdef jobengine",
		"fish": "complete -c jobengine ",
	} {
		out, errOut, code := run(t, "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, script lacks %q\n%s%s", shell, code, want, out, errOut)
		}
	}
	for name, args := range map[string][]string{
		"no shell":      {"completion"},
		"unknown shell": {"completion", "tcsh"},
		"two shells":    {"completion", "bash", "zsh"},
		"man argument":  {"man", "executor"},
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := run(t, args...)
			if code != ExitUsage || out != "" || !strings.HasPrefix(errOut, "jobengine: ") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, one error line", args, code, out, errOut)
			}
		})
	}
	// Hidden: neither in the help nor among the candidates of completion
	// (which urfave/cli reads from os.Args: the real binary is asked).
	help, _, _ := run(t, "--help")
	out, err := exec.Command(filepath.Join(builtBinaries(t), "jobengine"), "--generate-bash-completion").Output()
	if err != nil {
		t.Fatalf("jobengine --generate-bash-completion: %v", err)
	}
	words := "\n" + string(out)
	for _, s := range []string{help, words} {
		if strings.Contains(s, "completion") || strings.Contains(s, "\n   man") || strings.Contains(s, "\nman\n") {
			t.Errorf("completion or man is visible:\n%s", s)
		}
	}
	if !strings.Contains(words, "\njob\n") {
		t.Errorf("--generate-bash-completion does not offer job:\n%s", words)
	}
}
