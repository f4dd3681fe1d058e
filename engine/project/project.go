// Package project holds projects: where the playbooks and other files of
// jobs come from — a git repository (URL and branch) or a local directory.
// A project update is a job (action project_update) that fetches the
// project into a cache and records the revision.
package project

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of this package.
var (
	// ErrInvalid: bad input.
	ErrInvalid = configstore.Invalid("project")
)

// UpdateAction is the action of project update jobs.
const UpdateAction = "project_update"

// Kind says where a project's files come from.
type Kind string

// Kinds of projects.
const (
	Git       Kind = "git"
	Directory Kind = "directory"
)

// Limits.
const (
	MaxURLBytes  = 2048
	MaxPathBytes = 4096
	// MaxCacheTimeout bounds how long an update is reused (a week).
	MaxCacheTimeout = 7 * 24 * time.Hour
)

// Project is a stored project.
type Project struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Kind        Kind   `json:"kind"`
	// URL and Branch of a git project; an empty branch is the remote's
	// default.
	URL    string `json:"url,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Directory of a directory project: an absolute path on the executors.
	Directory string `json:"directory,omitempty"`
	// UpdateOnLaunch asks for an update before a job of the project runs,
	// unless the last one succeeded within CacheTimeout (seconds).
	UpdateOnLaunch bool    `json:"update-on-launch,omitempty"`
	CacheTimeout   float64 `json:"cache-timeout,omitempty"`
	// Revision is what the last update fetched; LastUpdateJob the job of
	// the last update asked for.
	Revision      string    `json:"revision,omitempty"`
	LastUpdateJob string    `json:"last-update-job,omitempty"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
}

// ObjectName implements configstore.Object.
func (p *Project) ObjectName() string { return p.Name }

var (
	scpLike  = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/\\].*$`)
	refRe    = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	revRe    = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	urlSchem = map[string]bool{"https": true, "http": true, "ssh": true, "git": true, "file": true}
)

// Validate implements configstore.Object.
func (p *Project) Validate() error {
	if err := configstore.ValidName("project", p.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(p.Description); err != nil {
		return err
	}
	switch p.Kind {
	case Git:
		if err := ValidURL(p.URL); err != nil {
			return err
		}
		if err := ValidBranch(p.Branch); err != nil {
			return err
		}
		if p.Directory != "" {
			return fmt.Errorf("%w: project %s is a git project: it has a URL, not a directory", ErrInvalid, p.Name)
		}
	case Directory:
		if err := ValidDirectory(p.Directory); err != nil {
			return err
		}
		if p.URL != "" || p.Branch != "" {
			return fmt.Errorf("%w: project %s is a directory: it has no URL or branch", ErrInvalid, p.Name)
		}
	default:
		return fmt.Errorf("%w: project %s has kind %q (want git or directory)", ErrInvalid, p.Name, p.Kind)
	}
	if p.CacheTimeout < 0 || p.CacheTimeout > MaxCacheTimeout.Seconds() {
		return fmt.Errorf("%w: cache timeout %gs is outside 0–%s", ErrInvalid, p.CacheTimeout, MaxCacheTimeout)
	}
	if p.Revision != "" && !revRe.MatchString(p.Revision) {
		return fmt.Errorf("%w: revision %q is not a commit hash", ErrInvalid, p.Revision)
	}
	if p.LastUpdateJob != "" {
		if _, _, err := jobs.ParseID(p.LastUpdateJob); err != nil {
			return err
		}
	}
	return nil
}

// ValidURL checks a git URL: https, http, ssh, git or file, or scp-like
// (user@host:path). Credentials in the URL are refused: they would end up
// in job documents and logs.
func ValidURL(s string) error {
	if s == "" {
		return fmt.Errorf("%w: a git project needs a URL (such as https://github.com/org/repo.git)", ErrInvalid)
	}
	if len(s) > MaxURLBytes || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("%w: URL %q: at most %d bytes, no blanks", ErrInvalid, s, MaxURLBytes)
	}
	if scpLike.MatchString(s) {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || !urlSchem[u.Scheme] {
		return fmt.Errorf("%w: URL %q: want https://, http://, ssh://, git://, file:// or user@host:path", ErrInvalid, s)
	}
	if _, hasPassword := u.User.Password(); hasPassword {
		return fmt.Errorf("%w: URL %q holds a password; credentials do not belong in a project's URL (use an SSH key or a credential helper on the executors)", ErrInvalid, u.Redacted())
	}
	if u.Scheme != "file" && u.Host == "" {
		return fmt.Errorf("%w: URL %q has no host", ErrInvalid, s)
	}
	if u.Scheme == "file" && !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("%w: URL %q: a file URL needs an absolute path", ErrInvalid, s)
	}
	return nil
}

// ValidBranch checks a branch, tag or commit name as git accepts it.
func ValidBranch(b string) error {
	if b == "" {
		return nil
	}
	if len(b) > 255 || !refRe.MatchString(b) || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") || strings.HasSuffix(b, ".lock") ||
		strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "/.") || strings.HasPrefix(b, ".") {
		return fmt.Errorf("%w: branch %q is not a valid git ref name", ErrInvalid, b)
	}
	return nil
}

// ValidDirectory checks a project directory: absolute and clean.
func ValidDirectory(d string) error {
	if d == "" || len(d) > MaxPathBytes || !filepath.IsAbs(d) || filepath.Clean(d) != d || strings.ContainsAny(d, "\x00\n\r") {
		return fmt.Errorf("%w: directory %q must be an absolute, clean path (such as /srv/playbooks)", ErrInvalid, d)
	}
	return nil
}

// Store reads and writes projects at /config/projects/<name>.
type Store struct {
	objs *configstore.Store
	now  func() time.Time
}

// NewStore returns the project store on conn.
func NewStore(conn *zkconn.Conn, log *zap.Logger) *Store {
	return &Store{objs: configstore.New(conn, "projects", log), now: time.Now}
}

// Objects returns the underlying object store.
func (s *Store) Objects() *configstore.Store { return s.objs }

// Get reads a project and its version.
func (s *Store) Get(ctx context.Context, name string) (*Project, int32, error) {
	var p Project
	ver, err := s.objs.Get(ctx, name, &p)
	if err != nil {
		return nil, 0, err
	}
	return &p, ver, nil
}

// List reads every project; bad ones are returned as errors.
func (s *Store) List(ctx context.Context) ([]*Project, []error, error) {
	return configstore.List[Project](ctx, s.objs)
}

// Create stores a new project.
func (s *Store) Create(ctx context.Context, p *Project) error {
	now := s.now().UTC()
	p.Created, p.Updated = now, now
	return s.objs.Create(ctx, p)
}

// Update writes p over version ver.
func (s *Store) Update(ctx context.Context, p *Project, ver int32) error {
	p.Updated = s.now().UTC()
	return s.objs.Update(ctx, p, ver)
}

// ErrInUse: the project is the source of an inventory.
var ErrInUse = errors.New("project in use")

// deleteAttempts bounds the tries of Delete while inventories change.
const deleteAttempts = 5

// Delete removes a project, unless an inventory's source takes its file
// from it. The deletion checks every inventory it read in the same
// transaction, so a source set meanwhile makes it look again.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := configstore.ValidName("project", name); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		users, checks, err := inventory.SourceUsers(ctx, s.objs.Conn(), name)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%w: project %s is the source of inventory %s (remove the source first: jobengine inventory source remove %s)",
				ErrInUse, name, strings.Join(users, ", "), users[0])
		}
		err = s.objs.Delete(ctx, name, -1, checks...)
		var oe *zkconn.OpError
		if errors.As(err, &oe) && oe.Index > 0 && attempt < deleteAttempts {
			continue // an inventory changed meanwhile
		}
		return err
	}
}

// UpdatePayload is the payload of a project update job: where to fetch
// from. It names no credential.
type UpdatePayload struct {
	Project   string `json:"project"`
	Kind      Kind   `json:"kind"`
	URL       string `json:"url,omitempty"`
	Branch    string `json:"branch,omitempty"`
	Directory string `json:"directory,omitempty"`
}

// Validate checks the payload as a project is checked.
func (u *UpdatePayload) Validate() error {
	p := Project{Name: u.Project, Kind: u.Kind, URL: u.URL, Branch: u.Branch, Directory: u.Directory}
	return p.Validate()
}

// UpdateJob returns the job that updates p, created by `by`. Its unique
// key allows one live update per project.
func UpdateJob(p *Project, by string) (jobs.NewJob, error) {
	payload, err := json.Marshal(UpdatePayload{Project: p.Name, Kind: p.Kind, URL: p.URL, Branch: p.Branch, Directory: p.Directory})
	if err != nil {
		return jobs.NewJob{}, err
	}
	id, _ := jobs.NewID()
	return jobs.NewJob{
		ID:        id,
		Action:    UpdateAction,
		Payload:   payload,
		UniqueKey: "project-update:" + p.Name,
		CreatedBy: by,
		Launch:    jobs.Launch{Kind: jobs.KindJob, LaunchType: jobs.LaunchManual},
	}, nil
}

// StartUpdate creates the update job of project name and records it on the
// project, in one transaction.
func (s *Store) StartUpdate(ctx context.Context, js *jobs.Store, name, by string) (*jobs.Job, error) {
	return s.StartUpdateWith(ctx, js, name, by, nil)
}

// StartUpdateWith is StartUpdate with set, when not nil, applied to the
// new job (a workflow gives it its node's id and parent), and extra
// operations (a leader's fence) joining the transaction after the
// project's.
func (s *Store) StartUpdateWith(ctx context.Context, js *jobs.Store, name, by string, set func(*jobs.NewJob), extra ...interface{}) (*jobs.Job, error) {
	for attempt := 0; ; attempt++ {
		p, ver, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		n, err := UpdateJob(p, by)
		if err != nil {
			return nil, err
		}
		if set != nil {
			set(&n)
		}
		p.LastUpdateJob = n.ID
		p.Updated = s.now().UTC()
		op, err := s.objs.UpdateOp(p, ver)
		if err != nil {
			return nil, err
		}
		created, err := js.CreateFenced(ctx, []jobs.NewJob{n}, append([]interface{}{op}, extra...)...)
		var oe *zkconn.OpError
		if errors.As(err, &oe) && oe.Index == 0 && attempt < 5 {
			continue // the project changed meanwhile: read it again
		}
		if err != nil {
			return nil, err
		}
		return created[0], nil
	}
}
