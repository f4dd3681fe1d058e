package inventory

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// MaxSourceCacheTimeout bounds how long an inventory update is reused (a
// week, as for projects).
const MaxSourceCacheTimeout = 7 * 24 * time.Hour

// MaxSourcePathBytes bounds the path of an inventory source in its project.
const MaxSourcePathBytes = 1024

var jobIDRe = regexp.MustCompile(`^job/[0-9a-f-]{36}$`)

// Source says where a static inventory's hosts come from when it is
// refreshed by an inventory update job (action inventory_update): a file
// of a project, either an executable script that prints Ansible's JSON
// inventory format when run with --list, or a file `ansible-inventory -i
// FILE --list` reads (YAML, INI, a directory of them).
type Source struct {
	// Project names the project the file is taken from.
	Project string `json:"project"`
	// Path is the file's path in the project: relative, clean, inside it.
	Path string `json:"path"`
	// UpdateOnLaunch asks for an update before a template's job over the
	// inventory runs, unless the last one succeeded within CacheTimeout
	// (seconds).
	UpdateOnLaunch bool    `json:"update-on-launch,omitempty"`
	CacheTimeout   float64 `json:"cache-timeout,omitempty"`
	// LastUpdateJob is the job of the last update asked for.
	LastUpdateJob string `json:"last-update-job,omitempty"`
}

// ValidSourcePath checks the path of an inventory source in its project:
// relative, clean, not leaving the project.
func ValidSourcePath(p string) error {
	if p == "" || len(p) > MaxSourcePathBytes || strings.ContainsAny(p, "\x00\n\r") {
		return fmt.Errorf("%w: source path %q: want a path of 1–%d bytes inside the project (such as inventory/hosts.yml)", ErrInvalid, p, MaxSourcePathBytes)
	}
	if path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") || strings.HasPrefix(p, "-") {
		return fmt.Errorf("%w: source path %q must be relative to the project, clean, and inside it (such as inventory/hosts.yml)", ErrInvalid, p)
	}
	return nil
}

// Validate checks a source.
func (s *Source) Validate() error {
	if err := configstore.ValidName("project", s.Project); err != nil {
		return err
	}
	if err := ValidSourcePath(s.Path); err != nil {
		return err
	}
	if s.CacheTimeout < 0 || s.CacheTimeout > MaxSourceCacheTimeout.Seconds() {
		return fmt.Errorf("%w: source cache timeout %gs is outside 0–%s", ErrInvalid, s.CacheTimeout, MaxSourceCacheTimeout)
	}
	if s.CacheTimeout > 0 && !s.UpdateOnLaunch {
		return fmt.Errorf("%w: a source's cache timeout goes with update on launch", ErrInvalid)
	}
	if s.LastUpdateJob != "" && !jobIDRe.MatchString(s.LastUpdateJob) {
		return fmt.Errorf("%w: source's last update job %q is not a job id", ErrInvalid, s.LastUpdateJob)
	}
	return nil
}

// SetSource sets (src) or removes (nil) the source of static inventory
// name. A source set again keeps its last update job.
func (s *Store) SetSource(ctx context.Context, name string, src *Source) (*Inventory, error) {
	for attempt := 0; ; attempt++ {
		inv, ver, err := s.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if inv.Kind != Static {
			return nil, fmt.Errorf("%w: inventory %s is %s; only a static inventory has a source", ErrInvalid, name, inv.Kind)
		}
		if src != nil {
			next := *src
			if inv.Source != nil && next.LastUpdateJob == "" {
				next.LastUpdateJob = inv.Source.LastUpdateJob
			}
			inv.Source = &next
		} else {
			inv.Source = nil
		}
		if err := inv.Validate(); err != nil {
			return nil, err
		}
		err = s.UpdateHead(ctx, inv, ver)
		if errors.Is(err, configstore.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return inv, nil
	}
}

// RecordUpdateOp returns the operation that records job id as the last
// update of inv's source (inv read at version ver), compare-and-set, for
// the transaction that creates the job.
func (s *Store) RecordUpdateOp(inv *Inventory, ver int32, id string) (*zk.SetDataRequest, error) {
	if inv.Source == nil {
		return nil, fmt.Errorf("%w: inventory %s has no source", ErrInvalid, inv.Name)
	}
	next := *inv
	src := *inv.Source
	src.LastUpdateJob = id
	next.Source = &src
	next.Updated = s.now()
	return s.heads.UpdateOp(&next, ver)
}

// SourceUsers returns the inventories whose source takes its file from
// project, sorted, and an operation per inventory read that checks it is
// still at the version read: a deletion of the project that carries them
// fails if a source was set meanwhile. A bad inventory head is read as
// not using the project.
func SourceUsers(ctx context.Context, conn *zkconn.Conn, project string) ([]string, []interface{}, error) {
	heads := configstore.New(conn, objectKind, zap.NewNop())
	names, err := heads.Names(ctx)
	if err != nil {
		return nil, nil, err
	}
	var users []string
	var checks []interface{}
	for _, n := range names {
		var inv Inventory
		ver, err := heads.Get(ctx, n, &inv)
		switch {
		case errors.Is(err, configstore.ErrNotFound), errors.Is(err, configstore.ErrCorrupt):
			continue
		case err != nil:
			return nil, nil, err
		}
		if inv.Source != nil && inv.Source.Project == project {
			users = append(users, n)
		}
		checks = append(checks, &zk.CheckVersionRequest{Path: heads.Path(n), Version: ver})
	}
	sort.Strings(users)
	return users, checks, nil
}
