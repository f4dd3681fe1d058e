package ansible

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestSourcesCheckOutARevision: a project named by source is checked out
// at its revision — an older commit than its branch's head too — without
// its .git directory, into the run's directory; a revision the repository
// does not have is refused with what was asked.
func TestSourcesCheckOutARevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	gitT(t, repo, "init", "--quiet", "--initial-branch", "main")
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(repo, "site.yml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		gitT(t, repo, "add", "site.yml")
		gitT(t, repo, "commit", "--quiet", "-m", content)
	}
	write("first\n")
	first := gitT(t, repo, "rev-parse", "HEAD")
	write("second\n")
	second := gitT(t, repo, "rev-parse", "HEAD")

	s := &Sources{ProjectsDir: t.TempDir()}
	ctx := context.Background()
	for _, tc := range []struct{ rev, want, content string }{{first, first, "first\n"}, {"", second, "second\n"}, {first[:10], first, "first\n"}} {
		dir := t.TempDir()
		p := Payload{Project: &ProjectSource{Name: "site", Kind: "git", URL: "file://" + repo, Branch: "main", Revision: tc.rev}, Playbook: "site.yml"}
		rev, err := s.Resolve(ctx, &p, dir)
		if err != nil {
			t.Fatalf("revision %q: %v", tc.rev, err)
		}
		data, _ := os.ReadFile(filepath.Join(p.ProjectDir, "site.yml"))
		if rev != tc.want || p.Project != nil || p.ProjectDir != filepath.Join(dir, "project") || string(data) != tc.content {
			t.Fatalf("revision %q: got %s in %s holding %q", tc.rev, rev, p.ProjectDir, data)
		}
		if _, err := os.Stat(filepath.Join(p.ProjectDir, ".git")); err == nil {
			t.Fatal("the checkout has a .git directory")
		}
	}
	p := Payload{Project: &ProjectSource{Name: "site", Kind: "git", URL: "file://" + repo, Revision: strings.Repeat("ab", 20)}}
	if _, err := s.Resolve(ctx, &p, t.TempDir()); !errors.Is(err, ErrSources) || !strings.Contains(err.Error(), "abab") {
		t.Fatalf("unknown revision: %v", err)
	}
}
