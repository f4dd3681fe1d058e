package distributor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jobengine/jobengine/engine/schedule"
)

// DefaultConfigDir is where the daemon reads distributor files.
const DefaultConfigDir = "/etc/jobengine/distributors.d"

// Problem is an error in a configuration file, with its place.
type Problem struct {
	// File is the file's path.
	File string
	// Line is the line at fault, 1-based; 0 for the file as a whole.
	Line int
	// Name is the distributor the file declares or overrides, when known.
	Name string
	// Message says what is wrong and what to do.
	Message string
}

// Error returns "file:line: message" (or "file: message").
func (p Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// fileSpec is a distributor file as written. Every field is a node, so each
// value's line is known; a zero node (Kind 0) is a field not given.
type fileSpec struct {
	Name        yaml.Node `yaml:"name"`
	Description yaml.Node `yaml:"description"`
	Enabled     yaml.Node `yaml:"enabled"`
	Action      yaml.Node `yaml:"action"`
	Interval    yaml.Node `yaml:"interval"`
	Cron        yaml.Node `yaml:"cron"`
	TimeZone    yaml.Node `yaml:"time-zone"`
	CatchUp     yaml.Node `yaml:"catch-up"`
	Target      yaml.Node `yaml:"target"`
	Targets     yaml.Node `yaml:"targets"`
	Payload     yaml.Node `yaml:"payload"`
	Priority    yaml.Node `yaml:"priority"`
	Timeout     yaml.Node `yaml:"timeout"`
	Dedup       yaml.Node `yaml:"dedup"`
	UniqueKey   yaml.Node `yaml:"unique-key"`
	Options     yaml.Node `yaml:"options"`
}

// knownFields lists the fields of a distributor file, for messages.
const knownFields = "name, description, enabled, action, interval, cron, time-zone, catch-up, target, targets, payload, priority, timeout, dedup, unique-key, options"

var (
	lineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlProblems turns a yaml.v3 error into problems with their lines.
func yamlProblems(file string, err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []Problem
	for _, m := range msgs {
		p := Problem{File: file, Message: strings.TrimPrefix(m, "yaml: ")}
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			p.Line, _ = strconv.Atoi(sub[1])
			p.Message = sub[2]
		}
		if sub := unknownRE.FindStringSubmatch(p.Message); sub != nil {
			p.Message = fmt.Sprintf("unknown field %q (the fields are: %s)", sub[1], knownFields)
		} else if strings.Contains(p.Message, "cannot unmarshal") && strings.Contains(p.Message, "fileSpec") {
			p.Message = "a distributor file is a mapping of fields (name: value), e.g. action: my_action"
		}
		out = append(out, p)
	}
	return out
}

// fileResult is one file, parsed.
type fileResult struct {
	file     string
	name     string // the distributor's name ("" when unknown)
	nameLine int
	spec     *fileSpec
	problems []Problem
}

// parseFile reads one distributor file. It never fails as a whole: what is
// wrong is in problems.
func parseFile(file string, data []byte) fileResult {
	r := fileResult{file: file}
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(file), ".yaml"), ".yml")
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var spec fileSpec
	err := dec.Decode(&spec)
	if errors.Is(err, io.EOF) {
		r.problems = append(r.problems, Problem{File: file, Message: "empty file: declare at least an action and a schedule (interval or cron)"})
		r.name = base
		return r
	}
	if err != nil {
		r.problems = append(r.problems, yamlProblems(file, err)...)
	}
	var more yaml.Node
	if err2 := dec.Decode(&more); err2 == nil {
		r.problems = append(r.problems, Problem{File: file, Line: more.Line, Message: "a second YAML document: declare one distributor per file"})
	}
	r.spec = &spec
	r.name = base
	if spec.Name.Kind != 0 {
		r.nameLine = spec.Name.Line
		var n string
		if spec.Name.Kind == yaml.ScalarNode && spec.Name.Decode(&n) == nil && n != "" {
			r.name = n
		} else {
			r.problems = append(r.problems, Problem{File: file, Line: spec.Name.Line, Message: "name must be a word such as nightly-report"})
		}
	}
	return r
}

// fieldLine returns the line of the node of a field named by check(), or
// line 0 when the file does not set it.
func (s *fileSpec) fieldLine(field string) int {
	var n *yaml.Node
	switch field {
	case "name":
		n = &s.Name
	case "schedule":
		for _, c := range []*yaml.Node{&s.Interval, &s.Cron, &s.TimeZone} {
			if c.Kind != 0 {
				n = c
				break
			}
		}
	case "catch-up":
		n = &s.CatchUp
	case "dedup":
		n = &s.Dedup
	case "action":
		n = &s.Action
	case "priority":
		n = &s.Priority
	case "timeout":
		n = &s.Timeout
	case "payload":
		n = &s.Payload
	case "targets":
		n = &s.Targets
		if n.Kind == 0 {
			n = &s.Target
		}
	case "unique-key":
		n = &s.UniqueKey
	case "options":
		n = &s.Options
	}
	if n == nil {
		return 0
	}
	return n.Line
}

// apply sets the fields the file gives on d (a registered distributor's
// definition, or the zero Definition for a declared one). It returns the
// problems of each field.
func (s *fileSpec) apply(file string, d *Definition) []Problem {
	var out []Problem
	bad := func(n *yaml.Node, format string, args ...any) {
		out = append(out, Problem{File: file, Line: n.Line, Name: d.Name, Message: fmt.Sprintf(format, args...)})
	}
	str := func(n *yaml.Node, field string, dst *string) {
		if n.Kind == 0 {
			return
		}
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			bad(n, "%s must be a string", field)
			return
		}
		*dst = n.Value
	}
	dur := func(n *yaml.Node, field string, dst *time.Duration) bool {
		if n.Kind == 0 {
			return false
		}
		v, err := parseDurationNode(n)
		if err != nil {
			bad(n, "%s: %v", field, err)
			return false
		}
		*dst = v
		return true
	}
	str(&s.Description, "description", &d.Description)
	if s.Enabled.Kind != 0 {
		if err := s.Enabled.Decode(&d.Enabled); err != nil || s.Enabled.Kind != yaml.ScalarNode {
			bad(&s.Enabled, "enabled must be true or false")
		}
	}
	str(&s.Action, "action", &d.Action)

	// A schedule given here replaces the registered one as a whole.
	var iv time.Duration
	hasInterval := dur(&s.Interval, "interval", &iv)
	var cron, zone string
	str(&s.Cron, "cron", &cron)
	str(&s.TimeZone, "time-zone", &zone)
	switch {
	case s.Interval.Kind != 0 && s.Cron.Kind != 0:
		bad(&s.Cron, "both interval (line %d) and cron are given: give one", s.Interval.Line)
	case hasInterval:
		d.Schedule = schedule.Spec{Interval: iv}
		if s.TimeZone.Kind != 0 {
			d.Schedule.TimeZone = zone // Validate explains why it does not apply
		}
	case s.Cron.Kind != 0:
		d.Schedule = schedule.Spec{Cron: cron, TimeZone: zone}
	case s.TimeZone.Kind != 0:
		d.Schedule.TimeZone = zone
	}
	if s.CatchUp.Kind != 0 {
		var v string
		str(&s.CatchUp, "catch-up", &v)
		d.CatchUp = schedule.CatchUp(v)
	}
	switch {
	case s.Target.Kind != 0 && s.Targets.Kind != 0:
		bad(&s.Targets, "both target (line %d) and targets are given: give one", s.Target.Line)
	case s.Target.Kind != 0:
		var t string
		str(&s.Target, "target", &t)
		d.Targets = []string{t}
	case s.Targets.Kind != 0:
		var ts []string
		if s.Targets.Kind != yaml.SequenceNode {
			bad(&s.Targets, "targets must be a list of hrefs, e.g. [nuvlabox/1, nuvlabox/2]")
			break
		}
		for _, c := range s.Targets.Content {
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				bad(c, "each target must be a string (an href)")
				continue
			}
			ts = append(ts, c.Value)
		}
		d.Targets = ts
	}
	if s.Payload.Kind != 0 {
		var v map[string]any
		if s.Payload.Kind != yaml.MappingNode {
			bad(&s.Payload, "payload must be a mapping (it becomes the job's JSON object)")
		} else if err := s.Payload.Decode(&v); err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			if strings.Contains(msg, "excessive aliasing") {
				msg += " (its aliases expand to too much: write the values out)"
			}
			bad(&s.Payload, "payload cannot be read: %s", msg)
		} else if b, err := json.Marshal(v); err != nil {
			bad(&s.Payload, "payload cannot be written as JSON: %v", err)
		} else {
			d.Payload = b
		}
	}
	if s.Priority.Kind != 0 {
		var p int
		if s.Priority.Kind != yaml.ScalarNode || s.Priority.Tag != "!!int" || s.Priority.Decode(&p) != nil {
			bad(&s.Priority, "priority must be a whole number 0–999, lower runs first")
		} else {
			d.Priority, d.PrioritySet = p, true
		}
	}
	dur(&s.Timeout, "timeout", &d.Timeout)
	if s.Dedup.Kind != 0 {
		var v string
		str(&s.Dedup, "dedup", &v)
		d.Dedup = Dedup(v)
		if d.Dedup == DedupAlways && s.UniqueKey.Kind == 0 {
			d.UniqueKey = ""
		}
	}
	str(&s.UniqueKey, "unique-key", &d.UniqueKey)
	if s.Options.Kind != 0 {
		if s.Options.Kind != yaml.MappingNode {
			bad(&s.Options, "options must be a mapping of settings, e.g. retention: 7d")
		} else {
			opts := map[string]string{}
			for k, v := range d.Options {
				opts[k] = v
			}
			for i := 0; i+1 < len(s.Options.Content); i += 2 {
				k, v := s.Options.Content[i], s.Options.Content[i+1]
				if v.Kind != yaml.ScalarNode {
					bad(v, "option %s must be a single value", k.Value)
					continue
				}
				opts[k.Value] = v.Value
			}
			d.Options = opts
		}
	}
	return out
}

// parseDurationNode reads a duration: "15s", "1h30m", "7d", or a number of
// seconds.
func parseDurationNode(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return 0, errors.New("want a duration such as 15s, 10m or 7d")
	}
	if n.Tag == "!!int" {
		secs, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || secs < 0 {
			return 0, fmt.Errorf("%q is not a number of seconds", n.Value)
		}
		if secs > maxDurationSeconds {
			return 0, fmt.Errorf("%s seconds is out of range (at most %d, about 292 years)", n.Value, maxDurationSeconds)
		}
		return time.Duration(secs) * time.Second, nil
	}
	return ParseDuration(n.Value)
}

// maxDurationSeconds is the longest duration a time.Duration holds, in
// whole seconds.
const maxDurationSeconds = int64(math.MaxInt64 / int64(time.Second))

// ParseDuration parses a Go duration ("90s", "1h30m") that may also count
// whole days ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 15s, 10m or 7d", s)
		}
		if n > uint64(maxDurationSeconds/86400) {
			return 0, fmt.Errorf("%q is out of range (at most %d days, about 292 years)", s, maxDurationSeconds/86400)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 15s, 10m or 7d", s)
	}
	if d > math.MaxInt64-days {
		return 0, fmt.Errorf("%q is out of range (at most about 292 years)", s)
	}
	return days + d, nil
}

// MaxFileBytes bounds a distributor file.
const MaxFileBytes = 1 << 20

// readFile reads a distributor file: a regular file (a symlink to one is
// followed) of at most MaxFileBytes. Anything else put in the directory —
// a FIFO, a device, a symlink to /dev/zero — is refused without being
// read, and the file is opened without blocking, so that nothing swapped
// in between the two looks can hold the daemon up.
func readFile(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s): a distributor file must be one", fileKind(st.Mode()))
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s): a distributor file must be one", fileKind(st.Mode()))
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes, over the %d-byte limit of a distributor file", st.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("over the %d-byte limit of a distributor file", MaxFileBytes)
	}
	return data, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// SettingsSpec reserves a name of the configuration directory for
// something that is not a distributor but was configured as one: its file,
// in the distributor format, holds its settings. jobs_cleanup, now a
// maintenance service, is such a name, so its file keeps working.
type SettingsSpec struct {
	// Name is the reserved name (the file's name, or its name field).
	Name string
	// About says what the name stands for, in messages about its file,
	// e.g. "the cleanup maintenance service, not a distributor".
	About string
	// Enabled, Schedule, CatchUp and Options are the defaults the file
	// overrides.
	Enabled  bool
	Schedule schedule.Spec
	CatchUp  schedule.CatchUp
	Options  map[string]string
	// CheckOptions validates the options after the file's; its error is
	// reported at the options' line.
	CheckOptions func(opts map[string]string) error
}

// Settings are a SettingsSpec's defaults with its file applied.
type Settings struct {
	Name string
	// Source is the file that set them, or "builtin" for the defaults.
	Source   string
	Enabled  bool
	Schedule schedule.Spec
	CatchUp  schedule.CatchUp
	Options  map[string]string
}

// settingsFields are the fields a settings file may give.
const settingsFields = "enabled, description, interval, cron, time-zone, catch-up, options"

// Catalog is the set of distributors a process knows: the registered ones
// and those declared (or overridden) by the files of a configuration
// directory, and the settings of the names reserved with SettingsSpec.
type Catalog struct {
	// Dir is the configuration directory.
	Dir string
	// DirMissing is true when Dir does not exist: only registered
	// distributors are known.
	DirMissing bool
	// Files are the distributor files read, sorted.
	Files []string
	// Problems lists every error found in the files, in file order.
	Problems []Problem
	defs     map[string]Definition
	broken   map[string][]Problem // distributors (and settings) whose file is invalid: never run
	specs    map[string]SettingsSpec
	settings map[string]Settings
}

// Load reads every *.yaml and *.yml file of dir (not its subdirectories;
// other files, such as *.yaml.example, are ignored) and merges them with
// the registered distributors. A file named after a registered distributor
// (by its name field, else its file name) overrides that distributor's
// settings. An invalid file makes its distributor unknown to Defs and
// Enabled, a registered one included: its defaults are no safe guess of
// what the file meant. The names of specs are not distributors: their
// files hold settings (see Settings). Load fails only when dir exists but
// cannot be read.
func Load(dir string, specs ...SettingsSpec) (*Catalog, error) {
	c := &Catalog{Dir: dir, defs: map[string]Definition{}, broken: map[string][]Problem{},
		specs: map[string]SettingsSpec{}, settings: map[string]Settings{}}
	for _, d := range Registered() {
		c.defs[d.Name] = d
	}
	for _, sp := range specs {
		delete(c.defs, sp.Name)
		c.specs[sp.Name] = sp
		c.settings[sp.Name] = sp.defaults()
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		c.DirMissing = true
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrConfig, dir, err)
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		c.Files = append(c.Files, filepath.Join(dir, n))
	}
	sort.Strings(c.Files)
	declaredIn := map[string]fileResult{}
	for _, f := range c.Files {
		data, err := readFile(f)
		var r fileResult
		if err != nil {
			base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".yaml"), ".yml")
			r = fileResult{file: f, name: base, problems: []Problem{{File: f, Message: fmt.Sprintf("cannot read: %v", err)}}}
		} else {
			r = parseFile(f, data)
		}
		if prev, ok := declaredIn[r.name]; ok {
			msg := fmt.Sprintf("distributor %s is also declared in %s: one file per distributor", r.name, prev.file)
			r.problems = append(r.problems, Problem{File: f, Line: r.nameLine, Message: msg})
			c.addProblems(r.name, r.problems)
			continue
		}
		declaredIn[r.name] = r
		if len(r.problems) > 0 || r.spec == nil {
			c.addProblems(r.name, r.problems)
			continue
		}
		if sp, ok := c.specs[r.name]; ok {
			c.loadSettings(sp, r)
			continue
		}
		d, registered := c.defs[r.name]
		if !registered {
			d = Definition{Name: r.name, Enabled: true}
		}
		d.Source = f
		if probs := r.spec.apply(f, &d); len(probs) > 0 {
			c.addProblems(r.name, probs)
			continue
		}
		d = d.Normalized()
		if field, err := d.check(); err != nil {
			msg := strings.TrimPrefix(err.Error(), ErrConfig.Error()+": ")
			line := r.spec.fieldLine(field)
			if line == 0 && field == "name" {
				line = r.nameLine
			}
			c.addProblems(r.name, []Problem{{File: f, Line: line, Message: msg}})
			continue
		}
		c.defs[d.Name] = d
	}
	return c, nil
}

func (c *Catalog) addProblems(name string, ps []Problem) {
	for i := range ps {
		ps[i].Name = name
	}
	c.Problems = append(c.Problems, ps...)
	c.broken[name] = append(c.broken[name], ps...)
	delete(c.defs, name)
	delete(c.settings, name)
}

func (sp SettingsSpec) defaults() Settings {
	opts := make(map[string]string, len(sp.Options))
	for k, v := range sp.Options {
		opts[k] = v
	}
	return Settings{Name: sp.Name, Source: "builtin", Enabled: sp.Enabled, Schedule: sp.Schedule, CatchUp: sp.CatchUp, Options: opts}
}

// loadSettings applies a file to the defaults of sp and checks the result.
func (c *Catalog) loadSettings(sp SettingsSpec, r fileResult) {
	f, s := r.file, r.spec
	var probs []Problem
	for _, n := range []struct {
		field string
		node  *yaml.Node
	}{{"action", &s.Action}, {"target", &s.Target}, {"targets", &s.Targets}, {"payload", &s.Payload},
		{"priority", &s.Priority}, {"timeout", &s.Timeout}, {"dedup", &s.Dedup}, {"unique-key", &s.UniqueKey}} {
		if n.node.Kind != 0 {
			probs = append(probs, Problem{File: f, Line: n.node.Line, Message: fmt.Sprintf("%s does not apply to %s (%s); its file may set %s",
				n.field, sp.Name, sp.About, settingsFields)})
		}
	}
	st := sp.defaults()
	d := Definition{Name: sp.Name, Enabled: st.Enabled, Schedule: st.Schedule, CatchUp: st.CatchUp, Options: st.Options}
	probs = append(probs, s.apply(f, &d)...)
	if len(probs) == 0 {
		check := func(field string, err error) {
			if err != nil {
				probs = append(probs, Problem{File: f, Line: s.fieldLine(field), Message: fmt.Sprintf("%s: %v", field, err)})
			}
		}
		_, err := schedule.Parse(d.Schedule)
		check("schedule", err)
		_, err = schedule.ParseCatchUp(string(d.CatchUp))
		check("catch-up", err)
		if sp.CheckOptions != nil {
			check("options", sp.CheckOptions(d.Options))
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		c.addProblems(sp.Name, probs)
		return
	}
	c.settings[sp.Name] = Settings{Name: sp.Name, Source: f, Enabled: d.Enabled, Schedule: d.Schedule, CatchUp: d.CatchUp, Options: d.Options}
}

// Settings returns the settings of a name reserved with a SettingsSpec:
// its defaults, overridden by its file. ErrConfig (listing the problems)
// when the file is invalid; ErrUnknown when the name was not reserved.
func (c *Catalog) Settings(name string) (Settings, error) {
	if _, ok := c.specs[name]; !ok {
		return Settings{}, fmt.Errorf("%w: %q has no settings", ErrUnknown, name)
	}
	if err := c.brokenErr(name); err != nil {
		return Settings{}, err
	}
	st := c.settings[name]
	st.Options = maps.Clone(st.Options)
	return st, nil
}

// IsSettings reports whether name was reserved with a SettingsSpec.
func (c *Catalog) IsSettings(name string) bool {
	_, ok := c.specs[name]
	return ok
}

// SettingsFiles returns the settings that a file set, sorted by name.
func (c *Catalog) SettingsFiles() []Settings {
	var out []Settings
	for _, st := range c.settings {
		if st.Source != "builtin" {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// brokenErr describes the problems of name's file, nil when it has none.
func (c *Catalog) brokenErr(name string) error {
	ps, ok := c.broken[name]
	if !ok {
		return nil
	}
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	what := "distributor " + name
	if sp, ok := c.specs[name]; ok {
		what = name + " (" + sp.About + ")"
	}
	return fmt.Errorf("%w: %s is declared in an invalid file: %s", ErrConfig, what, strings.Join(msgs, "; "))
}

// Defs returns every runnable distributor, sorted by name.
func (c *Catalog) Defs() []Definition {
	out := make([]Definition, 0, len(c.defs))
	for _, d := range c.defs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Enabled returns the distributors `--all` runs: those enabled, sorted.
func (c *Catalog) Enabled() []Definition {
	var out []Definition
	for _, d := range c.Defs() {
		if d.Enabled {
			out = append(out, d)
		}
	}
	return out
}

// Broken returns the names of the distributors whose file is invalid,
// sorted.
func (c *Catalog) Broken() []string {
	out := make([]string, 0, len(c.broken))
	for n := range c.broken {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the distributor called name: ErrUnknown when nothing
// declares it, ErrConfig (listing the problems) when its file is invalid.
func (c *Catalog) Get(name string) (Definition, error) {
	if err := c.brokenErr(name); err != nil {
		return Definition{}, err
	}
	if sp, ok := c.specs[name]; ok {
		return Definition{}, fmt.Errorf("%w: %s is %s", ErrUnknown, name, sp.About)
	}
	d, ok := c.defs[name]
	if !ok {
		where := c.Dir
		if c.DirMissing {
			where += " (which does not exist)"
		}
		return Definition{}, fmt.Errorf("%w: %q is not built in and no file in %s declares it (see `jobengine distributor list`)", ErrUnknown, name, where)
	}
	return d, nil
}

// SetOption sets option key of distributor name, or of the settings of a
// reserved name (a command-line override), and checks the result.
func (c *Catalog) SetOption(name, key, value string) error {
	if sp, ok := c.specs[name]; ok {
		st, err := c.Settings(name)
		if err != nil {
			return err
		}
		st.Options[key] = value
		if sp.CheckOptions != nil {
			if err := sp.CheckOptions(st.Options); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
			}
		}
		c.settings[name] = st
		return nil
	}
	d, err := c.Get(name)
	if err != nil {
		return err
	}
	opts := make(map[string]string, len(d.Options)+1)
	for k, v := range d.Options {
		opts[k] = v
	}
	opts[key] = value
	d.Options = opts
	if err := d.Validate(); err != nil {
		return err
	}
	c.defs[name] = d
	return nil
}
