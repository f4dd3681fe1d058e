package pluginhost_test

import (
	"strings"
	"testing"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/action"
)

// The SDK module cannot import the engine, so it keeps its own copy of the
// rule for action names; both must accept the same names.
func TestActionNameRuleIsTheEngines(t *testing.T) {
	for _, name := range []string{
		"", "a", "hello", "ansible_playbook", "a.b-c_d", ".", "..", "...", "Hello", "a b", "é",
		strings.Repeat("a", 64), strings.Repeat("a", 65), "a/b", "a\x00",
	} {
		if got, want := actionv1.ValidActionName(name), action.ValidName(name); got != want {
			t.Errorf("ValidActionName(%q) = %v, engine's ValidName = %v", name, got, want)
		}
	}
}
