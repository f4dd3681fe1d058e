package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

const slicedID = "job/00000000-0000-4000-8000-0000000000c0"

// slicedInput is a clean run plus a sliced launch: a container in state
// state over SlicedCount slices in the given states, each slice that
// succeeded run once to completion.
func slicedInput(state jobs.State, slices ...jobs.State) Input {
	in := base()
	in.Submitted[slicedID] = Submission{Source: SourceSliced, At: at(0)}
	c := &jobs.Job{ID: slicedID, State: state, Launch: jobs.Launch{Kind: jobs.KindWorkflow, Sliced: true, SliceCount: len(slices)}}
	in.Jobs = append(in.Jobs, c)
	for k, st := range slices {
		id := fmt.Sprintf("job/00000000-0000-4000-8000-0000000000c%d", k+1)
		c.NestedJobs = append(c.NestedJobs, id)
		s := &jobs.Job{ID: id, State: st, Executor: "x1", Attempt: 1, ParentJob: slicedID,
			Launch: jobs.Launch{SliceNumber: k + 1, SliceCount: len(slices)}}
		in.Jobs = append(in.Jobs, s)
		if st == jobs.Success {
			// The slices end at the same moment.
			in.Runs = append(in.Runs, run(fmt.Sprintf("s%d", k), id, 1, "x1#1", 400, 1000))
			in.Finished[id] = 1
		}
	}
	return in
}

// A sliced container of the workload is final in the state its slices
// imply; its slices count as submitted, name it and their place in it.
func TestCheckSliced(t *testing.T) {
	S, F, C, R := jobs.Success, jobs.Failed, jobs.Canceled, jobs.Running
	r := Check(slicedInput(S, S, S, S))
	if !r.OK() || r.Jobs.Sliced != 4 || r.Jobs.Submitted != 6 {
		t.Fatalf("a clean sliced job: %d sliced jobs counted of %d, violations:\n%s", r.Jobs.Sliced, r.Jobs.Submitted, violations(r))
	}
	// The slices' runs ended 30ms apart: measured, and in the summary.
	spread := slicedInput(S, S, S, S)
	spread.Runs[len(spread.Runs)-1].End = ns(1030)
	r = Check(spread)
	if !r.OK() || r.Jobs.Containers["SUCCESS"] != 1 || len(r.Jobs.SliceEndSpreads) != 1 || r.Jobs.SliceEndSpreads[0] != Millis(30*time.Millisecond) {
		t.Fatalf("containers %v, spreads %v, violations:\n%s", r.Jobs.Containers, r.Jobs.SliceEndSpreads, violations(r))
	}
	if !strings.Contains(r.Summary(), "containers final: SUCCESS 1; their slices' runs ended within (min / median / max): 30ms / 30ms / 30ms") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
	// Agreeing mixes: no violation.
	for _, tc := range []struct {
		name      string
		container jobs.State
		slices    []jobs.State
	}{
		{"a failed slice", F, []jobs.State{S, F, S}},
		{"a canceled slice", F, []jobs.State{C, S, S}},
		{"every slice failed", F, []jobs.State{F, F, F}},
	} {
		if r := Check(slicedInput(tc.container, tc.slices...)); !r.OK() {
			t.Errorf("%s, container %s: violations:\n%s", tc.name, tc.container, violations(r))
		}
	}
	canceled := slicedInput(C, S, C, C)
	canceled.Jobs[2].CancelRequested = true
	if r := Check(canceled); !r.OK() {
		t.Errorf("a canceled container: violations:\n%s", violations(r))
	}

	// Disagreeing ones.
	for _, tc := range []struct {
		name      string
		in        Input
		violation string
	}{
		{"SUCCESS over a failed slice", slicedInput(S, S, F, S), "ended SUCCESS (), but its slices imply FAILED"},
		{"SUCCESS over a canceled slice", slicedInput(S, S, S, C), "but its slices imply FAILED"},
		{"FAILED over successful slices", slicedInput(F, S, S, S), "ended FAILED (), but its slices imply SUCCESS"},
		{"FAILED although canceled", func() Input {
			in := slicedInput(F, S, C, C)
			in.Jobs[2].CancelRequested = true
			return in
		}(), "but its slices imply CANCELED"},
		{"final over a running slice", slicedInput(S, S, R, S), "while a slice of it is not final"},
		{"a container left running", slicedInput(R, S, S, S), "job left RUNNING: " + slicedID},
		{"one slice fewer than its count", func() Input {
			in := slicedInput(S, S, S, S)
			in.Jobs[2].NestedJobs = in.Jobs[2].NestedJobs[:2]
			return in
		}(), "slice count 3 and 2 slices"},
		{"a slice count other than the template's", slicedInput(S, S, S, S, S), "slice count 4 and 4 slices, want 3"},
		{"a slice out of place", func() Input {
			in := slicedInput(S, S, S, S)
			in.Jobs[4].SliceNumber = 3
			return in
		}(), "is slice 3 of 3"},
		{"a slice without a document", func() Input {
			in := slicedInput(S, S, S, S)
			in.Jobs = in.Jobs[:len(in.Jobs)-1]
			return in
		}(), "slice 3 (job/00000000-0000-4000-8000-0000000000c3) has no document"},
		{"not a sliced container", func() Input {
			in := slicedInput(S, S, S, S)
			in.Jobs[2].Sliced = false
			return in
		}(), "is not a sliced container"},
	} {
		r := Check(tc.in)
		if v := violations(r); !strings.Contains(v, tc.violation) {
			t.Errorf("%s: want a violation with %q, got:\n%s", tc.name, tc.violation, v)
		}
	}
}

// A final workflow's state is the one its graph gives for its node jobs.
func TestCheckWorkflowAgreesWithNodes(t *testing.T) {
	wfID := "job/00000000-0000-4000-8000-0000000000d0"
	mk := func(state jobs.State, a, b jobs.State) Input {
		in := base()
		in.Submitted[wfID] = Submission{Source: SourceWorkflow, At: at(0)}
		in.Jobs = append(in.Jobs, &jobs.Job{ID: wfID, State: state, Launch: jobs.Launch{Kind: jobs.KindWorkflow,
			Workflow: &jobs.Workflow{Nodes: []jobs.WorkflowNode{{ID: "a", Template: "t", Success: []string{"b"}}, {ID: "b", Template: "t"}}}}})
		for i, n := range []struct {
			node  string
			state jobs.State
		}{{"a", a}, {"b", b}} {
			id := jobs.NodeJobID(wfID, n.node)
			in.Jobs = append(in.Jobs, &jobs.Job{ID: id, State: n.state, Executor: "x1", Attempt: 1, ParentJob: wfID,
				Launch: jobs.Launch{WorkflowNode: n.node}})
			if n.state == jobs.Success {
				in.Runs = append(in.Runs, run(fmt.Sprintf("w%d", i), id, 1, "x1#1", 400+i*100, 450+i*100))
				in.Finished[id] = 1
			}
		}
		return in
	}
	S, F, R := jobs.Success, jobs.Failed, jobs.Running
	if r := Check(mk(S, S, S)); !r.OK() {
		t.Fatalf("a clean workflow:\n%s", violations(r))
	}
	for _, tc := range []struct {
		name      string
		in        Input
		violation string
	}{
		{"SUCCESS over a failed node", mk(S, S, F), "ended SUCCESS, but its node jobs give FAILED"},
		{"FAILED over successful nodes", mk(F, S, S), "ended FAILED, but its node jobs give SUCCESS"},
		{"final while a node runs", mk(S, S, R), "ended SUCCESS while its graph is not done"},
	} {
		if v := violations(Check(tc.in)); !strings.Contains(v, tc.violation) {
			t.Errorf("%s: want a violation with %q, got:\n%s", tc.name, tc.violation, v)
		}
	}
	// A failed workflow that agrees with its failed node breaks no
	// agreement (the workload's own rule still wants every workflow to
	// succeed).
	if v := violations(Check(mk(F, S, F))); strings.Contains(v, "node jobs give") || strings.Contains(v, "not done") {
		t.Errorf("a failed workflow agreeing with its nodes:\n%s", v)
	}
}
