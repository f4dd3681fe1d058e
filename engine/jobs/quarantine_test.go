package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// overwrite replaces a job's document behind the store's back, as a hand,
// another version or an attacker would.
func overwrite(t *testing.T, s *Store, uid string, data []byte) {
	t.Helper()
	if _, err := s.conn.Conn.Set(s.DocPath(uid), data, -1); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, s *Store, p string) bool {
	t.Helper()
	ok, _, err := s.conn.Exists(p)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// A document that fails validation is never returned as a job: a holder
// of its entry moves it aside, with what it held and why, and consumes the
// entry in the same transaction; what it left behind goes too.
func TestInvalidDocumentIsQuarantinedWithItsEntry(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, err := s.Create(ctx, NewJob{Action: "echo", UniqueKey: "only-one"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLog(ctx, j.UUID(), []LogLine{{Time: time.Now(), Level: "info", Message: "hi"}}); err != nil {
		t.Fatal(err)
	}
	raw := string(edited(t, mustRead(t, s, j.UUID()), "state", "BOGUS"))
	overwrite(t, s, j.UUID(), []byte(raw))

	_, _, err = s.Get(ctx, j.ID)
	var bad *BadDocumentError
	if !errors.As(err, &bad) || bad.Path != s.DocPath(j.UUID()) || bad.Version != 1 || !strings.Contains(bad.Reason, "BOGUS") {
		t.Fatalf("Get of an invalid document: %v (%+v)", err, bad)
	}
	var listed []InvalidDocument
	if err := s.Scan(ctx, func(*Job, int32) { t.Error("an invalid document was listed as a job") },
		func(b *BadDocumentError) { listed = append(listed, b.Summary()) }); err != nil || len(listed) != 1 || listed[0].Job != j.ID {
		t.Fatalf("scan: %+v %v", listed, err)
	}

	h := take(t, s, "x1")
	bad.Entry = h.Item.Name
	c, err := s.Quarantine(bad, "x1")
	commit(t, c, err, h)
	if exists(t, s, s.DocPath(j.UUID())) || exists(t, s, s.logPath(j.UUID())) || exists(t, s, s.uniqPath("only-one")) {
		t.Fatal("the document, its log tail or its unique key is still there")
	}
	if st := queueStats(t, s); st.Entries != 0 || st.Taken != 0 {
		t.Fatalf("queue after the quarantine: %+v", st)
	}
	qs, err := s.QuarantineList(ctx)
	if err != nil || len(qs) != 1 {
		t.Fatalf("records %+v, %v", qs, err)
	}
	q := qs[0]
	if q.Kind != KindDocument || q.Job != j.ID || q.Text != raw || q.Entry != h.Item.Name || q.By != "x1" ||
		q.Path != s.DocPath(j.UUID()) || !strings.Contains(q.Reason, "BOGUS") || !strings.HasPrefix(q.Name, j.UUID()+"-") {
		t.Fatalf("record %+v", q)
	}
	if n, err := s.QuarantineCount(ctx); n != 1 || err != nil {
		t.Fatalf("count %d, %v", n, err)
	}
	if _, err := s.Cancel(ctx, j.ID, "test"); !errors.Is(err, ErrQuarantined) || !strings.Contains(err.Error(), "BOGUS") {
		t.Fatalf("cancel of a quarantined job: %v", err)
	}
	// The key is free again.
	if _, err := s.Create(ctx, NewJob{Action: "echo", UniqueKey: "only-one"}); err != nil {
		t.Fatal(err)
	}
}

// edited returns a document with one field set to v.
func edited(t *testing.T, data []byte, key string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = v
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustRead(t *testing.T, s *Store, uid string) []byte {
	t.Helper()
	data, _, err := s.conn.Get(s.DocPath(uid))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A quarantine is conditional on the document read: one changed since is
// read again, and nothing is moved.
func TestQuarantineOfAChangedDocumentConflicts(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, _ := s.Create(ctx, NewJob{Action: "echo"})
	overwrite(t, s, j.UUID(), []byte("not json"))
	_, _, err := s.Get(ctx, j.ID)
	var bad *BadDocumentError
	if !errors.As(err, &bad) {
		t.Fatal(err)
	}
	overwrite(t, s, j.UUID(), []byte("still not json"))
	h := take(t, s, "x1")
	c, err := s.Quarantine(bad, "x1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, h); !errors.Is(err, ErrConflict) {
		t.Fatalf("commit over a changed document: %v, want ErrConflict", err)
	}
	if n, _ := s.QuarantineCount(ctx); n != 0 || !exists(t, s, s.DocPath(j.UUID())) || queueStats(t, s).Taken != 1 {
		t.Fatal("a refused quarantine wrote something")
	}
}

// An entry whose item is not a job id is quarantined by its holder too.
func TestInvalidEntryIsQuarantined(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	if _, err := s.Queue().Put(ctx, []byte("job/../../etc"), 5); err != nil {
		t.Fatal(err)
	}
	h := take(t, s, "x1")
	if _, _, err := s.Get(ctx, string(h.Item.Data)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Get of a bad id: %v", err)
	}
	bad := &BadDocumentError{Kind: KindEntry, Entry: h.Item.Name, Path: s.Queue().EntriesPath() + "/" + h.Item.Name, Data: h.Item.Data, Reason: "not a job id"}
	c, err := s.Quarantine(bad, "x1")
	commit(t, c, err, h)
	qs, _ := s.QuarantineList(ctx)
	if len(qs) != 1 || qs[0].Kind != KindEntry || qs[0].Text != "job/../../etc" || !strings.HasPrefix(qs[0].Name, h.Item.Name+"-") {
		t.Fatalf("records %+v", qs)
	}
	if st := queueStats(t, s); st.Entries != 0 {
		t.Fatalf("queue %+v", st)
	}
}

// `job cancel` of a job whose document is invalid quarantines it without
// holding its entry, removes its entries, and says so.
func TestCancelQuarantinesAnInvalidDocument(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, _ := s.Create(ctx, NewJob{Action: "echo"})
	raw := []byte("\xff\xfe not even UTF-8")
	overwrite(t, s, j.UUID(), raw)
	_, err := s.Cancel(ctx, j.ID, "cli")
	if !errors.Is(err, ErrQuarantined) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("cancel: %v, want ErrQuarantined", err)
	}
	if exists(t, s, s.DocPath(j.UUID())) || queueStats(t, s).Entries != 0 {
		t.Fatal("the document or its entry is still there")
	}
	q, err := s.QuarantineOf(ctx, j.UUID())
	if err != nil || string(q.Data) != string(raw) || q.Text != "" || q.By != "cli" {
		t.Fatalf("record %+v, %v", q, err)
	}
}

// Restore skips and reports what it cannot read, and still repairs the
// rest: a stranded QUEUED job is requeued although another document holds
// a priority of 5000.
func TestRestoreSkipsInvalidDocuments(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	stranded, _ := s.Create(ctx, NewJob{Action: "echo"})
	badPrio, _ := s.Create(ctx, NewJob{Action: "echo"})
	notJSON, _ := s.Create(ctx, NewJob{Action: "echo"})
	entries, _ := s.Queue().Entries(ctx)
	for _, e := range entries {
		if e.Item == stranded.ID {
			if err := s.Queue().Remove(ctx, e.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	overwrite(t, s, badPrio.UUID(), edited(t, mustRead(t, s, badPrio.UUID()), "priority", 5000))
	overwrite(t, s, notJSON.UUID(), []byte("}{"))
	rep, err := s.Restore(ctx)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if len(rep.Requeued) != 1 || rep.Requeued[0] != stranded.ID || len(rep.Removed) != 0 || len(rep.SkippedInvalid) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, d := range rep.SkippedInvalid {
		if d.Job != badPrio.ID && d.Job != notJSON.ID || d.Reason == "" {
			t.Fatalf("skipped %+v", d)
		}
	}
	// The invalid documents' entries stay, for an executor to quarantine them.
	if st := queueStats(t, s); st.Entries != 3 {
		t.Fatalf("queue %+v", st)
	}
}

// A document outside its shard is invalid too: its path is not the one
// its uuid names.
func TestDocumentInTheWrongShardIsInvalid(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	j, _ := s.Create(ctx, NewJob{Action: "echo"})
	data := mustRead(t, s, j.UUID())
	wrong := s.conn.Path(jobsDir, "zz", j.UUID())
	if err := s.conn.EnsurePath(ctx, s.conn.Path(jobsDir, "zz")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.Create(wrong, data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	var bad []InvalidDocument
	var good int
	if err := s.Scan(context.Background(), func(*Job, int32) { good++ }, func(b *BadDocumentError) { bad = append(bad, b.Summary()) }); err != nil {
		t.Fatal(err)
	}
	if good != 1 || len(bad) != 1 || bad[0].Path != wrong {
		t.Fatalf("%d good, bad %+v", good, bad)
	}
}
