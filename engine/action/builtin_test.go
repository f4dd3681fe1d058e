package action_test

import (
	"slices"
	"testing"

	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/action"
)

// TestBuiltinsLeaveOutTestActions checks that the test actions are
// registered, offered only on request, and known as test actions.
func TestBuiltinsLeaveOutTestActions(t *testing.T) {
	tests := []string{"dummy_test_action", "echo", "fail", "sleep"}
	all := action.BuiltinsWithTests().Names()
	prod := action.Builtins().Names()
	for _, name := range tests {
		if !slices.Contains(all, name) {
			t.Errorf("BuiltinsWithTests() lacks %s: %v", name, all)
		}
		if slices.Contains(prod, name) {
			t.Errorf("Builtins() offers the test action %s: %v", name, prod)
		}
		if !action.IsTest(name) {
			t.Errorf("IsTest(%q) = false", name)
		}
	}
	if action.IsTest("hello") || action.IsTest("nope") {
		t.Error("IsTest is true for an action that is not a built-in test action")
	}
}
