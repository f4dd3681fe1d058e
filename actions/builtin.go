package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jobengine/jobengine/engine/action"
)

// The built-in actions are test actions: they try out and test the engine
// and are offered only where test actions are enabled (action.Definition.Test).
func init() {
	action.Register(action.Definition{
		Name:           "dummy_test_action",
		Description:    "sleeps a random 1–5 s (or payload {\"duration\": \"2s\"}), reporting progress; the reference engine's test action",
		DefaultTimeout: time.Minute,
		Test:           true,
		Runner:         action.RunnerFunc(dummy),
	})
	action.Register(action.Definition{
		Name:           "sleep",
		Description:    "sleeps payload {\"duration\": \"5s\"} (default 1s), honouring cancellation",
		DefaultTimeout: time.Hour,
		Test:           true,
		Runner:         action.RunnerFunc(sleep),
	})
	action.Register(action.Definition{
		Name:           "fail",
		Description:    "ends with payload {\"code\": N} (default 1) and {\"message\": \"…\"}",
		DefaultTimeout: time.Minute,
		LostPolicy:     action.Fail,
		Test:           true,
		Runner:         action.RunnerFunc(fail),
	})
	action.Register(action.Definition{
		Name:           "echo",
		Description:    "writes its payload into the status message",
		DefaultTimeout: time.Minute,
		Test:           true,
		Runner:         action.RunnerFunc(echo),
	})
}

// durationArg reads {"duration": "1.5s"} or {"duration": 1.5} (seconds).
func durationArg(payload json.RawMessage, def time.Duration) (time.Duration, error) {
	if len(payload) == 0 {
		return def, nil
	}
	var p struct {
		Duration json.RawMessage `json:"duration"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return 0, fmt.Errorf("payload: %w", err)
	}
	if len(p.Duration) == 0 {
		return def, nil
	}
	var s string
	if json.Unmarshal(p.Duration, &s) == nil {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("payload: duration %q is not a duration like \"1.5s\"", s)
		}
		return d, nil
	}
	var secs float64
	if err := json.Unmarshal(p.Duration, &secs); err != nil || secs < 0 {
		return 0, fmt.Errorf("payload: duration must be a string like \"1.5s\" or a number of seconds")
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// wait sleeps d in steps, reporting progress, until ctx ends.
func wait(ctx context.Context, d time.Duration, r action.Reporter) error {
	const steps = 10
	start := time.Now()
	t := time.NewTimer(d / steps)
	defer t.Stop()
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		r.Progress(i * 100 / steps)
		t.Reset(time.Until(start.Add(d * time.Duration(i+1) / steps)))
	}
	return nil
}

func dummy(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	d, err := durationArg(j.Payload, time.Second+time.Duration(rand.Int64N(int64(4*time.Second))))
	if err != nil {
		return action.Result{}, err
	}
	r.Log("info", fmt.Sprintf("dummy test action sleeping %s", d))
	if err := wait(ctx, d, r); err != nil {
		return action.Result{}, err
	}
	return action.Result{Message: fmt.Sprintf("slept %s", d)}, nil
}

func sleep(ctx context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	d, err := durationArg(j.Payload, time.Second)
	if err != nil {
		return action.Result{}, err
	}
	if err := wait(ctx, d, r); err != nil {
		return action.Result{}, err
	}
	return action.Result{Message: fmt.Sprintf("slept %s", d)}, nil
}

func fail(_ context.Context, j *action.Job, _ action.Reporter) (action.Result, error) {
	p := struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}{}
	if len(j.Payload) > 0 {
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			return action.Result{}, fmt.Errorf("payload: %w", err)
		}
	}
	code := 1
	if p.Code != nil {
		code = *p.Code
	}
	return action.Result{ReturnCode: code, Message: p.Message}, nil
}

func echo(_ context.Context, j *action.Job, r action.Reporter) (action.Result, error) {
	msg := string(j.Payload)
	if msg == "" {
		msg = "{}"
	}
	r.Log("info", msg)
	return action.Result{Message: msg}, nil
}
