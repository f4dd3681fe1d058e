// Package sdk is what an external jobengine action is written with. A plugin
// is a small program whose main calls Serve:
//
//	func main() {
//		sdk.Serve(sdk.Plugin{
//			Version: "1.0.0",
//			Actions: []sdk.Action{{Name: "hello", DefaultTimeout: time.Minute, Run: run}},
//		})
//	}
//
//	func run(ctx context.Context, job *sdk.Job) (sdk.Result, error) {
//		job.Progress(50)
//		return sdk.ReturnCode(0), nil
//	}
//
// The executor starts the program from its plugin directory
// (/usr/libexec/jobengine/actions by default), asks it what it provides and
// runs jobs of its actions through it: progress, status, affected resources
// and log lines go back to the executor while the job runs. Serve never
// returns; the program exits when the executor stops it or goes away.
// docs/writing-actions.md walks through writing, building and installing one.
package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
)

// Version identifies this SDK to the executor (informational).
const Version = "jobengine-sdk/1"

// ErrInvalid is wrapped by the errors of Check: a Plugin that cannot be served.
var ErrInvalid = errors.New("sdk: invalid plugin")

// LostPolicy says what the executor does with a job of the action that it
// finds RUNNING after the executor that ran it died. The values are the
// protocol's (ActionInfo.lost_policy).
type LostPolicy string

// The lost-job policies.
const (
	// Rerun runs the job again, up to MaxAttempts attempts (the default).
	Rerun LostPolicy = "rerun"
	// Fail marks the job FAILED at once; use it for actions that must not
	// run twice.
	Fail LostPolicy = "fail"
)

// Plugin is what a plugin program provides.
type Plugin struct {
	// Version of the plugin, shown by `jobengine actions list`; required.
	Version string
	// Actions provided by the plugin; at least one.
	Actions []Action
}

// Action is one action of a plugin.
type Action struct {
	// Name of the action, 1-64 characters of [a-z0-9_.-]; jobs name it.
	Name string
	// Description is one line for `jobengine actions list`.
	Description string
	// DefaultTimeout of a job of this action; 0 means the engine's default
	// (10 minutes). A job may set its own.
	DefaultTimeout time.Duration
	// LostPolicy is Rerun (the default when empty) or Fail.
	LostPolicy LostPolicy
	// MaxAttempts bounds the runs of a rerun job; 0 means the engine's default.
	MaxAttempts int
	// Run runs one job. It must return soon after ctx is done (the job timed
	// out or was cancelled): the executor kills a plugin that does not return
	// within a short grace period, failing every job that process runs.
	// A non-nil error fails the job with the error's text as its status
	// message and the Result's ReturnCode as its return code, or 1 when
	// that is 0 (return sdk.ReturnCode(2), err for code 2); with a nil
	// error the Result's ReturnCode decides (0 is success).
	Run func(ctx context.Context, job *Job) (Result, error)
}

// Result is the outcome of a job that ran to completion.
type Result struct {
	// ReturnCode 0 means SUCCESS, anything else FAILED.
	ReturnCode int
	// Message, when not empty, becomes the job's final status message.
	Message string
}

// ReturnCode returns a Result with return code n and no message.
func ReturnCode(n int) Result { return Result{ReturnCode: n} }

// Check reports what is wrong with p, if anything. Serve calls it first.
func Check(p Plugin) error {
	if strings.TrimSpace(p.Version) == "" {
		return fmt.Errorf("%w: Plugin.Version is empty; set it, e.g. \"1.0.0\"", ErrInvalid)
	}
	if len(p.Actions) == 0 {
		return fmt.Errorf("%w: Plugin.Actions is empty; a plugin provides at least one action", ErrInvalid)
	}
	seen := make(map[string]bool, len(p.Actions))
	for _, a := range p.Actions {
		switch {
		case !actionv1.ValidActionName(a.Name):
			return fmt.Errorf("%w: action name %q must be 1-64 characters of [a-z0-9_.-]", ErrInvalid, a.Name)
		case seen[a.Name]:
			return fmt.Errorf("%w: action %q is listed twice", ErrInvalid, a.Name)
		case a.Run == nil:
			return fmt.Errorf("%w: action %q has no Run function", ErrInvalid, a.Name)
		case a.DefaultTimeout < 0:
			return fmt.Errorf("%w: action %q: DefaultTimeout %v is negative", ErrInvalid, a.Name, a.DefaultTimeout)
		case a.MaxAttempts < 0:
			return fmt.Errorf("%w: action %q: MaxAttempts %d is negative", ErrInvalid, a.Name, a.MaxAttempts)
		case a.LostPolicy != "" && a.LostPolicy != Rerun && a.LostPolicy != Fail:
			return fmt.Errorf("%w: action %q: LostPolicy %q is not sdk.Rerun or sdk.Fail", ErrInvalid, a.Name, a.LostPolicy)
		}
		seen[a.Name] = true
	}
	return nil
}

// Serve serves p to the executor that started this program and never
// returns. Started by hand, it explains that it is a plugin and exits 1; an
// invalid p is reported on stderr and exits 1, so the executor logs the
// reason and skips the plugin.
func Serve(p Plugin) {
	if err := Check(p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// go-plugin points os.Stderr at a pipe to the host once it serves; this
	// logger keeps the process's real stderr, which the host reads even
	// when the process dies.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      hclog.Warn,
		Output:     os.Stderr,
		JSONFormat: true,
	})
	if os.Getenv(actionv1.CookieKey) == actionv1.CookieValue {
		go watchParent(hostPID())
	}
	srv := newServer(p)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			ProtocolVersion:  actionv1.ProtocolVersion,
			MagicCookieKey:   actionv1.CookieKey,
			MagicCookieValue: actionv1.CookieValue,
		},
		VersionedPlugins: map[int]plugin.PluginSet{
			actionv1.ProtocolVersion: {actionv1.PluginName: &grpcPlugin{srv: srv}},
		},
		// go-plugin registers the gRPC health service itself.
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
	os.Exit(0)
}

// hostPID returns the pid of the executor that started this process.
func hostPID() int {
	if n, err := strconv.Atoi(os.Getenv(actionv1.HostPIDEnv)); err == nil && n > 0 {
		return n
	}
	return os.Getppid()
}

// watchParent exits the process once its parent is no longer host: the
// host died (even by SIGKILL) and the process was reparented. The host also
// asks the kernel for a parent-death signal; this covers where it cannot.
func watchParent(host int) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if ppid := os.Getppid(); ppid != host {
			fmt.Fprintf(os.Stderr, "jobengine plugin: executor (pid %d) is gone, exiting\n", host)
			os.Exit(3)
		}
		<-t.C
	}
}

// grpcPlugin is the go-plugin plugin of the plugin side.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv *server
}

// GRPCServer registers the action service.
func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	actionv1.RegisterActionPluginServer(s, p.srv)
	return nil
}

// GRPCClient is not used on the plugin side.
func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: a plugin has no client side")
}

// server implements actionv1.ActionPluginServer over a Plugin.
type server struct {
	actionv1.UnimplementedActionPluginServer
	plugin  Plugin
	actions map[string]Action

	mu   sync.Mutex
	runs map[uint64]context.CancelFunc
}

func newServer(p Plugin) *server {
	s := &server{plugin: p, actions: make(map[string]Action), runs: make(map[uint64]context.CancelFunc)}
	for _, a := range p.Actions {
		s.actions[a.Name] = a
	}
	return s
}

// Describe lists the actions.
func (s *server) Describe(context.Context, *actionv1.DescribeRequest) (*actionv1.DescribeResponse, error) {
	resp := &actionv1.DescribeResponse{PluginVersion: s.plugin.Version, SdkVersion: Version}
	for _, a := range s.plugin.Actions {
		resp.Actions = append(resp.Actions, &actionv1.ActionInfo{
			Name:             a.Name,
			DefaultTimeoutMs: a.DefaultTimeout.Milliseconds(),
			LostPolicy:       string(a.LostPolicy),
			MaxAttempts:      int32(a.MaxAttempts),
			Description:      validText(a.Description, actionv1.MaxStatusBytes),
		})
	}
	return resp, nil
}

// Cancel cancels the context of a run.
func (s *server) Cancel(_ context.Context, req *actionv1.CancelRequest) (*actionv1.CancelResponse, error) {
	s.mu.Lock()
	cancel, ok := s.runs[req.GetRunId()]
	s.mu.Unlock()
	if ok {
		cancel()
	}
	return &actionv1.CancelResponse{Found: ok}, nil
}

// Run runs one job and streams its events, ending with the Result.
func (s *server) Run(req *actionv1.RunRequest, stream actionv1.ActionPlugin_RunServer) error {
	a, ok := s.actions[req.GetAction()]
	if !ok {
		return status.Errorf(codes.NotFound, "this plugin does not provide action %q", req.GetAction())
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	s.mu.Lock()
	s.runs[req.GetRunId()] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.runs, req.GetRunId())
		s.mu.Unlock()
	}()

	job := newJob(req, stream)
	res, err := runSafely(ctx, a.Run, job)
	job.close()

	out := &actionv1.Result{
		ReturnCode: int32(res.ReturnCode),
		Message:    validText(res.Message, actionv1.MaxStatusBytes),
	}
	if err != nil {
		out.Error = validText(err.Error(), actionv1.MaxErrorBytes)
		if out.Error == "" {
			out.Error = "action failed with an empty error"
		}
	}
	return stream.Send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Result{Result: out}})
}

// runSafely calls run, turning a panic into an error so that one bad job
// does not take the other jobs of the process down.
func runSafely(ctx context.Context, run func(context.Context, *Job) (Result, error), job *Job) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(os.Stderr, "panic in action %s, job %s: %v\n%s", job.Action, job.ID, v, debug.Stack())
			res, err = Result{}, fmt.Errorf("action %s panicked: %v", job.Action, v)
		}
	}()
	return run(ctx, job)
}

// Job is the job an action runs, and its channel back to the executor.
// Its methods are safe for concurrent use; after Run returns they do nothing.
type Job struct {
	ID       string          // "job/<uuid>"
	Action   string          // the action's name
	Target   string          // href of the target resource, may be empty
	Payload  json.RawMessage // the job's arguments, a JSON object, may be empty
	Priority int             // 0-999, lower runs first
	Attempt  int             // 1 for the first run
	Tags     []string
	Parent   string        // href of the parent job, may be empty
	Timeout  time.Duration // the timeout the executor enforces
	// Log writes log lines to the job (shown by `jobengine job logs`) and
	// to the executor's log.
	Log *Logger

	mu     sync.Mutex
	closed bool
	stream actionv1.ActionPlugin_RunServer
}

func newJob(req *actionv1.RunRequest, stream actionv1.ActionPlugin_RunServer) *Job {
	j := &Job{
		ID:       req.GetJobId(),
		Action:   req.GetAction(),
		Target:   req.GetTarget(),
		Payload:  json.RawMessage(req.GetPayload()),
		Priority: int(req.GetPriority()),
		Attempt:  int(req.GetAttempt()),
		Tags:     req.GetTags(),
		Parent:   req.GetParent(),
		Timeout:  time.Duration(req.GetTimeoutMs()) * time.Millisecond,
		stream:   stream,
	}
	j.Log = &Logger{job: j}
	return j
}

// Decode unmarshals the job's JSON payload into v. An empty payload leaves
// v as it is.
func (j *Job) Decode(v any) error {
	if len(j.Payload) == 0 {
		return nil
	}
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return fmt.Errorf("payload of job %s does not fit %T: %w", j.ID, v, err)
	}
	return nil
}

// Progress sets the job's progress in percent; values outside 0-100 are
// clamped.
func (j *Job) Progress(percent int) {
	percent = max(0, min(100, percent))
	j.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Progress{Progress: &actionv1.Progress{Percent: int32(percent)}}})
}

// Status sets the job's status message; a message longer than 4096 bytes
// is truncated.
func (j *Job) Status(message string) {
	j.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Status{Status: &actionv1.Status{Message: validText(message, actionv1.MaxStatusBytes)}}})
}

// Affected adds hrefs of resources the job touched (e.g. "deployment/42").
// Empty hrefs and hrefs longer than 1024 bytes are dropped.
func (j *Job) Affected(hrefs ...string) {
	var ok []string
	for _, h := range hrefs {
		if h == "" || len(h) > actionv1.MaxHrefBytes || !utf8.ValidString(h) {
			j.Log.Warn("affected resource dropped: empty, not UTF-8 or longer than 1024 bytes", "href", validText(h, 64))
			continue
		}
		ok = append(ok, h)
	}
	for len(ok) > 0 {
		n := min(len(ok), actionv1.MaxHrefsPerEvent)
		j.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Affected{Affected: &actionv1.Affected{Hrefs: ok[:n]}}})
		ok = ok[n:]
	}
}

func (j *Job) log(level, msg string, keyvals []any) {
	msg, fields := logLine(msg, keyvals)
	j.send(&actionv1.RunEvent{Event: &actionv1.RunEvent_Log{Log: &actionv1.LogLine{Level: level, Message: msg, Fields: fields}}})
}

// Bounds the SDK keeps a log line's fields within, inside the protocol's
// limits: the fields take at most half of a line, the message the rest.
const (
	maxFieldValueBytes = 1024
	maxFieldsBytes     = actionv1.MaxLogBytes / 2
)

// logLine turns a message and key/value pairs into a protocol log line.
// Keys are rendered with fmt.Sprint (an empty one becomes "_"), values
// too; a key without a value gets "(missing)". Fields beyond the limits
// are dropped and counted in a last field, "dropped-fields".
func logLine(msg string, keyvals []any) (string, []*actionv1.Field) {
	var fields []*actionv1.Field
	used, dropped := 0, 0
	for i := 0; i < len(keyvals); i += 2 {
		key := validText(fmt.Sprint(keyvals[i]), actionv1.MaxFieldKeyBytes)
		if key == "" {
			key = "_"
		}
		val := "(missing)"
		if i+1 < len(keyvals) {
			val = fmt.Sprint(keyvals[i+1])
		}
		val = validText(val, maxFieldValueBytes)
		if len(fields) == actionv1.MaxLogFields-1 || used+len(key)+len(val) > maxFieldsBytes-64 {
			dropped++
			continue
		}
		fields = append(fields, &actionv1.Field{Key: key, Value: val})
		used += len(key) + len(val)
	}
	if dropped > 0 {
		f := &actionv1.Field{Key: "dropped-fields", Value: strconv.Itoa(dropped)}
		fields = append(fields, f)
		used += len(f.Key) + len(f.Value)
	}
	return validText(msg, actionv1.MaxLogBytes-used), fields
}

// send sends one event; gRPC streams need sends to be serialized. Errors
// mean the executor has gone or given up on the run: nothing to do.
func (j *Job) send(ev *actionv1.RunEvent) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return
	}
	_ = j.stream.Send(ev)
}

// close stops further events: the Result must be the last.
func (j *Job) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
}

// Logger writes log lines of a job. Each method takes a message and
// optional key/value pairs, which travel as the line's structured fields:
// the executor logs them as fields and keeps them in the job's log beside
// the message (`jobengine job logs` shows "message key=value ...").
type Logger struct {
	job *Job
}

// Debug logs at debug level.
func (l *Logger) Debug(msg string, keyvals ...any) { l.job.log("debug", msg, keyvals) }

// Info logs at info level.
func (l *Logger) Info(msg string, keyvals ...any) { l.job.log("info", msg, keyvals) }

// Warn logs at warn level.
func (l *Logger) Warn(msg string, keyvals ...any) { l.job.log("warn", msg, keyvals) }

// Error logs at error level.
func (l *Logger) Error(msg string, keyvals ...any) { l.job.log("error", msg, keyvals) }

// validText makes s valid UTF-8 (protobuf strings must be) of at most n
// bytes, cutting on a rune boundary and marking the cut with "…".
func validText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const ell = "…"
	cut := n - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
