package workflow

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// graph builds nodes from "id:success,..:failure,..:always,.." specs.
func graph(specs ...string) *jobs.Workflow {
	w := &jobs.Workflow{}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	for _, s := range specs {
		f := strings.Split(s+":::", ":")
		w.Nodes = append(w.Nodes, jobs.WorkflowNode{ID: f[0], Template: "t", Success: split(f[1]), Failure: split(f[2]), Always: split(f[3])})
	}
	return w
}

// outcomes gives node jobs: "S" succeeded, "F" failed, "C" canceled, "R"
// running, "-" none.
func outcomes(s string) []*jobs.Job {
	out := make([]*jobs.Job, len(s))
	for i, c := range s {
		st := map[rune]jobs.State{'S': jobs.Success, 'F': jobs.Failed, 'C': jobs.Canceled, 'R': jobs.Running}[c]
		if st != "" {
			out[i] = &jobs.Job{State: st}
		}
	}
	return out
}

func TestEvaluate(t *testing.T) {
	chain := graph("a:b", "b:c", "c")
	fan := graph("a:b,c", "b:d", "c:d", "d")
	handler := graph("a:b:h", "b", "h")
	always := graph("a:::z", "z")
	for _, tc := range []struct {
		name   string
		w      *jobs.Workflow
		jobs   string
		cancel bool
		want   string // statuses, then the state
	}{
		{"chain start", chain, "---", false, "ready waiting waiting PENDING"},
		{"chain middle", chain, "S--", false, "succeeded ready waiting RUNNING"},
		{"chain done", chain, "SSS", false, "succeeded succeeded succeeded SUCCESS"},
		{"chain broken", chain, "SF-", false, "succeeded failed do-not-run FAILED"},
		{"fan-out runs both", fan, "S---", false, "succeeded ready ready waiting RUNNING"},
		{"fan-in waits for both", fan, "SSR-", false, "succeeded succeeded started waiting RUNNING"},
		{"fan-in runs once both ended", fan, "SSS-", false, "succeeded succeeded succeeded ready RUNNING"},
		{"fan-in runs if one edge matched", fan, "SSF-", false, "succeeded succeeded failed ready RUNNING"},
		{"failure handled", handler, "F--", false, "failed do-not-run ready RUNNING"},
		{"failure handled ends well", handler, "F-S", false, "failed do-not-run succeeded SUCCESS"},
		{"success skips the handler", handler, "SS-", false, "succeeded succeeded do-not-run SUCCESS"},
		{"a canceled job is a failure", handler, "C--", false, "failed do-not-run ready RUNNING"},
		{"always after failure", always, "F-", false, "failed ready RUNNING"},
		{"always after success", always, "S-", false, "succeeded ready RUNNING"},
		{"always ends well", always, "FS", false, "failed succeeded SUCCESS"},
		{"cancel before start", chain, "---", true, "do-not-run do-not-run do-not-run CANCELED"},
		{"cancel waits for the started", chain, "R--", true, "started waiting waiting RUNNING"},
		{"cancel ends", chain, "C--", true, "failed do-not-run do-not-run CANCELED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Evaluate(tc.w, outcomes(tc.jobs), tc.cancel)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range ev.Status {
				got = append(got, string(s))
			}
			got = append(got, string(ev.State))
			if strings.Join(got, " ") != tc.want {
				t.Fatalf("got %s, want %s", strings.Join(got, " "), tc.want)
			}
			if ev.Done != ev.State.Final() {
				t.Fatalf("done %v with state %s", ev.Done, ev.State)
			}
		})
	}
}

func TestTemplateValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []jobs.WorkflowNode
		cycle bool
		want  string
	}{
		{"empty", nil, false, "at least one node"},
		{"loop", graph("a:b", "b:c", "c::a").Nodes, true, "a → b → c → a"},
		{"self edge", graph("a:::a").Nodes, true, "follows itself"},
		{"contains itself", []jobs.WorkflowNode{{ID: "n", Workflow: "w"}}, true, "cannot contain itself"},
		{"unknown node", graph("a:x").Nodes, false, `"x", which is not a node`},
		{"duplicate", graph("a", "a").Nodes, false, "appears twice"},
		{"both kinds", []jobs.WorkflowNode{{ID: "n", Template: "t", Workflow: "v"}}, false, "exactly one of"},
		{"neither", []jobs.WorkflowNode{{ID: "n"}}, false, "exactly one of"},
		{"bad id", []jobs.WorkflowNode{{ID: "a b", Template: "t"}}, false, "node name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Template{Name: "w", Nodes: tc.nodes}).Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) || errors.Is(err, jobs.ErrCycle) != tc.cycle {
				t.Fatalf("%v: ErrInvalid %v, ErrCycle %v", err, errors.Is(err, ErrInvalid), errors.Is(err, jobs.ErrCycle))
			}
		})
	}
	if err := (&Template{Name: "w", Nodes: graph("a:b,c", "b:d", "c:d", "d").Nodes}).Validate(); err != nil {
		t.Fatalf("a diamond: %v", err)
	}
}

func TestNodeJobIDIsDeterministic(t *testing.T) {
	w, _ := jobs.NewID()
	a, b := jobs.NodeJobID(w, "n1"), jobs.NodeJobID(w, "n2")
	if a != jobs.NodeJobID(w, "n1") || a == b {
		t.Fatalf("ids %s %s", a, b)
	}
	if _, _, err := jobs.ParseID(a); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", a, err))
	}
}
