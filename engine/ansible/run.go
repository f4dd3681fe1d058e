package ansible

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/credential"
)

// DefaultBinary is where Debian's ansible-core installs ansible-playbook.
const DefaultBinary = "/usr/bin/ansible-playbook"

// DefaultKillGrace is how long ansible-playbook may take to stop after an
// interrupt before its process group is killed.
const DefaultKillGrace = 5 * time.Second

// maxLine bounds one line of output or one event; the callback plugin
// bounds results well below it.
const maxLine = 8 << 20

// Statuses of a run, as ansible-runner names them.
const (
	StatusSuccessful = "successful"
	StatusFailed     = "failed"
	StatusCanceled   = "canceled"
	StatusTimeout    = "timeout"
)

// RCCanceled is the return code of a canceled or timed-out run, as
// ansible-runner reports it.
const RCCanceled = 254

// FindBinary returns the ansible-playbook to run: path when given, else
// DefaultBinary, else the one on PATH.
func FindBinary(path string) (string, error) {
	missing := func(what string) error {
		return fmt.Errorf("%w: %s; install Debian's ansible-core package (apt-get install ansible-core)", ErrNotInstalled, what)
	}
	if path != "" {
		fi, err := os.Stat(path)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", missing(path + " is not an executable file")
		}
		return path, nil
	}
	if fi, err := os.Stat(DefaultBinary); err == nil && !fi.IsDir() {
		return DefaultBinary, nil
	}
	p, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return "", missing("no " + DefaultBinary + " and none on PATH")
	}
	return p, nil
}

// StartInfo describes a started ansible-playbook, with secrets redacted.
type StartInfo struct {
	Command []string          `json:"command"`
	Cwd     string            `json:"cwd"`
	Env     map[string]string `json:"env"`
	PID     int               `json:"pid"`
}

// Run is one run of ansible-playbook in a private data directory, laid out
// as ansible-runner lays it out: inventory/, env/, project/ (a transmitted
// run) and artifacts/<ident>/ with job_events/, stdout, rc, status and
// command.
type Run struct {
	// Dir is the private data directory; it is created (0700) if missing.
	// The caller removes it.
	Dir string
	// Ident names the artifacts directory (default: a new uuid).
	Ident string
	// Payload says what to run; it is validated again.
	Payload Payload
	// ProjectDir, when set, replaces the payload's project directory (a
	// transmitted run has the project in Dir/project).
	ProjectDir string
	// InventoryPath, when set, is the inventory to use (a file or
	// directory the caller checked) instead of the payload's.
	InventoryPath string
	// Binary is ansible-playbook's path (see FindBinary).
	Binary string
	// Credentials are the resolved credentials of the payload: their files
	// are written into Dir/env for the run only and removed after it.
	Credentials []*credential.Credential
	// Redactor, when set, gets every secret of Credentials; events, output
	// and artifacts pass through it.
	Redactor *Redactor
	// OnStart is called once ansible-playbook has started.
	OnStart func(StartInfo)
	// OnEvent is called for every event, in order, redacted and counted.
	OnEvent func(Event)
	// KillGrace is how long ansible-playbook may take to stop after an
	// interrupt (default DefaultKillGrace).
	KillGrace time.Duration
	// Logger receives the run's log (default: none).
	Logger *zap.Logger
}

// Outcome is how a run ended.
type Outcome struct {
	// RC is ansible-playbook's exit code (RCCanceled when canceled or timed out).
	RC int
	// Status is StatusSuccessful, StatusFailed, StatusCanceled or StatusTimeout.
	Status string
	// Recap is the play recap per host; nil when the run ended before it.
	Recap map[string]action.HostCounts
	// Hosts summarizes Recap; nil when there is none.
	Hosts *action.HostSummary
	// Artifacts is what set_stats recorded for the run (a JSON object,
	// redacted); nil when nothing was.
	Artifacts json.RawMessage
	// Events counts the events.
	Events int
	// ArtifactDir is Dir/artifacts/<ident>.
	ArtifactDir string
	// LastError is the last error line of the output, for a run that
	// failed before its recap (a syntax error, a missing file).
	LastError string
}

// Message describes the outcome for the job's status message.
func (o Outcome) Message() string {
	var b strings.Builder
	if o.Hosts != nil {
		h := o.Hosts
		fmt.Fprintf(&b, "%d hosts: ok=%d changed=%d failed=%d unreachable=%d skipped=%d", h.Hosts, h.OK, h.Changed, h.Failed, h.Unreachable, h.Skipped)
	}
	if o.RC != 0 {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "ansible-playbook %s (rc %d)", o.Status, o.RC)
		if o.Hosts != nil && len(o.Hosts.FailedHosts) > 0 {
			fmt.Fprintf(&b, "; failed hosts: %s", strings.Join(o.Hosts.FailedHosts, ", "))
		}
		if o.Hosts != nil && len(o.Hosts.UnreachableHosts) > 0 {
			fmt.Fprintf(&b, "; unreachable hosts: %s", strings.Join(o.Hosts.UnreachableHosts, ", "))
		}
		if (o.Hosts == nil || o.Hosts.Failed+o.Hosts.Unreachable == 0) && o.LastError != "" {
			fmt.Fprintf(&b, ": %s", o.LastError)
		}
	}
	return b.String()
}

// Execute runs ansible-playbook and returns once it and every process it
// started have ended. When ctx ends, the process group is interrupted and,
// after KillGrace, killed; the outcome then says canceled or timeout. An
// error means the run could not start (bad payload, ansible-playbook
// missing, private data directory not writable).
func (r *Run) Execute(ctx context.Context) (Outcome, error) {
	log := r.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := r.Payload.validate(r.InventoryPath == ""); err != nil {
		return Outcome{}, err
	}
	bin, err := FindBinary(r.Binary)
	if err != nil {
		return Outcome{}, err
	}
	if r.Ident == "" {
		r.Ident = uuid.NewString()
	}
	if r.Redactor == nil {
		r.Redactor = &Redactor{}
	}
	project := r.Payload.ProjectDir
	if r.ProjectDir != "" {
		project = r.ProjectDir
	}
	if project == "" || r.Payload.InventorySource != nil && r.InventoryPath == "" {
		return Outcome{}, fmt.Errorf("%w: the payload names its project or inventory by source; resolve them first (Sources.Resolve)", ErrPayload)
	}
	playbook, err := ResolvePlaybook(project, r.Payload.Playbook)
	if err != nil {
		return Outcome{}, err
	}
	prep, err := r.prepare(project, playbook)
	if err != nil {
		return Outcome{}, err
	}
	defer prep.cleanup()
	out := Outcome{ArtifactDir: prep.artifacts}

	evR, evW, err := os.Pipe()
	if err != nil {
		return out, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		evR.Close()
		evW.Close()
		return out, err
	}
	cmd := exec.Command(bin, prep.args...)
	cmd.Dir = project
	cmd.Env = prep.env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, outW
	cmd.ExtraFiles = []*os.File{evW} // fd 3: JOBENGINE_EVENTS_FD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		evR.Close()
		evW.Close()
		outR.Close()
		outW.Close()
		return out, fmt.Errorf("starting %s: %w", bin, err)
	}
	evW.Close()
	outW.Close()
	pgid := cmd.Process.Pid
	log.Debug("ansible-playbook started", zap.Int("pid", pgid), zap.String("playbook", r.Payload.Playbook))
	info := prep.info
	info.PID = pgid
	r.writeJSON(filepath.Join(prep.artifacts, "command"), info)
	if r.OnStart != nil {
		r.OnStart(info)
	}

	lines := make(chan rawLine, 256)
	var readers sync.WaitGroup
	readers.Add(2)
	go readLines(&readers, evR, true, lines)
	go readLines(&readers, outR, false, lines)
	go func() { readers.Wait(); close(lines) }()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	grace := r.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	stdout, err := os.OpenFile(filepath.Join(prep.artifacts, "stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		stdout = nil
	}
	sink := &eventSink{run: r, dir: filepath.Join(prep.artifacts, "job_events"), stdout: stdout}

	var waitErr error
	var killTimer <-chan time.Time
	done, stopped := ctx.Done(), false
	linesCh := lines
	for linesCh != nil || exited != nil {
		select {
		case l, ok := <-linesCh:
			if !ok {
				linesCh = nil
				continue
			}
			sink.handle(l, &out)
		case waitErr = <-exited:
			exited = nil
			// Whatever the playbook left running in its group goes too,
			// and the pipes close even if a stray process holds them.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			deadline := time.Now().Add(2 * time.Second)
			_ = evR.SetReadDeadline(deadline)
			_ = outR.SetReadDeadline(deadline)
		case <-done:
			done, stopped = nil, true
			log.Debug("stopping ansible-playbook", zap.Int("pid", pgid), zap.Error(ctx.Err()))
			_ = syscall.Kill(-pgid, syscall.SIGINT)
			killTimer = time.After(grace)
		case <-killTimer:
			killTimer = nil
			log.Warn("ansible-playbook did not stop after an interrupt; killing its process group", zap.Int("pid", pgid), zap.Duration("grace", grace))
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	evR.Close()
	outR.Close()
	if stdout != nil {
		stdout.Close()
	}

	out.Events = sink.counter
	out.LastError = sink.lastError
	if sink.recap != nil {
		out.Recap = sink.recap
		out.Hosts = action.SummarizeHosts(sink.recap)
	}
	out.Artifacts = sink.artifacts
	var ee *exec.ExitError
	switch {
	case stopped && errors.Is(ctx.Err(), context.DeadlineExceeded):
		out.RC, out.Status = RCCanceled, StatusTimeout
	case stopped:
		out.RC, out.Status = RCCanceled, StatusCanceled
	case waitErr == nil:
		out.RC, out.Status = 0, StatusSuccessful
	case errors.As(waitErr, &ee):
		out.RC = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			out.RC = 128 + int(ws.Signal())
		}
		out.Status = StatusFailed
	default:
		return out, fmt.Errorf("waiting for ansible-playbook: %w", waitErr)
	}
	_ = os.WriteFile(filepath.Join(prep.artifacts, "rc"), []byte(strconv.Itoa(out.RC)), 0o600)
	_ = os.WriteFile(filepath.Join(prep.artifacts, "status"), []byte(out.Status), 0o600)
	log.Debug("ansible-playbook ended", zap.Int("rc", out.RC), zap.String("status", out.Status), zap.Int("events", out.Events))
	return out, nil
}

func (r *Run) writeJSON(path string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		_ = os.WriteFile(path, r.Redactor.JSON(data), 0o600)
	}
}

// prepared is a run's command line, environment and files.
type prepared struct {
	args      []string
	env       []string
	info      StartInfo
	artifacts string
	cleanup   func()
}

// prepare writes the private data directory and builds the command.
func (r *Run) prepare(project, playbook string) (*prepared, error) {
	for _, d := range []string{"", "env", "tmp"} {
		if err := os.MkdirAll(filepath.Join(r.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("private data directory: %w", err)
		}
	}
	artifacts := filepath.Join(r.Dir, "artifacts", r.Ident)
	if err := os.MkdirAll(filepath.Join(artifacts, "job_events"), 0o700); err != nil {
		return nil, fmt.Errorf("private data directory: %w", err)
	}
	inv := r.InventoryPath
	if inv == "" {
		var err error
		if inv, err = WriteInventory(r.Dir, r.Payload.Inventory); err != nil {
			return nil, fmt.Errorf("private data directory: %w", err)
		}
	}
	cb, err := writeCallback(filepath.Join(r.Dir, "callback"))
	if err != nil {
		return nil, fmt.Errorf("private data directory: %w", err)
	}
	args := []string{"-i", inv}
	p := r.Payload
	if p.Limit != "" {
		args = append(args, "--limit", p.Limit)
	}
	if len(p.ExtraVars) > 0 {
		ev := filepath.Join(r.Dir, "env", "extravars")
		if err := os.WriteFile(ev, p.ExtraVars, 0o600); err != nil {
			return nil, fmt.Errorf("private data directory: %w", err)
		}
		args = append(args, "--extra-vars", "@"+ev)
	}
	args = append(args, "--forks", strconv.Itoa(p.EffectiveForks()))
	if p.Verbosity > 0 {
		args = append(args, "-"+strings.Repeat("v", p.Verbosity))
	}
	if p.Diff {
		args = append(args, "--diff")
	}
	if p.Check {
		args = append(args, "--check")
	}
	if p.Tags != "" {
		args = append(args, "--tags", p.Tags)
	}
	if p.SkipTags != "" {
		args = append(args, "--skip-tags", p.SkipTags)
	}
	set := map[string]string{
		"ANSIBLE_STDOUT_CALLBACK":     callbackName,
		"ANSIBLE_CALLBACK_PLUGINS":    cb,
		"ANSIBLE_NOCOLOR":             "True",
		"ANSIBLE_FORCE_COLOR":         "False",
		"ANSIBLE_RETRY_FILES_ENABLED": "False",
		"ANSIBLE_LOCAL_TEMP":          filepath.Join(r.Dir, "tmp"),
		"PYTHONUNBUFFERED":            "1",
		"JOBENGINE_EVENTS_FD":         "3",
	}
	creds, err := materialize(filepath.Join(r.Dir, "env"), r.Credentials)
	if err != nil {
		return nil, err
	}
	for _, c := range r.Credentials {
		r.Redactor.Add(c.SecretValues()...)
	}
	args = append(args, creds.args...)
	for k, v := range creds.env {
		set[k] = v
	}
	// Relative to the project, the working directory, as ansible-runner
	// runs it: events name the playbook as the project does.
	args = append(args, filepath.Clean(r.Payload.Playbook))

	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		// The engine's own settings (Elasticsearch password, key file)
		// are not the playbook's business.
		if strings.HasPrefix(k, "JOBENGINE_") {
			continue
		}
		if _, ours := set[k]; ours {
			continue
		}
		env = append(env, kv)
	}
	shown := map[string]string{}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+set[k])
		shown[k] = r.Redactor.String(set[k])
	}
	cmdline := make([]string, 0, len(args)+1)
	cmdline = append(cmdline, "ansible-playbook")
	for _, a := range args {
		cmdline = append(cmdline, r.Redactor.String(a))
	}
	return &prepared{
		args: args, env: env, artifacts: artifacts, cleanup: creds.cleanup,
		info: StartInfo{Command: cmdline, Cwd: project, Env: shown},
	}, nil
}

// rawLine is a line read from ansible-playbook: an event from the callback
// plugin, or a line of its own output (before the plugin is loaded, or
// written around Ansible's display).
type rawLine struct {
	data   []byte
	plugin bool
}

func readLines(wg *sync.WaitGroup, f io.Reader, plugin bool, out chan<- rawLine) {
	defer wg.Done()
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			out <- rawLine{data: line, plugin: plugin}
		}
		if err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, cutting a line longer than
// maxLine (the rest is read and dropped).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= maxLine {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		return line, err
	}
}

// eventSink numbers events, writes them as artifacts and passes them on.
type eventSink struct {
	run       *Run
	dir       string
	stdout    *os.File
	counter   int
	lines     int
	recap     map[string]action.HostCounts
	artifacts json.RawMessage
	lastError string
}

func (s *eventSink) handle(l rawLine, out *Outcome) {
	r := s.run
	var ev Event
	if l.plugin {
		var err error
		ev, err = DecodeEvent(r.Redactor.JSON(l.data))
		if err != nil {
			ev = Event{Event: EventVerbose, Stdout: r.Redactor.String(string(l.data))}
		}
	} else {
		text := r.Redactor.String(strings.TrimRight(string(l.data), "\r"))
		ev = Event{Event: EventVerbose, Stdout: text}
		switch {
		case strings.HasPrefix(text, "ERROR!") || strings.HasPrefix(text, "[ERROR]"):
			ev.Event = EventError
		case strings.HasPrefix(text, "[WARNING]") || strings.HasPrefix(text, "[DEPRECATION WARNING]"):
			ev.Event = EventWarning
		}
	}
	if ev.UUID == "" {
		ev.UUID = uuid.NewString()
	}
	if ev.Created == "" {
		ev.Created = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	}
	if len(ev.EventData) == 0 {
		ev.EventData = json.RawMessage("{}")
	}
	s.counter++
	ev.Counter = s.counter
	ev.RunnerIdent = r.Ident
	ev.StartLine = s.lines
	if ev.Stdout != "" {
		s.lines += strings.Count(ev.Stdout, "\n") + 1
	}
	ev.EndLine = s.lines
	if ev.Event == EventError || (ev.Event == EventVerbose && strings.Contains(ev.Stdout, "ERROR!")) {
		s.lastError = firstLine(ev.Stdout, 300)
	}
	if ev.Event == EventStats {
		if recap, err := ev.Recap(); err == nil {
			s.recap = recap
		}
		s.artifacts = ev.Artifacts()
	}
	if data, err := json.Marshal(ev); err == nil {
		_ = os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%d-%s.json", ev.Counter, ev.UUID)), data, 0o600)
	}
	if s.stdout != nil && ev.Stdout != "" {
		_, _ = s.stdout.WriteString(ev.Stdout + "\n")
	}
	if r.OnEvent != nil {
		r.OnEvent(ev)
	}
}

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
