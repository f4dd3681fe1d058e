package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// A workflow job is a container (KindWorkflow, not Sliced) that carries
// the graph it runs (Launch.Workflow): nodes, each a job template or a
// workflow template with launch values, joined by success, failure and
// always edges. Its node jobs have deterministic ids (NodeJobID), listed
// in NestedJobs in node order whether they were launched or not, so that
// what a workflow has done is read back from ZooKeeper and never held in
// memory: engine/workflow derives the state from the graph and the node
// jobs, and its leader-run service launches what is due, create-if-absent.

// WorkflowIndexDir is the directory of the index of open workflow jobs,
// under the connection's root: an empty node per workflow job not yet
// final, created with it and removed by its final write.
const WorkflowIndexDir = "workflows"

// WorkflowIndexPath returns the index node of the workflow job uid.
func (s *Store) WorkflowIndexPath(uid string) string { return s.conn.Path(WorkflowIndexDir, uid) }

// pokeWorkflows tells the workflow service that a node job of a workflow
// has ended, so that it steps at once rather than at its next pass: it
// bumps the data of the index directory, which the service watches. It is
// best effort (the pass comes anyway) and a no-op for other jobs.
func (s *Store) pokeWorkflows(j *Job) {
	if j.WorkflowNode == "" || j.ParentJob == "" || !j.State.Final() {
		return
	}
	if _, err := s.conn.Set(s.conn.Path(WorkflowIndexDir), nil, -1); err != nil {
		s.log.Debug("the workflow service was not told of a node's end", zap.String("job", j.ID), zap.Error(err))
	}
}

// reindexWorkflow creates the index node of an open workflow job when it
// is missing, and reports whether it did.
func (s *Store) reindexWorkflow(ctx context.Context, j *Job) (bool, error) {
	p := s.WorkflowIndexPath(j.UUID())
	created := false
	err := zkconn.Do(ctx, func() error {
		_, err := s.conn.Create(p, nil, 0, zkconn.ACL)
		if errors.Is(err, zk.ErrNoNode) {
			if err := zkconn.EnsureSync(s.conn.Conn, s.conn.Path(WorkflowIndexDir)); err != nil {
				return err
			}
			_, err = s.conn.Create(p, nil, 0, zkconn.ACL)
		}
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		created = err == nil
		return err
	})
	if created {
		s.log.Info("restore: workflow job indexed again", zap.String("job", j.ID))
	}
	return created, err
}

// MaxWorkflowNodes bounds the nodes of a workflow graph.
const MaxWorkflowNodes = 200

// WorkflowNode is a node of a workflow graph: what it launches, with
// which values, and which nodes follow it on which outcome.
type WorkflowNode struct {
	// ID names the node within its workflow.
	ID string `json:"id" yaml:"id"`
	// Template names a job template; Workflow a workflow template;
	// Project a project to update; Inventory an inventory to update from
	// its source. A node has exactly one of them.
	Template  string `json:"template,omitempty" yaml:"template,omitempty"`
	Workflow  string `json:"workflow,omitempty" yaml:"workflow,omitempty"`
	Project   string `json:"project,omitempty" yaml:"project,omitempty"`
	Inventory string `json:"inventory,omitempty" yaml:"inventory,omitempty"`
	// Values are the node's launch values (the template's prompts).
	Values *LaunchValues `json:"values,omitempty" yaml:"values,omitempty"`
	// Success, Failure and Always name the nodes that run after this one
	// succeeds, fails (or is canceled), or ends in any way.
	Success []string `json:"success,omitempty" yaml:"success,omitempty"`
	Failure []string `json:"failure,omitempty" yaml:"failure,omitempty"`
	Always  []string `json:"always,omitempty" yaml:"always,omitempty"`
	// TemplateSliceCount is, in a workflow job, the slice count of the
	// node's template when the workflow was launched: a relaunch is
	// refused once it changed.
	TemplateSliceCount int `json:"template-slice-count,omitempty" yaml:"-"`
}

// Target names what n launches: template/NAME, workflow/NAME,
// project/NAME or inventory/NAME.
func (n *WorkflowNode) Target() string {
	switch {
	case n.Workflow != "":
		return "workflow/" + n.Workflow
	case n.Project != "":
		return "project/" + n.Project
	case n.Inventory != "":
		return "inventory/" + n.Inventory
	}
	return "template/" + n.Template
}

// Children returns the nodes that follow n, each once.
func (n *WorkflowNode) Children() []string {
	var out []string
	for _, c := range slices.Concat(n.Success, n.Failure, n.Always) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Workflow is the graph a workflow job runs, as it was at launch.
type Workflow struct {
	Nodes []WorkflowNode `json:"nodes"`
}

// ErrCycle is wrapped by the error about a graph with a cycle, or a
// workflow template that contains itself.
var ErrCycle = fmt.Errorf("%w: cycle", ErrInvalid)

// ValidateGraph checks a workflow graph: 1–MaxWorkflowNodes nodes with
// unique valid ids, each launching exactly one template or workflow
// template, edges to nodes of the graph, and no cycle (the error names
// one).
func ValidateGraph(nodes []WorkflowNode) error {
	if len(nodes) == 0 {
		return fmt.Errorf("%w: a workflow needs at least one node", ErrInvalid)
	}
	if len(nodes) > MaxWorkflowNodes {
		return fmt.Errorf("%w: %d nodes, at most %d", ErrInvalid, len(nodes), MaxWorkflowNodes)
	}
	index := map[string]int{}
	for i, n := range nodes {
		if err := configstore.ValidName("node", n.ID); err != nil {
			return fmt.Errorf("%w: node %d: %v", ErrInvalid, i+1, err)
		}
		if _, dup := index[n.ID]; dup {
			return fmt.Errorf("%w: node id %s appears twice (give each node its own id)", ErrInvalid, n.ID)
		}
		index[n.ID] = i
		kinds := 0
		for _, k := range []string{n.Template, n.Workflow, n.Project, n.Inventory} {
			if k != "" {
				kinds++
			}
		}
		switch {
		case kinds != 1:
			return fmt.Errorf("%w: node %s must name exactly one of template, workflow, project and inventory", ErrInvalid, n.ID)
		case n.Project != "" || n.Inventory != "":
			kind, name := "project", n.Project
			if n.Inventory != "" {
				kind, name = "inventory", n.Inventory
			}
			if err := configstore.ValidName(kind, name); err != nil {
				return fmt.Errorf("%w: node %s: %v", ErrInvalid, n.ID, err)
			}
			if n.Values != nil && len(n.Values.Fields()) > 0 {
				return fmt.Errorf("%w: node %s updates %s %s, which takes no launch values", ErrInvalid, n.ID, kind, name)
			}
		case n.Template != "":
			if err := configstore.ValidName("template", n.Template); err != nil {
				return fmt.Errorf("%w: node %s: %v", ErrInvalid, n.ID, err)
			}
		default:
			if err := configstore.ValidName("workflow", n.Workflow); err != nil {
				return fmt.Errorf("%w: node %s: %v", ErrInvalid, n.ID, err)
			}
			if n.Values != nil && len(n.Values.Fields()) > 0 {
				return fmt.Errorf("%w: node %s launches workflow %s, which takes no launch values (give values to the nodes of %s)", ErrInvalid, n.ID, n.Workflow, n.Workflow)
			}
		}
		if n.TemplateSliceCount < 0 || n.TemplateSliceCount > MaxSlices {
			return fmt.Errorf("%w: node %s: template slice count %d", ErrInvalid, n.ID, n.TemplateSliceCount)
		}
		if v := n.Values; v != nil {
			l := Launch{LaunchValues: v}
			if err := l.Validate(); err != nil {
				return fmt.Errorf("node %s: %w", n.ID, err)
			}
		}
	}
	for _, n := range nodes {
		for what, list := range map[string][]string{"success": n.Success, "failure": n.Failure, "always": n.Always} {
			for _, c := range list {
				if _, ok := index[c]; !ok {
					return fmt.Errorf("%w: node %s: its %s edge leads to %q, which is not a node of the workflow", ErrInvalid, n.ID, what, c)
				}
				if c == n.ID {
					return fmt.Errorf("%w: node %s follows itself (%s edge)", ErrCycle, n.ID, what)
				}
			}
		}
	}
	if cyc := findCycle(nodes, index); cyc != nil {
		return fmt.Errorf("%w: the edges loop: %s (a workflow graph must not loop; remove one of these edges)", ErrCycle, strings.Join(cyc, " → "))
	}
	return nil
}

// findCycle returns the nodes of a cycle, the first repeated at the end,
// or nil.
func findCycle(nodes []WorkflowNode, index map[string]int) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make([]int, len(nodes))
	var path []string
	var visit func(i int) []string
	visit = func(i int) []string {
		mark[i] = onPath
		path = append(path, nodes[i].ID)
		for _, c := range nodes[i].Children() {
			j := index[c]
			switch mark[j] {
			case onPath:
				start := slices.Index(path, c)
				return append(slices.Clone(path[start:]), c)
			case unseen:
				if cyc := visit(j); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		mark[i] = done
		return nil
	}
	for i := range nodes {
		if mark[i] == unseen {
			if cyc := visit(i); cyc != nil {
				return cyc
			}
		}
	}
	return nil
}

// NodeJobID is the id of the job of a node of a workflow job: derived from
// both, so that launching a node twice (a new leader repeating the step of
// one that died) finds the job made instead of making a second one.
func NodeJobID(workflowJob, node string) string {
	_, uid, err := ParseID(workflowJob)
	if err != nil {
		return ""
	}
	return "job/" + uuid.NewSHA1(uuid.MustParse(uid), []byte("workflow-node/"+node)).String()
}

// IsWorkflow reports whether the job is a workflow job that runs a graph
// (not the container of a sliced job).
func (j *Job) IsWorkflow() bool { return j.IsContainer() && j.Workflow != nil }

// UpdateWith writes j over znode version ver as Update does, with extra
// operations (a leader's fence, an index node) in the same transaction.
func (s *Store) UpdateWith(ctx context.Context, j *Job, ver int32, extra ...interface{}) (int32, error) {
	return s.update(ctx, j, ver, j.State, extra...)
}

// WriteWorkflowState writes the state derived for a workflow job over the
// version read, with extra operations in the same transaction (the
// leader's fence; when final, the removal of its node in the index of
// open workflows). It sets the start, the return code and the duration as
// a container's are.
func (s *Store) WriteWorkflowState(ctx context.Context, c *Job, ver int32, to State, msg string, progress int, extra ...interface{}) error {
	if !c.IsWorkflow() {
		return fmt.Errorf("%w: %s is not a workflow job", ErrInvalid, c.ID)
	}
	if c.State.Final() {
		return fmt.Errorf("%w: %s is %s", ErrFinal, c.ID, c.State)
	}
	from := c.State
	s.setContainerState(c, to, msg, progress)
	if _, err := s.update(ctx, c, ver, from, extra...); err != nil {
		return err
	}
	if to.Final() {
		s.log.Info("workflow job ended", zap.String("job", c.ID), zap.String("state", string(to)), zap.String("message", msg))
		s.pokeWorkflows(c) // a nested workflow: its parent goes on
	}
	return nil
}

// cancelWorkflow marks a workflow job canceled and cancels its node jobs
// that exist (nested containers through CancelJob); the workflow service
// marks the nodes not started do-not-run and ends the job CANCELED once
// every node job has ended.
func (s *Store) cancelWorkflow(ctx context.Context, j *Job, by string) (*Job, error) {
	for _, id := range j.NestedJobs {
		_, err := s.CancelJob(ctx, id, by)
		if err != nil && !errors.Is(err, ErrFinal) && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("canceling node job %s of %s: %w", id, j.ID, err)
		}
	}
	c, _, err := s.Get(ctx, j.ID)
	return c, err
}

// validateWorkflow checks the workflow fields of a job.
func (l *Launch) validateWorkflow() error {
	if l.Workflow == nil {
		if l.WorkflowTemplate != "" {
			return fmt.Errorf("%w: workflow-template without a workflow graph", ErrInvalid)
		}
		return nil
	}
	if l.Kind != KindWorkflow || l.Sliced {
		return fmt.Errorf("%w: only a workflow job that is not sliced carries a workflow graph", ErrInvalid)
	}
	return ValidateGraph(l.Workflow.Nodes)
}
