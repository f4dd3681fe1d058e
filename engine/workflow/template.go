// Package workflow holds workflow templates — graphs of nodes, each a job
// template with launch values, another workflow template, or a project or
// inventory update, joined by
// success, failure and always edges — and runs them: Launcher creates a
// workflow job (a container of kind workflow carrying its graph), and
// Service, a leader-run service, launches the nodes whose parents ended
// with a matching edge, marks the others do-not-run, and ends the job
// when no node can run any more.
//
// A workflow job's state is never held in memory: it is derived from its
// graph and its node jobs (Evaluate), whose ids are deterministic
// (jobs.NodeJobID), so every step is create-if-absent and a leader that
// dies mid-step leaves nothing for its successor to lose or double. Open
// workflow jobs are indexed by an empty node /workflows/<uuid>, created
// with the job and removed by the write that makes it final.
package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrInvalid: bad input about a workflow template.
var ErrInvalid = configstore.Invalid("workflow")

// Template is a stored workflow template.
type Template struct {
	Name        string `json:"name" yaml:"name,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Nodes are the graph: a node without parents is a root, run first.
	Nodes   []jobs.WorkflowNode `json:"nodes" yaml:"nodes"`
	Created time.Time           `json:"created" yaml:"-"`
	Updated time.Time           `json:"updated" yaml:"-"`
}

// ObjectName implements configstore.Object.
func (t *Template) ObjectName() string { return t.Name }

// Validate implements configstore.Object: a valid name and description,
// and a valid graph (no cycle, no node naming its own workflow).
func (t *Template) Validate() error {
	if err := configstore.ValidName("workflow", t.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(t.Description); err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if n.TemplateSliceCount != 0 {
			return fmt.Errorf("%w: node %s: template-slice-count is recorded at launch, not set", ErrInvalid, n.ID)
		}
		if n.Workflow == t.Name {
			return fmt.Errorf("%w: %w: node %s launches workflow %s itself (a workflow cannot contain itself)", ErrInvalid, jobs.ErrCycle, n.ID, t.Name)
		}
	}
	if err := jobs.ValidateGraph(t.Nodes); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, t.Name, err)
	}
	return nil
}

// Store reads and writes workflow templates at /config/workflows/<name>.
// It reads, on the same connection, the projects and inventories that
// update nodes name.
type Store struct {
	objs        *configstore.Store
	projects    *project.Store
	inventories *inventory.Store
	now         func() time.Time
}

// NewStore returns the workflow template store on conn.
func NewStore(conn *zkconn.Conn, log *zap.Logger) *Store {
	return &Store{objs: configstore.New(conn, "workflows", log), projects: project.NewStore(conn, log),
		inventories: inventory.NewStore(conn, inventory.Config{Logger: log}), now: time.Now}
}

// Get reads a workflow template and its version.
func (s *Store) Get(ctx context.Context, name string) (*Template, int32, error) {
	var t Template
	ver, err := s.objs.Get(ctx, name, &t)
	if err != nil {
		return nil, 0, err
	}
	return &t, ver, nil
}

// List reads every workflow template; bad ones are returned as errors.
func (s *Store) List(ctx context.Context) ([]*Template, []error, error) {
	return configstore.List[Template](ctx, s.objs)
}

// Create stores a new workflow template. It does not check what the nodes
// name: see Check.
func (s *Store) Create(ctx context.Context, t *Template) error {
	now := s.now().UTC()
	t.Created, t.Updated = now, now
	return s.objs.Create(ctx, t)
}

// Update writes t over version ver.
func (s *Store) Update(ctx context.Context, t *Template, ver int32) error {
	t.Updated = s.now().UTC()
	return s.objs.Update(ctx, t, ver)
}

// Delete removes a workflow template. Workflow jobs already launched run
// on with the graph they were launched with.
func (s *Store) Delete(ctx context.Context, name string) error {
	return s.objs.Delete(ctx, name, -1)
}

// MaxDepth bounds the nesting of workflow templates in one another.
const MaxDepth = 10

// Check verifies what the nodes of t name, as a write or a launch needs:
// every job template exists and prompts for the values its node gives,
// every workflow template and project exists, every inventory exists and
// has a source, and no workflow contains t (directly or
// through nested workflow templates), nor nests deeper than MaxDepth. Its
// errors wrap ErrInvalid, with the node named.
func Check(ctx context.Context, t *Template, workflows *Store, templates *template.Store) error {
	return check(ctx, t, workflows, templates, []string{t.Name})
}

func check(ctx context.Context, t *Template, workflows *Store, templates *template.Store, path []string) error {
	if len(path) > MaxDepth {
		return fmt.Errorf("%w: workflows nest more than %d deep: %s", ErrInvalid, MaxDepth, strings.Join(path, " → "))
	}
	for _, n := range t.Nodes {
		if n.Template != "" {
			if _, err := nodeTemplate(ctx, templates, t.Name, n); err != nil {
				return err
			}
			continue
		}
		if n.Project != "" || n.Inventory != "" {
			if err := workflows.checkUpdate(ctx, t.Name, n); err != nil {
				return err
			}
			continue
		}
		if slices.Contains(path, n.Workflow) {
			return fmt.Errorf("%w: %w: workflow %s contains itself: %s → %s (node %s of %s)", ErrInvalid, jobs.ErrCycle, n.Workflow,
				strings.Join(path, " → "), n.Workflow, n.ID, t.Name)
		}
		sub, _, err := workflows.Get(ctx, n.Workflow)
		if errors.Is(err, configstore.ErrNotFound) {
			return fmt.Errorf("%w: node %s of %s: workflow %s does not exist (create it first with `jobengine workflow create`)", ErrInvalid, n.ID, t.Name, n.Workflow)
		}
		if err != nil {
			return fmt.Errorf("node %s of %s: %w", n.ID, t.Name, err)
		}
		if err := check(ctx, sub, workflows, templates, append(slices.Clone(path), n.Workflow)); err != nil {
			return err
		}
	}
	return nil
}

// nodeTemplate reads the job template of a node and checks the node's
// values against its prompts.
func nodeTemplate(ctx context.Context, templates *template.Store, workflow string, n jobs.WorkflowNode) (*template.Template, error) {
	tpl, _, err := templates.Get(ctx, n.Template)
	if errors.Is(err, configstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: node %s of %s: template %s does not exist (create it first with `jobengine template create`)", ErrInvalid, n.ID, workflow, n.Template)
	}
	if err != nil {
		return nil, fmt.Errorf("node %s of %s: %w", n.ID, workflow, err)
	}
	if _, err := tpl.Resolve(n.Values); err != nil {
		return nil, fmt.Errorf("%w: node %s of %s: %w", ErrInvalid, n.ID, workflow, err)
	}
	return tpl, nil
}

// checkUpdate verifies what an update node names: its project exists, or
// its inventory exists and has a source.
func (s *Store) checkUpdate(ctx context.Context, workflow string, n jobs.WorkflowNode) error {
	if n.Project != "" {
		_, _, err := s.projects.Get(ctx, n.Project)
		if errors.Is(err, configstore.ErrNotFound) {
			return fmt.Errorf("%w: node %s of %s: project %s does not exist (create it first with `jobengine project create`)", ErrInvalid, n.ID, workflow, n.Project)
		}
		if err != nil {
			return fmt.Errorf("node %s of %s: %w", n.ID, workflow, err)
		}
		return nil
	}
	inv, _, err := s.inventories.Get(ctx, n.Inventory)
	if errors.Is(err, configstore.ErrNotFound) {
		return fmt.Errorf("%w: node %s of %s: inventory %s does not exist (create it first with `jobengine inventory create`)", ErrInvalid, n.ID, workflow, n.Inventory)
	}
	if err != nil {
		return fmt.Errorf("node %s of %s: %w", n.ID, workflow, err)
	}
	if inv.Source == nil {
		return fmt.Errorf("%w: node %s of %s: inventory %s has no source to update from (set one with `jobengine inventory source set %s --project P --path FILE`)",
			ErrInvalid, n.ID, workflow, n.Inventory, n.Inventory)
	}
	return nil
}
