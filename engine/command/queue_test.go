package command

import (
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
)

func TestQueueStatsInspectRestore(t *testing.T) {
	e := newJobEnv(t)
	a := e.add("a", "--priority", "5")
	b := e.add("b", "--priority", "500")
	c := e.add("c", "--priority", "5")

	// An executor holds the first entry.
	cons := e.store.Queue().NewConsumer(queue.ConsumerOptions{Name: "executor-1"})
	t.Cleanup(cons.Close)
	it, err := cons.Take(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if string(it.Data) != a {
		t.Fatalf("took %s, want %s first", it.Data, a)
	}
	e.advance(a, jobs.Running)

	type stats struct {
		Entries, Taken, Available, Orphans int
		ByPriority                         map[string]int `json:"by-priority"`
		Jobs                               map[string]int
	}
	st := decode[stats](t, e.ok("queue", "stats", "--json"))
	if st.Entries != 3 || st.Taken != 1 || st.Available != 2 || st.Orphans != 0 || st.ByPriority["5"] != 2 || st.ByPriority["500"] != 1 ||
		st.Jobs["QUEUED"] != 2 || st.Jobs["RUNNING"] != 1 || st.Jobs["SUCCESS"] != 0 || len(st.Jobs) != len(jobs.States) {
		t.Fatalf("queue stats --json: %+v", st)
	}
	text := e.ok("queue", "stats")
	for _, want := range []string{"entries", "taken", "available", "orphans", "PRIORITY", "005", "500", "STATE", "QUEUED", "RUNNING", "outbox entries", "outbox failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("queue stats text lacks %q:\n%s", want, text)
		}
	}

	type entry struct {
		queue.Entry
		TakerName string `json:"taker-name"`
	}
	entries := decode[[]entry](t, e.ok("queue", "inspect", "--json"))
	if len(entries) != 3 || entries[0].Item != a || entries[1].Item != c || entries[2].Item != b ||
		!entries[0].Taken || entries[0].Taker != string(it.TakerID()) || entries[0].TakerName != "executor-1" ||
		entries[1].Taken || entries[1].TakerName != "" || entries[2].Priority != 500 {
		t.Fatalf("queue inspect --json: %+v", entries)
	}
	if l := decode[[]queue.Entry](t, e.ok("queue", "inspect", "--limit", "1", "--json")); len(l) != 1 || l[0].Item != a {
		t.Fatalf("queue inspect --limit 1: %+v", l)
	}
	text = e.ok("queue", "inspect")
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 4 || !strings.Contains(lines[0], "TAKER") ||
		!strings.Contains(lines[1], "yes") || !strings.Contains(lines[1], "executor-1") || !strings.Contains(lines[3], b) {
		t.Fatalf("queue inspect table:\n%s", text)
	}

	// Break the queue: c loses its entry, b ends without its entry removed.
	for _, en := range entries {
		if en.Item == c {
			if err := e.conn.Delete(e.store.Queue().EntriesPath()+"/"+en.Name, -1); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.advance(b, jobs.Running, jobs.Success)
	type report struct {
		Requeued, Removed []string
		SkippedTaken      []string `json:"skipped-taken"`
	}
	rep := decode[report](t, e.ok("queue", "restore", "--json"))
	if len(rep.Requeued) != 1 || rep.Requeued[0] != c || len(rep.Removed) != 1 || rep.Removed[0] != entries[2].Name || len(rep.SkippedTaken) != 0 {
		t.Fatalf("queue restore: %+v", rep)
	}
	// Idempotent: nothing left to do, and empty lists are [] not null.
	if out := e.ok("queue", "restore", "--json"); !strings.Contains(out, `"requeued": []`) || !strings.Contains(out, `"skipped-taken": []`) {
		t.Fatalf("second queue restore: %s", out)
	}
	if out := e.ok("queue", "restore"); out != "restore: 0 requeued, 0 removed, 0 skipped (taken), 0 skipped (invalid)\n" {
		t.Fatalf("third queue restore printed %q", out)
	}
	st = decode[stats](t, e.ok("queue", "stats", "--json"))
	if st.Entries != 2 || st.Taken != 1 {
		t.Fatalf("queue stats after restore: %+v", st)
	}
}
