package executor

import (
	"strings"
	"testing"
)

func TestExecutorNames(t *testing.T) {
	for name, want := range map[string]bool{
		"worker-1": true, "host.example.org-42": true, "A_b.c-D": true,
		"": false, ".": false, "..": false, "a/b": false, "a b": false, "a\x1bb": false, "é": false,
		strings.Repeat("x", maxNameBytes): true, strings.Repeat("x", maxNameBytes+1): false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
	for _, host := range []string{"host.example.org", "bad host/name\x1b", strings.Repeat("h", 300), ""} {
		if n := DefaultName(host); !ValidName(n) {
			t.Errorf("DefaultName(%q) = %q, not a valid name", host, n)
		}
	}
}
