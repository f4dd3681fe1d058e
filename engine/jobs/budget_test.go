package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// withOutbox returns a store that records every document version in an
// outbox, as indexing does: each write carries the document twice.
func withOutbox(t *testing.T) *Store {
	t.Helper()
	var s *Store
	s = newStore(t, StoreConfig{Outbox: func(j *Job, doc []byte) *zk.CreateRequest {
		return &zk.CreateRequest{Path: s.conn.Path("outbox", fmt.Sprintf("%s-%010d", j.UUID(), j.Version)), Data: doc, Acl: zkconn.ACL}
	}})
	if err := s.conn.EnsurePath(ctxT(t), s.conn.Path("outbox")); err != nil {
		t.Fatal(err)
	}
	return s
}

func hrefs(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		p := fmt.Sprintf("deployment/%04d/", i)
		out[i] = p + strings.Repeat("x", size-len(p))
	}
	return out
}

// 1,000 affected resources of 1 KB, within what an action may report, do
// not fit one write: the last reported are left out, the document says so,
// and the job still finishes — with indexing on, where the write carries
// the document twice.
func TestAffectedResourcesAreTrimmedToTheDocumentLimit(t *testing.T) {
	s := withOutbox(t)
	ctx := ctxT(t)
	created, _ := s.Create(ctx, NewJob{Action: "deploy"})
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	start := commit(t, firstOf(s.StartAttempt(j, ver, "x1")), nil, h)
	reported := hrefs(MaxAffected, MaxIDBytes)
	c, err := s.RecordProgress(start.Job(), start.Ver(), Progress{Percent: 50, Affected: reported})
	if err != nil {
		t.Fatal(err)
	}
	if size := c.Size(); size > zkconn.RequestBudget {
		t.Fatalf("a write of %d bytes was planned, over the budget of %d", size, zkconn.RequestBudget)
	}
	commit(t, c, nil, h)
	data := mustRead(t, s, created.UUID())
	got, err := Decode(created.UUID(), data)
	if err != nil {
		t.Fatal(err)
	}
	n := len(got.AffectedResources)
	if len(data) > MaxDocumentBytes || n == 0 || n >= MaxAffected || got.AffectedResources[0].Href != reported[0] {
		t.Fatalf("document of %d bytes keeps %d affected resources", len(data), n)
	}
	if !strings.Contains(got.Trimmed, fmt.Sprintf("%d of %d affected resources", MaxAffected-n, MaxAffected)) {
		t.Fatalf("no note of what was left out: %q", got.Trimmed)
	}
	fin, err := s.Finish(c.Job(), c.Ver(), "x1", Outcome{State: Success, Message: strings.Repeat("m", MaxStatusMessage)})
	commit(t, fin, err, h)
	if got, _, _ := s.Get(ctx, created.ID); got.State != Success || got.Trimmed == "" {
		t.Fatalf("final %s, trimmed %q", got.State, got.Trimmed)
	}
}

func firstOf(c *Change, err error) *Change {
	if err != nil {
		panic(err)
	}
	return c
}

// Under a lowered limit, the status message goes too once the affected
// resources are not enough; what a job was created with is never trimmed:
// a document that does not fit without it is refused, not sent.
func TestLoweredLimitTrimsStatusAndRefusesTheRest(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	payload := json.RawMessage(`{"p":"` + strings.Repeat("p", 12<<10) + `"}`)
	created, _ := s.Create(ctx, NewJob{Action: "deploy", Payload: payload})
	if got := s.LimitDocuments(1); got != MinDocumentLimit {
		t.Fatalf("limit %d, want the minimum %d", got, MinDocumentLimit)
	}
	if got := s.LimitDocuments(MaxDocumentBytes); got != MinDocumentLimit {
		t.Fatalf("the limit was raised to %d", got)
	}
	h := take(t, s, "x1")
	j, ver, _ := s.Get(ctx, created.ID)
	start := commit(t, firstOf(s.StartAttempt(j, ver, "x1")), nil, h)
	c, err := s.RecordProgress(start.Job(), start.Ver(), Progress{Status: strings.Repeat("s", MaxStatusMessage), Affected: hrefs(20, 100)})
	commit(t, c, err, h)
	got, _, _ := s.Get(ctx, created.ID)
	if len(got.AffectedResources) != 0 || len(got.StatusMessage) > trimmedStatusBytes ||
		!strings.Contains(got.Trimmed, "20 of 20 affected") || !strings.Contains(got.Trimmed, "status message") {
		t.Fatalf("%d affected, status of %d bytes, note %q", len(got.AffectedResources), len(got.StatusMessage), got.Trimmed)
	}

	// A limit below what the job was created with.
	s2 := newStore(t, StoreConfig{})
	big, _ := s2.Create(ctx, NewJob{Action: "deploy", Payload: json.RawMessage(`{"p":"` + strings.Repeat("p", 20<<10) + `"}`)})
	s2.LimitDocuments(MinDocumentLimit)
	j2, ver2, _ := s2.Get(ctx, big.ID)
	if _, err := s2.StartAttempt(j2, ver2, "x1"); !errors.Is(err, zkconn.ErrTooLarge) {
		t.Fatalf("start of a document over the limit: %v, want ErrTooLarge", err)
	}
}

// A batch of jobs whose transaction would be over the request budget is
// refused before it is sent; nothing is created.
func TestCreateRefusesABatchOverTheBudget(t *testing.T) {
	s := newStore(t, StoreConfig{})
	ctx := ctxT(t)
	payload := json.RawMessage(`{"p":"` + strings.Repeat("p", MaxPayloadBytes-16) + `"}`)
	batch := make([]NewJob, 5)
	for i := range batch {
		batch[i] = NewJob{Action: "deploy", Payload: payload}
	}
	_, err := s.CreateMany(ctx, batch)
	if !errors.Is(err, zkconn.ErrTooLarge) || !strings.Contains(err.Error(), "create fewer") {
		t.Fatalf("create of a batch over the budget: %v", err)
	}
	if n, _ := s.Queue().Len(ctx); n != 0 {
		t.Fatalf("%d entries written", n)
	}
	if _, err := s.CreateMany(ctx, batch[:2]); err != nil {
		t.Fatalf("a batch within the budget: %v", err)
	}
}
