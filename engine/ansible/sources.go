package ansible

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// ProjectSource names a project's files by where they come from and at
// which revision, for a run to check them out itself: what a template
// launch puts in a payload instead of a directory of the launching host.
type ProjectSource struct {
	// Name is the project's name; a git project's local cache is named
	// after it.
	Name string `json:"name"`
	// Kind is "git" or "directory".
	Kind string `json:"kind"`
	// URL and Branch of a git project.
	URL    string `json:"url,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Directory of a directory project.
	Directory string `json:"directory,omitempty"`
	// Revision is the commit a git project's files are taken at; empty:
	// the head of Branch when the run starts, or the revision RevisionOf
	// fetched.
	Revision string `json:"revision,omitempty"`
	// RevisionOf names the project update job ("job/<uuid>") a launch
	// waited for: the run takes the commit that update fetched, not the
	// head of the branch when it starts (which may have moved since).
	RevisionOf string `json:"revision-of,omitempty"`
}

// InventorySource names the hosts of a run by the inventory snapshot its
// job pinned: the hosts the limit selects, or slice SliceNumber of
// SliceCount of them. The run reads the snapshot and writes the inventory
// file itself, so a job over 20,000 hosts carries a few bytes.
type InventorySource struct {
	Inventory   string `json:"inventory"`
	Snapshot    string `json:"snapshot,omitempty"`
	Limit       string `json:"limit,omitempty"`
	SliceNumber int    `json:"slice-number,omitempty"`
	SliceCount  int    `json:"slice-count,omitempty"`
	// Current, instead of Snapshot, reads the inventory's content when the
	// run starts: a launch that waits for an inventory update runs over
	// what the update imported.
	Current bool `json:"current,omitempty"`
}

var (
	sourceNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	commitRe     = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	gitRefRe     = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,255}$`)
)

func (s *ProjectSource) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: \"project\": "+format, append([]any{ErrPayload}, args...)...)
	}
	if !sourceNameRe.MatchString(s.Name) {
		return bad("name %q is not a project name", s.Name)
	}
	switch s.Kind {
	case "git":
		if err := project.ValidURL(s.URL); err != nil {
			return bad("%v", err)
		}
		if s.Branch != "" && (!gitRefRe.MatchString(s.Branch) || strings.HasPrefix(s.Branch, "-") || strings.Contains(s.Branch, "..")) {
			return bad("branch %q is not a git ref name", s.Branch)
		}
		if s.Revision != "" && !commitRe.MatchString(s.Revision) {
			return bad("revision %q is not a commit hash", s.Revision)
		}
		if s.RevisionOf != "" {
			if _, _, err := jobs.ParseID(s.RevisionOf); err != nil || s.Revision != "" {
				return bad("revision-of %q: want the id of a project update job, and no revision", s.RevisionOf)
			}
		}
	case "directory":
		if !filepath.IsAbs(s.Directory) || filepath.Clean(s.Directory) != s.Directory {
			return bad("directory %q must be an absolute, clean path", s.Directory)
		}
	default:
		return bad("kind %q (want git or directory)", s.Kind)
	}
	return nil
}

func (s *InventorySource) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: \"inventory-source\": "+format, append([]any{ErrPayload}, args...)...)
	}
	if !sourceNameRe.MatchString(s.Inventory) {
		return bad("%q is not an inventory name", s.Inventory)
	}
	if s.SliceCount < 0 || s.SliceNumber < 0 || s.SliceNumber > s.SliceCount || (s.SliceCount > 0) != (s.SliceNumber > 0) {
		return bad("slice %d of %d (want 1 ≤ number ≤ count, or neither)", s.SliceNumber, s.SliceCount)
	}
	if _, err := inventory.ParseLimit(s.Limit); err != nil {
		return bad("%v", err)
	}
	if s.Current && s.Snapshot != "" {
		return bad("a snapshot and current: the run reads one or the other")
	}
	return nil
}

// InventoryReader reads a pinned inventory snapshot (inventory.Store).
type InventoryReader interface {
	ReadGeneration(ctx context.Context, name, id string) (*inventory.Generation, *inventory.Content, error)
}

// CurrentInventoryReader reads an inventory's current content
// (inventory.Store), for a source that asks for it (InventorySource.Current).
type CurrentInventoryReader interface {
	Content(ctx context.Context, name string) (*inventory.Inventory, *inventory.Content, error)
}

// Sources fetches what a payload names by reference — a project's files
// at a revision and an inventory snapshot's hosts — so that a run sees a
// payload of a directory and an inventory, like any other.
type Sources struct {
	// Inventories reads inventory snapshots; without it a payload with an
	// inventory source fails.
	Inventories InventoryReader
	// ProjectsDir holds a git cache per project (the directory the
	// project_update action fetches into).
	ProjectsDir string
	// Revisions reads the revision a project update fetched, for a
	// project source with RevisionOf; without it such a source fails.
	Revisions UpdateRevisions
	// Logger receives what is fetched.
	Logger *zap.Logger
}

// UpdateRevisions reads the revision a project update job fetched
// (project.Revisions).
type UpdateRevisions interface {
	UpdateRevision(ctx context.Context, job string) (string, error)
}

// ErrSources means what a payload names could not be fetched.
var ErrSources = errors.New("fetching the run's project or inventory")

// Resolve replaces the payload's project and inventory sources with a
// directory of the project's files (dir/project, checked out at the
// revision) and the inventory's hosts, and returns the revision checked
// out ("" for a directory project). A payload without sources is left
// alone.
func (s *Sources) Resolve(ctx context.Context, p *Payload, dir string) (string, error) {
	rev := ""
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if src := p.Project; src != nil {
		var err error
		switch src.Kind {
		case "directory":
			p.ProjectDir = src.Directory
		default:
			if src.RevisionOf != "" {
				if s.Revisions == nil {
					return "", fmt.Errorf("%w: project %s: this process cannot read the revision %s fetched", ErrSources, src.Name, src.RevisionOf)
				}
				at, err := s.Revisions.UpdateRevision(ctx, src.RevisionOf)
				if err != nil {
					return "", fmt.Errorf("%w: project %s: %w", ErrSources, src.Name, err)
				}
				pinned := *src
				pinned.Revision, pinned.RevisionOf = at, ""
				src = &pinned
			}
			if rev, err = s.checkout(ctx, src, filepath.Join(dir, "project")); err != nil {
				return "", err
			}
			p.ProjectDir = filepath.Join(dir, "project")
		}
		p.Project = nil
	}
	if src := p.InventorySource; src != nil {
		data, err := s.inventory(ctx, src)
		if err != nil {
			return "", err
		}
		p.Inventory, p.InventorySource = data, nil
	}
	return rev, nil
}

// inventory returns the hosts of an inventory source in Ansible's JSON
// format, with their variables.
func (s *Sources) inventory(ctx context.Context, src *InventorySource) (json.RawMessage, error) {
	content := &inventory.Content{Hosts: []inventory.Host{}, Groups: []inventory.Group{}}
	if src.Current {
		cur, ok := s.Inventories.(CurrentInventoryReader)
		if !ok {
			return nil, fmt.Errorf("%w: inventory %s: this process cannot read inventories", ErrSources, src.Inventory)
		}
		var err error
		if _, content, err = cur.Content(ctx, src.Inventory); err != nil {
			return nil, fmt.Errorf("%w: inventory %s: %w", ErrSources, src.Inventory, err)
		}
	} else if src.Snapshot != "" {
		if s.Inventories == nil {
			return nil, fmt.Errorf("%w: inventory %s: this process cannot read inventories", ErrSources, src.Inventory)
		}
		var err error
		if _, content, err = s.Inventories.ReadGeneration(ctx, src.Inventory, src.Snapshot); err != nil {
			return nil, fmt.Errorf("%w: inventory %s: %w", ErrSources, src.Inventory, err)
		}
	}
	out, _, err := content.SliceOf(src.Limit, src.SliceNumber, src.SliceCount)
	if err != nil {
		return nil, fmt.Errorf("%w: inventory %s: %w", ErrSources, src.Inventory, err)
	}
	data, err := out.Ansible(inventory.ExportOptions{Hostvars: true})
	if err != nil {
		return nil, fmt.Errorf("%w: inventory %s: %w", ErrSources, src.Inventory, err)
	}
	return data, nil
}

// checkout writes the files of a git project at its revision into dst,
// without a .git directory, and returns the commit. The project's cache
// (ProjectsDir/<name>) is fetched into only when it lacks the revision,
// under an flock so that runs of one project on one host fetch one at a
// time; the files are read from it through an index of the run's own.
func (s *Sources) checkout(ctx context.Context, src *ProjectSource, dst string) (string, error) {
	if s.ProjectsDir == "" {
		return "", fmt.Errorf("%w: project %s: no projects directory", ErrSources, src.Name)
	}
	cache := filepath.Join(s.ProjectsDir, src.Name)
	if err := os.MkdirAll(cache, 0o750); err != nil {
		return "", fmt.Errorf("%w: project %s: %w", ErrSources, src.Name, err)
	}
	unlock, err := LockProjectCache(cache)
	if err != nil {
		return "", fmt.Errorf("%w: project %s: %w", ErrSources, src.Name, err)
	}
	rev, err := s.fetch(ctx, src, cache)
	unlock()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", err
	}
	index := dst + ".index"
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index}
	if _, err := git(ctx, env, "-C", cache, "read-tree", rev); err != nil {
		return "", fmt.Errorf("%w: project %s at %s: %w", ErrSources, src.Name, rev, err)
	}
	if _, err := git(ctx, env, "-C", cache, "checkout-index", "--all", "--force", "--prefix="+dst+"/"); err != nil {
		return "", fmt.Errorf("%w: project %s at %s: %w", ErrSources, src.Name, rev, err)
	}
	s.log().Info("project checked out", zap.String("project", src.Name), zap.String("revision", rev))
	return rev, nil
}

// fetch makes sure the cache holds the wanted commit and returns it.
func (s *Sources) fetch(ctx context.Context, src *ProjectSource, cache string) (string, error) {
	if _, err := os.Stat(filepath.Join(cache, ".git")); err != nil {
		if _, err := git(ctx, nil, "init", "--quiet", cache); err != nil {
			return "", fmt.Errorf("%w: project %s: %w", ErrSources, src.Name, err)
		}
	}
	if src.Revision != "" {
		if full, err := git(ctx, nil, "-C", cache, "rev-parse", "--verify", "--quiet", src.Revision+"^{commit}"); err == nil {
			return full, nil
		}
	}
	want := src.Revision
	if want == "" {
		want = src.Branch
	}
	if want == "" {
		want = "HEAD"
	}
	if _, err := git(ctx, nil, "-C", cache, "fetch", "--quiet", "--force", "--no-tags", "--", src.URL, want); err != nil {
		return "", fmt.Errorf("%w: project %s: fetching %s from %s: %w", ErrSources, src.Name, want, src.URL, err)
	}
	full, err := git(ctx, nil, "-C", cache, "rev-parse", "--verify", "FETCH_HEAD^{commit}")
	if err != nil {
		return "", fmt.Errorf("%w: project %s: %w", ErrSources, src.Name, err)
	}
	if src.Revision != "" && !strings.HasPrefix(full, src.Revision) {
		return "", fmt.Errorf("%w: project %s: fetched %s, want revision %s", ErrSources, src.Name, full, src.Revision)
	}
	return full, nil
}

// LockProjectCache takes the lock of a project's cache directory (an
// flock on <cache>.lock), so that the processes of one host that fetch
// into it — runs checking a revision out, project updates — do so one at
// a time. It returns the unlock.
func LockProjectCache(cache string) (func(), error) {
	lock, err := os.OpenFile(cache+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("locking %s: %w", cache, err)
	}
	return func() { lock.Close() }, nil
}

func (s *Sources) log() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

// git runs git without ever prompting, and returns its output trimmed; an
// error carries git's last line.
func git(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes", "GIT_ASKPASS=/bin/false")
	cmd.Env = append(cmd.Env, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", errors.New("git is not installed (on Debian: apt-get install git)")
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return "", fmt.Errorf("git %s: %v: %s", args[min(2, len(args)-1)], err, msg)
	}
	return strings.TrimSpace(string(out)), nil
}
