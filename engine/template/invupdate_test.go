package template

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// TestInventoryUpdateOnLaunch: a template over an inventory whose source
// updates on launch creates the inventory update (a dependency holding
// the key inventory-source:NAME, recorded on the source) beside the
// project's, and its jobs wait for both and read the inventory's current
// content, pinning no snapshot; a second launch shares the pending
// update; a successful one within the cache timeout is reused, past it a
// new one is made, and canceled with the launch it exists for. An inventory without a source is launched as before.
func TestInventoryUpdateOnLaunch(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(4)); err != nil {
		t.Fatal(err)
	}
	ps := project.NewStore(e.conn, nil)
	if err := ps.Create(ctx, &project.Project{Name: "site", Kind: project.Git, URL: "file:///srv/site.git", UpdateOnLaunch: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Inventories.SetSource(ctx, "inv", &inventory.Source{Project: "site", Path: "inv/hosts.yml", UpdateOnLaunch: true, CacheTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "play", Action: ansible.ActionName, Inventory: "inv", SliceCount: 2,
		Ansible: jobs.Ansible{Project: "site", Playbook: "site.yml"}}); err != nil {
		t.Fatal(err)
	}
	first, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	var up *jobs.Job
	for _, d := range first.Dependencies {
		if d.Action == invsource.UpdateAction {
			up = d
		}
	}
	if len(first.Dependencies) != 2 || up == nil || up.State != jobs.Pending || up.LaunchType != jobs.LaunchDependency ||
		!slices.Equal(up.ConcurrencyKeys, []string{jobs.InventorySourceKey("inv")}) {
		t.Fatalf("dependencies %v; want a project and an inventory update", first.Dependencies)
	}
	if inv, _, _ := e.l.Inventories.Get(ctx, "inv"); inv.Source.LastUpdateJob != up.ID {
		t.Fatalf("source records %q as its last update, want %s", inv.Source.LastUpdateJob, up.ID)
	}
	for _, j := range first.Slices {
		pl, err := ansible.ParsePayload(j.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(j.DependsOn, up.ID) || len(j.DependsOn) != 2 || j.InventorySnapshot != "" ||
			pl.InventorySource == nil || !pl.InventorySource.Current || pl.InventorySource.Snapshot != "" {
			t.Errorf("slice %s depends on %v, snapshot %q, payload %s", j.ID, j.DependsOn, j.InventorySnapshot, j.Payload)
		}
	}
	second, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(second.Slices[0].DependsOn, up.ID) {
		t.Fatalf("second launch depends on %v; want the pending update %s shared", second.Slices[0].DependsOn, up.ID)
	}
	for _, d := range second.Dependencies {
		if d.Action == invsource.UpdateAction {
			t.Fatalf("second launch made a new inventory update %s", d.ID)
		}
	}
	finish := func(ago time.Duration) {
		j, ver, err := e.l.Jobs.Get(ctx, up.ID)
		if err != nil {
			t.Fatal(err)
		}
		j.State, j.TimeOfStatusChange = jobs.Success, time.Now().UTC().Add(-ago)
		if _, err := e.l.Jobs.Update(ctx, j, ver); err != nil {
			t.Fatal(err)
		}
	}
	// Only the inventory's update on launch from here on.
	p, _, _ := ps.Get(ctx, "site")
	p.UpdateOnLaunch = false
	if err := ps.Objects().Update(ctx, p, -1); err != nil {
		t.Fatal(err)
	}
	finish(time.Second)
	third, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Dependencies) != 0 || len(third.Slices[0].DependsOn) != 0 || third.Slices[0].InventorySnapshot == "" {
		t.Fatalf("within the cache timeout: %d updates, depends on %v, snapshot %q", len(third.Dependencies), third.Slices[0].DependsOn, third.Slices[0].InventorySnapshot)
	}
	finish(2 * time.Minute)
	fourth, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fourth.Dependencies) != 1 || fourth.Dependencies[0].ID == up.ID || fourth.Dependencies[0].Action != invsource.UpdateAction {
		t.Fatalf("past the cache timeout: %v", fourth.Dependencies)
	}

	// Canceling the launch cancels the update that exists only for it.
	if _, err := e.l.Jobs.CancelJob(ctx, fourth.Job.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if j, _, err := e.l.Jobs.Get(ctx, fourth.Dependencies[0].ID); err != nil || j.State != jobs.Canceled {
		t.Fatalf("the launch's own update after its cancel: %v %v", j.State, err)
	}

	if _, err := e.l.Inventories.SetSource(ctx, "inv", nil); err != nil {
		t.Fatal(err)
	}
	fifth, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fifth.Dependencies) != 0 || fifth.Slices[0].InventorySnapshot == "" {
		t.Fatalf("without a source: %d updates, snapshot %q", len(fifth.Dependencies), fifth.Slices[0].InventorySnapshot)
	}
}

// TestConcurrentLaunchesShareOneInventoryUpdate: launches racing over an
// inventory that updates on launch create one update between them (the
// source's record is a compare-and-set; a launch that loses reads again
// and shares the winner's), and every launch waits for it.
func TestConcurrentLaunchesShareOneInventoryUpdate(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(3)); err != nil {
		t.Fatal(err)
	}
	ps := project.NewStore(e.conn, nil)
	if err := ps.Create(ctx, &project.Project{Name: "site", Kind: project.Git, URL: "file:///srv/site.git"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Inventories.SetSource(ctx, "inv", &inventory.Source{Project: "site", Path: "hosts.yml", UpdateOnLaunch: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "t", Action: "echo", Inventory: "inv", AllowSimultaneous: true}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	results := make([]*Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.l.Launch(ctx, Request{Template: "t"})
		}()
	}
	wg.Wait()
	var created []string
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("launch %d: %v", i, errs[i])
		}
		for _, d := range results[i].Dependencies {
			created = append(created, d.ID)
		}
	}
	if len(created) != 1 {
		t.Fatalf("%d updates created, want 1: %v", len(created), created)
	}
	for i := range n {
		if !slices.Equal(results[i].Job.DependsOn, created) {
			t.Errorf("launch %d depends on %v, want %v", i, results[i].Job.DependsOn, created)
		}
	}
}

// endUpdates cancels every pending job of action as soon as it is seen,
// until the test ends: updates that end before racing launches read them
// again.
func endUpdates(t *testing.T, e *env, action string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			ids, err := e.l.Jobs.PendingIDs(ctx)
			if err != nil {
				continue
			}
			for _, id := range ids {
				if j, _, err := e.l.Jobs.Get(ctx, id); err == nil && j.Action == action {
					_, _ = e.l.Jobs.Cancel(ctx, id, "test")
				}
			}
		}
	}()
}

// TestRacingLaunchesOutlastUpdatesThatEndFast: a dozen launches racing
// over an inventory and a project that update on every launch (no cache)
// all succeed when each update ends at once: a launch that lost the race
// to record an update shares the one recorded meanwhile, ended or not,
// rather than racing again (one launch through per round ran out of
// attempts past five launches).
func TestRacingLaunchesOutlastUpdatesThatEndFast(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(3)); err != nil {
		t.Fatal(err)
	}
	ps := project.NewStore(e.conn, nil)
	if err := ps.Create(ctx, &project.Project{Name: "site", Kind: project.Git, URL: "file:///srv/site.git", UpdateOnLaunch: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.Inventories.SetSource(ctx, "inv", &inventory.Source{Project: "site", Path: "hosts.yml", UpdateOnLaunch: true}); err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []*Template{
		{Name: "t", Action: "echo", Inventory: "inv", AllowSimultaneous: true},
		{Name: "play", Action: ansible.ActionName, Inventory: "inv", AllowSimultaneous: true, Ansible: jobs.Ansible{Project: "site", Playbook: "site.yml"}},
	} {
		if err := e.l.Templates.Create(ctx, tmpl); err != nil {
			t.Fatal(err)
		}
	}
	endUpdates(t, e, invsource.UpdateAction)
	endUpdates(t, e, project.UpdateAction)
	const n = 12
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tmpl := "t"
			if i%2 == 1 {
				tmpl = "play"
			}
			_, errs[i] = e.l.Launch(ctx, Request{Template: tmpl})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("launch %d: %v", i, err)
		}
	}
}
