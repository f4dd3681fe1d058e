package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/credential"
)

// Worker runs the job of a transmit stream and streams its results back.
type Worker struct {
	// PrivateDataDir is where the run happens; empty: a temporary
	// directory, deleted afterwards. A given directory is kept, unless
	// Delete, which wipes it before and after the run.
	PrivateDataDir string
	Delete         bool
	// Keepalive, when positive, sends a keepalive event whenever nothing
	// was sent for that long (ansible-runner 2.3.1's processor does not
	// know keepalive events: leave it 0 for it).
	Keepalive time.Duration
	// Registry holds the actions a job that is not a playbook may name.
	Registry *action.Registry
	// AnsibleBinary is ansible-playbook's path (default: ansible.FindBinary).
	AnsibleBinary string
	// KillGrace is how long a canceled run may take to stop.
	KillGrace time.Duration
	Logger    *zap.Logger
}

// Run reads a transmit stream from in, runs its job and writes the result
// stream to out: status lines, events, keepalives, the final status with
// the return code, an archive of the artifacts and the end marker. Bad
// input gives an error status naming what was wrong, then the end marker.
// When ctx ends, or out cannot be written (the other side is gone), the
// run is canceled. It returns the final status.
func (w *Worker) Run(ctx context.Context, in io.Reader, out io.Writer) (Status, error) {
	log := w.Logger
	if log == nil {
		log = zap.NewNop()
	}
	sw := NewWriter(out)
	fail := func(err error) (Status, error) {
		st := Status{Status: StatusError, JobExplanation: err.Error()}
		_ = sw.Status(st)
		_ = sw.EOF()
		return st, err
	}
	dir, cleanup, err := w.privateDir()
	if err != nil {
		return fail(err)
	}
	defer cleanup()
	lock, err := LockRun(dir)
	if err != nil {
		return fail(err)
	}
	defer lock.Release()

	kw, err := receive(in, dir)
	if err != nil {
		return fail(err)
	}
	k, ignored, err := ParseKwargs(kw)
	if err != nil {
		return fail(err)
	}
	if len(ignored) > 0 {
		log.Debug("ignoring kwargs a jobengine worker does not use", zap.Strings("kwargs", ignored))
	}
	info, creds, err := readJobFiles(dir)
	if err != nil {
		return fail(err)
	}
	ident := k.Ident
	if ident == "" && info != nil {
		ident = strings.TrimPrefix(info.ID, "job/")
	}
	if ident == "" {
		ident = uuid.NewString()
	}
	if strings.ContainsAny(ident, "/\\") || ident == "." || ident == ".." {
		return fail(&StreamError{Reason: fmt.Sprintf("kwargs: ident %q is not a directory name", ident)})
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timeout := time.Duration(k.Timeout) * time.Second
	if info != nil && info.Timeout > 0 {
		timeout = time.Duration(info.Timeout * float64(time.Second))
	}
	if timeout > 0 {
		var c context.CancelFunc
		runCtx, c = context.WithTimeout(runCtx, timeout)
		defer c()
	}
	// A write that fails means the other side is gone: stop the run.
	ew := &eventWriter{w: sw, onErr: func(err error) { cancel(fmt.Errorf("writing the result stream: %w", err)) }}
	ew.touch()
	stopKeepalive := ew.keepalive(w.Keepalive)
	defer stopKeepalive()

	ew.status(Status{Status: StatusStarting, RunnerIdent: ident})
	var res runResult
	if info != nil && info.Action != "ansible_playbook" {
		res = w.runAction(runCtx, dir, ident, info, ew)
	} else {
		res = w.runPlaybook(runCtx, dir, ident, k, creds, ew, log)
	}
	stopKeepalive()
	final := Status{Status: res.status, RunnerIdent: ident, RC: &res.rc, JobExplanation: res.explanation}
	art := filepath.Join(dir, "artifacts", ident)
	_ = os.MkdirAll(art, 0o700)
	_ = os.WriteFile(filepath.Join(art, "rc"), []byte(strconv.Itoa(res.rc)), 0o600)
	_ = os.WriteFile(filepath.Join(art, "status"), []byte(res.status), 0o600)
	ew.status(final)
	if err := sw.Dir(art); err != nil && sw.Err() == nil {
		log.Warn("the artifacts were not sent", zap.Error(err))
	}
	_ = sw.EOF()
	if err := sw.Err(); err != nil {
		return final, fmt.Errorf("writing the result stream: %w", err)
	}
	return final, nil
}

// privateDir makes the run's private data directory.
func (w *Worker) privateDir() (string, func(), error) {
	if w.PrivateDataDir == "" {
		dir, err := os.MkdirTemp("", "jobengine-worker-")
		if err != nil {
			return "", nil, err
		}
		return dir, func() { _ = os.RemoveAll(dir) }, nil
	}
	dir, err := filepath.Abs(w.PrivateDataDir)
	if err != nil {
		return "", nil, err
	}
	if w.Delete {
		if err := os.RemoveAll(dir); err != nil {
			return "", nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	return dir, func() {
		if w.Delete {
			_ = os.RemoveAll(dir)
			return
		}
		// A kept directory never keeps secrets.
		_ = os.Remove(filepath.Join(dir, credentialsFile))
	}, nil
}

// receive reads a transmit stream into dir and returns its kwargs.
func receive(in io.Reader, dir string) (json.RawMessage, error) {
	r := NewReader(in)
	var kwargs json.RawMessage
	for {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, &StreamError{Reason: "the transmit stream ended before its end marker ({\"eof\": true}); it was cut"}
		}
		if err != nil {
			return nil, err
		}
		switch m.Kind {
		case KindKwargs:
			kwargs = m.Kwargs
		case KindZip:
			f, err := r.ArchiveToTemp()
			if err != nil {
				return nil, err
			}
			err = ExtractZip(f, m.ZipSize, dir)
			f.Close()
			os.Remove(f.Name())
			if err != nil {
				return nil, err
			}
		case KindEOF:
			if kwargs == nil {
				return nil, &StreamError{Reason: "the transmit stream has no kwargs line"}
			}
			return kwargs, nil
		case KindKeepalive:
		default:
			return nil, &StreamError{Reason: "a transmit stream holds kwargs, archives and the end marker only", Excerpt: excerpt(m.Line)}
		}
	}
}

// readJobFiles reads jobengine/job.json and the credentials file, which is
// removed at once: secrets stay on disk no longer than needed.
func readJobFiles(dir string) (*JobInfo, []*credential.Credential, error) {
	var info *JobInfo
	data, err := os.ReadFile(filepath.Join(dir, jobFile))
	switch {
	case err == nil:
		info = &JobInfo{}
		if err := json.Unmarshal(data, info); err != nil || info.Action == "" {
			return nil, nil, &StreamError{Reason: jobFile + " does not describe a job", Excerpt: excerpt(data)}
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, nil, err
	}
	path := filepath.Join(dir, credentialsFile)
	data, err = os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return info, nil, nil
	}
	_ = os.Remove(path)
	if err != nil {
		return nil, nil, err
	}
	var ports []credential.Portable
	if err := json.Unmarshal(data, &ports); err != nil {
		return nil, nil, &StreamError{Reason: credentialsFile + " does not hold credentials"}
	}
	creds := make([]*credential.Credential, 0, len(ports))
	for i := range ports {
		c, err := ports[i].Open()
		if err != nil {
			return nil, nil, err
		}
		creds = append(creds, c)
	}
	return info, creds, nil
}

// runResult is how a worker's run ended.
type runResult struct {
	status      string
	rc          int
	explanation string
}

func (w *Worker) runPlaybook(ctx context.Context, dir, ident string, k Kwargs, creds []*credential.Credential, ew *eventWriter, log *zap.Logger) runResult {
	failed := func(err error) runResult {
		ew.text(ansible.EventError, ident, err.Error())
		return runResult{status: StatusFailed, rc: 1, explanation: err.Error()}
	}
	if k.Playbook == "" {
		return failed(errors.New("kwargs: no \"playbook\" to run"))
	}
	diff, check, err := cmdlineFlags(k.Cmdline)
	if err != nil {
		return failed(err)
	}
	// Without an inventory argument, ansible-runner uses the directory
	// inventory/ of the private data directory; so does this worker.
	invArg := k.Inventory
	if invArg == "" {
		invArg = "inventory"
	}
	inv := filepath.Join(dir, invArg)
	if _, err := os.Stat(inv); err != nil {
		return failed(fmt.Errorf("kwargs: inventory %s is not in the private data directory", invArg))
	}
	project := filepath.Join(dir, "project")
	run := &ansible.Run{
		Dir: dir, Ident: ident, ProjectDir: project, InventoryPath: inv, Binary: w.AnsibleBinary, Credentials: creds,
		KillGrace: w.KillGrace, Logger: log,
		Payload: ansible.Payload{ProjectDir: project, Playbook: k.Playbook, Limit: k.Limit, ExtraVars: k.ExtraVars,
			Forks: k.Forks, Verbosity: k.Verbosity, Diff: diff, Check: check},
		OnStart: func(i ansible.StartInfo) {
			ew.status(Status{Status: StatusRunning, RunnerIdent: ident, Command: i.Command, Cwd: i.Cwd, Env: i.Env})
		},
		OnEvent: ew.event,
	}
	out, err := run.Execute(ctx)
	if err != nil {
		return failed(err)
	}
	res := runResult{status: out.Status, rc: out.RC}
	if out.RC != 0 {
		res.explanation = out.Message()
	}
	if cause := context.Cause(ctx); out.Status == ansible.StatusCanceled && cause != nil && !errors.Is(cause, context.Canceled) {
		res.explanation = cause.Error()
	}
	return res
}

// runAction runs a job of another action, its log lines and events
// streamed as events.
func (w *Worker) runAction(ctx context.Context, dir, ident string, info *JobInfo, ew *eventWriter) runResult {
	def, ok := action.Definition{}, false
	if w.Registry != nil {
		def, ok = w.Registry.Lookup(info.Action)
	}
	if !ok {
		msg := "no such action on this worker: " + info.Action
		ew.text(ansible.EventError, ident, msg)
		return runResult{status: StatusFailed, rc: 1, explanation: msg}
	}
	timeout := def.DefaultTimeout
	if info.Timeout > 0 {
		timeout = time.Duration(info.Timeout * float64(time.Second))
	}
	if _, has := ctx.Deadline(); !has && timeout > 0 {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, timeout)
		defer c()
	}
	ew.status(Status{Status: StatusRunning, RunnerIdent: ident})
	rep := &streamReporter{ew: ew, ident: ident}
	res, err := def.Runner.Run(ctx, &action.Job{ID: info.ID, Action: info.Action, Payload: info.Payload, Attempt: info.Attempt, Timeout: timeout}, rep)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return runResult{status: StatusTimeout, rc: ansible.RCCanceled, explanation: fmt.Sprintf("timed out after %s", timeout)}
	case ctx.Err() != nil:
		return runResult{status: StatusCanceled, rc: ansible.RCCanceled, explanation: "canceled"}
	case err != nil:
		ew.text(ansible.EventError, ident, err.Error())
		return runResult{status: StatusFailed, rc: 1, explanation: err.Error()}
	case res.ReturnCode != 0:
		return runResult{status: StatusFailed, rc: res.ReturnCode, explanation: res.Message}
	}
	return runResult{status: StatusSuccessful, explanation: res.Message}
}

// eventWriter numbers and writes a run's messages, remembering when it
// last wrote for keepalives.
type eventWriter struct {
	w       *Writer
	onErr   func(error)
	last    atomic.Int64
	mu      sync.Mutex
	counter int
	lines   int
	failed  atomic.Bool
}

func (e *eventWriter) touch() { e.last.Store(time.Now().UnixNano()) }

func (e *eventWriter) check(err error) {
	if err != nil && e.failed.CompareAndSwap(false, true) {
		e.onErr(err)
	}
	e.touch()
}

func (e *eventWriter) status(s Status) { e.check(e.w.Status(s)) }

// event writes an event of ansible-playbook, numbered already.
func (e *eventWriter) event(ev ansible.Event) {
	e.mu.Lock()
	e.counter = ev.Counter
	e.lines = ev.EndLine
	e.mu.Unlock()
	e.check(e.w.Event(ev))
}

// text writes an event of the worker's own.
func (e *eventWriter) text(name, ident, msg string) {
	e.mu.Lock()
	e.counter++
	ev := ansible.Event{Event: name, UUID: uuid.NewString(), Counter: e.counter, Stdout: msg, StartLine: e.lines,
		RunnerIdent: ident, Created: time.Now().UTC().Format("2006-01-02T15:04:05.000000"), EventData: json.RawMessage("{}")}
	e.lines += strings.Count(msg, "\n") + 1
	ev.EndLine = e.lines
	e.mu.Unlock()
	e.check(e.w.Event(ev))
}

// keepalive starts sending keepalives; the returned function stops them.
func (e *eventWriter) keepalive(every time.Duration) func() {
	if every <= 0 {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if time.Since(time.Unix(0, e.last.Load())) >= every {
					e.check(e.w.Keepalive())
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}

// streamReporter turns an action's reports into stream events.
type streamReporter struct {
	ew    *eventWriter
	ident string
}

func (r *streamReporter) Progress(int)       {}
func (r *streamReporter) Affected(...string) {}
func (r *streamReporter) Status(msg string)  { r.ew.text(ansible.EventVerbose, r.ident, msg) }
func (r *streamReporter) Log(_, msg string)  { r.ew.text(ansible.EventVerbose, r.ident, msg) }
func (r *streamReporter) Event(ev action.Event) {
	name := ev.Name
	if name == "" {
		name = ansible.EventVerbose
	}
	r.ew.text(name, r.ident, ev.Message)
}
