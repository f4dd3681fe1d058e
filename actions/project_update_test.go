package actions

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/project"
)

// recorder keeps what an action reports.
type recorder struct {
	mu       sync.Mutex
	logs     []string
	affected []string
}

func (r *recorder) Progress(int)  {}
func (r *recorder) Status(string) {}
func (r *recorder) Affected(h ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.affected = append(r.affected, h...)
}
func (r *recorder) Log(level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, level+" "+msg)
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func runUpdate(t *testing.T, p project.UpdatePayload) (action.Result, error) {
	t.Helper()
	payload, _ := json.Marshal(p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return projectUpdate(ctx, &action.Job{ID: "job/x", Action: project.UpdateAction, Payload: payload}, &recorder{})
}

func TestProjectUpdateFetchesARevision(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	git(t, repo, "init", "--quiet", "--initial-branch", "main")
	if err := os.WriteFile(filepath.Join(repo, "site.yml"), []byte("- hosts: all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	git(t, repo, "add", "site.yml")
	git(t, repo, "commit", "--quiet", "-m", "one")
	first := git(t, repo, "rev-parse", "HEAD")
	git(t, repo, "tag", "v1")
	git(t, repo, "commit", "--quiet", "--allow-empty", "-m", "two")
	second := git(t, repo, "rev-parse", "HEAD")

	t.Setenv(ProjectsDirEnv, t.TempDir())
	url := "file://" + repo
	for _, tc := range []struct{ branch, want string }{{"", second}, {"main", second}, {"v1", first}, {first, first}} {
		res, err := runUpdate(t, project.UpdatePayload{Project: "site", Kind: project.Git, URL: url, Branch: tc.branch})
		if err != nil {
			t.Fatalf("branch %q: %v", tc.branch, err)
		}
		if res.ReturnCode != 0 || res.Message != "revision "+tc.want {
			t.Fatalf("branch %q: %+v, want revision %s", tc.branch, res, tc.want)
		}
		if _, err := os.Stat(filepath.Join(os.Getenv(ProjectsDirEnv), "site", "site.yml")); err != nil {
			t.Fatalf("branch %q: the playbook is not in the cache: %v", tc.branch, err)
		}
	}
	if _, err := runUpdate(t, project.UpdatePayload{Project: "site", Kind: project.Git, URL: url, Branch: "nosuch"}); err == nil ||
		!strings.Contains(err.Error(), "git fetch") {
		t.Fatalf("a missing branch: %v", err)
	}
	if _, err := runUpdate(t, project.UpdatePayload{Project: "other", Kind: project.Git, URL: "file:///nonexistent/repo"}); err == nil {
		t.Fatal("a missing repository was fetched")
	}
	// A directory project: its revision when it is a work tree.
	if res, err := runUpdate(t, project.UpdatePayload{Project: "d", Kind: project.Directory, Directory: repo}); err != nil || res.Message != "revision "+second {
		t.Fatalf("directory project: %+v %v", res, err)
	}
	if res, err := runUpdate(t, project.UpdatePayload{Project: "d", Kind: project.Directory, Directory: t.TempDir()}); err != nil || !strings.HasPrefix(res.Message, "directory ") {
		t.Fatalf("plain directory: %+v %v", res, err)
	}
	if _, err := runUpdate(t, project.UpdatePayload{Project: "d", Kind: project.Directory, Directory: "/nonexistent/dir"}); err == nil {
		t.Fatal("a missing directory was accepted")
	}
	// A payload with a password in the URL is refused before git runs.
	if _, err := runUpdate(t, project.UpdatePayload{Project: "p", Kind: project.Git, URL: "https://u:pw@example.com/r.git"}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("password in the URL: %v", err)
	}
}
