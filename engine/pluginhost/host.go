// Package pluginhost runs external actions: hashicorp/go-plugin binaries
// (gRPC, protocol actions/sdk/proto/v1) found in a plugin directory at start-up.
// Each action a plugin provides becomes an action.Definition whose Runner
// runs the job in a plugin process, exactly like a built-in action.
//
// Process model: each plugin has a pool of processes. A process runs at
// most Options.JobsPerProcess jobs at once (default 1, so killing a process
// that ignores cancellation fails only that job); a process that finished
// its jobs cleanly is kept idle for reuse (at most Options.MaxIdle per
// plugin, for Options.IdleTimeout), so a job normally costs one gRPC stream,
// not a process start. A process that crashed, was killed or broke the
// protocol is never reused.
//
// The host enforces timeouts: when a job's context ends it asks the plugin
// to cancel the run, and kills the process if the run has not ended after
// Options.KillGrace. Processes get the kernel's parent-death signal and the
// SDK also exits when its parent changes, so none outlives the executor; a
// process runs in a process group of its own, killed as a whole, so what a
// plugin started dies with it.
//
// What a plugin may reach: a binary or directory that anyone but root and
// the service user could change is refused; a pinned binary is hashed and
// executed from the same open file; the plugin's environment holds only a
// short allow-list of the executor's variables (never its credentials);
// what it writes to the daemon's log is rate-limited.
package pluginhost

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/action"
)

// Defaults of Options.
const (
	// DefaultDir is where packages install plugins.
	DefaultDir = "/usr/libexec/jobengine/actions"
	// DefaultKillGrace is how long a plugin may take to end a run after
	// its job's context ended before its process is killed.
	DefaultKillGrace = 5 * time.Second
	// DefaultStartTimeout bounds a plugin's start and handshake.
	DefaultStartTimeout = 10 * time.Second
	// DefaultJobsPerProcess is the number of jobs one process runs at once.
	DefaultJobsPerProcess = 1
	// DefaultMaxIdle is the number of idle processes kept per plugin.
	DefaultMaxIdle = 2
	// DefaultIdleTimeout is how long an idle process is kept.
	DefaultIdleTimeout = 5 * time.Minute
)

// Errors of this package. Runner errors name the plugin and wrap one of
// these (or action.ErrPluginKilled) once.
var (
	// ErrNotPlugin is wrapped by the reasons a file of the plugin directory
	// was skipped.
	ErrNotPlugin = errors.New("not a usable plugin")
	// ErrChecksum is returned when a plugin binary does not match its
	// pinned SHA-256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrStart is returned when a plugin process cannot be started.
	ErrStart = errors.New("cannot start plugin")
	// ErrCrashed is returned when a plugin process died during a run.
	ErrCrashed = errors.New("plugin crashed")
	// ErrProtocol is returned when a plugin sent something protocol v1
	// does not allow.
	ErrProtocol = errors.New("protocol violation")
	// ErrClosed is returned by runs after, or interrupted by, Host.Close.
	ErrClosed = errors.New("plugin host closed")
)

// Options configure a Host. The zero value loads DefaultDir with the
// defaults above.
type Options struct {
	// Dir is the plugin directory; "" means DefaultDir. A missing
	// directory means no plugins.
	Dir string
	// Checksums pins plugins by file name to the hex SHA-256 of their
	// binary (see ParseChecksumFlags and ReadChecksumsFile). A pinned
	// binary that does not match is refused before it starts, at load and
	// before every later process start.
	Checksums map[string]string
	// PinnedOnly refuses every plugin that Checksums does not pin.
	PinnedOnly bool
	// KillGrace is how long a run may take to end after its context ended
	// before the process is killed; 0 means DefaultKillGrace.
	KillGrace time.Duration
	// StartTimeout bounds a process start and handshake (the process is
	// killed after it); 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// JobsPerProcess is the most jobs a process runs at once; 0 means
	// DefaultJobsPerProcess. Above 1, killing a process for one job fails
	// the others it runs.
	JobsPerProcess int
	// MaxIdle is the number of idle processes kept per plugin; 0 means
	// DefaultMaxIdle, a negative value keeps none (a process per job).
	MaxIdle int
	// IdleTimeout is how long an idle process is kept; 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Logger receives the host's and the plugins' log lines; nil means
	// zap.NewNop().
	Logger *zap.Logger
	// Env names further variables of the executor's environment that
	// plugins get, besides AllowedEnv (a proxy setting, say). Names
	// starting with JOBENGINE_ are refused: they hold the engine's
	// settings and secrets.
	Env []string
	// LogRate and LogBurst bound the lines per second a plugin puts into
	// the daemon's log (0: DefaultLogRate, DefaultLogBurst); the rest is
	// dropped and counted.
	LogRate  float64
	LogBurst int
}

// AllowedEnv are the variables of the executor's environment that plugins
// get (when set), with the LC_* locale variables and Options.Env; a plugin
// never sees the rest, which may hold credentials.
var AllowedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"}

func (o Options) normalized() Options {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.KillGrace <= 0 {
		o.KillGrace = DefaultKillGrace
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.JobsPerProcess <= 0 {
		o.JobsPerProcess = DefaultJobsPerProcess
	}
	switch {
	case o.MaxIdle == 0:
		o.MaxIdle = DefaultMaxIdle
	case o.MaxIdle < 0:
		o.MaxIdle = 0
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.LogRate <= 0 {
		o.LogRate = DefaultLogRate
	}
	if o.LogBurst <= 0 {
		o.LogBurst = DefaultLogBurst
	}
	return o
}

// pluginEnv is the environment of a plugin process (go-plugin adds the
// handshake variables): the allowed variables of the executor's.
func (o Options) pluginEnv() []string {
	allowed := make(map[string]bool)
	for _, n := range append(append([]string(nil), AllowedEnv...), o.Env...) {
		allowed[n] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if allowed[k] || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// Info describes a loaded plugin, for `jobengine actions list` and logs.
type Info struct {
	Name     string   `json:"name"`     // file name in the plugin directory
	Path     string   `json:"path"`     // absolute path of the binary
	Version  string   `json:"version"`  // the plugin's own version
	Protocol int      `json:"protocol"` // negotiated protocol version
	SDK      string   `json:"sdk,omitempty"`
	SHA256   string   `json:"sha256"` // of the binary at load
	Pinned   bool     `json:"pinned"` // whether Options.Checksums pinned it
	Actions  []string `json:"actions"`
}

// Skip is a file of the plugin directory that was not loaded, and why.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Process is a live plugin process.
type Process struct {
	Plugin string `json:"plugin"`
	PID    int    `json:"pid"`
	Jobs   int    `json:"jobs"` // jobs running in it now
	// JobIDs are the ids of the jobs running in it now.
	JobIDs []string `json:"job-ids,omitempty"`
}

// Host holds the plugins of one executor and their processes.
type Host struct {
	opts    Options
	log     *zap.Logger
	plugins []*plugin
	skipped []Skip
	defs    []action.Definition

	dropped *prometheus.CounterVec

	stop     chan struct{}
	reaper   sync.WaitGroup
	closeMu  sync.Mutex
	isClosed bool
}

// Load scans the plugin directory, starts every executable in it, asks it
// what it provides and logs one line per plugin. A file that is not a valid
// plugin is logged and skipped, never fatal: Load fails only when the
// directory exists but cannot be read. The processes started to describe
// the plugins are kept to run the first jobs. Close the Host when done.
func Load(ctx context.Context, opts Options) (*Host, error) {
	opts = opts.normalized()
	for _, n := range opts.Env {
		if n == "" || strings.ContainsAny(n, "= \t") || strings.HasPrefix(n, "JOBENGINE_") {
			return nil, fmt.Errorf("pluginhost: %q cannot be passed to plugins: give a variable name, not one of JOBENGINE_ (they hold the engine's settings and secrets)", n)
		}
	}
	h := &Host{opts: opts, log: opts.Logger.Named("pluginhost"), stop: make(chan struct{}), dropped: newDroppedLines()}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: plugin directory %q: %w", opts.Dir, err)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		h.log.Info("plugin directory does not exist, no plugin actions", zap.String("dir", dir))
		h.warnUnusedPins(nil)
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pluginhost: cannot read plugin directory %s: %w (fix its permissions or point --plugin-dir elsewhere)", dir, err)
	}
	if err := checkDir(dir); err != nil {
		h.skipped = append(h.skipped, Skip{Path: dir, Reason: fmt.Sprintf("%v: plugin directory refused", err)})
		h.log.Error("plugin directory refused, no plugin loaded from it", zap.String("dir", dir), zap.Error(err))
		h.reaper.Add(1)
		go h.reapIdle()
		return h, nil
	}

	var paths []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue // hidden files and directories are not candidates
		}
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	h.warnUnusedPins(paths)

	// Start the candidates a few at a time: a plugin that never answers
	// costs StartTimeout, which should not add up over the directory.
	results := make([]loadResult, len(paths))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, path := range paths {
		if ctx.Err() != nil {
			results[i] = loadResult{err: fmt.Errorf("%w: loading interrupted: %v", ErrNotPlugin, ctx.Err())}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = h.loadOne(ctx, path)
		}()
	}
	wg.Wait()

	names := make(map[string]string) // action → path, across plugins
	for i, r := range results {
		path := paths[i]
		if r.err == nil {
			for _, d := range r.defs {
				if other, ok := names[d.Name]; ok {
					r.err = fmt.Errorf("%w: action %q is also provided by %s", ErrNotPlugin, d.Name, other)
					break
				}
			}
		}
		if r.err != nil {
			if r.pl != nil {
				r.pl.close()
			}
			h.skipped = append(h.skipped, Skip{Path: path, Reason: r.err.Error()})
			h.log.Warn("plugin skipped", zap.String("plugin", filepath.Base(path)), zap.String("path", path), zap.Error(r.err))
			continue
		}
		for _, d := range r.defs {
			names[d.Name] = path
		}
		h.plugins = append(h.plugins, r.pl)
		h.defs = append(h.defs, r.defs...)
		info := r.pl.info
		h.log.Info("plugin loaded",
			zap.String("plugin", info.Name), zap.String("path", info.Path), zap.String("version", info.Version),
			zap.Int("protocol", info.Protocol), zap.String("sdk", info.SDK), zap.Strings("actions", info.Actions),
			zap.String("sha256", info.SHA256), zap.Bool("pinned", info.Pinned), zap.Int("pid", r.pid))
	}
	sort.Slice(h.defs, func(i, j int) bool { return h.defs[i].Name < h.defs[j].Name })

	h.reaper.Add(1)
	go h.reapIdle()
	return h, nil
}

// warnUnusedPins logs the pins that name no file of the directory: a typo
// there would otherwise silently leave a plugin unpinned.
func (h *Host) warnUnusedPins(paths []string) {
	present := make(map[string]bool, len(paths))
	for _, p := range paths {
		present[filepath.Base(p)] = true
	}
	for name := range h.opts.Checksums {
		if !present[name] {
			h.log.Warn("pinned plugin not found in the plugin directory", zap.String("plugin", name), zap.String("dir", h.opts.Dir))
		}
	}
}

type loadResult struct {
	pl   *plugin
	defs []action.Definition
	pid  int
	err  error
}

// loadOne checks, starts and describes the plugin at path.
func (h *Host) loadOne(ctx context.Context, path string) loadResult {
	name := filepath.Base(path)
	pin, pinned := h.opts.Checksums[name]
	log := h.log.With(zap.String("plugin", name))
	pl := &plugin{
		host: h,
		name: name,
		path: path,
		pin:  strings.ToLower(pin),
		log:  log,
		logs: newLogLimiter(log, h.opts.LogRate, h.opts.LogBurst, h.dropped.WithLabelValues(name)),
	}
	if !pinned && h.opts.PinnedOnly {
		f, sum, err := openBinary(path, true)
		if err != nil {
			return loadResult{err: fmt.Errorf("%w: %v", ErrNotPlugin, err)}
		}
		f.Close()
		return loadResult{err: fmt.Errorf("%w: no SHA-256 pinned for it and only pinned plugins are allowed (add --plugin-sha256 %s=%s if you trust it)", ErrNotPlugin, name, sum)}
	}
	p, sum, err := pl.startHashed(true)
	if err != nil {
		return loadResult{err: fmt.Errorf("%w: %v", ErrNotPlugin, err)}
	}
	pl.procs = append(pl.procs, p)
	p.idleSince = time.Now()

	dctx, cancel := context.WithTimeout(ctx, h.opts.StartTimeout)
	defer cancel()
	desc, err := p.rpc.Describe(dctx, &actionv1.DescribeRequest{})
	if err != nil {
		return loadResult{pl: pl, err: fmt.Errorf("%w: Describe failed: %v", ErrNotPlugin, p.describeError(err))}
	}
	pl.info = Info{
		Name:     name,
		Path:     path,
		Version:  desc.GetPluginVersion(),
		Protocol: p.client.NegotiatedVersion(),
		SDK:      desc.GetSdkVersion(),
		SHA256:   sum,
		Pinned:   pinned,
	}
	defs, err := pl.definitions(desc)
	if err != nil {
		return loadResult{pl: pl, err: fmt.Errorf("%w: %v", ErrNotPlugin, err)}
	}
	if h.opts.MaxIdle == 0 {
		pl.mu.Lock()
		pl.procs = nil
		pl.mu.Unlock()
		p.terminate()
	}
	return loadResult{pl: pl, defs: defs, pid: p.pid}
}

// Definitions returns the actions of the loaded plugins, sorted by name.
// Their Source is "plugin:<path>" and their Version the plugin's version.
func (h *Host) Definitions() []action.Definition {
	return append([]action.Definition(nil), h.defs...)
}

// Register adds the plugin actions to reg. An action whose name reg already
// holds (a built-in, say) is not added; the returned error lists those and
// the others are registered.
func (h *Host) Register(reg *action.Registry) error {
	var errs []error
	for _, d := range h.defs {
		if err := reg.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("pluginhost: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Plugins describes the loaded plugins, sorted by file name.
func (h *Host) Plugins() []Info {
	out := make([]Info, len(h.plugins))
	for i, pl := range h.plugins {
		out[i] = pl.info
	}
	return out
}

// Collector returns the host's metrics (dropped plugin log lines), to be
// registered with the executor's.
func (h *Host) Collector() prometheus.Collector { return h.dropped }

// Skipped lists the files of the plugin directory that were not loaded.
func (h *Host) Skipped() []Skip { return append([]Skip(nil), h.skipped...) }

// Processes lists the live plugin processes.
func (h *Host) Processes() []Process {
	var out []Process
	for _, pl := range h.plugins {
		pl.mu.Lock()
		for _, p := range pl.procs {
			out = append(out, Process{Plugin: pl.name, PID: p.pid, Jobs: p.jobs, JobIDs: slices.Clone(p.jobIDs)})
		}
		pl.mu.Unlock()
	}
	return out
}

// Close kills every plugin process and waits until they are gone. Runs in
// progress fail with ErrClosed. Close is idempotent.
func (h *Host) Close() error {
	h.closeMu.Lock()
	if h.isClosed {
		h.closeMu.Unlock()
		return nil
	}
	h.isClosed = true
	h.closeMu.Unlock()
	close(h.stop)
	h.reaper.Wait()
	var wg sync.WaitGroup
	for _, pl := range h.plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pl.close()
		}()
	}
	wg.Wait()
	return nil
}

func (h *Host) closed() bool {
	h.closeMu.Lock()
	defer h.closeMu.Unlock()
	return h.isClosed
}

// reapIdle ends processes idle for longer than IdleTimeout.
func (h *Host) reapIdle() {
	defer h.reaper.Done()
	t := time.NewTicker(max(h.opts.IdleTimeout/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			for _, pl := range h.plugins {
				pl.reapIdle(h.opts.IdleTimeout)
			}
		}
	}
}

// ParseChecksumFlag parses one --plugin-sha256 value, NAME=HEX.
func ParseChecksumFlag(s string) (name, sum string, err error) {
	name, sum, ok := strings.Cut(s, "=")
	name, sum = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(sum))
	if !ok || name == "" || strings.ContainsRune(name, '/') {
		return "", "", fmt.Errorf("pluginhost: --plugin-sha256 %q: want NAME=HEX, NAME being the plugin's file name", s)
	}
	if err := checkHex(sum); err != nil {
		return "", "", fmt.Errorf("pluginhost: --plugin-sha256 %q: %w", s, err)
	}
	return name, sum, nil
}

// ParseChecksumFlags parses --plugin-sha256 values into Options.Checksums.
func ParseChecksumFlags(values []string) (map[string]string, error) {
	out := make(map[string]string, len(values))
	for _, v := range values {
		name, sum, err := ParseChecksumFlag(v)
		if err != nil {
			return nil, err
		}
		if old, ok := out[name]; ok && old != sum {
			return nil, fmt.Errorf("pluginhost: --plugin-sha256 pins %s twice, to different sums", name)
		}
		out[name] = sum
	}
	return out, nil
}

func checkHex(sum string) error {
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return fmt.Errorf("%q is not a SHA-256 in hex (64 hex digits, as sha256sum prints)", sum)
	}
	return nil
}
