package executor

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
)

// A log line's fields (a plugin's job.Log key/value pairs) are kept in the
// job's log as data beside its message.
func TestLogLineFieldsReachTheJobLog(t *testing.T) {
	e := newEnv(t)
	fields := []action.Field{{Key: "name", Value: "Alice"}, {Key: "step", Value: "2"}}
	if err := e.reg.Add(action.Definition{Name: "log-fields", Runner: action.RunnerFunc(func(_ context.Context, _ *action.Job, r action.Reporter) (action.Result, error) {
		action.LogFields(r, "warn", "greeting", fields)
		return action.Result{}, nil
	})}); err != nil {
		t.Fatal(err)
	}
	e.start("x1", nil)
	j := e.add("log-fields", "")
	e.waitState(j.ID, jobs.Success, 10*time.Second)
	lines, err := e.store.Logs(context.Background(), j.UUID())
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0].Message != "greeting" || lines[0].Level != "warn" || !slices.Equal(lines[0].Fields, fields) {
		t.Fatalf("log tail %+v, want the line \"greeting\" with fields %v", lines, fields)
	}
}
