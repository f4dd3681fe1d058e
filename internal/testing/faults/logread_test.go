package faults

import (
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/logging"
)

// TestReadLog reads back what the daemons' logger writes: the checker and
// the code that logs share the messages and keys, not their wording.
func TestReadLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x1.log")
	log, err := logging.New(logging.Config{Format: "json", File: path})
	if err != nil {
		t.Fatal(err)
	}
	log.Info(distributor.MsgLeading)
	jl := log.With(zap.String(executor.FieldJob, "job/a"))
	jl.Info(executor.MsgJobFinished, zap.String("state", "SUCCESS"))
	jl.Info("some other line")
	log.Info(executor.MsgJobFinished, zap.String(executor.FieldJob, "job/b"))
	jl.Info(executor.MsgJobFinished)
	log.Info(distributor.MsgTickJobExists, zap.String(executor.FieldJob, "job/c"))
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}

	finished := map[string]int{}
	if err := countFinished(path, finished); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 2 || finished["job/a"] != 2 || finished["job/b"] != 1 {
		t.Errorf("finished = %v, want job/a twice and job/b once", finished)
	}
	if n, err := countLines(path, distributor.MsgTickJobExists); err != nil || n != 1 {
		t.Errorf("ticks resumed = %d, %v; want 1", n, err)
	}
	ts, err := logTimes(path, distributor.MsgLeading)
	if err != nil || len(ts) != 1 || ts[0].IsZero() {
		t.Errorf("leading times = %v, %v; want one time", ts, err)
	}
}
