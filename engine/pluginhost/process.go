package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/internal/check"
)

// plugin is one plugin binary and its pool of processes.
type plugin struct {
	host *Host
	name string // file name
	path string
	pin  string // pinned hex SHA-256, "" if none
	info Info
	log  *zap.Logger
	logs *logLimiter // shared by the plugin's processes

	mu     sync.Mutex
	procs  []*proc // live processes, busy or idle
	closed bool
}

// definitions turns a Describe answer into action definitions.
func (pl *plugin) definitions(desc *actionv1.DescribeResponse) ([]action.Definition, error) {
	if strings.TrimSpace(desc.GetPluginVersion()) == "" {
		return nil, errors.New("it reports no plugin version")
	}
	if len(desc.GetActions()) == 0 {
		return nil, errors.New("it provides no action")
	}
	seen := make(map[string]bool)
	var defs []action.Definition
	for _, a := range desc.GetActions() {
		if a.GetDefaultTimeoutMs() < 0 || a.GetMaxAttempts() < 0 {
			return nil, fmt.Errorf("action %q: negative default timeout or max attempts", a.GetName())
		}
		if seen[a.GetName()] {
			return nil, fmt.Errorf("action %q is listed twice", a.GetName())
		}
		seen[a.GetName()] = true
		d := action.Definition{
			Name:           a.GetName(),
			DefaultTimeout: time.Duration(a.GetDefaultTimeoutMs()) * time.Millisecond,
			LostPolicy:     action.LostPolicy(a.GetLostPolicy()),
			MaxAttempts:    int(a.GetMaxAttempts()),
			Description:    a.GetDescription(),
			Source:         "plugin:" + pl.path,
			Version:        desc.GetPluginVersion(),
			Runner:         &runner{pl: pl, action: a.GetName()},
		}
		if err := d.Validate(); err != nil {
			return nil, err
		}
		defs = append(defs, d.Normalized())
		pl.info.Actions = append(pl.info.Actions, d.Name)
	}
	return defs, nil
}

// acquire returns a process with room for one more job, starting one if
// none has room.
func (pl *plugin) acquire() (*proc, error) {
	limit := pl.host.opts.JobsPerProcess
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil, fmt.Errorf("plugin %q: %w", pl.name, ErrClosed)
	}
	var gone []*proc
	var found *proc
	for _, p := range pl.procs {
		if p.client.Exited() {
			gone = append(gone, p)
			continue
		}
		if found == nil && p.jobs < limit {
			found = p
		}
	}
	for _, p := range gone {
		pl.removeLocked(p)
	}
	if found != nil {
		found.jobs++
	}
	pl.mu.Unlock()
	for _, p := range gone {
		pl.log.Warn("idle plugin process had exited; it will not be reused",
			zap.Int("pid", p.pid), zap.String("stderr", p.out.tail()))
		p.terminate()
	}
	if found != nil {
		return found, nil
	}

	p, err := pl.start()
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", pl.name, err)
	}
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		p.terminate()
		return nil, fmt.Errorf("plugin %q: %w", pl.name, ErrClosed)
	}
	p.jobs = 1
	pl.procs = append(pl.procs, p)
	pl.mu.Unlock()
	return p, nil
}

// release returns a process after a run. A process whose run did not end
// cleanly is ended: it may still be busy with the run, or be broken.
func (pl *plugin) release(p *proc, clean bool) {
	pl.mu.Lock()
	p.jobs--
	end := !clean || pl.closed
	if !end && p.jobs == 0 {
		p.idleSince = time.Now()
		idle := 0
		for _, q := range pl.procs {
			if q.jobs == 0 {
				idle++
			}
		}
		end = idle > pl.host.opts.MaxIdle
	}
	if end {
		pl.removeLocked(p)
	}
	pl.mu.Unlock()
	if end {
		p.terminate()
	}
}

// track records that p runs a job (running) or no longer does, for
// Processes.
func (pl *plugin) track(p *proc, jobID string, running bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if running {
		p.jobIDs = append(p.jobIDs, jobID)
	} else if i := slices.Index(p.jobIDs, jobID); i >= 0 {
		p.jobIDs = slices.Delete(p.jobIDs, i, i+1)
	}
}

func (pl *plugin) removeLocked(p *proc) {
	for i, q := range pl.procs {
		if q == p {
			pl.procs = append(pl.procs[:i], pl.procs[i+1:]...)
			return
		}
	}
}

// reapIdle ends the processes idle for longer than timeout.
func (pl *plugin) reapIdle(timeout time.Duration) {
	var old []*proc
	pl.mu.Lock()
	for _, p := range append([]*proc(nil), pl.procs...) {
		if p.jobs == 0 && time.Since(p.idleSince) > timeout {
			pl.removeLocked(p)
			old = append(old, p)
		}
	}
	pl.mu.Unlock()
	for _, p := range old {
		p.terminate()
	}
}

// close ends every process of the plugin and refuses new runs.
func (pl *plugin) close() {
	pl.mu.Lock()
	pl.closed = true
	procs := pl.procs
	pl.procs = nil
	pl.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.terminate()
		}()
	}
	wg.Wait()
}

// proc is one plugin process.
type proc struct {
	pl     *plugin
	client *goplugin.Client
	cmd    *exec.Cmd
	rpc    actionv1.ActionPluginClient
	pid    int
	out    *output

	jobs      int       // guarded by pl.mu
	jobIDs    []string  // of the jobs running in it; guarded by pl.mu
	idleSince time.Time // guarded by pl.mu

	runs     atomic.Uint64 // run ids
	killed   atomic.Bool   // set before the host kills the process
	termOnce sync.Once
}

// hostPlugin is the go-plugin plugin of the host side.
type hostPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

// GRPCServer is not used on the host side.
func (hostPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pluginhost: the host serves no plugin")
}

// GRPCClient returns the protocol v1 client.
func (hostPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return actionv1.NewActionPluginClient(c), nil
}

// start checks the binary (owner, mode, pin), starts a process and
// completes the handshake. A process that does not answer within
// StartTimeout is killed.
func (pl *plugin) start() (*proc, error) {
	p, _, err := pl.startHashed(false)
	return p, err
}

// startHashed is start that also returns the binary's SHA-256 when hash
// is set or the plugin is pinned. The file hashed is the file executed:
// it is opened once, checked, hashed and run from the open descriptor.
func (pl *plugin) startHashed(hash bool) (*proc, string, error) {
	f, sum, err := openBinary(pl.path, hash || pl.pin != "")
	if err != nil {
		return nil, "", err
	}
	defer f.Close() // the child has its own copy once started
	if err := pl.checkPin(sum); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(pl.path)
	execFile(cmd, f)
	// Only allowed variables of the executor's environment; go-plugin
	// appends the handshake.
	cmd.Env = append([]string{actionv1.HostPIDEnv + "=" + strconv.Itoa(os.Getpid())}, pl.host.opts.pluginEnv()...)
	setProcAttr(cmd)
	out := newOutput(pl.log, pl.logs)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  actionv1.ProtocolVersion,
			MagicCookieKey:   actionv1.CookieKey,
			MagicCookieValue: actionv1.CookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{
			actionv1.ProtocolVersion: {actionv1.PluginName: hostPlugin{}},
		},
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     pl.host.opts.StartTimeout,
		Stderr:           out.stream("stderr"),
		SyncStderr:       out.stream("stderr"),
		SyncStdout:       out.stream("stdout"),
		// The output above carries the plugin's lines to zap; go-plugin's
		// own chatter is not wanted.
		Logger: hclog.NewNullLogger(),
	})
	fail := func(err error) (*proc, string, error) {
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		client.Kill() // reaps the process and drains its output
		msg := strings.TrimSpace(err.Error())
		if tail := out.tail(); tail != "" {
			msg += "; its output ended with:\n" + tail
		}
		return nil, "", fmt.Errorf("%w %s: %s", ErrStart, pl.path, msg)
	}
	cp, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := cp.Dispense(actionv1.PluginName)
	if err != nil {
		return fail(err)
	}
	rpc, ok := raw.(actionv1.ActionPluginClient)
	if !ok {
		return fail(fmt.Errorf("unexpected client type %T", raw))
	}
	p := &proc{pl: pl, client: client, cmd: cmd, rpc: rpc, pid: cmd.Process.Pid, out: out}
	pl.log.Debug("plugin process started", zap.Int("pid", p.pid))
	return p, sum, nil
}

// terminate kills the process at once, waits until it is gone and frees
// what go-plugin holds for it. Safe to call more than once.
func (p *proc) terminate() {
	p.termOnce.Do(func() {
		p.killed.Store(true)
		// The whole group: a plugin's children must not outlive it.
		killGroup(p.pid)
		_ = p.cmd.Process.Kill()
		p.client.Kill()
		p.pl.logs.flush()
		p.pl.log.Debug("plugin process ended", zap.Int("pid", p.pid))
	})
}

// waitExited waits up to wait for the process to have exited and its
// output to be drained, and reports whether it has.
func (p *proc) waitExited(wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return check.Until(ctx, 10*time.Millisecond, func() error {
		if !p.client.Exited() {
			return errors.New("running")
		}
		return nil
	}) == nil
}

// exitStatus describes how the process ended; call after waitExited.
func (p *proc) exitStatus() string {
	if st := p.cmd.ProcessState; st != nil {
		return st.String()
	}
	return "unknown exit status"
}

// describeError explains a failed Describe.
func (p *proc) describeError(err error) error {
	if p.waitExited(time.Second) {
		return fmt.Errorf("the process died (%s); its output ended with:\n%s", p.exitStatus(), p.out.tail())
	}
	return rpcProblem(err)
}

// output receives a process's stdout and stderr lines: it logs them and
// keeps the last ones for error messages.
type output struct {
	log    *zap.Logger
	limits *logLimiter

	mu    sync.Mutex
	lines []string // ring of the last tailLines lines
	next  int
}

const (
	tailLines   = 40
	tailLineMax = 512
	tailShown   = 20
	tailBytes   = 2048
)

func newOutput(log *zap.Logger, limits *logLimiter) *output {
	return &output{log: log, limits: limits}
}

// stream returns a writer for one stream that splits it into lines.
func (o *output) stream(name string) *lineWriter {
	return &lineWriter{emit: func(line string) { o.line(name, line) }}
}

func (o *output) line(stream, line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	o.mu.Lock()
	kept := line
	if len(kept) > tailLineMax {
		kept = kept[:tailLineMax] + "…"
	}
	if len(o.lines) < tailLines {
		o.lines = append(o.lines, kept)
	} else {
		o.lines[o.next] = kept
		o.next = (o.next + 1) % tailLines
	}
	o.mu.Unlock()

	if !o.limits.allow() {
		return
	}
	// The SDK and go-plugin write hclog JSON lines; keep their level.
	var entry struct {
		Level   string `json:"@level"`
		Message string `json:"@message"`
	}
	if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
		logAt(o.log, entry.Level, capLine(entry.Message), zap.String("stream", stream))
		return
	}
	o.log.Info(capLine(line), zap.String("stream", stream))
}

// tail returns the last lines of output: from the last panic or fatal
// error when there is one, at most tailShown lines and about tailBytes.
func (o *output) tail() string {
	o.mu.Lock()
	lines := append(append([]string(nil), o.lines[o.next:]...), o.lines[:o.next]...)
	o.mu.Unlock()
	start := max(0, len(lines)-tailShown)
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			start = i
			break
		}
	}
	lines = lines[start:min(len(lines), start+tailShown)]
	s := strings.Join(lines, "\n")
	if len(s) > tailBytes {
		s = s[:tailBytes] + "…"
	}
	return s
}

// lineWriter splits what is written to it into lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

// Write buffers p and emits every complete line.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line without newline
		w.emit(string(w.buf))
		w.buf = nil
	}
	return len(p), nil
}

// logAt logs msg at the named level ("trace" and "debug" are Debug).
func logAt(log *zap.Logger, level, msg string, fields ...zap.Field) {
	switch strings.ToLower(level) {
	case "trace", "debug":
		log.Debug(msg, fields...)
	case "warn", "warning":
		log.Warn(msg, fields...)
	case "error":
		log.Error(msg, fields...)
	default:
		log.Info(msg, fields...)
	}
}
