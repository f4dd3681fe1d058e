package jobs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const testUID = "0b6f1a2c-1234-4234-8234-123456789012"

// doc is a valid document of testUID with the fields of edit changed.
func doc(t *testing.T, edit map[string]any) []byte {
	t.Helper()
	m := map[string]any{"id": "job/" + testUID, "action": "echo", "state": "QUEUED", "priority": 100,
		"progress": 0, "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z",
		"time-of-status-change": "2024-01-01T00:00:00Z", "attempt": 0, "version": 1}
	for k, v := range edit {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRefusesWhatTheEngineDoesNotWrite(t *testing.T) {
	if j, err := Decode(testUID, doc(t, nil)); err != nil || j.ID != "job/"+testUID {
		t.Fatalf("a valid document: %v", err)
	}
	if _, err := Decode(testUID, doc(t, map[string]any{"payload": nil, "tags": []string{"a"}})); err != nil {
		t.Fatalf("a valid document with tags: %v", err)
	}
	for name, tc := range map[string]struct {
		data   []byte
		reason string
	}{
		"path traversal in the id": {doc(t, map[string]any{"id": "job/../../../t1/victim"}), "is not its path's"},
		"another job's id":         {doc(t, map[string]any{"id": "job/00000000-0000-4000-8000-000000000000"}), "is not its path's"},
		"no id":                    {doc(t, map[string]any{"id": nil}), "is not its path's"},
		"unknown state":            {doc(t, map[string]any{"state": "BOGUS"}), `unknown state "BOGUS"`},
		"priority 5000":            {doc(t, map[string]any{"priority": 5000}), "priority 5000"},
		"negative attempt":         {doc(t, map[string]any{"attempt": -1}), "attempt"},
		"progress 101":             {doc(t, map[string]any{"progress": 101}), "progress"},
		"version 0":                {doc(t, map[string]any{"version": 0}), "version"},
		"negative timeout":         {doc(t, map[string]any{"timeout": -1}), "timeout"},
		"escape in the action":     {doc(t, map[string]any{"action": "a\x1b[2Jb"}), "control character"},
		"empty action":             {doc(t, map[string]any{"action": ""}), "action is empty"},
		"payload not an object":    {doc(t, map[string]any{"payload": "x"}), "payload"},
		"not JSON":                 {[]byte("\x00\x01garbage"), "not a JSON object"},
		"a JSON array":             {[]byte(`[1,2]`), "not a JSON object"},
		"a number where a string":  {[]byte(`{"id":5}`), "not a job document"},
		"not UTF-8":                {[]byte("{\"id\":\"\xff\"}"), "UTF-8"},
		"over the size limit":      {doc(t, map[string]any{"payload": map[string]string{"x": strings.Repeat("a", MaxDocumentBytes)}}), "over the"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(testUID, tc.data)
			var bad *BadDocumentError
			if !errors.As(err, &bad) || !errors.Is(err, ErrBadDocument) {
				t.Fatalf("error %v, want a *BadDocumentError", err)
			}
			if !strings.Contains(bad.Reason, tc.reason) || bad.UUID != testUID || string(bad.Data) != string(tc.data) {
				t.Fatalf("reason %q (want %q), uuid %q", bad.Reason, tc.reason, bad.UUID)
			}
			if len(bad.Reason) > 200 {
				t.Fatalf("a reason of %d bytes", len(bad.Reason))
			}
		})
	}
}

func TestNewJobFollowsTheNameRules(t *testing.T) {
	for name, nj := range map[string]NewJob{
		"ESC in the action":    {Action: "a\x1bb"},
		"CR in the action":     {Action: "a\rb"},
		"action ..":            {Action: ".."},
		"action .":             {Action: "."},
		"upper case":           {Action: "Echo"},
		"invalid UTF-8":        {Action: "a\xffb"},
		"null payload":         {Action: "a", Payload: json.RawMessage(`null`)},
		"payload not UTF-8":    {Action: "a", Payload: json.RawMessage("{\"a\":\"\xff\"}")},
		"escape in the target": {Action: "a", Target: "x\x1b]0;owned\x07"},
		"bidi in a tag":        {Action: "a", Tags: []string{"abc\u202edef"}},
		"empty tag":            {Action: "a", Tags: []string{""}},
		"target not UTF-8":     {Action: "a", Target: "\xff"},
		"unique key with CR":   {Action: "a", UniqueKey: "k\r"},
	} {
		if err := nj.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	ok := NewJob{Action: "say_hello.v2-x", Target: "nuvlabox/1", Tags: []string{"été"}, Payload: json.RawMessage(`{"a":1}`)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}
