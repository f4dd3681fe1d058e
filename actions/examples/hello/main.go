// Command hello is an example jobengine action plugin. Its action "hello"
// greets the job's target and the name in its payload, reporting progress
// in steps, and stops as soon as the job is cancelled or times out.
//
// Build it and drop it into the executor's plugin directory:
//
//	go build -o /usr/libexec/jobengine/actions/hello ./actions/examples/hello
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jobengine/jobengine/actions/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Version: "1.0.0",
		Actions: []sdk.Action{{
			Name:           "hello",
			Description:    "greets the target and the payload's name",
			DefaultTimeout: time.Minute,
			Run:            run,
		}},
	})
}

// payload is the job's arguments: {"name": "world", "steps": 5, "delay": "100ms"}.
type payload struct {
	Name  string `json:"name"`
	Steps int    `json:"steps"`
	Delay string `json:"delay"`
}

func run(ctx context.Context, job *sdk.Job) (sdk.Result, error) {
	p := payload{Name: "world", Steps: 4, Delay: "250ms"}
	if err := job.Decode(&p); err != nil {
		return sdk.Result{}, err
	}
	delay, err := time.ParseDuration(p.Delay)
	if err != nil || p.Steps < 1 {
		return sdk.ReturnCode(2), fmt.Errorf("bad payload: steps must be >= 1 and delay a duration like \"250ms\" (got %d, %q)", p.Steps, p.Delay)
	}
	target := job.Target
	if target == "" {
		target = "nobody"
	}
	job.Log.Info("greeting", "target", target, "name", p.Name, "steps", p.Steps)
	for i := 1; i <= p.Steps; i++ {
		select {
		case <-ctx.Done():
			job.Log.Warn("stopped", "step", i)
			return sdk.Result{}, fmt.Errorf("hello stopped at step %d of %d: %w", i, p.Steps, ctx.Err())
		case <-time.After(delay):
		}
		job.Progress(i * 100 / p.Steps)
		job.Status(fmt.Sprintf("step %d of %d", i, p.Steps))
	}
	if target != "nobody" {
		job.Affected(target)
	}
	return sdk.Result{Message: fmt.Sprintf("Hello %s, from %s!", p.Name, target)}, nil
}
