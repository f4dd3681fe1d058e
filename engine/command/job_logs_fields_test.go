package command

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
)

// A log line's fields are printed after its message for people, and as
// data in --json.
func TestPrintLinesShowsFields(t *testing.T) {
	l := jobs.LogLine{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Level: "info", Message: "greeting",
		Fields: []action.Field{{Key: "name", Value: "Alice"}, {Key: "target", Value: "user/alice"}}}
	var text, js bytes.Buffer
	if err := printLines(&text, []jobs.LogLine{l}); err != nil {
		t.Fatal(err)
	}
	if got := text.String(); !strings.HasSuffix(got, "INFO  greeting name=Alice target=user/alice\n") {
		t.Errorf("text line %q", got)
	}
	if err := printJSONLines(&js, []jobs.LogLine{l}); err != nil {
		t.Fatal(err)
	}
	if got := js.String(); !strings.Contains(got, `"message":"greeting","fields":[{"key":"name","value":"Alice"},{"key":"target","value":"user/alice"}]`) {
		t.Errorf("JSON line %s", got)
	}
}
