package actions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/credential"
)

// AnsiblePlaybookName is the name of the action that runs ansible-playbook.
const AnsiblePlaybookName = "ansible_playbook"

// AnsibleOptions configure the ansible_playbook action of a process.
type AnsibleOptions struct {
	// Binary is ansible-playbook's path (default: ansible.FindBinary).
	Binary string
	// WorkDir is where private data directories are made (default: the
	// system's temporary directory).
	WorkDir string
	// Credentials resolves the payload's credential names; without it a
	// payload that names credentials fails.
	Credentials CredentialResolver
	// Sources fetches what a payload names by reference (a project at a
	// revision, an inventory snapshot); without it, projects are fetched
	// into the projects directory ($JOBENGINE_PROJECTS_DIR) and payloads
	// naming an inventory snapshot fail.
	Sources *ansible.Sources
	// KillGrace is how long ansible-playbook may take to stop after an
	// interrupt before its process group is killed.
	KillGrace time.Duration
	// Logger receives the action's log.
	Logger *zap.Logger
}

// CredentialResolver returns the credentials of the given names, decrypted,
// for one run.
type CredentialResolver interface {
	Resolve(ctx context.Context, names []string) ([]*credential.Credential, error)
}

// ErrNoCredentials means a payload names credentials in a process that
// cannot decrypt them.
var ErrNoCredentials = errors.New("credentials are not available")

func init() {
	action.Register(AnsiblePlaybook(AnsibleOptions{}))
}

// AnsiblePlaybook returns the definition of the ansible_playbook action.
// The built-in one (registered at init) has no credential resolver; a
// process that holds the credential key replaces it with one that has
// (action.Registry.Replace).
func AnsiblePlaybook(opts AnsibleOptions) action.Definition {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return action.Definition{
		Name: AnsiblePlaybookName,
		Description: "runs ansible-playbook: payload {\"project-dir\" or \"project\", \"playbook\", \"inventory\" or \"inventory-source\", \"limit\", \"extra-vars\", " +
			"\"forks\", \"verbosity\", \"diff\", \"check\", \"credentials\"}; every play, task and host result is a job event",
		DefaultTimeout: time.Hour,
		// A playbook is not known to be safe to run twice: a lost run fails.
		LostPolicy: action.Fail,
		Runner:     &playbookRunner{opts: opts},
	}
}

type playbookRunner struct {
	opts AnsibleOptions
}

func (p *playbookRunner) Run(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	payload, err := ansible.ParsePayload(j.Payload)
	if err != nil {
		return action.Result{}, err
	}
	var creds []*credential.Credential
	if len(payload.Credentials) > 0 {
		if p.opts.Credentials == nil {
			return action.Result{}, fmt.Errorf("%w: the payload names %s, but this executor has no credential key (start it with --credential-key-file)",
				ErrNoCredentials, strings.Join(payload.Credentials, ", "))
		}
		creds, err = p.opts.Credentials.Resolve(ctx, payload.Credentials)
		if err != nil {
			return action.Result{}, err
		}
	}
	dir, err := os.MkdirTemp(p.opts.WorkDir, "jobengine-run-")
	if err != nil {
		return action.Result{}, fmt.Errorf("making a private data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if payload.Project != nil || payload.InventorySource != nil {
		src := p.opts.Sources
		if src == nil {
			src = &ansible.Sources{ProjectsDir: ProjectsDir()}
		}
		if payload.Project != nil {
			r.Status("checking out project " + payload.Project.Name)
		}
		rev, err := src.Resolve(ctx, &payload, dir)
		if err != nil {
			return action.Result{}, err
		}
		if rev != "" {
			r.Log("info", fmt.Sprintf("project %s at revision %s", payload.ProjectDir, rev))
		}
	}
	run := &ansible.Run{
		Dir: dir, Ident: strings.TrimPrefix(j.ID, "job/"), Payload: payload, Binary: p.opts.Binary,
		Credentials: creds, KillGrace: p.opts.KillGrace, Logger: p.opts.Logger.Named("ansible").With(zap.String("job", j.ID)),
		OnEvent: func(ev ansible.Event) {
			if ev.Event == ansible.EventPlayStart && ev.Data.Play != "" {
				r.Status("PLAY [" + ev.Data.Play + "]")
			}
			action.ReportEvent(r, ev.ActionEvent())
		},
	}
	out, err := run.Execute(ctx)
	if err != nil {
		return action.Result{}, err
	}
	if ctx.Err() != nil {
		// The executor reports cancel and timeout from the context's cause.
		return action.Result{Hosts: out.Hosts}, ctx.Err()
	}
	return action.Result{ReturnCode: out.RC, Message: out.Message(), Hosts: out.Hosts, Artifacts: out.Artifacts}, nil
}
