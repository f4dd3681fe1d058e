// Command recorder is the action plugin of the fault suite. Its action
// sleeps for the time its payload says and appends a start line and an end
// line (job, attempt, executor process, times) to the shared log named by
// FAULTS_RECORDER_LOG, so the checker can tell which executor ran which
// job when, even for runs whose process was killed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jobengine/jobengine/actions/sdk"
	"github.com/jobengine/jobengine/internal/testing/faults"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Version: "1.0.0",
		Actions: []sdk.Action{{
			Name:           faults.RecordAction,
			Description:    "sleeps for payload.sleep_ms and records the run in the fault suite's log",
			DefaultTimeout: 2 * time.Minute,
			Run:            run,
		}},
	})
}

var (
	logOnce sync.Once
	logFile *os.File
	logErr  error
)

// write appends one line in a single write on an O_APPEND file, so lines
// of concurrent processes never interleave.
func write(r faults.Record) error {
	logOnce.Do(func() {
		p := os.Getenv(faults.EnvLog)
		if p == "" {
			logErr = fmt.Errorf("recorder: %s is not set", faults.EnvLog)
			return
		}
		logFile, logErr = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	})
	if logErr != nil {
		return logErr
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = logFile.Write(append(b, '\n'))
	return err
}

func run(ctx context.Context, job *sdk.Job) (sdk.Result, error) {
	var p faults.Payload
	if err := job.Decode(&p); err != nil {
		return sdk.Result{}, err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	rec := faults.Record{
		Event: faults.EventStart, Run: hex.EncodeToString(id), Job: job.ID, Attempt: job.Attempt,
		Executor: os.Getenv(faults.EnvExecutor), PID: os.Getpid(), Time: time.Now().UnixNano(),
	}
	if err := write(rec); err != nil {
		return sdk.Result{}, err
	}
	t := time.NewTimer(time.Duration(p.SleepMS) * time.Millisecond)
	defer t.Stop()
	rec.Event, rec.Outcome = faults.EventEnd, faults.OutcomeDone
	select {
	case <-t.C:
	case <-ctx.Done():
		rec.Outcome = faults.OutcomeCanceled
	}
	rec.Time = time.Now().UnixNano()
	if err := write(rec); err != nil {
		return sdk.Result{}, err
	}
	if rec.Outcome == faults.OutcomeCanceled {
		return sdk.Result{}, fmt.Errorf("recorder: stopped: %w", ctx.Err())
	}
	return sdk.ReturnCode(0), nil
}
