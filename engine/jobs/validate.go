package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/jobengine/jobengine/engine/queue"
)

// What is read from ZooKeeper is input: a document may have been written
// by another version, by hand, or by someone with access to the ensemble.
// Every document is checked before anything acts on it, so that no path is
// built from a field nobody checked (a document's id names its log and its
// cancel request) and no state the lifecycle does not know is looped on.

// ErrBadDocument is wrapped by the error of a job document that fails
// validation (a *BadDocumentError): it is not acted on, and its writer
// quarantines it (Quarantine).
var ErrBadDocument = errors.New("invalid job document")

// BadDocumentError is a job document, or a queue entry, read from
// ZooKeeper that is not what the engine writes.
type BadDocumentError struct {
	// Kind says what was read: KindDocument or KindEntry.
	Kind string
	// UUID is the uuid of the document's path (KindDocument), "" for an
	// entry whose item is not a job id.
	UUID string
	// Entry is the queue entry's name (KindEntry), or the entry of the
	// document when a holder found it through one.
	Entry string
	// Path is the znode read.
	Path string
	// Version is the znode version read, for a compare-and-set removal.
	Version int32
	// Data is what the node holds.
	Data []byte
	// Reason says what is wrong, for the log and the quarantine record.
	Reason string
}

// Kinds of objects BadDocumentError and quarantine records describe.
const (
	KindDocument = "job-document"
	KindEntry    = "queue-entry"
)

func (e *BadDocumentError) Error() string {
	if e.Kind == KindEntry {
		return fmt.Sprintf("%s: queue entry %s: %s", ErrBadDocument, e.Entry, e.Reason)
	}
	return fmt.Sprintf("%s: job/%s: %s", ErrBadDocument, e.UUID, e.Reason)
}

// Unwrap returns ErrBadDocument.
func (e *BadDocumentError) Unwrap() error { return ErrBadDocument }

// InvalidDocument says where an invalid object is and what is wrong with
// it, for listings and reports.
type InvalidDocument struct {
	Kind   string `json:"kind"`
	Job    string `json:"job,omitempty"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Summary returns where e is and what is wrong with it.
func (e *BadDocumentError) Summary() InvalidDocument {
	return InvalidDocument{Kind: e.Kind, Job: e.ID(), Path: e.Path, Reason: e.Reason}
}

// ID returns the job id of a bad document ("" for a bad entry).
func (e *BadDocumentError) ID() string {
	if e.UUID == "" {
		return ""
	}
	return "job/" + e.UUID
}

// Decode parses and validates the document read at the path of job uid:
// bounded in size, valid UTF-8, a JSON object whose id is its path's, in a
// known state, with its numbers in range. Its error is a *BadDocumentError
// (without Path and Version, which the caller knows).
func Decode(uid string, data []byte) (*Job, error) {
	bad := func(format string, args ...any) (*Job, error) {
		return nil, &BadDocumentError{Kind: KindDocument, UUID: uid, Data: data, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxDocumentBytes {
		return bad("document of %d bytes is over the %d-byte limit", len(data), MaxDocumentBytes)
	}
	if !utf8.Valid(data) {
		return bad("not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return bad("not a JSON object")
	}
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return bad("not a job document: %v", err)
	}
	if want := "job/" + uid; j.ID != want {
		return bad("its id %q is not its path's (%s)", clip(j.ID), want)
	}
	switch {
	case !j.State.Valid():
		return bad("unknown state %q", clip(string(j.State)))
	case j.Priority < queue.MinPriority || j.Priority > queue.MaxPriority:
		return bad("priority %d is outside %d–%d", j.Priority, queue.MinPriority, queue.MaxPriority)
	case j.Attempt < 0:
		return bad("negative attempt %d", j.Attempt)
	case j.Progress < 0 || j.Progress > 100:
		return bad("progress %d is outside 0–100", j.Progress)
	case j.Version < 1:
		return bad("version %d (the first version of a document is 1)", j.Version)
	case j.Timeout < 0 || math.IsInf(j.Timeout, 0) || j.Timeout > maxTimeoutSeconds:
		return bad("timeout %g s is out of range", j.Timeout)
	case len(j.Tags) > MaxTags:
		return bad("%d tags, at most %d", len(j.Tags), MaxTags)
	case len(j.AffectedResources) > MaxAffected:
		return bad("%d affected resources, at most %d", len(j.AffectedResources), MaxAffected)
	}
	if err := CheckText("action", j.Action, 1, MaxActionBytes); err != nil {
		return bad("%v", err)
	}
	if p := bytes.TrimSpace(j.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) && p[0] != '{' {
		return bad("payload is not a JSON object")
	}
	if a := bytes.TrimSpace(j.Artifacts); len(a) > 0 && !bytes.Equal(a, []byte("null")) && a[0] != '{' {
		return bad("artifacts are not a JSON object")
	}
	if err := j.Launch.validateWorkflow(); err != nil {
		return bad("%v", err)
	}
	return &j, nil
}

// maxTimeoutSeconds bounds a job's timeout to what a time.Duration holds.
const maxTimeoutSeconds = float64(math.MaxInt64 / int64(1e9))

// clip bounds a value quoted in a reason, so that a reason stays one short
// line whatever the document holds.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// checkText checks a name or an href: valid UTF-8, between min and max
// bytes, and free of control characters (which would reach terminals and
// logs). what names it in the error.
func CheckText(what, s string, min, max int) error {
	switch {
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, clip(s))
	case len(s) < min:
		return fmt.Errorf("%s is empty", what)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes, at most %d", what, len(s), max)
	}
	for _, r := range s {
		if IsControl(r) {
			return fmt.Errorf("%s %q holds the control character %U", what, clip(s), r)
		}
	}
	return nil
}

// IsControl reports whether r is a character that must never be printed
// raw to a terminal: C0 and C1 controls, DEL, and the bidirectional
// controls that make a terminal show text in another order than it is.
func IsControl(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f', r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
