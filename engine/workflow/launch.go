package workflow

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrCannotRelaunch: a workflow job cannot be relaunched (a node's template
// is gone, a sliced node's slice count changed).
var ErrCannotRelaunch = template.ErrCannotRelaunch

// Action is the action name of workflow jobs: they run nothing.
const Action = "workflow"

// IndexDir is the directory of the index of open workflow jobs, under the
// connection's root: one empty node per workflow job not yet final.
const IndexDir = jobs.WorkflowIndexDir

// Launcher creates workflow jobs.
type Launcher struct {
	Jobs      *jobs.Store
	Workflows *Store
	Templates *template.Store
	Logger    *zap.Logger
}

// Request asks for the launch of a workflow template.
type Request struct {
	Workflow string
	// LaunchType defaults to manual.
	LaunchType jobs.LaunchType
	CreatedBy  string
	// ID, when set, is the workflow job's id (create-if-absent:
	// jobs.ErrDuplicate when it exists).
	ID string
	// ParentJob and WorkflowNode place the launch in an outer workflow.
	ParentJob, WorkflowNode string
	// Tick is the schedule occurrence that launches it.
	Tick string
	// Extra operations join the creating transaction (a leader's fence).
	Extra []interface{}
}

func (l *Launcher) log() *zap.Logger {
	if l.Logger == nil {
		return zap.NewNop()
	}
	return l.Logger
}

// IndexPath returns the index node of an open workflow job.
func IndexPath(conn *zkconn.Conn, uid string) string { return conn.Path(IndexDir, uid) }

// Launch checks the workflow template (Check) and creates its workflow
// job: a container PENDING, carrying the graph with each template node's
// slice count, its node jobs' ids listed in node order, and its node in
// the index of open workflows. The workflow service runs it from there.
func (l *Launcher) Launch(ctx context.Context, req Request) (*jobs.Job, error) {
	t, _, err := l.Workflows.Get(ctx, req.Workflow)
	if err != nil {
		return nil, err
	}
	if err := Check(ctx, t, l.Workflows, l.Templates); err != nil {
		return nil, err
	}
	nodes := slices.Clone(t.Nodes)
	for i, n := range nodes {
		if n.Template == "" {
			continue
		}
		tpl, _, err := l.Templates.Get(ctx, n.Template)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
		nodes[i].TemplateSliceCount = tpl.SliceCount
	}
	return l.create(ctx, t.Name, nodes, req, "")
}

// create writes a workflow job running nodes.
func (l *Launcher) create(ctx context.Context, name string, nodes []jobs.WorkflowNode, req Request, relaunchOf string) (*jobs.Job, error) {
	if req.LaunchType == "" {
		req.LaunchType = jobs.LaunchManual
	}
	id := req.ID
	if id == "" {
		id, _ = jobs.NewID()
	}
	id, uid, err := jobs.ParseID(id)
	if err != nil {
		return nil, err
	}
	n := jobs.NewJob{
		ID: id, Action: Action, Priority: queue.DefaultPriority, CreatedBy: req.CreatedBy, ParentJob: req.ParentJob, Tick: req.Tick,
		Launch: jobs.Launch{
			Kind: jobs.KindWorkflow, LaunchType: req.LaunchType, WorkflowTemplate: name, WorkflowNode: req.WorkflowNode,
			Workflow: &jobs.Workflow{Nodes: nodes}, RelaunchOf: relaunchOf,
		},
	}
	for _, nd := range nodes {
		n.NestedJobs = append(n.NestedJobs, jobs.NodeJobID(id, nd.ID))
	}
	index := &zk.CreateRequest{Path: IndexPath(l.Jobs.Conn(), uid), Acl: zkconn.ACL}
	created, err := l.Jobs.CreateFenced(ctx, []jobs.NewJob{n}, append([]interface{}{index}, req.Extra...)...)
	if err != nil {
		return nil, err
	}
	l.log().Info("workflow launched", zap.String("workflow", name), zap.String("job", id), zap.Int("nodes", len(nodes)),
		zap.String("parent", req.ParentJob))
	return created[0], nil
}

// Relaunch launches a workflow job's graph again, with the same launch
// values, as a new workflow job. It is refused, with the reason, when a
// node's job template, workflow template, project or inventory (or its
// source) is gone, or a sliced node's
// template changed its slice count (unless the node prompts for it). From,
// when set, relaunches from that node: the new run's graph is the node and
// what follows it.
func (l *Launcher) Relaunch(ctx context.Context, id, from, by string) (*jobs.Job, error) {
	j, _, err := l.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !j.IsWorkflow() {
		return nil, fmt.Errorf("%w: %s is not a workflow job (relaunch it with `jobengine job relaunch`)", ErrCannotRelaunch, j.ID)
	}
	nodes := j.Workflow.Nodes
	if from != "" {
		if nodes, err = subgraph(nodes, from); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCannotRelaunch, j.ID, err)
		}
	}
	for _, n := range nodes {
		if n.Project != "" || n.Inventory != "" {
			if err := l.Workflows.checkUpdate(ctx, j.ID, n); errors.Is(err, ErrInvalid) {
				return nil, fmt.Errorf("%w: %v", ErrCannotRelaunch, err)
			} else if err != nil {
				return nil, err
			}
			continue
		}
		if n.Workflow != "" {
			if _, _, err := l.Workflows.Get(ctx, n.Workflow); errors.Is(err, configstore.ErrNotFound) {
				return nil, fmt.Errorf("%w: node %s of %s: workflow %s no longer exists", ErrCannotRelaunch, n.ID, j.ID, n.Workflow)
			} else if err != nil {
				return nil, err
			}
			continue
		}
		tpl, _, err := l.Templates.Get(ctx, n.Template)
		if errors.Is(err, configstore.ErrNotFound) {
			return nil, fmt.Errorf("%w: node %s of %s: template %s no longer exists", ErrCannotRelaunch, n.ID, j.ID, n.Template)
		}
		if err != nil {
			return nil, err
		}
		prompted := n.Values != nil && n.Values.SliceCount != nil
		if !prompted && tpl.SliceCount != n.TemplateSliceCount && max(tpl.SliceCount, n.TemplateSliceCount) > 1 {
			return nil, fmt.Errorf("%w: node %s of %s: the slice count of template %s changed from %d to %d since the workflow was launched (launch the workflow template instead)",
				ErrCannotRelaunch, n.ID, j.ID, n.Template, n.TemplateSliceCount, tpl.SliceCount)
		}
	}
	return l.create(ctx, j.WorkflowTemplate, nodes, Request{LaunchType: jobs.LaunchRelaunch, CreatedBy: by}, j.ID)
}

// subgraph returns the nodes reachable from node from, with from first
// (it becomes the only root).
func subgraph(nodes []jobs.WorkflowNode, from string) ([]jobs.WorkflowNode, error) {
	index := map[string]int{}
	for i, n := range nodes {
		index[n.ID] = i
	}
	start, ok := index[from]
	if !ok {
		return nil, fmt.Errorf("no node %s in its workflow", from)
	}
	keep := map[int]bool{start: true}
	order := []int{start}
	for k := 0; k < len(order); k++ {
		for _, c := range nodes[order[k]].Children() {
			if i := index[c]; !keep[i] {
				keep[i] = true
				order = append(order, i)
			}
		}
	}
	out := make([]jobs.WorkflowNode, 0, len(order))
	for _, i := range order {
		out = append(out, nodes[i])
	}
	return out, nil
}
