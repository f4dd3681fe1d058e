package jobs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/action"
)

// An outcome's artifacts are kept when they are a JSON object within the
// bound, else left out with a note; a document read with artifacts that
// are not an object is invalid.
func TestArtifactsKeptWhenTheyFit(t *testing.T) {
	big := `{"x": "` + strings.Repeat("a", action.MaxArtifactBytes) + `"}`
	for _, c := range []struct {
		in, want, note string
	}{
		{`{"release": "1.4.2", "n": 2}`, `{"release":"1.4.2","n":2}`, ""},
		{``, ``, ""},
		{`null`, ``, ""},
		{`[1, 2]`, ``, "not a JSON object"},
		{`{"broken": `, ``, "not a JSON object"},
		{big, ``, "over the"},
	} {
		j := &Job{}
		j.setArtifacts(json.RawMessage(c.in))
		if string(j.Artifacts) != c.want || (c.note == "") != (j.Trimmed == "") || !strings.Contains(j.Trimmed, c.note) {
			t.Errorf("artifacts %.40q: kept %s, note %q; want %s and a note with %q", c.in, j.Artifacts, j.Trimmed, c.want, c.note)
		}
	}
	id, _ := NewID()
	uid := strings.TrimPrefix(id, "job/")
	doc := func(artifacts string) []byte {
		return []byte(`{"id": "` + id + `", "action": "echo", "state": "SUCCESS", "priority": 100, "version": 3, "artifacts": ` + artifacts + `}`)
	}
	if j, err := Decode(uid, doc(`{"a": 1}`)); err != nil || string(j.Artifacts) != `{"a": 1}` {
		t.Fatalf("Decode with artifacts: %+v, %v", j, err)
	}
	if _, err := Decode(uid, doc(`"text"`)); !errors.Is(err, ErrBadDocument) {
		t.Fatalf("Decode with artifacts that are a string: %v, want ErrBadDocument", err)
	}
}
