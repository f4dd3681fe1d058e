package distributor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
)

// testBuiltin is a registered distributor the override tests change.
const testBuiltin = "test_builtin"

func init() {
	Register(Definition{
		Name:     testBuiltin,
		Enabled:  false,
		Schedule: schedule.Spec{Cron: "@daily"},
		Options:  map[string]string{"keep": "7d"},
		CheckOptions: func(o map[string]string) error {
			for k := range o {
				if k != "keep" {
					return fmt.Errorf("unknown option %q", k)
				}
			}
			if _, err := ParseDuration(o["keep"]); err != nil {
				return err
			}
			return nil
		},
		Generator: func(context.Context, schedule.Tick, *Env) ([]jobs.NewJob, error) { return nil, nil },
	})
}

// writeFiles writes name → content into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDeclared(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"report.yaml": `# a comment
action: report
cron: "30 2 * * *"
time-zone: Europe/Zurich
catch-up: none
targets:
  - box/1
  - box/2
payload:
  depth: 3
  names: [a, b]
priority: 50
timeout: 10m
unique-key: "{name}/{target}"
`,
		"ping.yml":       "name: pinger\naction: ping\ninterval: 15\ndedup: always\nenabled: false\n",
		"x.yaml.example": "this: is not read\n",
		"notes.txt":      "nor this\n",
	})
	cat, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Problems) > 0 {
		t.Fatalf("problems: %v", cat.Problems)
	}
	r, err := cat.Get("report")
	if err != nil {
		t.Fatal(err)
	}
	want := Definition{Name: "report", Enabled: true, Action: "report", CatchUp: schedule.CatchUpNone,
		Schedule: schedule.Spec{Cron: "30 2 * * *", TimeZone: "Europe/Zurich"}, Targets: []string{"box/1", "box/2"},
		Priority: 50, PrioritySet: true, Timeout: 10 * time.Minute, Dedup: DedupSkip, UniqueKey: "{name}/{target}",
		Source: filepath.Join(dir, "report.yaml")}
	if r.Name != want.Name || !r.Enabled || r.Action != want.Action || r.CatchUp != want.CatchUp || r.Schedule != want.Schedule ||
		strings.Join(r.Targets, ",") != "box/1,box/2" || r.Priority != 50 || r.Timeout != want.Timeout || r.Dedup != want.Dedup ||
		r.UniqueKey != want.UniqueKey || r.Source != want.Source {
		t.Errorf("report = %+v\nwant    %+v", r, want)
	}
	if string(r.Payload) != `{"depth":3,"names":["a","b"]}` {
		t.Errorf("payload %s", r.Payload)
	}
	p, err := cat.Get("pinger")
	if err != nil {
		t.Fatal(err)
	}
	if p.Schedule.Interval != 15*time.Second || p.Dedup != DedupAlways || p.Enabled || p.Priority != 100 {
		t.Errorf("pinger = %+v (a bare number is seconds, enabled: false is kept, priority defaults to 100)", p)
	}
	for _, d := range cat.Enabled() {
		if d.Name == "pinger" || d.Name == testBuiltin {
			t.Errorf("--all would run %s, which is not enabled", d.Name)
		}
	}
	if _, err := cat.Get("nothing"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Get(nothing) = %v, want ErrUnknown", err)
	}
	if len(cat.Files) != 2 {
		t.Errorf("files read: %v; want only the .yaml and .yml ones", cat.Files)
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name, content string
		line          int
		msg           string
	}{
		{"unknown field", "action: a\ninterval: 1s\nschedule: daily\n", 3, `unknown field "schedule"`},
		{"syntax", "action: a\ninterval: 1s\n  bad: [\n", 3, ""},
		{"empty", "", 0, "empty file"},
		{"not a mapping", "- a\n- b\n", 1, "mapping of fields"},
		{"duplicate key", "action: a\ninterval: 1s\naction: b\n", 3, `"action" already defined at line 1`},
		{"priority", "action: a\ninterval: 1s\npriority: high\n", 3, "priority must be a whole number"},
		{"priority range", "action: a\ninterval: 1s\n\npriority: 1000\n", 4, "outside 0–999"},
		{"interval", "action: a\ninterval: soon\n", 2, "interval"},
		{"both schedules", "action: a\ninterval: 1s\ncron: '@daily'\n", 3, "give one"},
		{"no schedule", "action: a\npriority: 3\n", 0, "no interval, cron expression or rrule"},
		{"bad zone", "action: a\ncron: '@daily'\ntime-zone: Mars/Olympus\n", 2, "Mars/Olympus"},
		{"no action", "interval: 1s\n", 0, "no action"},
		{"bad catch-up", "action: a\ninterval: 1s\ncatch-up: all\n", 3, "catch-up"},
		{"payload", "action: a\ninterval: 1s\npayload: [1, 2]\n", 3, "payload must be a mapping"},
		{"targets", "action: a\ninterval: 1s\ntargets: x\n", 3, "list"},
		{"target and targets", "action: a\ninterval: 1s\ntarget: x\ntargets: [y]\n", 4, "give one"},
		{"two documents", "action: a\ninterval: 1s\n---\naction: b\n", 3, "one distributor per file"},
		{"bad name", "name: a/b\naction: a\ninterval: 1s\n", 1, "name"},
		{"options", "action: a\ninterval: 1s\noptions: {x: 1}\n", 3, "options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"d.yaml": tc.content, "good.yaml": "action: a\ninterval: 1s\n"})
			cat, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(cat.Problems) == 0 {
				t.Fatal("no problem reported")
			}
			p := cat.Problems[0]
			file := filepath.Join(dir, "d.yaml")
			if p.File != file || p.Line != tc.line || !strings.Contains(p.Message, tc.msg) {
				t.Errorf("problem %q (line %d), want line %d and %q", p.Error(), p.Line, tc.line, tc.msg)
			}
			wantPrefix := file + ":"
			if tc.line > 0 {
				wantPrefix = fmt.Sprintf("%s:%d: ", file, tc.line)
			}
			if !strings.HasPrefix(p.Error(), wantPrefix) {
				t.Errorf("Error() = %q, want it to start with %q", p.Error(), wantPrefix)
			}
			// The invalid file's distributor is skipped, the others run.
			if _, err := cat.Get("good"); err != nil {
				t.Errorf("the valid file next to it: %v", err)
			}
			name := "d"
			if tc.name == "bad name" {
				name = "a/b"
			}
			if _, err := cat.Get(name); !errors.Is(err, ErrConfig) {
				t.Errorf("Get(%s) = %v, want ErrConfig naming the problem", name, err)
			}
			for _, d := range cat.Enabled() {
				if d.Name == name {
					t.Errorf("the invalid distributor would run")
				}
			}
		})
	}
}

func TestLoadOverridesRegistered(t *testing.T) {
	reg, _ := Lookup(testBuiltin)
	dir := writeFiles(t, map[string]string{
		testBuiltin + ".yaml": "enabled: true\ninterval: 1s\noptions:\n  keep: 36h\n",
	})
	cat, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cat.Get(testBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Enabled || d.Schedule != (schedule.Spec{Interval: time.Second}) || d.Options["keep"] != "36h" || d.Generator == nil ||
		d.Source != filepath.Join(dir, testBuiltin+".yaml") {
		t.Errorf("overridden = %+v", d)
	}
	if reg.Options["keep"] != "7d" || reg.Schedule.Cron != "@daily" {
		t.Errorf("the registered definition changed: %+v", reg)
	}
	if err := cat.SetOption(testBuiltin, "keep", "2d"); err != nil {
		t.Fatal(err)
	}
	if d, _ := cat.Get(testBuiltin); d.Options["keep"] != "2d" {
		t.Errorf("SetOption did not apply: %v", d.Options)
	}
	if err := cat.SetOption(testBuiltin, "keep", "soon"); !errors.Is(err, ErrConfig) {
		t.Errorf("SetOption with a bad value: %v, want ErrConfig", err)
	}
	if d, _ := cat.Get(testBuiltin); d.Options["keep"] != "2d" {
		t.Errorf("a refused SetOption changed the options: %v", d.Options)
	}

	// A bad override keeps the registered distributor from running too.
	dir = writeFiles(t, map[string]string{testBuiltin + ".yaml": "options:\n  kept: 1d\n"})
	cat, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Problems) != 1 || cat.Problems[0].Line != 2 || !strings.Contains(cat.Problems[0].Message, `unknown option "kept"`) {
		t.Fatalf("problems %v", cat.Problems)
	}
	if _, err := cat.Get(testBuiltin); !errors.Is(err, ErrConfig) {
		t.Errorf("Get = %v, want ErrConfig", err)
	}
	// Go distributors decide their own jobs.
	dir = writeFiles(t, map[string]string{testBuiltin + ".yaml": "targets: [a]\n"})
	if cat, _ = Load(dir); len(cat.Problems) != 1 || cat.Problems[0].Line != 1 {
		t.Errorf("targets on a Go distributor: %v", cat.Problems)
	}
}

func TestLoadDuplicateNames(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "name: same\naction: a\ninterval: 1s\n",
		"b.yaml": "name: same\naction: b\ninterval: 1s\n",
	})
	cat, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Problems) != 1 || cat.Problems[0].File != filepath.Join(dir, "b.yaml") || cat.Problems[0].Line != 1 ||
		!strings.Contains(cat.Problems[0].Message, "a.yaml") {
		t.Errorf("problems %v", cat.Problems)
	}
	if _, err := cat.Get("same"); !errors.Is(err, ErrConfig) {
		t.Errorf("a name declared twice must not run: %v", err)
	}
}

func TestLoadMissingDir(t *testing.T) {
	cat, err := Load(filepath.Join(t.TempDir(), "nope"))
	if err != nil {
		t.Fatal(err)
	}
	if !cat.DirMissing {
		t.Error("DirMissing is false")
	}
	if _, err := cat.Get(testBuiltin); err != nil {
		t.Errorf("registered distributors are known without a directory: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0d": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "x7d", "-1d", "7days", "1.5d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// settingsSpec is a name reserved for settings, as jobs_cleanup is.
func settingsSpec() SettingsSpec {
	return SettingsSpec{
		Name: "tidy", About: "a service, not a distributor", Enabled: true,
		Schedule: schedule.Spec{Cron: "@daily"}, Options: map[string]string{"keep": "7d"},
		CheckOptions: func(opts map[string]string) error {
			for k, v := range opts {
				if k != "keep" {
					return fmt.Errorf("unknown option %q", k)
				}
				if _, err := ParseDuration(v); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

func TestLoadSettings(t *testing.T) {
	// No file: the defaults.
	cat, err := Load(writeFiles(t, nil), settingsSpec())
	if err != nil {
		t.Fatal(err)
	}
	st, err := cat.Settings("tidy")
	if err != nil || !st.Enabled || st.Source != "builtin" || st.Schedule.Cron != "@daily" || st.Options["keep"] != "7d" {
		t.Fatalf("defaults: %+v, %v", st, err)
	}
	if _, err := cat.Get("tidy"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "not a distributor") {
		t.Errorf("Get of a settings name: %v", err)
	}

	// A file overrides them and is no distributor.
	dir := writeFiles(t, map[string]string{"tidy.yaml": "enabled: false\ninterval: 1h\noptions:\n  keep: 30d\n"})
	if cat, err = Load(dir, settingsSpec()); err != nil {
		t.Fatal(err)
	}
	st, err = cat.Settings("tidy")
	if err != nil || st.Enabled || st.Schedule != (schedule.Spec{Interval: time.Hour}) || st.Options["keep"] != "30d" ||
		st.Source != filepath.Join(dir, "tidy.yaml") {
		t.Fatalf("from the file: %+v, %v", st, err)
	}
	for _, d := range cat.Defs() {
		if d.Name == "tidy" {
			t.Error("a settings file became a distributor")
		}
	}
	if fs := cat.SettingsFiles(); len(fs) != 1 || fs[0].Name != "tidy" {
		t.Errorf("SettingsFiles = %+v", fs)
	}
	if err := cat.SetOption("tidy", "keep", "1d"); err != nil {
		t.Fatal(err)
	}
	if st, _ := cat.Settings("tidy"); st.Options["keep"] != "1d" {
		t.Errorf("SetOption did not apply: %v", st.Options)
	}
	if err := cat.SetOption("tidy", "keep", "soon"); !errors.Is(err, ErrConfig) {
		t.Errorf("SetOption with a bad value: %v", err)
	}

	// Distributor fields, a bad schedule and a bad option are problems
	// with their lines.
	dir = writeFiles(t, map[string]string{"tidy.yaml": "action: echo\ncron: 99 * * * *\noptions:\n  kept: 1d\n"})
	if cat, err = Load(dir, settingsSpec()); err != nil {
		t.Fatal(err)
	}
	if len(cat.Problems) != 1 || cat.Problems[0].Line != 1 || !strings.Contains(cat.Problems[0].Message, "action does not apply to tidy") {
		t.Fatalf("problems %v", cat.Problems)
	}
	if _, err := cat.Settings("tidy"); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "tidy.yaml:1") {
		t.Errorf("Settings of an invalid file: %v", err)
	}
	dir = writeFiles(t, map[string]string{"tidy.yaml": "cron: 99 * * * *\n"})
	if cat, _ = Load(dir, settingsSpec()); len(cat.Problems) != 1 || cat.Problems[0].Line != 1 {
		t.Errorf("bad schedule: %v", cat.Problems)
	}
	dir = writeFiles(t, map[string]string{"tidy.yaml": "interval: 1h\noptions:\n  kept: 1d\n"})
	if cat, _ = Load(dir, settingsSpec()); len(cat.Problems) != 1 || cat.Problems[0].Line != 3 || !strings.Contains(cat.Problems[0].Message, `unknown option "kept"`) {
		t.Errorf("bad option: %v", cat.Problems)
	}
}

func TestMaintenanceIsReserved(t *testing.T) {
	dir := writeFiles(t, map[string]string{"maintenance.yaml": "action: echo\ninterval: 1s\n"})
	cat, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Problems) != 1 || !strings.Contains(cat.Problems[0].Message, "maintenance services") {
		t.Errorf("problems %v", cat.Problems)
	}
}
