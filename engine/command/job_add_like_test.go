package command

import (
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

// job add --count creates that many jobs alike, in batches, and prints
// one id per line; bad combinations and a backlog without room write
// nothing.
func TestJobAddCount(t *testing.T) {
	e := newJobEnv(t)
	out := e.ok("job", "add", "a", "--count", "1200", "--priority", "7", "--payload", `{"k":1}`, "--max-backlog", "2000")
	ids := strings.Fields(out)
	if len(ids) != 1200 {
		t.Fatalf("%d ids printed, want 1200", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %s printed twice", id)
		}
		seen[id] = true
	}
	j, _, err := e.store.Get(e.ctx(), ids[777])
	if err != nil || j.State != jobs.Queued || j.Priority != 7 || string(j.Payload) != `{"k":1}` {
		t.Fatalf("job %s: %+v (%v)", ids[777], j, err)
	}
	if n, _ := e.store.Queue().Len(e.ctx()); n != 1200 {
		t.Fatalf("%d queue entries, want 1200", n)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--count", "0"}, 2, "--count 0"},
		{[]string{"--count", "2", "--unique-key", "k"}, 2, "--unique-key"},
		{[]string{"--count", "2", "--json"}, 2, "--json"},
		{[]string{"--count", "2", "--fanout"}, 2, "--fanout"},
		{[]string{"--count", "900", "--max-backlog", "2000"}, 1, "backlog full"},
	} {
		_, errOut, code := e.run(append([]string{"job", "add", "a"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("job add a %v: exit %d, stderr %q; want exit %d naming %s", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if n, _ := e.store.Queue().Len(e.ctx()); n != 1200 {
		t.Fatalf("%d queue entries after refused adds, want 1200", n)
	}
}
