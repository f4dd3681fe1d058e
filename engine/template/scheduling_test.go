package template

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// TestLaunchSchedulingFields: a launch in instance groups gives every job
// that runs the template's key (none when simultaneous runs are allowed)
// and, for ansible_playbook, min(hosts, forks) + 1; the container holds
// nothing; the inventory's groups stand in for the template's; a template
// that prevents fallback keeps its first group only; a launch that names no
// group is scheduled in the default group all the same, holding the key,
// and says it waits for the scheduler until a pass sees it.
func TestLaunchSchedulingFields(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(7)); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Inventories.Create(ctx, &inventory.Inventory{Name: "grouped", Kind: inventory.Static, InstanceGroups: []string{"edge", "core"}}, hosts(3)); err != nil {
		t.Fatal(err)
	}
	if err := project.NewStore(e.conn, nil).Create(ctx, &project.Project{Name: "site", Kind: project.Directory, Directory: "/srv/site"}); err != nil {
		t.Fatal(err)
	}
	play := jobs.Ansible{Project: "site", Playbook: "site.yml", Forks: 2}
	for _, tp := range []*Template{
		{Name: "play", Action: ansible.ActionName, Ansible: play, Inventory: "inv", SliceCount: 3, InstanceGroups: []string{"edge"}, Priority: 100},
		{Name: "free", Action: "echo", Inventory: "inv", AllowSimultaneous: true, InstanceGroups: []string{"edge"}, Priority: 100},
		{Name: "inherit", Action: "echo", Inventory: "grouped", Priority: 100},
		{Name: "stay", Action: "echo", Inventory: "grouped", PreventFallback: true, Priority: 100},
		{Name: "shared", Action: "echo", Inventory: "inv", Priority: 100},
	} {
		if err := e.l.Templates.Create(ctx, tp); err != nil {
			t.Fatal(err)
		}
	}
	key := []string{jobs.TemplateKey("play")}
	res, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Job; len(c.ConcurrencyKeys) != 0 || c.Impact != 0 || len(res.Slices) != 3 {
		t.Fatalf("container keys %v impact %d, %d slices", c.ConcurrencyKeys, c.Impact, len(res.Slices))
	}
	for i, s := range res.Slices {
		want := ansible.Impact([]int{3, 2, 2}[i], 2)
		if s.State != jobs.Pending || !slices.Equal(s.ConcurrencyKeys, key) || s.Impact != want {
			t.Errorf("slice %d: %s keys %v impact %d, want PENDING %v %d", i+1, s.State, s.ConcurrencyKeys, s.Impact, key, want)
		}
	}
	for _, tc := range []struct {
		name   string
		state  jobs.State
		keys   []string
		groups []string
	}{
		{"free", jobs.Pending, nil, []string{"edge"}},
		{"inherit", jobs.Pending, []string{jobs.TemplateKey("inherit")}, []string{"edge", "core"}},
		{"stay", jobs.Pending, []string{jobs.TemplateKey("stay")}, []string{"edge"}},
		{"shared", jobs.Pending, []string{jobs.TemplateKey("shared")}, []string{jobs.DefaultGroup}},
	} {
		res, err := e.l.Launch(ctx, Request{Template: tc.name})
		if err != nil {
			t.Fatal(err)
		}
		j := res.Job
		if j.State != tc.state || !slices.Equal(j.ConcurrencyKeys, tc.keys) || !slices.Equal(j.InstanceGroups, tc.groups) || j.Impact != 0 {
			t.Errorf("%s: %s keys %v groups %v impact %d; want %s %v %v", tc.name, j.State, j.ConcurrencyKeys, j.InstanceGroups, j.Impact, tc.state, tc.keys, tc.groups)
		}
		if j.Explanation != jobs.NotScheduledYet {
			t.Errorf("%s: explanation %q before any pass, want %q", tc.name, j.Explanation, jobs.NotScheduledYet)
		}
	}
}

// TestUpdateOnLaunch: a template whose project updates on launch creates
// the update (a dependency holding the project's key, recorded on the
// project) and every job of the launch waits for it, its runs taking the
// commit the update fetches (revision-of); a second launch shares the pending update; a successful
// update within the cache timeout is reused (nothing to wait for); past
// it, a new update is made.
func TestUpdateOnLaunch(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(4)); err != nil {
		t.Fatal(err)
	}
	ps := project.NewStore(e.conn, nil)
	if err := ps.Create(ctx, &project.Project{Name: "site", Kind: project.Git, URL: "file:///srv/site.git", UpdateOnLaunch: true,
		CacheTimeout: 60, Revision: "0123456789abcdef0123456789abcdef01234567"}); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "play", Action: ansible.ActionName, Inventory: "inv", SliceCount: 2, Priority: 100,
		Ansible: jobs.Ansible{Project: "site", Playbook: "site.yml"}}); err != nil {
		t.Fatal(err)
	}
	first, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Dependencies) != 1 {
		t.Fatalf("%d dependencies created, want the project update", len(first.Dependencies))
	}
	up := first.Dependencies[0]
	if up.Action != project.UpdateAction || up.State != jobs.Pending || up.LaunchType != jobs.LaunchDependency ||
		!slices.Equal(up.ConcurrencyKeys, []string{jobs.ProjectKey("site")}) {
		t.Fatalf("update job %s %s %s keys %v", up.Action, up.State, up.LaunchType, up.ConcurrencyKeys)
	}
	if p, _, _ := ps.Get(ctx, "site"); p.LastUpdateJob != up.ID {
		t.Fatalf("project records %q as its last update, want %s", p.LastUpdateJob, up.ID)
	}
	for _, j := range append([]*jobs.Job{first.Job}, first.Slices...) {
		pl, err := ansible.ParsePayload(j.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(j.DependsOn, []string{up.ID}) || pl.Project.Revision != "" || pl.Project.RevisionOf != up.ID {
			t.Errorf("%s depends on %v, revision %q of %q; want %s and the commit it fetches", j.ID, j.DependsOn, pl.Project.Revision, pl.Project.RevisionOf, up.ID)
		}
	}
	for _, sl := range first.Slices {
		if sl.State != jobs.Pending {
			t.Errorf("slice %s is %s, want PENDING behind the update", sl.ID, sl.State)
		}
	}

	second, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Dependencies) != 0 || !slices.Equal(second.Slices[0].DependsOn, []string{up.ID}) {
		t.Fatalf("second launch: %d new updates, depends on %v; want the pending update shared", len(second.Dependencies), second.Slices[0].DependsOn)
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
	finish(time.Second)
	third, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Dependencies) != 0 || len(third.Slices[0].DependsOn) != 0 || third.Slices[0].State != jobs.Pending {
		t.Fatalf("within the cache timeout: %d updates, depends on %v, %s", len(third.Dependencies), third.Slices[0].DependsOn, third.Slices[0].State)
	}
	finish(2 * time.Minute)
	fourth, err := e.l.Launch(ctx, Request{Template: "play"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fourth.Dependencies) != 1 || fourth.Dependencies[0].ID == up.ID {
		t.Fatalf("past the cache timeout: %d updates", len(fourth.Dependencies))
	}
}

// TestConcurrentLaunchesShareOneProjectUpdate: many launches racing over
// a project that updates on launch all succeed, sharing one update.
func TestConcurrentLaunchesShareOneProjectUpdate(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(4)); err != nil {
		t.Fatal(err)
	}
	ps := project.NewStore(e.conn, nil)
	if err := ps.Create(ctx, &project.Project{Name: "site", Kind: project.Git, URL: "file:///srv/site.git", UpdateOnLaunch: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Templates.Create(ctx, &Template{Name: "play", Action: ansible.ActionName, Inventory: "inv", SliceCount: 2, AllowSimultaneous: true,
		Ansible: jobs.Ansible{Project: "site", Playbook: "site.yml"}}); err != nil {
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
			results[i], errs[i] = e.l.Launch(ctx, Request{Template: "play"})
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
		for _, sl := range results[i].Slices {
			if !slices.Equal(sl.DependsOn, created) {
				t.Errorf("launch %d: slice %s depends on %v, want %v", i, sl.ID, sl.DependsOn, created)
			}
		}
	}
}
