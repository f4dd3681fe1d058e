package template

import (
	"slices"
	"testing"

	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
)

// TestLaunchSchedulingFields: a launch in instance groups gives every job
// that runs the template's key (none when simultaneous runs are allowed)
// and, for ansible_playbook, min(hosts, forks) + 1; the container holds
// nothing; the inventory's groups stand in for the template's; a template
// that prevents fallback keeps its first group only; a launch in no group
// takes the shared queue holding nothing.
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
		{"shared", jobs.Queued, nil, nil},
	} {
		res, err := e.l.Launch(ctx, Request{Template: tc.name})
		if err != nil {
			t.Fatal(err)
		}
		j := res.Job
		if j.State != tc.state || !slices.Equal(j.ConcurrencyKeys, tc.keys) || !slices.Equal(j.InstanceGroups, tc.groups) || j.Impact != 0 {
			t.Errorf("%s: %s keys %v groups %v impact %d; want %s %v %v", tc.name, j.State, j.ConcurrencyKeys, j.InstanceGroups, j.Impact, tc.state, tc.keys, tc.groups)
		}
	}
}
