package command

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// launched decodes `template launch --json`.
func (e *jobEnv) launch(args ...string) launchResult {
	e.t.Helper()
	return decode[launchResult](e.t, e.binOK(append([]string{"template", "launch"}, append(args, "--json")...)...))
}

// sliceHosts returns the hosts of each slice of a launch, as `job
// inventory` prints them, and checks the slicing rules: disjoint, sizes
// within one, together the hosts selected.
func (e *jobEnv) sliceHosts(res launchResult, selected []string) [][]string {
	e.t.Helper()
	var out [][]string
	var union []string
	for k, s := range res.Slices {
		hosts, _ := scriptHosts(e.t, e.binOK("job", "inventory", s.ID))
		if s.SliceNumber != k+1 || len(hosts) != s.Hosts {
			e.t.Fatalf("slice %d: number %d, %d hosts printed, document says %d", k+1, s.SliceNumber, len(hosts), s.Hosts)
		}
		out = append(out, hosts)
		union = append(union, hosts...)
	}
	sort.Strings(union)
	if !reflect.DeepEqual(union, selected) {
		e.t.Fatalf("slices hold %v, want each of %v once", union, selected)
	}
	for _, s := range out {
		if len(s) < len(out[len(out)-1]) || len(s) > len(out[0]) || len(out[0])-len(out[len(out)-1]) > 1 {
			e.t.Fatalf("slice sizes out of order or apart by more than one: %v", out)
		}
	}
	return out
}

func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

func hostRange(from, to int, skip ...int) []string {
	var out []string
	for i := from; i <= to; i++ {
		if !containsInt(skip, i) {
			out = append(out, fmt.Sprintf("h%02d", i))
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestEveryValueReachesEverySlice launches a template whose every field is
// set, without prompts and then with a value for every prompt, and checks
// the container and each slice.
func TestEveryValueReachesEverySlice(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "fleet", e.writeFile("fleet.json", ansibleHosts(10)))
	e.binOK("inventory", "import", "fleet2", e.writeFile("fleet2.json", ansibleHosts(8)))
	e.binOK("project", "create", "site", "--directory", "/srv/site")
	var prompts []string
	for _, p := range []string{"payload", "extra-vars", "inventory", "limit", "slice-count", "forks", "verbosity", "diff-mode",
		"check-mode", "job-tags", "skip-tags", "timeout", "priority", "instance-groups", "tags"} {
		prompts = append(prompts, "--prompt", p)
	}
	e.binOK(append([]string{"template", "create", "deploy", "--action", "echo", "--payload", `{"a": 1, "b": 2}`,
		"--project", "site", "--playbook", "play/site.yml", "--extra-vars", `{"x": 1, "y": 2}`, "--forks", "7",
		"--verbosity", "2", "--diff-mode", "--job-tags", "web", "--skip-tags", "db", "--inventory", "fleet",
		"--limit", "all:!h10", "--slices", "3", "--allow-simultaneous", "--timeout", "90s", "--priority", "42",
		"--instance-group", "edge", "--instance-group", "core", "--tag", "t1", "--tag", "t2", "--description", "d"}, prompts...)...)

	check := func(what string, j *jobs.Job, want jobs.Job, wantPayload, wantVars string) {
		t.Helper()
		a := j.Ansible
		if a == nil {
			t.Fatalf("%s: no ansible parameters", what)
		}
		w := want.Ansible
		if j.Action != "echo" || compactJSON(j.Payload) != wantPayload || compactJSON(a.ExtraVars) != wantVars ||
			a.Project != "site" || a.Playbook != "play/site.yml" || a.Forks != w.Forks || a.Verbosity != w.Verbosity ||
			a.DiffMode != w.DiffMode || a.CheckMode != w.CheckMode || a.JobTags != w.JobTags || a.SkipTags != w.SkipTags ||
			j.Inventory != want.Inventory || j.Limit != want.Limit || !j.AllowSimultaneous || j.Timeout != want.Timeout ||
			j.Priority != want.Priority || !reflect.DeepEqual(j.InstanceGroups, want.InstanceGroups) ||
			!reflect.DeepEqual(j.Tags, want.Tags) || j.Template != "deploy" || j.LaunchType != jobs.LaunchManual ||
			j.InventorySnapshot == "" || j.CreatedBy != "cli" || j.TemplateSliceCount != 3 {
			b, _ := json.MarshalIndent(j, "", "  ")
			t.Fatalf("%s does not carry the launch's values:\n%s", what, b)
		}
	}

	// Without prompts: the template's values.
	res := e.launch("deploy")
	want := jobs.Job{Timeout: 90, Priority: 42, Tags: []string{"t1", "t2"}, Launch: jobs.Launch{
		Inventory: "fleet", Limit: "all:!h10", InstanceGroups: []string{"edge", "core"},
		Ansible: &jobs.Ansible{Forks: 7, Verbosity: 2, DiffMode: true, JobTags: "web", SkipTags: "db"}}}
	c := res.Job
	if c.Kind != jobs.KindWorkflow || !c.Sliced || c.State != jobs.Pending || c.SliceCount != 3 || c.Hosts != 9 ||
		len(c.NestedJobs) != 3 || len(res.Slices) != 3 || c.LaunchValues != nil {
		t.Fatalf("container: %+v", c)
	}
	check("container", c, want, `{"a":1,"b":2}`, `{"x":1,"y":2}`)
	for k, s := range res.Slices {
		check(fmt.Sprintf("slice %d", k+1), s, want, `{"a":1,"b":2}`, `{"x":1,"y":2}`)
		if s.Kind != jobs.KindJob || s.ParentJob != c.ID || s.SliceNumber != k+1 || s.SliceCount != 3 || s.Hosts != 3 ||
			s.State != jobs.Pending || s.InventorySnapshot != c.InventorySnapshot || c.NestedJobs[k] != s.ID {
			t.Fatalf("slice %d: %+v", k+1, s)
		}
	}
	e.sliceHosts(res, hostRange(1, 9))
	// The template names instance groups: the slices wait for the
	// scheduler, which places them on executors of those groups. The
	// container is never queued nor pending in the index.
	if n, _ := e.store.PendingCount(e.ctx()); n != 3 {
		t.Fatalf("%d pending jobs, want 3 (the slices)", n)
	}
	if n, _ := e.store.Queue().Len(e.ctx()); n != 0 {
		t.Fatalf("%d queue entries, want none", n)
	}

	// With a value for every prompt.
	res = e.launch("deploy", "--payload", `{"b": 3}`, "--extra-vars", `{"y": 9}`, "--inventory", "fleet2", "--limit", "even",
		"--slices", "4", "--forks", "9", "--verbosity", "4", "--diff-mode=false", "--check-mode", "--job-tags", "a",
		"--skip-tags", "b", "--timeout", "30s", "--priority", "5", "--instance-group", "other", "--tag", "z")
	want = jobs.Job{Timeout: 30, Priority: 5, Tags: []string{"z"}, Launch: jobs.Launch{
		Inventory: "fleet2", Limit: "even", InstanceGroups: []string{"other"},
		Ansible: &jobs.Ansible{Forks: 9, Verbosity: 4, CheckMode: true, JobTags: "a", SkipTags: "b"}}}
	c = res.Job
	check("container", c, want, `{"a":1,"b":3}`, `{"x":1,"y":9}`)
	if c.SliceCount != 4 || c.Hosts != 4 || len(res.Slices) != 4 {
		t.Fatalf("prompted container: %+v", c)
	}
	lv := c.LaunchValues
	if lv == nil || *lv.Limit != "even" || *lv.SliceCount != 4 || *lv.Inventory != "fleet2" || compactJSON(lv.Payload) != `{"b":3}` ||
		*lv.DiffMode || !*lv.CheckMode || *lv.Timeout != 30 || !reflect.DeepEqual(lv.Fields(), []string{"payload", "extra-vars",
		"inventory", "limit", "slice-count", "forks", "verbosity", "diff-mode", "check-mode", "job-tags", "skip-tags",
		"timeout", "priority", "instance-groups", "tags"}) {
		t.Fatalf("launch values kept on the container: %+v", lv)
	}
	for k, s := range res.Slices {
		check(fmt.Sprintf("prompted slice %d", k+1), s, want, `{"a":1,"b":3}`, `{"x":1,"y":9}`)
	}
	e.sliceHosts(res, []string{"h02", "h04", "h06", "h08"})
}

// TestLaunchPlainOrSliced covers the slice count rules: 0 or 1 launches a
// plain job; the template's count is reduced to the hosts there are; a
// prompted count the hosts cannot fill is refused; the limit counts first.
// A plain job is created PENDING, for the scheduler.
func TestLaunchPlainOrSliced(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "three", e.writeFile("three.json", ansibleHosts(3)))
	e.binOK("template", "create", "zero", "--action", "echo", "--inventory", "three")
	e.binOK("template", "create", "one", "--action", "echo", "--inventory", "three", "--slices", "1", "--prompt", "slice-count")
	e.binOK("template", "create", "five", "--action", "echo", "--inventory", "three", "--slices", "5", "--prompt", "slice-count", "--prompt", "limit")
	e.binOK("template", "create", "noinv", "--action", "echo", "--slices", "4", "--prompt", "slice-count")
	for _, tc := range []struct {
		args          []string
		slices, hosts int
	}{
		{[]string{"zero"}, 0, 3},
		{[]string{"one"}, 0, 3},
		{[]string{"one", "--slices", "3"}, 3, 3},
		{[]string{"five"}, 3, 3},                   // reduced silently
		{[]string{"five", "--limit", "h01"}, 0, 1}, // one host: a plain job
		{[]string{"five", "--limit", "odd", "--slices", "2"}, 2, 2},
		{[]string{"noinv"}, 0, 0},
	} {
		res := e.launch(tc.args...)
		j := res.Job
		if len(res.Slices) != tc.slices || j.Hosts != tc.hosts {
			t.Errorf("launch %v: %d slices over %d hosts, want %d over %d", tc.args, len(res.Slices), j.Hosts, tc.slices, tc.hosts)
		}
		// With no controller running, the job waits for the scheduler
		// and says so.
		if tc.slices == 0 && (j.Kind != jobs.KindJob || j.Sliced || j.State != jobs.Pending || j.Explanation != jobs.NotScheduledYet ||
			j.ParentJob != "" || j.SliceCount != 0) {
			t.Errorf("launch %v: not a plain pending job: %+v", tc.args, j)
		}
		if show := e.binOK("job", "show", j.ID); tc.slices == 0 && (!strings.Contains(show, "explanation:") || !strings.Contains(show, "waiting for the scheduler")) {
			t.Errorf("launch %v: job show does not say the job waits for the scheduler:\n%s", tc.args, show)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"five", "--slices", "5"}, "the inventory has 3 hosts (enabled, within the limit); cannot make 5 slices"},
		{[]string{"five", "--limit", "odd", "--slices", "3"}, "has 2 hosts"},
		{[]string{"five", "--limit", "nosuch", "--slices", "2"}, "has 0 hosts"},
		{[]string{"noinv", "--slices", "2"}, "has no inventory"},
		{[]string{"one", "--slices", "0"}, "slice count 0"},
	} {
		before := e.tree()
		_, errOut, code := e.bin(append([]string{"template", "launch"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("launch %v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
		if !reflect.DeepEqual(before, e.tree()) {
			t.Errorf("launch %v was refused but wrote", tc.args)
		}
	}
	if _, errOut, code := e.bin("template", "launch", "nosuch"); code != 1 || !strings.Contains(errOut, "template nosuch does not exist") {
		t.Errorf("launch of a missing template: exit %d, %q", code, errOut)
	}
}

// TestSlicesSeeOneSnapshot changes the inventory after a launch: every
// slice still runs over the hosts it was launched with.
func TestSlicesSeeOneSnapshot(t *testing.T) {
	e := newJobEnv(t)
	e.binOK("inventory", "import", "inv", e.writeFile("a.json", ansibleHosts(6)))
	e.binOK("template", "create", "tpl", "--action", "echo", "--inventory", "inv", "--slices", "3")
	res := e.launch("tpl")
	before := e.sliceHosts(res, hostRange(1, 6))
	e.binOK("inventory", "import", "inv", e.writeFile("b.json", `{"all": {"hosts": ["other1", "other2"]}}`))
	e.binOK("inventory", "hosts", "inv", "--disable", "other1")
	after := e.sliceHosts(res, hostRange(1, 6))
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("slices changed with the inventory: %v, then %v", before, after)
	}
	if got, _ := scriptHosts(t, e.binOK("inventory", "script", "inv")); !reflect.DeepEqual(got, []string{"other2"}) {
		t.Fatalf("the inventory itself: %v", got)
	}
	// A new launch sees the new content: one host, a plain job.
	if r := e.launch("tpl"); len(r.Slices) != 0 || r.Job.Hosts != 1 || r.Job.InventorySnapshot == res.Job.InventorySnapshot {
		t.Fatalf("launch after the change: %+v", r.Job)
	}
	// The pinned snapshot keeps the inventory from being deleted.
	if _, errOut, code := e.bin("inventory", "delete", "inv"); code != 1 || !strings.Contains(errOut, "runs over inventory inv") {
		t.Fatalf("delete of an inventory in use: exit %d, %q", code, errOut)
	}
}
