package distributor

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
)

func tickAt(s string) schedule.Tick {
	t, err := schedule.ParseTickID(s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestTickJobsDeclared(t *testing.T) {
	d := Definition{
		Name: "nightly", Action: "report", Schedule: schedule.Spec{Interval: 15 * time.Second},
		Targets: []string{"box/1", "box/2"}, Payload: json.RawMessage(`{"k":"v"}`), Timeout: time.Minute,
	}
	tick := tickAt("2026-05-04T10:00:15Z")
	got, err := TickJobs(d, tick, "host/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d jobs, want one per target (2)", len(got))
	}
	for i, target := range d.Targets {
		j := got[i]
		if j.Target != target || j.Action != "report" || j.Tick != tick.ID() || j.CreatedBy != "nightly@host/1" ||
			j.Priority != queue.DefaultPriority || string(j.Payload) != `{"k":"v"}` || j.Timeout != time.Minute {
			t.Errorf("job %d = %+v", i, j)
		}
		if want := "report|" + target; j.UniqueKey != want {
			t.Errorf("job %d unique key %q, want the default %q", i, j.UniqueKey, want)
		}
		if want := JobID("nightly", tick.ID(), "report\x00"+target+"\x00report|"+target); j.ID != want {
			t.Errorf("job %d id %s, want %s", i, j.ID, want)
		}
		if err := j.Validate(); err != nil {
			t.Errorf("job %d is not valid: %v", i, err)
		}
	}
	if got[0].ID == got[1].ID {
		t.Errorf("two targets share the id %s", got[0].ID)
	}

	// Every instance computes the same ids for the same tick, whoever it is.
	again, _ := TickJobs(d, tick, "other-host/2", nil)
	for i := range got {
		if again[i].ID != got[i].ID {
			t.Errorf("job %d: id %s on one instance, %s on another", i, got[i].ID, again[i].ID)
		}
	}
	// Another tick, or another distributor, gives other ids.
	next, _ := TickJobs(d, tickAt("2026-05-04T10:00:30Z"), "host/1", nil)
	other := d
	other.Name = "weekly"
	otherJobs, _ := TickJobs(other, tick, "host/1", nil)
	for i := range got {
		if next[i].ID == got[i].ID || otherJobs[i].ID == got[i].ID {
			t.Errorf("job %d: the id %s is not unique to its distributor and tick", i, got[i].ID)
		}
	}
}

func TestTickJobsPolicies(t *testing.T) {
	base := Definition{Name: "d", Action: "a", Schedule: schedule.Spec{Interval: time.Second}}
	tick := tickAt("2026-05-04T10:00:00Z")
	tests := []struct {
		name    string
		mod     func(*Definition)
		wantKey string
		target  string
	}{
		{"no target: one job, default key", func(*Definition) {}, "a|", ""},
		{"dedup always: no key", func(d *Definition) { d.Dedup = DedupAlways }, "", ""},
		{"key template", func(d *Definition) {
			d.UniqueKey = "{name}:{action}:{target}"
			d.Targets = []string{"x/1"}
		}, "d:a:x/1", "x/1"},
		{"explicit priority 0", func(d *Definition) { d.Priority, d.PrioritySet = 0, true }, "a|", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			tc.mod(&d)
			if err := d.Normalized().Validate(); err != nil {
				t.Fatal(err)
			}
			js, err := TickJobs(d, tick, "i", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(js) != 1 {
				t.Fatalf("%d jobs, want 1", len(js))
			}
			if js[0].UniqueKey != tc.wantKey || js[0].Target != tc.target {
				t.Errorf("key %q target %q, want %q %q", js[0].UniqueKey, js[0].Target, tc.wantKey, tc.target)
			}
			wantPrio := queue.DefaultPriority
			if d.PrioritySet {
				wantPrio = d.Priority
			}
			if js[0].Priority != wantPrio {
				t.Errorf("priority %d, want %d", js[0].Priority, wantPrio)
			}
		})
	}
}

func TestTickJobsGenerated(t *testing.T) {
	d := Definition{Name: "gen", Action: "default_action", Schedule: schedule.Spec{Interval: time.Second},
		Generator: func(ctx context.Context, tick schedule.Tick, env *Env) ([]jobs.NewJob, error) { return nil, nil }}
	tick := tickAt("2026-05-04T10:00:00Z")
	list := []jobs.NewJob{
		{Target: "t/1"},
		{Target: "t/1", Action: "other"},
		{Target: "t/1"}, // alike the first: a second job all the same
		{ID: "job/6f1c0a3e-8a4e-4a4b-9a57-1b2f3c4d5e6f", Target: "t/2", UniqueKey: "mine"},
	}
	js, err := TickJobs(d, tick, "i", list)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 4 {
		t.Fatalf("%d jobs, want 4", len(js))
	}
	if js[0].Action != "default_action" || js[1].Action != "other" {
		t.Errorf("actions %q %q: want the definition's default where the job has none", js[0].Action, js[1].Action)
	}
	ids := map[string]bool{}
	for _, j := range js {
		if ids[j.ID] {
			t.Errorf("id %s given twice", j.ID)
		}
		ids[j.ID] = true
	}
	if js[3].ID != list[3].ID || js[3].UniqueKey != "mine" {
		t.Errorf("a job's own id and key must be kept: %+v", js[3])
	}
	// The ids only depend on the list, so a rerun of the tick finds them.
	again, _ := TickJobs(d, tick, "j", list)
	for i := range js {
		if again[i].ID != js[i].ID {
			t.Errorf("job %d: id differs between two runs of the same tick", i)
		}
	}

	d.Action = ""
	if _, err := TickJobs(d, tick, "i", []jobs.NewJob{{}}); !errors.Is(err, ErrConfig) {
		t.Errorf("a generated job without any action: %v, want ErrConfig", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Definition{Name: "d", Action: "a", Schedule: schedule.Spec{Interval: time.Second}}
	tests := []struct {
		name  string
		mod   func(*Definition)
		field string
	}{
		{"bad name", func(d *Definition) { d.Name = "a/b" }, "name"},
		{"reserved name", func(d *Definition) { d.Name = "list" }, "name"},
		{"no schedule", func(d *Definition) { d.Schedule = schedule.Spec{} }, "schedule"},
		{"bad cron", func(d *Definition) { d.Schedule = schedule.Spec{Cron: "61 * * * *"} }, "schedule"},
		{"bad catch-up", func(d *Definition) { d.CatchUp = "all" }, "catch-up"},
		{"bad dedup", func(d *Definition) { d.Dedup = "never" }, "dedup"},
		{"no action", func(d *Definition) { d.Action = "" }, "action"},
		{"bad action", func(d *Definition) { d.Action = "A B" }, "action"},
		{"priority", func(d *Definition) { d.Priority, d.PrioritySet = 1000, true }, "priority"},
		{"timeout", func(d *Definition) { d.Timeout = -time.Second }, "timeout"},
		{"payload", func(d *Definition) { d.Payload = json.RawMessage(`[1]`) }, "payload"},
		{"twice the target", func(d *Definition) { d.Targets = []string{"x", "x"} }, "targets"},
		{"key without target", func(d *Definition) { d.Targets = []string{"x", "y"}; d.UniqueKey = "{action}" }, "unique-key"},
		{"key and always", func(d *Definition) { d.Dedup = DedupAlways; d.UniqueKey = "k" }, "unique-key"},
		{"options without a generator", func(d *Definition) { d.Options = map[string]string{"x": "1"} }, "options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.mod(&d)
			field, err := d.check()
			if !errors.Is(err, ErrConfig) || field != tc.field {
				t.Errorf("check() = %q, %v; want field %q and ErrConfig", field, err, tc.field)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid definition refused: %v", err)
	}
}
