package index_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// TestSearchJobsByLaunchFields searches the history by the fields of jobs
// launched from templates: template, workflow template, container,
// sliced, slices, launch type and creation time.
func TestSearchJobsByLaunchFields(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{RefreshInterval: -1})
	c := newClient(t, s, nil)
	container := newJob("echo", 0)
	container.Launch = jobs.Launch{Kind: jobs.KindWorkflow, Sliced: true, Template: "deploy", LaunchType: jobs.LaunchManual, SliceCount: 2,
		Ansible: &jobs.Ansible{ExtraVars: []byte(`{"any": [1, {"shape": true}]}`)}}
	all := []*jobs.Job{container}
	for k := 1; k <= 2; k++ {
		sl := newJob("echo", k)
		sl.ParentJob = container.ID
		sl.Launch = jobs.Launch{Kind: jobs.KindJob, Template: "deploy", LaunchType: jobs.LaunchManual, SliceNumber: k, SliceCount: 2}
		all = append(all, sl)
	}
	re := newJob("echo", 3)
	re.Launch = jobs.Launch{Kind: jobs.KindJob, Template: "deploy", LaunchType: jobs.LaunchRelaunch, SliceNumber: 1, SliceCount: 2, RelaunchOf: all[1].ID}
	other := newJob("backup", 4)
	other.Launch = jobs.Launch{Template: "nightly", LaunchType: jobs.LaunchScheduled}
	wf := newJob("workflow", 6)
	wf.Launch = jobs.Launch{Kind: jobs.KindWorkflow, LaunchType: jobs.LaunchManual, WorkflowTemplate: "release",
		Workflow: &jobs.Workflow{Nodes: []jobs.WorkflowNode{{ID: "a", Template: "deploy"}}}}
	all = append(all, re, other, newJob("plain", 5), wf)
	if _, err := c.IndexJobs(ctx, all...); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ids := func(js []jobs.Job) string {
		var out []string
		for _, j := range js {
			for i, a := range all {
				if a.ID == j.ID {
					out = append(out, string(rune('0'+i)))
				}
			}
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    jobs.LaunchFilter
		want string
	}{
		{jobs.LaunchFilter{}, "6,5,4,3,2,1,0"},
		{jobs.LaunchFilter{Workflow: "release"}, "6"},
		{jobs.LaunchFilter{Workflow: "nightly"}, ""},
		{jobs.LaunchFilter{Template: "deploy"}, "3,2,1,0"},
		{jobs.LaunchFilter{SlicesOf: container.ID}, "2,1"},
		{jobs.LaunchFilter{Sliced: true}, "0"},
		{jobs.LaunchFilter{Slices: true}, "2,1"}, // a relaunched slice has no container
		{jobs.LaunchFilter{LaunchType: jobs.LaunchRelaunch}, "3"},
		{jobs.LaunchFilter{LaunchType: jobs.LaunchScheduled, Template: "nightly"}, "4"},
		{jobs.LaunchFilter{Since: epoch.Add(2 * time.Minute)}, "6,5,4,3,2"},
		{jobs.LaunchFilter{Since: epoch.Add(time.Minute), Until: epoch.Add(3 * time.Minute)}, "3,2,1"},
	} {
		got, err := c.SearchJobs(ctx, index.JobQuery{Launch: tc.f})
		if err != nil {
			t.Fatalf("%+v: %v", tc.f, err)
		}
		if ids(got) != tc.want {
			t.Errorf("SearchJobs(%+v) = %s, want %s", tc.f, ids(got), tc.want)
		}
		// The same filter on live documents agrees.
		var live []string
		for i := len(all) - 1; i >= 0; i-- {
			if (jobs.Filter{LaunchFilter: tc.f}).Match(all[i]) {
				live = append(live, string(rune('0'+i)))
			}
		}
		if strings.Join(live, ",") != tc.want {
			t.Errorf("Filter.Match(%+v) = %s, want %s", tc.f, strings.Join(live, ","), tc.want)
		}
	}
}

// TestDeleteJobs removes jobs and their events from the history, leaving
// the others.
func TestDeleteJobs(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	s := estest.Start(t, estest.Options{RefreshInterval: -1})
	c := newClient(t, s, nil)
	gone, kept := newJob("a", 0), newJob("a", 1)
	if _, err := c.IndexJobs(ctx, gone, kept); err != nil {
		t.Fatal(err)
	}
	var evs []index.Event
	for i := 0; i < 5; i++ {
		for _, j := range []*jobs.Job{gone, kept} {
			evs = append(evs, index.Event{Job: j.ID, Type: index.EventLog, Message: "line", Time: epoch.Add(time.Duration(i) * time.Second)})
		}
	}
	if _, err := c.IndexEvents(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	// Not refreshed yet: DeleteJobs refreshes, so it finds every event.
	missing, _ := jobs.NewID()
	if err := c.DeleteJobs(ctx, gone.ID, missing); err != nil {
		t.Fatal(err)
	}
	if j, err := c.GetJob(ctx, gone.ID); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("deleted job still there: %+v %v", j, err)
	}
	if e, err := c.JobEvents(ctx, gone.ID, time.Time{}, 100); err != nil || len(e) != 0 {
		t.Fatalf("%d events of the deleted job left (%v)", len(e), err)
	}
	if _, err := c.GetJob(ctx, kept.ID); err != nil {
		t.Fatalf("the other job: %v", err)
	}
	if e, _ := c.JobEvents(ctx, kept.ID, time.Time{}, 100); len(e) != 5 {
		t.Fatalf("the other job has %d events, want 5", len(e))
	}
}
