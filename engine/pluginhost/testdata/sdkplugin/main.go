// Command sdkplugin is a test plugin built with the SDK: well-behaved
// actions, and actions that crash, panic, ignore cancellation, flood their
// stderr, leave a child behind or show their environment.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jobengine/jobengine/actions/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Version: "2.3.4",
		Actions: []sdk.Action{
			{Name: "echo", Description: "reports everything it can", DefaultTimeout: 90 * time.Second, LostPolicy: sdk.Fail, MaxAttempts: 1, Run: echo},
			{Name: "sleepy", Run: sleepy},
			{Name: "stubborn", Run: stubborn},
			{Name: "crash", Run: crash},
			{Name: "panic", Run: panicky},
			{Name: "noop", Run: noop},
			{Name: "flood", Run: flood},
			{Name: "spawn", Run: spawn},
			{Name: "env", Run: env},
		},
	})
}

type args struct {
	RC      int    `json:"rc"`
	Message string `json:"message"`
	Error   string `json:"error"`
	Sleep   string `json:"sleep"`
	Lines   int    `json:"lines"`
}

func pid(job *sdk.Job) { job.Status("pid=" + strconv.Itoa(os.Getpid())) }

func echo(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	var a args
	if err := job.Decode(&a); err != nil {
		return sdk.Result{}, err
	}
	pid(job)
	job.Progress(10)
	job.Progress(150) // clamped by the SDK
	job.Affected(job.Target, "")
	job.Log.Debug("debug line")
	job.Log.Info("info line", "attempt", job.Attempt, "tags", len(job.Tags))
	job.Log.Warn("warn line")
	job.Log.Error("error line")
	if a.Error != "" {
		return sdk.ReturnCode(a.RC), errors.New(a.Error)
	}
	return sdk.Result{ReturnCode: a.RC, Message: a.Message}, nil
}

func sleepy(ctx context.Context, job *sdk.Job) (sdk.Result, error) {
	var a args
	_ = job.Decode(&a)
	d, _ := time.ParseDuration(a.Sleep)
	pid(job)
	select {
	case <-ctx.Done():
		return sdk.Result{}, fmt.Errorf("sleepy stopped: %w", ctx.Err())
	case <-time.After(d):
		return sdk.ReturnCode(0), nil
	}
}

func stubborn(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	pid(job)
	select {} // ignores cancellation
}

func crash(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	pid(job)
	job.Progress(30)
	go func() { panic("disk on fire") }() // not recoverable: the process dies
	select {}
}

func panicky(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	panic("bad luck")
}

func noop(context.Context, *sdk.Job) (sdk.Result, error) { return sdk.Result{}, nil }

// flood writes Lines lines to stderr as fast as it can.
func flood(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	var a args
	_ = job.Decode(&a)
	w := bufio.NewWriterSize(os.Stderr, 1<<16)
	for i := 0; i < a.Lines; i++ {
		fmt.Fprintf(w, "flood line %d %s\n", i, strings.Repeat("x", 100))
	}
	if err := w.Flush(); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Message: "flooded"}, nil
}

// spawn starts a long sleep and hangs, ignoring cancellation.
func spawn(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		return sdk.Result{}, err
	}
	pid(job)
	job.Status("child=" + strconv.Itoa(cmd.Process.Pid))
	select {}
}

// env logs every variable of its environment, one per line.
func env(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	for _, kv := range os.Environ() {
		job.Log.Info("ENV " + kv)
	}
	return sdk.Result{}, nil
}
