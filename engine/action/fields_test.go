package action_test

import (
	"slices"
	"testing"

	"github.com/jobengine/jobengine/engine/action"
)

func TestRenderFields(t *testing.T) {
	for _, tc := range []struct {
		msg    string
		fields []action.Field
		want   string
	}{
		{"plain", nil, "plain"},
		{"greeting", []action.Field{{"name", "Alice"}, {"target", "user/alice"}}, "greeting name=Alice target=user/alice"},
		{"m", []action.Field{{"empty", ""}, {"spaced", "a b"}, {"eq", "a=b"}}, `m empty="" spaced="a b" eq="a=b"`},
	} {
		if got := action.RenderFields(tc.msg, tc.fields); got != tc.want {
			t.Errorf("RenderFields(%q, %v) = %q, want %q", tc.msg, tc.fields, got, tc.want)
		}
	}
}

// lineReporter keeps log lines only.
type lineReporter struct{ lines []string }

func (r *lineReporter) Progress(int)          {}
func (r *lineReporter) Status(string)         {}
func (r *lineReporter) Affected(...string)    {}
func (r *lineReporter) Log(level, msg string) { r.lines = append(r.lines, level+": "+msg) }

// fieldReporter keeps fields apart.
type fieldReporter struct {
	lineReporter
	fields []action.Field
}

func (r *fieldReporter) LogFields(level, msg string, fields []action.Field) {
	r.Log(level, msg)
	r.fields = append(r.fields, fields...)
}

func TestLogFields(t *testing.T) {
	fields := []action.Field{{"name", "Alice"}}
	var plain lineReporter
	action.LogFields(&plain, "info", "greeting", fields)
	if !slices.Equal(plain.lines, []string{"info: greeting name=Alice"}) {
		t.Errorf("a reporter without fields got %q", plain.lines)
	}
	var apart fieldReporter
	action.LogFields(&apart, "info", "greeting", fields)
	if !slices.Equal(apart.lines, []string{"info: greeting"}) || !slices.Equal(apart.fields, fields) {
		t.Errorf("a FieldLogger got %q with fields %v", apart.lines, apart.fields)
	}
}
