package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// services starts `jobengine services` (the binary) on the test's root.
func (e *jobEnv) services(id string) *proc {
	e.t.Helper()
	return startDaemon(e.t, e.root, "services", "--identifier", id, "--notify-min-backoff", "100ms", "--notify-max-backoff", "300ms",
		"--notify-max-attempts", "1000")
}

// pending returns the notices waiting, as the command line lists them.
func (e *jobEnv) pending() []notify.Record {
	e.t.Helper()
	var recs []notify.Record
	if err := json.Unmarshal([]byte(e.ok("notification", "list", "--pending", "--json")), &recs); err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// A notification survives the death of the process delivering it: the
// receiver is down while the first instance retries, that instance is
// killed (SIGKILL), another starts, the receiver comes back, and the
// notification arrives once. Then the same with the kill in the middle of
// a request: it is delivered again with the same delivery ID, which is how
// a receiver acts on it once.
func TestServicesDeliverAcrossAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills four daemons: not in -short mode")
	}
	e := newJobEnv(t)
	rcv, url := newHookReceiver(t, "k3y")
	e.ok("notification", "create", "hook", "--webhook", url, "--secret-file", writeSecret(t, "k3y"))
	rcv.set(http.StatusServiceUnavailable, nil)

	first := e.services("first")
	id := e.add("deploy", "--notify-failure", "hook")
	e.ok("job", "cancel", id)
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if p := e.pending(); len(p) != 1 || p[0].Attempts < 2 {
			return fmt.Errorf("pending %+v", p)
		}
		return nil
	})
	first.signal(syscall.SIGKILL)
	first.wait(10 * time.Second)
	rcv.set(0, nil)
	second := e.services("second")
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		if events, _, _ := rcv.delivered(); len(events) == 0 || len(e.pending()) > 0 {
			return fmt.Errorf("not delivered yet")
		}
		return nil
	})
	events, ids, _ := rcv.delivered()
	if len(events) != 1 || len(ids) != 1 || events[0].Job.ID != id || events[0].Event != jobs.NotifyFailure || events[0].Job.State != jobs.Canceled {
		t.Fatalf("delivered %+v", events)
	}
	if len(rcv.bad) > 0 {
		t.Fatalf("requests failed verification: %v", rcv.bad)
	}

	// Killed in the middle of a request: the receiver never answers the
	// first attempt, the next instance delivers the same notice again.
	block := make(chan struct{})
	rcv.set(0, block)
	_, _, before := rcv.delivered()
	id2 := e.add("deploy", "--notify-failure", "hook")
	e.ok("job", "cancel", id2)
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		if _, _, n := rcv.delivered(); n == before {
			return fmt.Errorf("no request yet")
		}
		return nil
	})
	second.signal(syscall.SIGKILL)
	second.wait(10 * time.Second)
	// The unanswered request ends with its client; only then is the
	// receiver let go, or it could count a request nobody heard answered.
	poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
		if rcv.abandoned() == 0 {
			return errors.New("the killed sender's request is still open")
		}
		return nil
	})
	close(block)
	rcv.set(0, nil)
	e.services("third")
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		_, ids, _ := rcv.delivered()
		if len(ids) < 2 || len(e.pending()) > 0 {
			return fmt.Errorf("not delivered yet: %v", ids)
		}
		return nil
	})
	events, ids, requests := rcv.delivered()
	if len(ids) != 2 || requests < before+2 {
		t.Fatalf("deliveries by id %v after %d requests (%d before)", ids, requests, before)
	}
	if last := events[len(events)-1]; last.Job.ID != id2 || ids[last.ID] != 1 {
		t.Fatalf("the second notice: %+v, %v", last, ids)
	}
}

// A schedule launches one job per occurrence across a killed leader.
func TestServicesLaunchSchedulesAcrossAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a schedule every 2 seconds across a failover: not in -short mode")
	}
	e := newJobEnv(t)
	e.ok("schedule", "create", "often", "--cron", "*/2 * * * * *", "--action", "echo", "--catch-up", "none")
	a := e.services("a")
	a.waitLog(30*time.Second, "leading: maintenance services started")
	b := e.services("b")
	ticks := func() []string {
		var out []string
		err := e.store.Walk(e.ctx(), func(j *jobs.Job, _ int32) {
			if strings.HasPrefix(j.CreatedBy, "schedule:often@") {
				out = append(out, j.Tick)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := len(ticks()); n < 2 {
			return fmt.Errorf("%d jobs", n)
		}
		return nil
	})
	a.signal(syscall.SIGKILL)
	a.wait(10 * time.Second)
	before := len(ticks())
	b.waitLog(30*time.Second, "leading: maintenance services started")
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := len(ticks()); n < before+2 {
			return fmt.Errorf("%d jobs", n)
		}
		return nil
	})
	got := ticks()
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("occurrence %s launched twice: %v", got[i], got)
		}
	}
	var byB int
	_ = e.store.Walk(e.ctx(), func(j *jobs.Job, _ int32) {
		if strings.HasPrefix(j.CreatedBy, "schedule:often@b") {
			byB++
		}
	})
	if byB == 0 {
		t.Fatal("the new leader launched nothing")
	}
	b.signal(syscall.SIGTERM)
	if code := b.wait(20 * time.Second); code != 0 {
		t.Fatalf("services exited %d on SIGTERM", code)
	}
}
