package command

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// A job run by a real executor with indexing on: while it is still in
// ZooKeeper, `job logs --es-hosts` shows its log line once — it is both in
// the tail and in the history — at the time the action logged it, with
// the history's other events in time order.
func TestJobLogsOfALiveJobShowEachLineOnce(t *testing.T) {
	es := estest.Start(t, estest.Options{})
	const prefix = "t-logs-"
	root := testRoot(t)
	s := testStore(t, root)
	startDaemon(t, root, "--es-hosts", es.URL(), "--es-index-prefix", prefix, "executor", "--threads", "1", "--plugin-dir", t.TempDir(), "--enable-test-actions")

	j := createJob(t, s, "dummy_test_action", `{"duration": "10s"}`)
	const line = "dummy test action sleeping 10s"
	var tail []jobs.LogLine
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		var err error
		tail, err = s.Logs(context.Background(), j.UUID())
		if err != nil || len(tail) == 0 {
			return fmt.Errorf("no log tail yet (%v)", err)
		}
		return nil
	})
	ix, err := index.New(index.Config{Hosts: []string{es.URL()}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ix.Refresh(ctx)
		evs, err := ix.JobEvents(ctx, j.ID, time.Time{}, 100)
		for _, ev := range evs {
			if ev.Type == index.EventLog {
				return nil
			}
		}
		return fmt.Errorf("the log line is not indexed yet (%d events, %v)", len(evs), err)
	})
	if st, _, _ := s.Get(context.Background(), j.ID); st == nil || st.State.Final() {
		t.Fatalf("the job ended before its log was read: %+v", st)
	}

	out, errOut, code := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root,
		"--es-hosts", es.URL(), "--es-index-prefix", prefix, "job", "logs", j.ID)
	if code != 0 {
		t.Fatalf("job logs: exit %d %s", code, errOut)
	}
	if n := strings.Count(out, line); n != 1 {
		t.Fatalf("the line shows %d times, want once:\n%s", n, out)
	}
	want := tail[0].Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") + " INFO  " + line
	if !strings.Contains(out, want+"\n") {
		t.Fatalf("job logs lacks %q (the line at its own time):\n%s", want, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !sort.SliceIsSorted(lines, func(a, b int) bool { return lines[a][:24] < lines[b][:24] }) {
		t.Fatalf("job logs not in time order:\n%s", out)
	}
}
