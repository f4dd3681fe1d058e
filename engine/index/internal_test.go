package index

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRingKeepsTheNewest(t *testing.T) {
	r := ring{max: 3}
	ids := func(evs []Event) string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	for i := 1; i <= 4; i++ {
		dropped := r.push(Event{ID: fmt.Sprint(i)})
		if dropped != (i == 4) {
			t.Fatalf("push %d: dropped = %v", i, dropped)
		}
	}
	if got := ids(r.take(2)); got != "2,3" {
		t.Fatalf("take = %s, want 2,3", got)
	}
	r.push(Event{ID: "5"})
	// Three failed events come back; only two fit, the newest of them.
	if n := r.unshift([]Event{{ID: "a"}, {ID: "b"}, {ID: "c"}}); n != 2 {
		t.Fatalf("unshift dropped %d, want 2", n)
	}
	if got := ids(r.take(10)); got != "c,4,5" {
		t.Fatalf("take = %s, want c,4,5", got)
	}
	if r.len() != 0 {
		t.Fatalf("len = %d", r.len())
	}
}

func TestEntries(t *testing.T) {
	const uid = "0b6f6b2e-1c1d-4f57-9a5e-5d0f4b7c2a10"
	name := EntryName(uid, 42)
	if name != uid+"-0000000042" {
		t.Fatalf("EntryName = %s", name)
	}
	if u, v, ok := ParseEntryName(name); !ok || u != uid || v != 42 {
		t.Fatalf("ParseEntryName = %s %d %v", u, v, ok)
	}
	for _, bad := range []string{"garbage", uid, uid + "-", "x-0000000001", uid + "-abc"} {
		if _, _, ok := ParseEntryName(bad); ok {
			t.Errorf("ParseEntryName(%q) accepted", bad)
		}
	}
	mtime := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		data, bad string
	}{
		{`{"id":"job/` + uid + `","version":42,"time-of-status-change":"2025-01-02T03:04:05.5Z"}`, ""},
		{"{\n  \"id\": \"job/" + uid + "\",\n  \"version\": 42\n}", ""},
		{`[1,2]`, "not a JSON object"},
		{`{"id":"job/` + uid + `","version":41}`, "holds version 41"},
		{`{"id":"job/other","version":42}`, "holds job"},
	} {
		e := newEntry(name, []byte(tc.data), mtime)
		switch {
		case tc.bad == "" && e.bad != nil:
			t.Errorf("%s: %v", tc.data, e.bad)
		case tc.bad != "" && (e.bad == nil || !strings.Contains(e.bad.Error(), tc.bad)):
			t.Errorf("%s: bad = %v, want %q", tc.data, e.bad, tc.bad)
		case tc.bad == "" && strings.Contains(string(e.body), "\n"):
			t.Errorf("%s: body is not on one line", tc.data)
		}
	}
	e := newEntry(name, []byte(`{"id":"job/`+uid+`","version":42,"updated":"soon"}`), mtime)
	if ev := e.stateEvent(); !ev.Time.Equal(mtime) || ev.ID != uid+"-state-42" || ev.Job != "job/"+uid {
		t.Fatalf("state event of a document without a usable time: %+v", ev)
	}
}
