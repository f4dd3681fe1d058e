package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var seq atomic.Int64

func newStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: fmt.Sprintf("/s%d", seq.Add(1)), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	s := NewStore(conn, cfg)
	if err := s.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTransitionsEveryPair(t *testing.T) {
	legal := map[[2]State]bool{
		{Pending, Queued}: true, {Pending, Canceled}: true,
		{Pending, Failed}:  true, // a dependency failed
		{Pending, Success}: true, // a fan-out parent whose children succeeded
		{Queued, Running}:  true, {Queued, Canceled}: true,
		{Queued, Pending}:  true, // placed on an executor lost before it started
		{Running, Running}: true, // a new attempt after a lost executor
		{Running, Queued}:  true, // requeued by a stopping executor
		{Running, Pending}: true, // a placed job requeued, or rerun after its executor was lost
		{Running, Success}: true, {Running, Failed}: true, {Running, Canceled}: true,
	}
	for _, from := range States {
		for _, to := range States {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				j := &Job{ID: "job/x", State: from}
				err := j.Transition(to, time.Now())
				if want := legal[[2]State{from, to}]; want != (err == nil) {
					t.Fatalf("transition allowed = %v, want %v (err %v)", err == nil, want, err)
				}
				if from.Final() && !errors.Is(err, ErrFinal) {
					t.Fatalf("a final state changed or gave the wrong error: %v", err)
				}
			})
		}
	}
}

func TestCreateWritesDocumentAndEntryTogether(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, err := s.Create(ctx, NewJob{Action: "echo", Target: "deployment/1", Priority: 50, Payload: json.RawMessage(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, ver, err := s.Get(ctx, j.ID)
	if err != nil || got.State != Queued || ver != 0 || got.Version != 1 || got.Target() != "deployment/1" {
		t.Fatalf("get: %+v %d %v", got, ver, err)
	}
	entries, err := s.Queue().Entries(ctx)
	if err != nil || len(entries) != 1 || entries[0].Item != j.ID || entries[0].Priority != 50 {
		t.Fatalf("entries %+v %v", entries, err)
	}
	// A failing batch writes nothing at all.
	_, err = s.CreateMany(ctx, []NewJob{{Action: "ok"}, {Action: "bad action"}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad batch: %v", err)
	}
	_, err = s.CreateMany(ctx, []NewJob{{Action: "ok"}, {ID: j.ID, Action: "dup"}})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("batch with an existing id: %v", err)
	}
	if n, _ := s.Queue().Len(ctx); n != 1 {
		t.Fatalf("%d entries after failed batches, want 1", n)
	}
	all, _ := s.List(ctx, Filter{})
	if len(all) != 1 {
		t.Fatalf("%d documents after failed batches, want 1", len(all))
	}
}

func TestBadInput(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	big := `{"x":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`
	for name, nj := range map[string]NewJob{
		"empty action":     {},
		"priority 1000":    {Action: "a", Priority: 1000},
		"payload not JSON": {Action: "a", Payload: json.RawMessage(`{nope`)},
		"payload an array": {Action: "a", Payload: json.RawMessage(`[1]`)},
		"payload too big":  {Action: "a", Payload: json.RawMessage(big)},
		"bad id":           {Action: "a", ID: "job/123"},
	} {
		if _, err := s.Create(ctx, nj); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if n, _ := s.Queue().Len(ctx); n != 0 {
		t.Fatalf("bad input wrote %d entries", n)
	}
	if _, _, err := ParseID("job/not-a-uuid"); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	id, uid, err := ParseID("0B6F1A2C-1234-4234-8234-123456789012")
	if err != nil || id != "job/0b6f1a2c-1234-4234-8234-123456789012" || uid != id[4:] {
		t.Fatalf("bare uuid: %s %s %v", id, uid, err)
	}
}

func TestUniqueKeyHasNoRace(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	var ok, dup atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Create(ctx, NewJob{Action: "a", Target: "t/1", UniqueKey: "a|t/1"})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrDuplicate):
				dup.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || dup.Load() != 19 {
		t.Fatalf("%d created, %d duplicates; want 1 and 19", ok.Load(), dup.Load())
	}
	// Once the job is final, the key is free again.
	jobs, _ := s.List(ctx, Filter{})
	j, ver, _ := s.Get(ctx, jobs[0].ID)
	if _, err := s.Cancel(ctx, j.ID, "test"); err != nil {
		t.Fatal(err)
	}
	_ = ver
	if _, err := s.Create(ctx, NewJob{Action: "a", Target: "t/1", UniqueKey: "a|t/1"}); err != nil {
		t.Fatalf("key not released by the final state: %v", err)
	}
}

func TestBacklogCap(t *testing.T) {
	s := newStore(t, StoreConfig{MaxBacklog: 3})
	ctx := ctxT(t)
	for range 3 {
		if _, err := s.Create(ctx, NewJob{Action: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Create(ctx, NewJob{Action: "a"})
	if !errors.Is(err, ErrBacklogFull) || !strings.Contains(err.Error(), "cap is 3") {
		t.Fatalf("over the cap: %v", err)
	}
	if all, _ := s.List(ctx, Filter{}); len(all) != 3 {
		t.Fatalf("%d documents, want 3: the refused job was half-written", len(all))
	}
}

func TestCompareAndSetRefusesStaleWrites(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, _ := s.Create(ctx, NewJob{Action: "a"})
	a, va, _ := s.Get(ctx, j.ID)
	b, vb, _ := s.Get(ctx, j.ID)
	if err := a.Transition(Running, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, a, va); err != nil {
		t.Fatal(err)
	}
	_ = b.Transition(Canceled, time.Now())
	if _, err := s.Update(ctx, b, vb); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	got, _, _ := s.Get(ctx, j.ID)
	if got.State != Running || got.Version != 2 {
		t.Fatalf("document after a refused stale write: %s v%d", got.State, got.Version)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	q, _ := s.Create(ctx, NewJob{Action: "a", Priority: 5})
	other, _ := s.Create(ctx, NewJob{Action: "a", Priority: 5})
	got, err := s.Cancel(ctx, q.ID, "me")
	if err != nil || got.State != Canceled || got.StatusMessage != "canceled by me" {
		t.Fatalf("cancel queued: %+v %v", got, err)
	}
	entries, _ := s.Queue().Entries(ctx)
	if len(entries) != 1 || entries[0].Item != other.ID {
		t.Fatalf("entries after cancel: %+v", entries)
	}
	if _, err := s.Cancel(ctx, q.ID, "me"); !errors.Is(err, ErrFinal) {
		t.Fatalf("second cancel: %v", err)
	}
	r, ver, _ := s.Get(ctx, other.ID)
	_ = r.Transition(Running, time.Now())
	if _, err := s.Update(ctx, r, ver); err != nil {
		t.Fatal(err)
	}
	requested, _, err := s.CancelRequested(r.UUID())
	if err != nil || requested {
		t.Fatalf("cancel requested before any request: %v %v", requested, err)
	}
	got, err = s.Cancel(ctx, r.ID, "me")
	if err != nil || got.State != Running {
		t.Fatalf("cancel running: %+v %v", got, err)
	}
	requested, _, err = s.CancelRequested(r.UUID())
	if err != nil || !requested {
		t.Fatalf("no cancel request written: %v", err)
	}
}

func TestRestore(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	lost, _ := s.Create(ctx, NewJob{Action: "a"})
	done, _ := s.Create(ctx, NewJob{Action: "a"})
	ok, _ := s.Create(ctx, NewJob{Action: "a"})
	entries, _ := s.Queue().Entries(ctx)
	for _, e := range entries {
		if e.Item == lost.ID {
			// The entry of a QUEUED job disappears.
			if err := s.Queue().Remove(ctx, e.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A job made final behind the queue's back keeps its entry.
	d, ver, _ := s.Get(ctx, done.ID)
	_ = d.Transition(Canceled, time.Now())
	if _, err := s.Update(ctx, d, ver); err != nil {
		t.Fatal(err)
	}
	// An entry whose job does not exist.
	if _, err := s.Queue().Put(ctx, []byte("job/00000000-0000-4000-8000-000000000000"), 1); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Restore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 1 || rep.Requeued[0] != lost.ID || len(rep.Removed) != 2 {
		t.Fatalf("report %+v", rep)
	}
	entries, _ = s.Queue().Entries(ctx)
	items := map[string]bool{}
	for _, e := range entries {
		items[e.Item] = true
	}
	if len(entries) != 2 || !items[lost.ID] || !items[ok.ID] {
		t.Fatalf("entries after restore: %+v", entries)
	}
	rep, err = s.Restore(ctx)
	if err != nil || len(rep.Requeued)+len(rep.Removed) != 0 {
		t.Fatalf("second restore is not a no-op: %+v %v", rep, err)
	}
}

func TestLogTailIsBounded(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	line := strings.Repeat("x", 1000)
	for i := range 100 {
		if err := s.AppendLog(ctx, "abcd", []LogLine{{Time: time.Now(), Level: "info", Message: fmt.Sprintf("%d %s", i, line)}}); err != nil {
			t.Fatal(err)
		}
	}
	lines, err := s.Logs(ctx, "abcd")
	if err != nil || len(lines) == 0 || len(lines) >= 100 {
		t.Fatalf("%d lines, %v", len(lines), err)
	}
	if !strings.HasPrefix(lines[len(lines)-1].Message, "99 ") {
		t.Fatalf("the newest line is not kept: %.10s", lines[len(lines)-1].Message)
	}
}

func TestStatusMessageTruncated(t *testing.T) {
	long := strings.Repeat("é", MaxStatusMessage)
	got := TruncateStatus(long)
	if len(got) > MaxStatusMessage || !strings.HasSuffix(got, "…") || !json.Valid([]byte(fmt.Sprintf("%q", got))) {
		t.Fatalf("truncated to %d bytes", len(got))
	}
}

// A caller's create in the job's transaction gets its missing directory
// (a fresh root's index), but a node whose whole branch is gone (the
// generation an inventory pin was for) is not brought back: the create
// fails at that operation and nothing is written.
func TestCreateFencedBringsBackNoRemovedBranch(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	index := &zk.CreateRequest{Path: s.conn.Path("an-index", "x"), Acl: zkconn.ACL}
	if _, err := s.CreateFenced(ctx, []NewJob{{Action: "a"}}, index); err != nil {
		t.Fatalf("a create whose directory is missing: %v", err)
	}
	pin := &zk.CreateRequest{Path: s.conn.Path("generations", "g1", "pins", "x"), Acl: zkconn.ACL}
	_, err := s.CreateFenced(ctx, []NewJob{{Action: "a"}}, pin)
	var oe *zkconn.OpError
	if !errors.As(err, &oe) || oe.Index != 0 || !errors.Is(oe.Err, zk.ErrNoNode) {
		t.Fatalf("a create whose branch is gone: %v, want the no-node error of that operation", err)
	}
	for _, p := range []string{s.conn.Path("generations"), s.conn.Path("generations", "g1")} {
		if ok, _, _ := s.conn.Exists(p); ok {
			t.Fatalf("%s was brought back", p)
		}
	}
	if n, err := s.q.Len(ctx); err != nil || n != 1 {
		t.Fatalf("queue holds %d entries (%v), want the first job's only", n, err)
	}
}
