package workflow

import (
	"fmt"
	"slices"

	"github.com/jobengine/jobengine/engine/jobs"
)

// NodeStatus is where a node of a workflow job stands.
type NodeStatus string

// Node statuses.
const (
	// Waiting: a parent has not ended yet.
	Waiting NodeStatus = "waiting"
	// Ready: due to run, its job not made yet.
	Ready NodeStatus = "ready"
	// Started: its job exists and has not ended.
	Started NodeStatus = "started"
	// Succeeded and Failed: its job ended (canceled counts as failed).
	Succeeded NodeStatus = "succeeded"
	Failed    NodeStatus = "failed"
	// DoNotRun: no parent ended with an edge to it, or the workflow was
	// canceled before it started.
	DoNotRun NodeStatus = "do-not-run"
)

// Evaluation is the state of a workflow job derived from its graph and
// its node jobs.
type Evaluation struct {
	// Status holds each node's status, in node order.
	Status []NodeStatus
	// Done: no node can run any more.
	Done bool
	// State is the workflow job's state: final when Done.
	State jobs.State
	// Unhandled names the nodes that failed with no failure or always
	// edge: they fail the workflow.
	Unhandled []string
}

// Evaluate derives the state of a workflow job from its graph, its node
// jobs (nil for a node whose job does not exist) and whether its cancel
// was asked for. A node runs when each of its parents has ended or will
// never run, and one that ended has an edge to it that matches its
// outcome (success, failure — a canceled job counts as failed — or
// always); a root runs at once. Canceled, no node starts any more. The
// workflow is done when no node waits, is ready or runs: CANCELED when
// canceled, else FAILED when a node failed without a failure or always
// edge, else SUCCESS.
func Evaluate(w *jobs.Workflow, nodeJobs []*jobs.Job, cancel bool) (Evaluation, error) {
	n := len(w.Nodes)
	if len(nodeJobs) != n {
		return Evaluation{}, fmt.Errorf("%w: %d node jobs for %d nodes", ErrInvalid, len(nodeJobs), n)
	}
	index := make(map[string]int, n)
	parents := make([][]int, n)
	for i, nd := range w.Nodes {
		index[nd.ID] = i
	}
	for i, nd := range w.Nodes {
		for _, c := range nd.Children() {
			parents[index[c]] = append(parents[index[c]], i)
		}
	}
	ev := Evaluation{Status: make([]NodeStatus, n)}
	var decide func(i int) NodeStatus
	decide = func(i int) NodeStatus {
		if ev.Status[i] != "" {
			return ev.Status[i]
		}
		st := status(w.Nodes, nodeJobs, parents, i, cancel, decide)
		ev.Status[i] = st
		return st
	}
	started := false
	for i := range w.Nodes {
		decide(i)
		started = started || nodeJobs[i] != nil
	}
	ev.Done = true
	for i, st := range ev.Status {
		switch st {
		case Waiting, Ready, Started:
			ev.Done = false
		case Failed:
			if nd := w.Nodes[i]; len(nd.Failure) == 0 && len(nd.Always) == 0 {
				ev.Unhandled = append(ev.Unhandled, nd.ID)
			}
		}
	}
	switch {
	case ev.Done && cancel:
		ev.State = jobs.Canceled
	case ev.Done && len(ev.Unhandled) > 0:
		ev.State = jobs.Failed
	case ev.Done:
		ev.State = jobs.Success
	case started:
		ev.State = jobs.Running
	default:
		ev.State = jobs.Pending
	}
	return ev, nil
}

// status decides node i, its parents first (the graph has no cycle).
func status(nodes []jobs.WorkflowNode, nodeJobs []*jobs.Job, parents [][]int, i int, cancel bool, decide func(int) NodeStatus) NodeStatus {
	if j := nodeJobs[i]; j != nil {
		switch {
		case j.State == jobs.Success:
			return Succeeded
		case j.State.Final():
			return Failed
		}
		return Started
	}
	matched := len(parents[i]) == 0
	for _, p := range parents[i] {
		id := nodes[i].ID
		switch decide(p) {
		case Waiting, Ready, Started:
			return Waiting
		case Succeeded:
			matched = matched || slices.Contains(nodes[p].Success, id) || slices.Contains(nodes[p].Always, id)
		case Failed:
			matched = matched || slices.Contains(nodes[p].Failure, id) || slices.Contains(nodes[p].Always, id)
		}
	}
	if !matched || cancel {
		return DoNotRun
	}
	return Ready
}

// Summary says how far a workflow job is, for its status message, and its
// progress in percent.
func (ev Evaluation) Summary() (string, int) {
	counts := map[NodeStatus]int{}
	for _, st := range ev.Status {
		counts[st]++
	}
	ended := counts[Succeeded] + counts[Failed] + counts[DoNotRun]
	msg := fmt.Sprintf("%d of %d nodes ended: %d succeeded, %d failed, %d do-not-run", ended, len(ev.Status),
		counts[Succeeded], counts[Failed], counts[DoNotRun])
	if len(ev.Unhandled) > 0 && ev.Done {
		msg += fmt.Sprintf("; failed without a failure edge: %v", ev.Unhandled)
	}
	progress := 0
	if len(ev.Status) > 0 {
		progress = ended * 100 / len(ev.Status)
	}
	return msg, progress
}
