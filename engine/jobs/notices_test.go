package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

// notices reads every notice waiting in s's outbox, sorted by name.
func notices(t *testing.T, s *Store) []Notice {
	t.Helper()
	names, _, err := s.Conn().Children(s.NoticePath())
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var out []Notice
	for _, n := range names {
		data, _, err := s.Conn().Get(s.NoticePath() + "/" + n)
		if err != nil {
			t.Fatal(err)
		}
		var nt Notice
		if err := json.Unmarshal(data, &nt); err != nil {
			t.Fatalf("notice %s: %v", n, err)
		}
		if nt.ID != n {
			t.Fatalf("notice %s says it is %s", n, nt.ID)
		}
		out = append(out, nt)
	}
	return out
}

func summary(ns []Notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, string(n.Event)+":"+n.Notification+":"+string(n.Job.State))
	}
	sort.Strings(out)
	return out
}

// The write that starts a job, and the one that ends it, record their
// notices in the same transaction; other writes record none.
func TestNoticesWrittenWithTheirStateChange(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	nt := Notifications{Started: []string{"chat"}, Success: []string{"chat", "mail"}, Failure: []string{"pager"}}
	created, err := s.Create(ctx, NewJob{Action: "deploy", Notifications: nt, Payload: json.RawMessage(`{"big":"secretless"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if created.Notifications == nil || len(created.Notifications.Success) != 2 {
		t.Fatalf("the job does not say what it notifies: %+v", created.Notifications)
	}
	if got := notices(t, s); len(got) != 0 {
		t.Fatalf("creation recorded notices: %v", summary(got))
	}
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	if got := summary(notices(t, s)); strings.Join(got, ",") != "started:chat:RUNNING" {
		t.Fatalf("after start: %v", got)
	}
	c, err = s.RecordProgress(start.Job(), start.Ver(), Progress{Percent: 50})
	report := commit(t, c, err, h)
	if got := notices(t, s); len(got) != 1 {
		t.Fatalf("a progress report recorded notices: %v", summary(got))
	}
	c, err = s.Finish(report.Job(), report.Ver(), "x1", Outcome{State: Success, Message: "done"})
	commit(t, c, err, h)
	got := notices(t, s)
	if strings.Join(summary(got), ",") != "started:chat:RUNNING,success:chat:SUCCESS,success:mail:SUCCESS" {
		t.Fatalf("after finish: %v", summary(got))
	}
	final, _, _ := s.Get(ctx, created.ID)
	for _, n := range got {
		uid, v, name, ok := ParseNoticeName(n.ID)
		if !ok || uid != final.UUID() || name != n.Notification {
			t.Fatalf("notice name %q does not parse back", n.ID)
		}
		if n.Event == NotifySuccess && (v != final.Version || n.Job.Version != final.Version || n.Job.StatusMessage != "done" || !n.Time.Equal(final.Updated)) {
			t.Fatalf("success notice %+v is not of the final write %+v", n, final)
		}
	}
	raw, _, _ := s.Conn().Get(s.NoticePath() + "/" + got[0].ID)
	if strings.Contains(string(raw), "secretless") {
		t.Fatalf("a notice carries the payload: %s", raw)
	}
}

// Failure is notified for FAILED and CANCELED, whoever writes them: an
// executor, the lost-job policy, a cancel of a queued job.
func TestFailureNotices(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	nt := Notifications{Started: []string{"chat"}, Failure: []string{"pager"}}

	canceled, _ := s.Create(ctx, NewJob{Action: "a", Notifications: nt})
	if _, err := s.Cancel(ctx, canceled.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	got := notices(t, s)
	if len(got) != 1 || got[0].Event != NotifyFailure || got[0].Job.State != Canceled || got[0].Job.StatusMessage != "canceled by ops" {
		t.Fatalf("cancel of a queued job: %+v", got)
	}

	unstartable, _ := s.Create(ctx, NewJob{Action: "b", Notifications: nt})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, unstartable.ID)
	c, err := s.Finish(j, ver, "x1", Outcome{State: Failed, Message: "no such action"})
	commit(t, c, err, h)
	if got := summary(notices(t, s)); strings.Join(got, ",") != "failure:pager:CANCELED,failure:pager:FAILED" {
		t.Fatalf("a job that could not start notifies failure only: %v", got)
	}
}

// A lost executor's job started again does not notify started twice.
func TestNewAttemptDoesNotNotifyStartedAgain(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "a", Notifications: Notifications{Started: []string{"chat"}}})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	start := commit(t, c, err, h)
	c, err = s.ApplyLostPolicy(start.Job(), start.Ver(), "x2", Lost{})
	commit(t, c, err, h)
	if got := notices(t, s); len(got) != 1 {
		t.Fatalf("%d notices, want the first start's only: %v", len(got), summary(got))
	}
}

// A notice directory removed by hand is made again: a notification never
// stops a job's life.
func TestMissingNoticeDirectoryDoesNotStopAJob(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "a", Notifications: Notifications{Started: []string{"chat"}, Failure: []string{"chat"}}})
	if err := s.Conn().Delete(s.NoticePath(), -1); err != nil {
		t.Fatal(err)
	}
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	c, err := s.StartAttempt(j, ver, "x1")
	commit(t, c, err, h)
	if got := notices(t, s); len(got) != 1 {
		t.Fatalf("%d notices after the directory was made again", len(got))
	}
	if err := s.Conn().Delete(s.NoticePath()+"/"+notices(t, s)[0].ID, -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().Delete(s.NoticePath(), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cancel(ctx, created.ID, "ops"); err != nil { // RUNNING: a request, no notice
		t.Fatal(err)
	}
	j, ver, _ = s.Get(ctx, created.ID)
	c, err = s.Finish(j, ver, "x1", Outcome{State: Canceled, CancelRequested: true})
	commit(t, c, err, h)
	if got := notices(t, s); len(got) != 1 || got[0].Event != NotifyFailure {
		t.Fatalf("final notice: %v", summary(got))
	}
}

// resolverFunc adapts a function to NotificationResolver.
type resolverFunc func(ctx context.Context, n *NewJob) (Notifications, error)

func (f resolverFunc) NotificationsFor(ctx context.Context, n *NewJob) (Notifications, error) {
	return f(ctx, n)
}

// The store's resolver adds what is attached to a job's action to what the
// job names; a resolver that fails fails the creation.
func TestResolverAddsAttachedNotifications(t *testing.T) {
	broken := errors.New("zookeeper says no")
	s := newStore(t, StoreConfig{Notifications: resolverFunc(func(_ context.Context, n *NewJob) (Notifications, error) {
		switch n.Action {
		case "backup":
			return Notifications{Failure: []string{"pager", "chat"}}, nil
		case "broken":
			return Notifications{}, broken
		}
		return Notifications{}, nil
	})})
	ctx := ctxT(t)
	in := NewJob{Action: "backup", Notifications: Notifications{Failure: []string{"chat"}}}
	j, err := s.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.Notifications.Failure, ","); got != "chat,pager" {
		t.Fatalf("failure notifies %s, want chat,pager", got)
	}
	if len(in.Notifications.Failure) != 1 {
		t.Fatalf("the caller's job was modified: %+v", in.Notifications)
	}
	plain, _ := s.Create(ctx, NewJob{Action: "other"})
	if plain.Notifications != nil {
		t.Fatalf("a job with nothing attached notifies %+v", plain.Notifications)
	}
	if _, err := s.Create(ctx, NewJob{Action: "broken"}); !errors.Is(err, broken) {
		t.Fatalf("create with a failing resolver: %v", err)
	}
	bad := Notifications{Failure: []string{"no spaces please"}}
	if _, err := s.Create(ctx, NewJob{Action: "x", Notifications: bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad notification name: %v", err)
	}
}

// A refused launch is a FAILED job that never ran: no entry, no unique
// key, a failure notice, and once per id.
func TestCreateFailed(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	id, _ := NewID()
	n := NewJob{ID: id, Action: "deploy", UniqueKey: "k", Notifications: Notifications{Failure: []string{"pager"}}}
	j, err := s.CreateFailed(ctx, n, "template deploy is gone")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Get(ctx, id)
	if err != nil || got.State != Failed || got.StatusMessage != "template deploy is gone" || got.Started != nil || got.ReturnCode == nil || j.UniqueKey != "" {
		t.Fatalf("refused job: %+v, %v", got, err)
	}
	if st := queueStats(t, s); st.Entries != 0 {
		t.Fatalf("a refused job is queued: %+v", st)
	}
	if ns := notices(t, s); len(ns) != 1 || ns[0].Event != NotifyFailure {
		t.Fatalf("notices: %v", summary(ns))
	}
	if _, err := s.CreateFailed(ctx, n, "again"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second refusal with the same id: %v", err)
	}
	// The unique key is free: the refusal held nothing.
	if _, err := s.Create(ctx, NewJob{Action: "deploy", UniqueKey: "k"}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateFailedFenced(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	// A fence on a node that does not exist: nothing is written.
	fence := &zk.CheckVersionRequest{Path: s.Conn().Path("no-such-election-node"), Version: -1}
	id, _ := NewID()
	if _, err := s.CreateFailed(ctx, NewJob{ID: id, Action: "a"}, "why", fence); err == nil {
		t.Fatal("created under a failed fence")
	}
	if _, _, err := s.Get(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the job exists after a failed fence: %v", err)
	}
}

func TestParseNoticeName(t *testing.T) {
	uid := "0b9c2f4e-5a7b-4c1d-9e8f-0123456789ab"
	name := NoticeName(uid, 42, "ops-hook")
	if name != uid+"-0000000042-ops-hook" {
		t.Fatalf("NoticeName = %s", name)
	}
	if u, v, n, ok := ParseNoticeName(name); !ok || u != uid || v != 42 || n != "ops-hook" {
		t.Fatalf("ParseNoticeName(%s) = %s %d %s %v", name, u, v, n, ok)
	}
	for _, bad := range []string{"", "x", uid, uid + "-12-a", uid + "-000000004x-a", uid + "-0000000042-", uid + "-0000000042-a b"} {
		if _, _, _, ok := ParseNoticeName(bad); ok {
			t.Fatalf("ParseNoticeName(%q) accepted", bad)
		}
	}
}
