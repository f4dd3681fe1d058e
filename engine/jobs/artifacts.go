package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/jobengine/jobengine/engine/action"
)

// setArtifacts keeps what an action returned on the document: a JSON
// object of at most action.MaxArtifactBytes. Anything else is left out
// with a note in Trimmed, since the document lives in ZooKeeper and a
// malformed value would make it unreadable to others.
func (j *Job) setArtifacts(a json.RawMessage) {
	a = bytes.TrimSpace(a)
	if len(a) == 0 || bytes.Equal(a, []byte("null")) {
		return
	}
	var obj map[string]json.RawMessage
	switch {
	case len(a) > action.MaxArtifactBytes:
		j.noteTrimmed(fmt.Sprintf("artifacts of %d bytes, over the %d-byte limit", len(a), action.MaxArtifactBytes))
	case a[0] != '{' || json.Unmarshal(a, &obj) != nil:
		j.noteTrimmed("artifacts that are not a JSON object")
	default:
		var buf bytes.Buffer
		if json.Compact(&buf, a) != nil {
			j.noteTrimmed("artifacts that are not a JSON object")
			return
		}
		j.Artifacts = buf.Bytes()
	}
}

// noteTrimmed says in Trimmed what a write left out.
func (j *Job) noteTrimmed(what string) {
	if j.Trimmed != "" {
		j.Trimmed += "; "
	}
	j.Trimmed += "left out: " + what
}
