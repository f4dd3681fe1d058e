package actions

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
)

// InventoryImporter replaces an inventory's hosts and groups
// (inventory.Store).
type InventoryImporter interface {
	Import(ctx context.Context, name string, c *inventory.Content) (*inventory.Inventory, bool, error)
}

// InventoryUpdateOptions configure the inventory_update action of a
// process.
type InventoryUpdateOptions struct {
	// Inventories imports the result; without it the action fails.
	Inventories InventoryImporter
	// Sources checks projects out (default: the projects directory of
	// this host).
	Sources *ansible.Sources
	// AnsibleInventory is ansible-inventory's path (default: found on
	// PATH).
	AnsibleInventory string
	// WorkDir is where checkouts are made (default: the system's
	// temporary directory).
	WorkDir string
	Logger  *zap.Logger
}

func init() {
	action.Register(InventoryUpdate(InventoryUpdateOptions{}))
}

// InventoryUpdate returns the definition of the inventory_update action.
// The built-in one (registered at init) cannot write inventories; an
// executor replaces it with one that can (action.Registry.Replace).
func InventoryUpdate(opts InventoryUpdateOptions) action.Definition {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return action.Definition{
		Name: invsource.UpdateAction,
		Description: "refreshes an inventory from a file of a project: runs it (an executable script, with --list) or " +
			"`ansible-inventory -i FILE --list`, and imports the hosts and groups as a new snapshot",
		DefaultTimeout: 10 * time.Minute,
		Runner:         &inventoryUpdater{opts: opts},
	}
}

type inventoryUpdater struct{ opts InventoryUpdateOptions }

func (u *inventoryUpdater) Run(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	var p invsource.Payload
	if err := configstore.DecodeStrict(j.Payload, &p); err != nil {
		return action.Result{}, fmt.Errorf("payload: %w", err)
	}
	if err := p.Validate(); err != nil {
		return action.Result{}, fmt.Errorf("payload: %w", err)
	}
	if u.opts.Inventories == nil {
		return action.Result{}, fmt.Errorf("inventory %s: this process cannot write inventories (run the job on an executor)", p.Inventory)
	}
	r.Affected("inventory/"+p.Inventory, "project/"+p.Project.Project)
	dir, err := os.MkdirTemp(u.opts.WorkDir, "jobengine-inventory-")
	if err != nil {
		return action.Result{}, fmt.Errorf("making a work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	src := u.opts.Sources
	if src == nil {
		src = &ansible.Sources{ProjectsDir: ProjectsDir()}
	}
	r.Status("checking out project " + p.Project.Project)
	pl := ansible.Payload{Project: &ansible.ProjectSource{Name: p.Project.Project, Kind: string(p.Project.Kind),
		URL: p.Project.URL, Branch: p.Project.Branch, Directory: p.Project.Directory}}
	rev, err := src.Resolve(ctx, &pl, dir)
	if err != nil {
		return action.Result{}, err
	}
	if rev != "" {
		r.Log("info", fmt.Sprintf("project %s at revision %s", p.Project.Project, rev))
	}
	r.Progress(30)
	file, err := sourceFile(pl.ProjectDir, p.Path)
	if err != nil {
		return action.Result{}, err
	}
	out, err := u.list(ctx, dir, pl.ProjectDir, file, r)
	if err != nil {
		return action.Result{}, err
	}
	r.Progress(70)
	content, err := inventory.ParseAnsible(out)
	if err != nil {
		return action.Result{}, fmt.Errorf("source %s of project %s printed an inventory that cannot be imported: %w", p.Path, p.Project.Project, err)
	}
	r.Status("importing into inventory " + p.Inventory)
	inv, _, err := u.opts.Inventories.Import(ctx, p.Inventory, content)
	if err != nil {
		return action.Result{}, fmt.Errorf("importing into inventory %s: %w", p.Inventory, err)
	}
	msg := fmt.Sprintf("inventory %s: %d hosts, %d groups", p.Inventory, len(content.Hosts), len(content.Groups))
	if inv.Snapshot != nil {
		msg += " (snapshot " + inv.Snapshot.ID + ")"
	}
	r.Log("info", msg)
	u.opts.Logger.Info("inventory updated", zap.String("job", j.ID), zap.String("inventory", p.Inventory),
		zap.Int("hosts", len(content.Hosts)), zap.String("revision", rev))
	return action.Result{Message: msg}, nil
}

// sourceFile returns the source's file in the project directory, refusing
// one that is missing or leads out of the project through a link.
func sourceFile(projectDir, rel string) (string, error) {
	root, err := filepath.EvalSymlinks(projectDir)
	if err != nil {
		return "", fmt.Errorf("project directory: %w", err)
	}
	file, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "", fmt.Errorf("source %s is not in the project: %w", rel, err)
	}
	if file != root && !strings.HasPrefix(file, root+string(filepath.Separator)) {
		return "", fmt.Errorf("source %s leads out of the project (to %s)", rel, file)
	}
	return file, nil
}

// list prints the inventory of file in Ansible's JSON format: an
// executable regular file is a script run with --list; anything else is
// read by ansible-inventory.
func (u *inventoryUpdater) list(ctx context.Context, work, projectDir, file string, r action.Reporter) ([]byte, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		r.Status("running inventory script " + filepath.Base(file))
		cmd = exec.CommandContext(ctx, file, "--list")
	} else {
		bin := u.opts.AnsibleInventory
		if bin == "" {
			if bin, err = exec.LookPath("ansible-inventory"); err != nil {
				return nil, fmt.Errorf("%w: ansible-inventory is not installed on this executor; install Debian's ansible-core package (apt-get install ansible-core)", ansible.ErrNotInstalled)
			}
		}
		r.Status("running ansible-inventory on " + filepath.Base(file))
		cmd = exec.CommandContext(ctx, bin, "-i", file, "--list")
	}
	tmp := filepath.Join(work, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	cmd.Dir = projectDir
	// A source that cannot be parsed fails the update instead of
	// importing an empty inventory; Ansible's temporary files stay in the
	// work directory.
	cmd.Env = append(os.Environ(), "ANSIBLE_INVENTORY_UNPARSED_FAILED=True", "ANSIBLE_LOCAL_TEMP="+tmp,
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=True")
	var stdout bytes.Buffer
	var stderr tailBuffer
	cmd.Stdout = &limitWriter{w: &stdout, n: inventory.MaxImportBytes}
	cmd.Stderr = &stderr
	err = cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			r.Log("info", line)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(cmd.Path), err, lastLine(stderr.String()))
	}
	if lw := cmd.Stdout.(*limitWriter); lw.over {
		return nil, fmt.Errorf("%s printed more than %d bytes", filepath.Base(cmd.Path), inventory.MaxImportBytes)
	}
	return stdout.Bytes(), nil
}

// limitWriter keeps the first n bytes and notes that more came.
type limitWriter struct {
	w    io.Writer
	n    int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		l.over = true
		if l.n > 0 {
			_, _ = l.w.Write(p[:l.n])
		}
		l.n = 0
		return len(p), nil
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const max = 64 << 10
	t.b = append(t.b, p...)
	if len(t.b) > max {
		t.b = t.b[len(t.b)-max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
