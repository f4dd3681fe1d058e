package command

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/poll"

	"github.com/jobengine/jobengine/engine/jobs"
)

func TestLogs(t *testing.T) {
	e := newJobEnv(t)
	id := e.add("a")
	uid := strings.TrimPrefix(id, "job/")
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(i int) jobs.LogLine {
		return jobs.LogLine{Time: t0.Add(time.Duration(i) * time.Second), Level: "info", Message: fmt.Sprintf("line %d", i)}
	}
	if out := e.ok("job", "logs", id); out != "" {
		t.Fatalf("logs of a job without log: %q", out)
	}
	if err := e.store.AppendLog(e.ctx(), uid, []jobs.LogLine{line(1), line(2)}); err != nil {
		t.Fatal(err)
	}
	want := "2025-01-02T03:04:06.000Z INFO  line 1\n2025-01-02T03:04:07.000Z INFO  line 2\n"
	if out := e.ok("job", "logs", id); out != want {
		t.Fatalf("job logs:\n%s\nwant:\n%s", out, want)
	}

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"jobengine", "--zk-hosts", testZK.ConnectString(), "--zk-root", e.root, "job", "logs", "--follow", id}, &out, &errOut)
	}()
	for i := 3; i <= 5; i++ {
		poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
			if !strings.Contains(out.String(), fmt.Sprintf("line %d\n", i-1)) {
				return fmt.Errorf("line %d not printed yet:\n%s", i-1, out.String())
			}
			return nil
		})
		if err := e.store.AppendLog(e.ctx(), uid, []jobs.LogLine{line(i)}); err != nil {
			t.Fatal(err)
		}
	}
	poll.For(t, 20*time.Second, 10*time.Millisecond, func() error {
		if !strings.Contains(out.String(), "line 5\n") {
			return fmt.Errorf("line 5 not printed yet:\n%s", out.String())
		}
		return nil
	})
	select {
	case code := <-done:
		t.Fatalf("logs --follow ended (exit %d) while the job is live", code)
	default:
	}
	e.advance(id, jobs.Running, jobs.Success)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("logs --follow: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("logs --follow did not end when the job became final")
	}
	for i := 1; i <= 5; i++ {
		if n := strings.Count(out.String(), fmt.Sprintf("line %d\n", i)); n != 1 {
			t.Fatalf("line %d printed %d times:\n%s", i, n, out.String())
		}
	}
}
