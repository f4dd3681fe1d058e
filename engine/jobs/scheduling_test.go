package jobs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/queue"
)

func TestSchedulingFieldsAreValidated(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	keys := make([]string, MaxConcurrencyKeys+1)
	for i := range keys {
		keys[i] = "k" + strings.Repeat("x", i)
	}
	for name, groups := range map[string][]string{
		"group with a slash":    {"a/b"},
		"group starting with -": {"-a"},
	} {
		if _, err := s.Create(ctx, NewJob{Action: "a", Launch: Launch{InstanceGroups: groups}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for name, sc := range map[string]Scheduling{
		"negative impact":      {Impact: -1},
		"impact too big":       {Impact: MaxImpact + 1},
		"key with a space":     {ConcurrencyKeys: []string{"template: deploy"}},
		"empty key":            {ConcurrencyKeys: []string{""}},
		"too many keys":        {ConcurrencyKeys: keys},
		"dependency not an id": {DependsOn: []string{"job/42"}},
		"bad execution node":   {ExecutionNode: "a b"},
		"bad fan-out group":    {FanoutGroup: "x y"},
	} {
		if _, err := s.Create(ctx, NewJob{Action: "a", Scheduling: sc}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if n, _ := s.PendingCount(ctx); n != 0 {
		t.Fatalf("bad input wrote %d pending nodes", n)
	}
}

// A job without scheduling needs takes the SlipStream path; any need makes
// it PENDING, in the pending index only.
func TestCreatePendingOrQueued(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	fast, err := s.Create(ctx, NewJob{Action: "a"})
	if err != nil || fast.State != Queued {
		t.Fatalf("plain job: %+v %v", fast, err)
	}
	needs := map[string]NewJob{
		"key":        {Scheduling: Scheduling{ConcurrencyKeys: []string{TemplateKey("deploy")}}},
		"group":      {Launch: Launch{InstanceGroups: []string{"edge"}}},
		"impact":     {Scheduling: Scheduling{Impact: 3}},
		"dependency": {Scheduling: Scheduling{DependsOn: []string{fast.ID}}},
	}
	for name, n := range needs {
		n.Action, n.Priority = "a", 7
		j, err := s.Create(ctx, n)
		if err != nil || j.State != Pending {
			t.Fatalf("%s: %+v %v", name, j, err)
		}
	}
	shared, _ := s.Queue().Entries(ctx)
	if len(shared) != 1 || shared[0].Item != fast.ID {
		t.Fatalf("shared queue: %+v", shared)
	}
	pending, _ := s.PendingIDs(ctx)
	if len(pending) != len(needs) {
		t.Fatalf("pending index: %+v", pending)
	}
	got, _, _ := s.Get(ctx, pending[0])
	data, _ := json.Marshal(got)
	for _, field := range []string{`"state":"PENDING"`} {
		if !strings.Contains(string(data), field) {
			t.Fatalf("document %s lacks %s", data, field)
		}
	}
}

// The scheduling fields are top-level fields of the document.
func TestSchedulingFieldsInTheDocument(t *testing.T) {
	j := Job{ID: "job/x", Launch: Launch{InstanceGroups: []string{"edge", "default"}}, Scheduling: Scheduling{
		Impact: 6, ConcurrencyKeys: []string{"template:deploy"},
		DependsOn: []string{"job/y"}, Explanation: "why", InstanceGroup: "edge", ExecutionNode: "x1", FanoutGroup: "edge",
	}}
	data, err := json.Marshal(&j)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"instance-groups":["edge","default"]`, `"impact":6`, `"concurrency-keys":["template:deploy"]`,
		`"depends-on":["job/y"]`, `"explanation":"why"`, `"instance-group":"edge"`, `"execution-node":"x1"`, `"fanout-group":"edge"`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("document %s lacks %s", data, field)
		}
	}
	var back Job
	if err := json.Unmarshal(data, &back); err != nil || back.Impact != 6 || back.InstanceGroups[1] != "default" {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if (&Scheduling{}).EffectiveImpact() != 1 || (&Job{}).Groups()[0] != DefaultGroup {
		t.Fatal("defaults")
	}
}

// electionNode stands for a leader's election node: the fence of the
// scheduler's writes.
func electionNode(t *testing.T, s *Store) *zk.CheckVersionRequest {
	t.Helper()
	p := s.Conn().Path("election-test")
	if err := s.Conn().EnsurePath(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	return &zk.CheckVersionRequest{Path: p, Version: -1}
}

// isPending fails the test unless id is in the index of PENDING jobs.
func isPending(t *testing.T, s *Store, id string) {
	t.Helper()
	ids, err := s.PendingIDs(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ids {
		if p == id {
			return
		}
	}
	t.Fatalf("%s is not in the pending index %v", id, ids)
}

func TestPlaceExplainAndFail(t *testing.T) {
	rec := &recorder{}
	s := newStore(t, StoreConfig{Observers: []Observer{rec}})
	ctx := ctxT(t)
	fence := electionNode(t, s)
	a, _ := s.Create(ctx, NewJob{Action: "a", Priority: 3, Scheduling: Scheduling{ConcurrencyKeys: []string{"k"}}})
	b, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{DependsOn: []string{a.ID}}})

	// Until a pass explains it, a PENDING job says it waits for one.
	j, ver, _ := s.Get(ctx, b.ID)
	if j.State != Pending || j.Explanation != NotScheduledYet {
		t.Fatalf("created: %s %q", j.State, j.Explanation)
	}
	// An explanation changes the document, not its state.
	c, err := s.Explain(j, ver, "waiting for "+a.ID+" to finish (dependency)")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx, fence); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Get(ctx, b.ID); got.State != Pending || got.Explanation != "waiting for "+a.ID+" to finish (dependency)" {
		t.Fatalf("explained: %+v", got)
	}

	// Placing: QUEUED on the executor's direct queue, out of the pending index.
	j, ver, _ = s.Get(ctx, a.ID)
	c, err = s.Place(j, ver, "x1", "edge")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx, fence); err != nil {
		t.Fatal(err)
	}
	got, _, _ := s.Get(ctx, a.ID)
	if got.State != Queued || got.ExecutionNode != "x1" || got.InstanceGroup != "edge" || got.Explanation != "" {
		t.Fatalf("placed: %+v", got)
	}
	direct, _ := s.NodeQueue("x1").Entries(ctx)
	if len(direct) != 1 || direct[0].Item != a.ID || direct[0].Priority != 3 {
		t.Fatalf("direct queue: %+v", direct)
	}
	if p, _ := s.PendingIDs(ctx); len(p) != 1 || p[0] != b.ID {
		t.Fatalf("pending index after placing: %+v", p)
	}

	// Failing a PENDING job: FAILED, its entry gone, its unique key free.
	j, ver, _ = s.Get(ctx, b.ID)
	c, err = s.FailPending(j, ver, "previous job failed: "+a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx, fence); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.Get(ctx, b.ID)
	if got.State != Failed || got.StatusMessage != "previous job failed: "+a.ID || *got.ReturnCode != 1 {
		t.Fatalf("failed: %+v", got)
	}
	if n, _ := s.PendingCount(ctx); n != 0 {
		t.Fatalf("%d pending nodes left", n)
	}
	if tr := strings.Join(rec.transitions(), " "); tr != "PENDING→QUEUED PENDING→FAILED" {
		t.Fatalf("state events %q", tr)
	}
	// Only PENDING jobs are placed or explained.
	if _, err := s.Place(got, 0, "x1", "edge"); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("placing a final job: %v", err)
	}
}

// A deposed leader writes nothing; a batch with one stale change names it
// and writes nothing either.
func TestCommitBatchFenceAndConflict(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	fence := electionNode(t, s)
	var changes []*Change
	var ids []string
	for range 3 {
		j, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{Impact: 2}})
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		j, ver, _ := s.Get(ctx, id)
		c, err := s.Place(j, ver, "x1", "default")
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, c)
	}
	gone := &zk.CheckVersionRequest{Path: s.Conn().Path("no-such-election-node"), Version: -1}
	if err := s.CommitBatch(ctx, changes, gone); !errors.Is(err, ErrFenceLost) {
		t.Fatalf("commit under a lost fence: %v", err)
	}
	// Someone else changes the second job meanwhile.
	j, ver, _ := s.Get(ctx, ids[1])
	j.Tags = []string{"touched"}
	if _, err := s.Update(ctx, j, ver); err != nil {
		t.Fatal(err)
	}
	err := s.CommitBatch(ctx, changes, fence)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, ErrConflict) {
		t.Fatalf("batch with a stale change: %v", err)
	}
	if n, _ := s.NodeQueue("x1").Len(ctx); n != 0 {
		t.Fatalf("a refused batch queued %d jobs", n)
	}
	if err := s.CommitBatch(ctx, []*Change{changes[0], changes[2]}, fence); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.NodeQueue("x1").Len(ctx); n != 2 {
		t.Fatalf("%d jobs queued, want 2", n)
	}
	j, ver, _ = s.Get(ctx, ids[1])
	explain, _ := s.Explain(j, ver, "why")
	if err := explain.Commit(ctx, Hold{}); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("committing a scheduler change under a hold: %v", err)
	}
}

// place creates a scheduled job and places it on executor.
func place(t *testing.T, s *Store, executor string, sc Scheduling) *Job {
	t.Helper()
	ctx := ctxT(t)
	j, err := s.Create(ctx, NewJob{Action: "a", Scheduling: sc})
	if err != nil {
		t.Fatal(err)
	}
	j, ver, _ := s.Get(ctx, j.ID)
	c, err := s.Place(j, ver, executor, "default")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx, electionNode(t, s)); err != nil {
		t.Fatal(err)
	}
	return c.Job()
}

func takeFrom(t *testing.T, q *queue.Queue, name string) Hold {
	t.Helper()
	c := q.NewConsumer(queue.ConsumerOptions{Name: name})
	t.Cleanup(c.Close)
	it, err := c.Take(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return Hold{Consumer: c, Item: it}
}

// A placed job given back by its stopping executor goes back to PENDING,
// to be placed where there is room.
func TestRequeueOfAPlacedJobGoesBackToPending(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	placed := place(t, s, "x1", Scheduling{Impact: 2})
	h := takeFrom(t, s.NodeQueue("x1"), "x1")
	j, ver, _ := s.Get(ctx, placed.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	c, err = s.Requeue(start.Job(), start.Ver(), "executor x1 stopped")
	commit(t, c, err, h)
	got, _, _ := s.Get(ctx, placed.ID)
	if got.State != Pending || got.Attempt != 0 || got.ExecutionNode != "" || got.Explanation != "requeued: executor x1 stopped" {
		t.Fatalf("requeued: %+v", got)
	}
	if n, _ := s.NodeQueue("x1").Len(ctx); n != 0 {
		t.Fatalf("%d entries left on the direct queue", n)
	}
	isPending(t, s, placed.ID)
}

// The reaper's transitions, under the hold of an entry of a lost
// executor's direct queue.
func TestUnplaceAndReschedule(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	fence := electionNode(t, s)

	queued := place(t, s, "gone", Scheduling{Impact: 1})
	h := takeFrom(t, s.NodeQueue("gone"), "reaper")
	j, ver, _ := s.Get(ctx, queued.ID)
	c, err := s.Unplace(j, ver, "executor gone lost before the job started")
	if err != nil {
		t.Fatal(err)
	}
	commit(t, c.Fenced(fence), nil, h)
	got, _, _ := s.Get(ctx, queued.ID)
	if got.State != Pending || got.ExecutionNode != "" || got.Explanation == "" {
		t.Fatalf("unplaced: %+v", got)
	}
	isPending(t, s, queued.ID)

	// A RUNNING job whose executor was lost: rerun means PENDING again,
	// the lost attempt counted.
	running := place(t, s, "gone2", Scheduling{Impact: 1})
	h = takeFrom(t, s.NodeQueue("gone2"), "ghost")
	j, ver, _ = s.Get(ctx, running.ID)
	c, err = s.StartAttempt(j, ver, "gone2")
	commit(t, c, err, h)
	// The executor dies: its hold goes with its session.
	if err := h.Consumer.Release(ctx, h.Item); err != nil {
		t.Fatal(err)
	}
	h = takeFrom(t, s.NodeQueue("gone2"), "reaper")
	j, ver, _ = s.Get(ctx, running.ID)
	c, err = s.ApplyLostPolicy(j, ver, "", Lost{Policy: action.Rerun, Reschedule: true})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, c.Fenced(fence), nil, h)
	got, _, _ = s.Get(ctx, running.ID)
	if got.State != Pending || got.Attempt != 1 || !strings.Contains(got.Explanation, "lost") {
		t.Fatalf("rescheduled: %+v", got)
	}
	if n, _ := s.NodeQueue("gone2").Len(ctx); n != 0 {
		t.Fatalf("%d entries left on the lost executor's queue", n)
	}

	// The same under a lost fence writes nothing and keeps the hold.
	again := place(t, s, "gone3", Scheduling{Impact: 1})
	h = takeFrom(t, s.NodeQueue("gone3"), "reaper")
	j, ver, _ = s.Get(ctx, again.ID)
	c, _ = s.Unplace(j, ver, "lost")
	err = c.Fenced(&zk.CheckVersionRequest{Path: s.Conn().Path("no-such-node"), Version: -1}).Commit(ctx, h)
	if !errors.Is(err, ErrFenceLost) {
		t.Fatalf("unplace under a lost fence: %v", err)
	}
	if got, _, _ := s.Get(ctx, again.ID); got.State != Queued {
		t.Fatalf("written under a lost fence: %+v", got)
	}
}

func TestCancelRemovesPendingAndDirectEntries(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	p, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{ConcurrencyKeys: []string{"k"}}})
	placed := place(t, s, "x1", Scheduling{Impact: 1})
	for _, id := range []string{p.ID, placed.ID} {
		if got, err := s.Cancel(ctx, id, "me"); err != nil || got.State != Canceled {
			t.Fatalf("cancel %s: %+v %v", id, got, err)
		}
	}
	if n, _ := s.PendingCount(ctx); n != 0 {
		t.Fatalf("%d pending nodes after cancel", n)
	}
	if n, _ := s.NodeQueue("x1").Len(ctx); n != 0 {
		t.Fatalf("%d direct entries after cancel", n)
	}
}

// Canceling a fan-out parent cancels its children; a parent ends with them.
func TestFanoutParentCancelAndEnd(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	parentID, _ := NewID()
	c1, _ := NewID()
	c2, _ := NewID()
	child := func(id, node string) NewJob {
		return NewJob{ID: id, Action: "a", ParentJob: parentID, Scheduling: Scheduling{FanoutGroup: "edge", ExecutionNode: node, InstanceGroup: "edge"}}
	}
	js, err := s.CreateMany(ctx, []NewJob{
		{ID: parentID, Action: "a", NestedJobs: []string{c1, c2}, Scheduling: Scheduling{FanoutGroup: "edge"}},
		child(c1, "x1"), child(c2, "x2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if js[0].State != Pending || js[1].State != Queued || !js[0].IsFanoutParent() || !js[1].IsFanoutChild() {
		t.Fatalf("created %s %s", js[0].State, js[1].State)
	}
	if n, _ := s.NodeQueue("x2").Len(ctx); n != 1 {
		t.Fatalf("child not on its executor's queue")
	}
	// A fan-out child stays on its executor when requeued.
	h := takeFrom(t, s.NodeQueue("x1"), "x1")
	j, ver, _ := s.Get(ctx, c1)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	c, err = s.Requeue(start.Job(), start.Ver(), "stopping")
	commit(t, c, err, h)
	if got, _, _ := s.Get(ctx, c1); got.State != Queued || got.ExecutionNode != "x1" {
		t.Fatalf("requeued child: %+v", got)
	}
	if _, err := s.Cancel(ctx, parentID, "me"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{parentID, c1, c2} {
		if got, _, _ := s.Get(ctx, id); got.State != Canceled {
			t.Fatalf("%s is %s after canceling the parent", id, got.State)
		}
	}

	// EndFanout ends a parent, and only a parent.
	p2, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{FanoutGroup: "edge"}})
	j, ver, _ = s.Get(ctx, p2.ID)
	c, err = s.EndFanout(j, ver, Success, "2 of 2 children succeeded")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitFenced(ctx, electionNode(t, s)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Get(ctx, p2.ID); got.State != Success || *got.ReturnCode != 0 {
		t.Fatalf("ended parent: %+v", got)
	}
	plain, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{Impact: 1}})
	j, ver, _ = s.Get(ctx, plain.ID)
	if _, err := s.EndFanout(j, ver, Success, ""); !errors.Is(err, ErrIllegalState) {
		t.Fatalf("EndFanout of a plain job: %v", err)
	}
}

// Restore repairs every queue: a PENDING job without its pending node,
// a placed job without its direct entry, stale entries of final jobs.
func TestRestoreKnowsEveryQueue(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	p, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{ConcurrencyKeys: []string{"k"}}})
	placed := place(t, s, "x1", Scheduling{Impact: 1})
	// Both entries vanish behind the store's back.
	if err := s.Conn().Delete(s.Conn().Path(PendingPath, p.UUID()), -1); err != nil {
		t.Fatal(err)
	}
	direct, _ := s.NodeQueue("x1").Entries(ctx)
	if err := s.NodeQueue("x1").Remove(ctx, direct[0].Name); err != nil {
		t.Fatal(err)
	}
	// A final job keeps a stale pending node.
	stale, _ := s.Create(ctx, NewJob{Action: "a", Scheduling: Scheduling{Impact: 1}})
	j, ver, _ := s.Get(ctx, stale.ID)
	_ = j.Transition(Canceled, time.Now())
	if _, err := s.Update(ctx, j, ver); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Restore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 2 || len(rep.Removed) != 1 || rep.Removed[0] != PendingPath+"/"+stale.UUID() {
		t.Fatalf("report %+v", rep)
	}
	isPending(t, s, p.ID)
	if direct, _ := s.NodeQueue("x1").Entries(ctx); len(direct) != 1 || direct[0].Item != placed.ID {
		t.Fatalf("direct queue after restore: %+v", direct)
	}
	if n, _ := s.Queue().Len(ctx); n != 0 {
		t.Fatalf("restore put %d scheduled jobs on the shared queue", n)
	}
	rep, err = s.Restore(ctx)
	if err != nil || len(rep.Requeued)+len(rep.Removed) != 0 {
		t.Fatalf("second restore is not a no-op: %+v %v", rep, err)
	}
}

// A job of the system action holds the system key and weighs the system
// impact however it is created; a user's own key and a larger impact stay.
func TestSystemJobsGetTheirKeyAndImpact(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	for name, c := range map[string]struct {
		in         Scheduling
		wantKeys   []string
		wantImpact int
	}{
		"bare":          {Scheduling{}, []string{SystemKey}, SystemImpact},
		"own key":       {Scheduling{ConcurrencyKeys: []string{"night"}}, []string{"night", SystemKey}, SystemImpact},
		"larger impact": {Scheduling{Impact: 9, ConcurrencyKeys: []string{SystemKey}}, []string{SystemKey}, 9},
		"smaller":       {Scheduling{Impact: 2}, []string{SystemKey}, SystemImpact},
	} {
		j, err := s.Create(ctx, NewJob{Action: SystemAction, Scheduling: c.in})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if j.State != Pending || j.Impact != c.wantImpact || strings.Join(j.ConcurrencyKeys, ",") != strings.Join(c.wantKeys, ",") {
			t.Errorf("%s: %s, impact %d, keys %v; want PENDING, %d, %v", name, j.State, j.Impact, j.ConcurrencyKeys, c.wantImpact, c.wantKeys)
		}
	}
}
