package history

import (
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// TestListWithinScope checks that a scope selects, in the history as in
// ZooKeeper, the jobs of its templates, the workflow jobs of its
// workflow templates and the jobs of its creators, and nothing else.
func TestListWithinScope(t *testing.T) {
	e := newEnv(t, true)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	web := indexed("echo", jobs.Success, at)
	web.Template = "web"
	wf := indexed("workflow", jobs.Success, at.Add(time.Second))
	wf.WorkflowTemplate = "release"
	other := indexed("workflow", jobs.Success, at.Add(2*time.Second))
	other.WorkflowTemplate = "nightly"
	mine := indexed("echo", jobs.Failed, at.Add(3*time.Second))
	mine.CreatedBy = "user/carol"
	e.index(web, wf, other, mine)
	for _, c := range []struct {
		scope jobs.Scope
		want  []*jobs.Job
	}{
		{jobs.Scope{Workflows: []string{"release"}}, []*jobs.Job{wf}},
		{jobs.Scope{Templates: []string{"web"}, CreatedBy: []string{"user/carol"}}, []*jobs.Job{mine, web}},
		{jobs.Scope{Templates: []string{"web"}, Workflows: []string{"release", "nightly"}}, []*jobs.Job{other, wf, web}},
		{jobs.Scope{}, nil},
	} {
		page, err := e.reader().List(ctxT(t), Query{Launch: jobs.LaunchFilter{Within: &c.scope}})
		if err != nil || page.HistoryErr != nil {
			t.Fatal(err, page.HistoryErr)
		}
		var want []Job
		for _, j := range c.want {
			want = append(want, Job{j, Indexed})
		}
		if ids(page.Jobs) != ids(want) {
			t.Errorf("within %+v: %s, want %s", c.scope, ids(page.Jobs), ids(want))
		}
		for _, j := range []*jobs.Job{web, wf, other, mine} {
			inWant := false
			for _, w := range c.want {
				inWant = inWant || w == j
			}
			if c.scope.Match(j) != inWant {
				t.Errorf("within %+v: Match(%s) = %v", c.scope, j.ID, !inWant)
			}
		}
	}
}
