package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/jobs"
)

// Files of a private data directory that only jobengine reads.
const (
	// jobFile describes the job (jobengine/job.json).
	jobFile = "jobengine/job.json"
	// credentialsFile carries the run's credentials (jobengine/credentials.json, 0600).
	credentialsFile = "jobengine/credentials.json"
)

// JobInfo is what a worker learns of the job it runs (jobengine/job.json).
type JobInfo struct {
	ID      string          `json:"id"`
	Action  string          `json:"action"`
	Payload json.RawMessage `json:"payload,omitempty"`
	// Timeout is the job's own timeout in seconds (0: the action's default).
	Timeout float64 `json:"timeout,omitempty"`
	Attempt int     `json:"attempt,omitempty"`
}

// CredentialResolver opens credentials by name (credential.Store).
type CredentialResolver interface {
	Resolve(ctx context.Context, names []string) ([]*credential.Credential, error)
}

// PrepareJob writes the private data directory of a job into dir and
// returns its kwargs. An ansible_playbook job gets its project's files
// (project/, without .git), its inventory (inventory/hosts), and its
// credentials (jobengine/credentials.json, opened with creds); every job
// gets jobengine/job.json.
func PrepareJob(ctx context.Context, j *jobs.Job, creds CredentialResolver, dir string) (Kwargs, error) {
	return PrepareJobFrom(ctx, j, creds, nil, dir)
}

// PrepareJobFrom is PrepareJob for a payload that names its project or
// inventory by source (a template launch's): src checks the project out
// into dir/project and reads the inventory snapshot.
func PrepareJobFrom(ctx context.Context, j *jobs.Job, creds CredentialResolver, src *ansible.Sources, dir string) (Kwargs, error) {
	k := Kwargs{Ident: j.UUID(), Timeout: int(j.Timeout)}
	info := JobInfo{ID: j.ID, Action: j.Action, Payload: j.Payload, Timeout: j.Timeout, Attempt: j.Attempt}
	if err := os.MkdirAll(filepath.Join(dir, "jobengine"), 0o700); err != nil {
		return k, err
	}
	if j.Action == "ansible_playbook" {
		p, err := ansible.ParsePayload(j.Payload)
		if err != nil {
			return k, err
		}
		if p.Project != nil || p.InventorySource != nil {
			if src == nil {
				src = &ansible.Sources{}
			}
			if _, err := src.Resolve(ctx, &p, dir); err != nil {
				return k, err
			}
		}
		if _, err := ansible.ResolvePlaybook(p.ProjectDir, p.Playbook); err != nil {
			return k, err
		}
		if abs, _ := filepath.Abs(filepath.Join(dir, "project")); p.ProjectDir != abs {
			if err := copyProject(p.ProjectDir, filepath.Join(dir, "project")); err != nil {
				return k, err
			}
		}
		if _, err := ansible.WriteInventory(dir, p.Inventory); err != nil {
			return k, err
		}
		if len(p.Credentials) > 0 {
			if creds == nil {
				return k, fmt.Errorf("%w: job %s names credentials %s; give the credential key (--credential-key-file) to transmit it",
					credential.ErrKey, j.ID, strings.Join(p.Credentials, ", "))
			}
			cs, err := creds.Resolve(ctx, p.Credentials)
			if err != nil {
				return k, err
			}
			ports := make([]credential.Portable, len(cs))
			for i, c := range cs {
				ports[i] = c.Portable()
			}
			data, _ := json.Marshal(ports)
			if err := os.WriteFile(filepath.Join(dir, credentialsFile), data, 0o600); err != nil {
				return k, err
			}
		}
		k.Playbook, k.Inventory = p.Playbook, "inventory/hosts"
		k.ExtraVars, k.Limit, k.Forks, k.Verbosity = p.ExtraVars, p.Limit, p.EffectiveForks(), p.Verbosity
		var cmd []string
		if p.Diff {
			cmd = append(cmd, "--diff")
		}
		if p.Check {
			cmd = append(cmd, "--check")
		}
		if p.Tags != "" {
			cmd = append(cmd, "--tags", p.Tags)
		}
		if p.SkipTags != "" {
			cmd = append(cmd, "--skip-tags", p.SkipTags)
		}
		k.Cmdline = strings.Join(cmd, " ")
		// The payload travels without its paths and secrets' names: the
		// worker takes them from the kwargs and the directory.
		info.Payload = nil
	}
	data, err := json.Marshal(info)
	if err != nil {
		return k, err
	}
	return k, os.WriteFile(filepath.Join(dir, jobFile), data, 0o600)
}

// copyProject copies a project's files, modes and symbolic links kept,
// without its .git directory.
func copyProject(src, dst string) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("project directory: %w", err)
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			return os.MkdirAll(target, mode.Perm()|0o700)
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case mode.IsRegular():
			in, err := os.Open(path)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil // pipes, sockets, devices: not project files
	})
}

// Transmit writes a transmit stream: the kwargs, an archive of dir (none
// when dir is empty) and the end marker.
func Transmit(w io.Writer, k Kwargs, dir string) error {
	sw := NewWriter(w)
	if err := sw.Kwargs(k); err != nil {
		return err
	}
	if dir != "" {
		if err := sw.Dir(dir); err != nil {
			return err
		}
	}
	return sw.EOF()
}
