package actions

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/project"
)

// Where project_update keeps projects on an executor.
const (
	// ProjectsDirEnv names the directory, one subdirectory per project.
	ProjectsDirEnv = "JOBENGINE_PROJECTS_DIR"
	// DefaultProjectsDir is used when ProjectsDirEnv is not set.
	DefaultProjectsDir = "/var/lib/jobengine/projects"
)

func init() {
	action.Register(action.Definition{
		Name: project.UpdateAction,
		Description: "fetches a git project (any branch, tag or commit) into the projects directory ($" + ProjectsDirEnv +
			"), or checks a directory project, and reports the revision",
		DefaultTimeout: 10 * time.Minute,
		Runner:         action.RunnerFunc(projectUpdate),
	})
}

// ProjectsDir returns the directory projects are kept in on this host:
// $JOBENGINE_PROJECTS_DIR, else DefaultProjectsDir.
func ProjectsDir() string {
	if d := os.Getenv(ProjectsDirEnv); d != "" {
		return d
	}
	return DefaultProjectsDir
}

func projectUpdate(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	var p project.UpdatePayload
	if err := configstore.DecodeStrict(j.Payload, &p); err != nil {
		return action.Result{}, fmt.Errorf("payload: %w", err)
	}
	if err := p.Validate(); err != nil {
		return action.Result{}, fmt.Errorf("payload: %w", err)
	}
	r.Affected("project/" + p.Project)
	if p.Kind == project.Directory {
		return checkDirectory(ctx, p.Directory, r)
	}
	dir := filepath.Join(ProjectsDir(), p.Project)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return action.Result{}, fmt.Errorf("projects directory: %w", err)
	}
	ref := p.Branch
	if ref == "" {
		ref = "HEAD"
	}
	// Runs of the project's playbooks check revisions out of the same
	// directory: one process fetches at a time.
	unlock, err := ansible.LockProjectCache(dir)
	if err != nil {
		return action.Result{}, fmt.Errorf("projects directory: %w", err)
	}
	defer unlock()
	// init + fetch + checkout of FETCH_HEAD works the same for a first
	// fetch and later ones, and for a branch, a tag or a commit.
	steps := [][]string{
		{"init", "--quiet", dir},
		{"-C", dir, "fetch", "--quiet", "--force", "--no-tags", "--", p.URL, ref},
		{"-C", dir, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"},
	}
	for i, args := range steps {
		if err := runGit(ctx, r, args...); err != nil {
			return action.Result{}, err
		}
		r.Progress((i + 1) * 100 / (len(steps) + 1))
	}
	rev, err := gitOutput(ctx, "-C", dir, "rev-parse", "HEAD")
	if err != nil {
		return action.Result{}, err
	}
	r.Log("info", fmt.Sprintf("project %s at %s (%s %s) in %s", p.Project, rev, p.URL, ref, dir))
	return action.Result{Message: project.RevisionMessage(rev)}, nil
}

// checkDirectory checks a directory project and reports its revision when
// it is a git work tree.
func checkDirectory(ctx context.Context, dir string, r action.Reporter) (action.Result, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return action.Result{}, fmt.Errorf("project directory: %w", err)
	}
	if !st.IsDir() {
		return action.Result{}, fmt.Errorf("project directory %s is not a directory", dir)
	}
	rev, err := gitOutput(ctx, "-C", dir, "rev-parse", "HEAD")
	if err != nil {
		r.Log("info", dir+" is not a git work tree: no revision")
		return action.Result{Message: "directory " + dir}, nil
	}
	return action.Result{Message: project.RevisionMessage(rev)}, nil
}

// gitEnv keeps git from ever waiting for a password: credentials come from
// the executor's SSH keys or credential helpers, never from a prompt.
func gitEnv() []string {
	return append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes", "GIT_ASKPASS=/bin/false")
}

// runGit runs git, logging what it prints, and fails with its last line.
func runGit(ctx context.Context, r action.Reporter, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			r.Log("info", "git: "+line)
			last = line
		}
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("git is not installed on this executor (on Debian: apt-get install git)")
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("git %s: %v: %s", gitVerb(args), err, last)
	}
	return nil
}

// gitVerb returns the git command of args ("fetch"), past "-C DIR".
func gitVerb(args []string) string {
	if len(args) > 2 && args[0] == "-C" {
		return args[2]
	}
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

func gitOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
