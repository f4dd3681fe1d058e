package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/action"
)

// runner is the action.Runner of one plugin action.
type runner struct {
	pl     *plugin
	action string
}

// Run runs job in a process of the plugin and forwards what the plugin
// reports to r. Errors the plugin returns are passed on as they are; a
// problem of the plugin itself (it crashed, was killed, broke the protocol)
// is an error naming the plugin.
func (rn *runner) Run(ctx context.Context, job *action.Job, r action.Reporter) (action.Result, error) {
	if err := ctx.Err(); err != nil {
		return action.Result{}, err
	}
	p, err := rn.pl.acquire()
	if err != nil {
		return action.Result{}, err
	}
	rn.pl.track(p, job.ID, true)
	res, err, clean := p.run(ctx, rn.action, job, r)
	rn.pl.logs.flush()
	rn.pl.track(p, job.ID, false)
	rn.pl.release(p, clean)
	return res, err
}

// run runs one job in p. clean reports whether the run ended with a result,
// leaving the process fit for another job.
func (p *proc) run(ctx context.Context, name string, job *action.Job, r action.Reporter) (res action.Result, err error, clean bool) {
	log := p.pl.log.With(zap.String("job", job.ID), zap.String("action", name), zap.Int("pid", p.pid))
	runID := p.runs.Add(1)
	req := &actionv1.RunRequest{
		RunId:     runID,
		JobId:     job.ID,
		Action:    name,
		Target:    job.Target,
		Payload:   job.Payload,
		Priority:  int32(job.Priority),
		Attempt:   int32(job.Attempt),
		Tags:      job.Tags,
		Parent:    job.Parent,
		TimeoutMs: job.Timeout.Milliseconds(),
	}
	// The stream is not tied to ctx: when ctx ends the plugin is asked to
	// cancel and may still send its result during the grace period.
	sctx, cancelStream := context.WithCancel(context.Background())
	defer cancelStream()
	stream, err := p.rpc.Run(sctx, req, grpc.MaxCallRecvMsgSize(actionv1.MaxMessageBytes))
	if err != nil {
		return action.Result{}, p.runFailed(err), false
	}

	var killedHere atomic.Bool
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		grace := p.pl.host.opts.KillGrace
		deadline := time.Now().Add(grace)
		log.Info("job context ended, cancelling the plugin run", zap.Error(context.Cause(ctx)), zap.Duration("grace", grace))
		kill := time.NewTimer(grace)
		defer kill.Stop()
		retry := time.NewTicker(20 * time.Millisecond)
		defer retry.Stop()
		// The plugin may not know the run yet (its Run call is still on
		// the way): repeat the cancel until it does.
		for known := false; ; {
			if !known {
				cctx, cancel := context.WithDeadline(context.Background(), deadline)
				resp, err := p.rpc.Cancel(cctx, &actionv1.CancelRequest{RunId: runID})
				cancel()
				known = (err == nil && resp.GetFound()) || status.Code(err) == codes.Unimplemented
			}
			select {
			case <-done:
				return
			case <-kill.C:
				log.Warn("plugin did not end the run within the grace period, killing its process", zap.Duration("grace", grace))
				killedHere.Store(true)
				p.terminate()
				return
			case <-retry.C:
			}
		}
	}()
	defer func() {
		close(done)
		wg.Wait()
	}()

	for {
		ev, rerr := stream.Recv()
		if rerr != nil {
			if killedHere.Load() {
				return action.Result{}, fmt.Errorf("plugin %q (pid %d) did not end the run within %s after the job's context ended (%v): %w",
					p.pl.name, p.pid, p.pl.host.opts.KillGrace, context.Cause(ctx), action.ErrPluginKilled), false
			}
			if errors.Is(rerr, io.EOF) {
				return action.Result{}, p.violation("it ended the run without a result"), false
			}
			return action.Result{}, p.runFailed(rerr), false
		}
		switch e := ev.GetEvent().(type) {
		case *actionv1.RunEvent_Progress:
			pct := e.Progress.GetPercent()
			if pct < 0 || pct > 100 {
				return action.Result{}, p.violation(fmt.Sprintf("it reported progress %d, outside 0-100", pct)), false
			}
			r.Progress(int(pct))
		case *actionv1.RunEvent_Status:
			msg := e.Status.GetMessage()
			if len(msg) > actionv1.MaxStatusBytes {
				return action.Result{}, p.violation(fmt.Sprintf("it sent a status message of %d bytes, over the limit of %d", len(msg), actionv1.MaxStatusBytes)), false
			}
			r.Status(msg)
		case *actionv1.RunEvent_Affected:
			hrefs := e.Affected.GetHrefs()
			if len(hrefs) == 0 || len(hrefs) > actionv1.MaxHrefsPerEvent {
				return action.Result{}, p.violation(fmt.Sprintf("it sent %d affected resources in one event, want 1-%d", len(hrefs), actionv1.MaxHrefsPerEvent)), false
			}
			for _, h := range hrefs {
				if h == "" || len(h) > actionv1.MaxHrefBytes {
					return action.Result{}, p.violation(fmt.Sprintf("it sent an affected resource href of %d bytes, want 1-%d", len(h), actionv1.MaxHrefBytes)), false
				}
			}
			r.Affected(hrefs...)
		case *actionv1.RunEvent_Log:
			level, msg := e.Log.GetLevel(), e.Log.GetMessage()
			if !slices.Contains(actionv1.LogLevels, level) {
				return action.Result{}, p.violation(fmt.Sprintf("it sent a log line of level %q, not one of %v", level, actionv1.LogLevels)), false
			}
			fields, problem := logFields(e.Log)
			if problem != "" {
				return action.Result{}, p.violation(problem), false
			}
			action.LogFields(r, level, msg, fields)
			if p.pl.logs.allow() {
				logAt(log, level, capLine(msg), zapFields(fields)...)
			}
		case *actionv1.RunEvent_Result:
			res := e.Result
			if len(res.GetMessage()) > actionv1.MaxStatusBytes || len(res.GetError()) > actionv1.MaxErrorBytes {
				return action.Result{}, p.violation(fmt.Sprintf("it sent a result message or error over the limit of %d bytes", actionv1.MaxStatusBytes)), false
			}
			out := action.Result{ReturnCode: int(res.GetReturnCode()), Message: res.GetMessage()}
			switch {
			case res.GetError() == "":
				return out, nil, true
			case out.ReturnCode != 0:
				// An error with a return code (the SDK's
				// `sdk.ReturnCode(2), err`): the job fails with that
				// code and the error's text, where an error alone
				// would record return code 1.
				return action.Result{ReturnCode: out.ReturnCode, Message: res.GetError()}, nil, true
			default:
				return out, errors.New(res.GetError()), true
			}
		default:
			return action.Result{}, p.violation("it sent an empty or unknown event (a newer protocol?)"), false
		}
	}
}

// violation is the error of a plugin that broke the protocol.
func (p *proc) violation(problem string) error {
	return fmt.Errorf("plugin %q (%s): %w: %s; the job was stopped and the process killed (report this to the plugin's author)",
		p.pl.name, p.pl.path, ErrProtocol, problem)
}

// runFailed explains an RPC error of a run: the host closed, the process
// died (with the end of its output), or a protocol problem.
func (p *proc) runFailed(err error) error {
	if p.pl.host.closed() {
		return fmt.Errorf("plugin %q: %w while the job ran", p.pl.name, ErrClosed)
	}
	if p.killed.Load() {
		return fmt.Errorf("plugin %q (pid %d): %w: its process was killed because another job it ran did not end in time",
			p.pl.name, p.pid, action.ErrPluginKilled)
	}
	// A broken connection most likely means the process died; its exit
	// is noticed a moment after the connection breaks.
	wait := time.Duration(0)
	if code := status.Code(err); code == codes.Unavailable || code == codes.Canceled {
		wait = 5 * time.Second
	}
	if p.waitExited(wait) {
		return fmt.Errorf("plugin %q (pid %d): %w while running the job (%s); its output ended with:\n%s",
			p.pl.name, p.pid, ErrCrashed, p.exitStatus(), p.out.tail())
	}
	return fmt.Errorf("plugin %q (%s): %w", p.pl.name, p.pl.path, rpcProblem(err))
}

// rpcProblem explains a gRPC error of a plugin call.
func rpcProblem(err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unimplemented:
		return fmt.Errorf("%w: it does not implement this call (%s); is it built for another protocol version? Rebuild it with the current SDK", ErrProtocol, st.Message())
	case codes.ResourceExhausted:
		return fmt.Errorf("%w: it sent an oversized message (%s)", ErrProtocol, st.Message())
	case codes.Internal:
		return fmt.Errorf("%w: it sent malformed data (%s)", ErrProtocol, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%s", st.Message())
	default:
		return fmt.Errorf("call failed: %s: %s", st.Code(), st.Message())
	}
}

// logFields checks a log line against the protocol's limits and returns
// its fields, or what is wrong with it.
func logFields(l *actionv1.LogLine) ([]action.Field, string) {
	size := len(l.GetMessage())
	if n := len(l.GetFields()); n > actionv1.MaxLogFields {
		return nil, fmt.Sprintf("it sent a log line with %d fields, over the limit of %d", n, actionv1.MaxLogFields)
	}
	var fields []action.Field
	for _, f := range l.GetFields() {
		if k := len(f.GetKey()); k == 0 || k > actionv1.MaxFieldKeyBytes {
			return nil, fmt.Sprintf("it sent a log field key of %d bytes, want 1-%d", k, actionv1.MaxFieldKeyBytes)
		}
		size += len(f.GetKey()) + len(f.GetValue())
		fields = append(fields, action.Field{Key: f.GetKey(), Value: f.GetValue()})
	}
	if size > actionv1.MaxLogBytes {
		return nil, fmt.Sprintf("it sent a log line of %d bytes (message and fields), over the limit of %d", size, actionv1.MaxLogBytes)
	}
	return fields, ""
}

// zapFields puts a log line's fields under one "fields" key of the
// host's log, so that a plugin's keys cannot be taken for the host's own
// (plugin, job, action, pid).
func zapFields(fields []action.Field) []zap.Field {
	if len(fields) == 0 {
		return nil
	}
	zf := make([]zap.Field, len(fields))
	for i, f := range fields {
		zf[i] = zap.String(f.Key, capLine(f.Value))
	}
	return []zap.Field{zap.Dict("fields", zf...)}
}
