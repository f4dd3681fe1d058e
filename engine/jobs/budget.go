package jobs

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Every write of a document is bounded (MaxDocumentBytes) before it is
// sent, so that the transaction carrying it and its outbox copy stays
// within the budget of a ZooKeeper request. What a job accumulates while it
// runs may be trimmed, with a note in the document (Job.Trimmed): first its
// affected resources (the last ones reported go first), then its status
// message. What it was created with is bounded at creation and is never
// trimmed: a document that does not fit without it is refused with an
// error wrapping zkconn.ErrTooLarge.

// trimmedStatusBytes is what is left of a status message that had to be
// trimmed.
const trimmedStatusBytes = 512

// noteReserve is room kept for the Trimmed note while trimming.
const noteReserve = 512

// MinDocumentLimit is the least a store's document limit is lowered to
// (LimitDocuments).
const MinDocumentLimit = 16 << 10

// DocumentLimit returns the bound of the documents the store writes:
// MaxDocumentBytes unless lowered by LimitDocuments.
func (s *Store) DocumentLimit() int { return int(s.docLimit.Load()) }

// LimitDocuments lowers the bound of the documents the store writes to n
// bytes (not below MinDocumentLimit) and returns the bound now in force.
// A writer calls it when ZooKeeper refused a write within the engine's
// budget — a server whose jute.maxbuffer is below the default — so that
// what can be trimmed is trimmed to what that server takes.
func (s *Store) LimitDocuments(n int) int {
	n = max(n, MinDocumentLimit)
	for {
		cur := s.docLimit.Load()
		if int64(n) >= cur {
			return int(cur)
		}
		if s.docLimit.CompareAndSwap(cur, int64(n)) {
			s.log.Warn("job documents now bounded lower: ZooKeeper refused a write within the engine's budget (is its jute.maxbuffer below the default?)",
				zap.Int("limit", n), zap.Int("was", int(cur)))
			return n
		}
	}
}

// encode returns j as written, trimmed to limit bytes when needed.
func encode(j *Job, limit int) ([]byte, error) {
	data, err := json.Marshal(j)
	if err != nil || len(data) <= limit {
		return data, err
	}
	var notes []string
	done := func() ([]byte, bool, error) {
		j.Trimmed = fmt.Sprintf("left out to fit the %d-byte limit of a job document: %s", limit, strings.Join(notes, "; "))
		data, err := json.Marshal(j)
		return data, err == nil && len(data) <= limit, err
	}
	if n := len(j.AffectedResources); n > 0 {
		excess := len(data) - limit + noteReserve
		keep := n
		for keep > 0 && excess > 0 {
			keep--
			b, _ := json.Marshal(j.AffectedResources[keep])
			excess -= len(b) + 1 // and its comma
		}
		j.AffectedResources = j.AffectedResources[:keep:keep]
		notes = append(notes, fmt.Sprintf("%d of %d affected resources (the last reported)", n-keep, n))
		if data, ok, err := done(); ok || err != nil {
			return data, err
		}
	}
	if n := len(j.StatusMessage); n > trimmedStatusBytes {
		j.StatusMessage = truncate(j.StatusMessage, trimmedStatusBytes)
		notes = append(notes, fmt.Sprintf("the end of the status message (%d bytes)", n))
		if data, ok, err := done(); ok || err != nil {
			return data, err
		}
	}
	data, _ = json.Marshal(j)
	return nil, fmt.Errorf("%w: the document of %s takes %d bytes without its affected resources, over the %d-byte limit of a job document",
		zkconn.ErrTooLarge, j.ID, len(data), limit)
}

// truncate bounds s to max bytes on a UTF-8 boundary, ending it with "…"
// when it was cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}
