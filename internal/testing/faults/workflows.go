package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
	"github.com/jobengine/jobengine/internal/check"
)

// Workflows in the workload: a diamond of recorder jobs (a → b, c → d),
// launched at even times over the workload, so that the distributor
// leader's kill — the distributor processes host the maintenance services,
// the workflow service among them — lands while some of them run. Each
// must end SUCCESS with one job per node, of the node's deterministic id.

// Names of the objects the workflows use.
const (
	workflowName     = "faults-diamond"
	workflowTemplate = "faults-node"
)

// diamond is the graph every workflow of the workload runs.
var diamond = []jobs.WorkflowNode{
	{ID: "a", Template: workflowTemplate, Success: []string{"b", "c"}},
	{ID: "b", Template: workflowTemplate, Success: []string{"d"}},
	{ID: "c", Template: workflowTemplate, Success: []string{"d"}},
	{ID: "d", Template: workflowTemplate},
}

// setUpWorkflows stores the node template and the workflow template.
func (h *Harness) setUpWorkflows(ctx context.Context) error {
	payload, _ := json.Marshal(Payload{SleepMS: 700})
	tpls := template.NewStore(h.conn, nil)
	if err := tpls.Create(ctx, &template.Template{Name: workflowTemplate, Action: RecordAction, Payload: payload, Priority: workloadPriority}); err != nil {
		return fmt.Errorf("faults: the workflows' template: %w", err)
	}
	if err := workflow.NewStore(h.conn, nil).Create(ctx, &workflow.Template{Name: workflowName, Nodes: diamond}); err != nil {
		return fmt.Errorf("faults: the workflow template: %w", err)
	}
	return nil
}

// submitWorkflows launches the plan's workflows at even times over the
// workload, each with a fixed id (a launch whose answer was lost is found
// on the retry).
func (h *Harness) submitWorkflows(ctx context.Context) error {
	cfg := h.Plan.Config
	tpls := template.NewStore(h.conn, nil)
	l := &workflow.Launcher{Jobs: h.store, Workflows: workflow.NewStore(h.conn, nil), Templates: tpls}
	for i := 0; i < cfg.Workflows; i++ {
		at := cfg.Duration * time.Duration(i) / time.Duration(cfg.Workflows)
		if err := sleep(ctx, time.Until(h.start.Add(at))); err != nil {
			return err
		}
		id, _ := jobs.NewID()
		for attempt := 0; ; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := l.Launch(cctx, workflow.Request{Workflow: workflowName, CreatedBy: "faults-workflows", ID: id})
			cancel()
			if errors.Is(err, jobs.ErrDuplicate) {
				err = nil
			}
			if err == nil {
				h.mu.Lock()
				h.submitted[id] = Submission{Source: SourceWorkflow, At: time.Now()}
				h.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt%20 == 0 {
				h.logf("launching workflow %s failed, retrying: %v", id, err)
			}
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitWorkflows waits, before the maintenance hosts are stopped, until
// every workflow and sliced container launched is final, or DrainTimeout
// passes (the checker then reports the ones left).
func (h *Harness) waitWorkflows(ctx context.Context) {
	dctx, cancel := context.WithTimeout(ctx, h.DrainTimeout)
	defer cancel()
	err := check.Until(dctx, 500*time.Millisecond, func() error {
		h.mu.Lock()
		var ids []string
		for id, s := range h.submitted {
			if s.Source == SourceWorkflow || s.Source == SourceSliced {
				ids = append(ids, id)
			}
		}
		h.mu.Unlock()
		open := 0
		for _, id := range ids {
			j, _, err := h.store.Get(dctx, id)
			if err != nil || !j.State.Final() {
				open++
			}
		}
		if open > 0 {
			return fmt.Errorf("%d of %d workflows and sliced jobs not final", open, len(ids))
		}
		return nil
	})
	if err != nil {
		h.logf("workflows and sliced jobs did not end within %s: %v", h.DrainTimeout, err)
	}
}

// checkWorkflows: every workflow of the workload ended SUCCESS, every node
// of it ran as one SUCCESS job of its deterministic id.
func checkWorkflows(r *Report, in Input, docs map[string]*jobs.Job) {
	for id, sub := range in.Submitted {
		if sub.Source != SourceWorkflow {
			continue
		}
		j, ok := docs[id]
		switch {
		case !ok:
			continue // reported as lost by checkJobs
		case !j.IsWorkflow():
			r.violate("workflow %s is not a workflow job", id)
			continue
		case j.State != jobs.Success:
			r.violate("workflow %s ended %s (%s), want SUCCESS: every node succeeds", id, j.State, j.StatusMessage)
		}
		nodeJobs := make([]*jobs.Job, len(j.Workflow.Nodes))
		for i, n := range j.Workflow.Nodes {
			nj, ok := docs[jobs.NodeJobID(id, n.ID)]
			if !ok {
				r.violate("workflow %s: node %s has no job", id, n.ID)
				continue
			}
			nodeJobs[i] = nj
			if nj.State != jobs.Success || nj.WorkflowNode != n.ID || nj.ParentJob != id {
				r.violate("workflow %s: node %s's job %s is %s (node %q, parent %q)", id, n.ID, nj.ID, nj.State, nj.WorkflowNode, nj.ParentJob)
			}
		}
		agree(r, j, nodeJobs)
	}
}

// agree: a final workflow's state is the one its graph gives for its
// node jobs as they ended — every node done, none still to run — whatever
// state that is.
func agree(r *Report, j *jobs.Job, nodeJobs []*jobs.Job) {
	if !j.State.Final() {
		return // reported as left unfinished by checkJobs
	}
	ev, err := workflow.Evaluate(j.Workflow, nodeJobs, j.CancelRequested)
	switch {
	case err != nil:
		r.violate("workflow %s: its node jobs cannot be evaluated: %v", j.ID, err)
	case !ev.Done:
		r.violate("workflow %s ended %s while its graph is not done (nodes %v)", j.ID, j.State, ev.Status)
	case ev.State != j.State:
		r.violate("workflow %s ended %s, but its node jobs give %s (nodes %v)", j.ID, j.State, ev.State, ev.Status)
	}
}
