package packaging_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jobengine/jobengine"

// shippedMains are the main packages whose binaries the packages install.
var shippedMains = []string{"./cmd/jobengine", "./actions/examples/hello"}

// testingImporters returns the packages among the dependencies of pkgs
// (as built for this machine, with no build tags) that import the standard
// package testing or one of its subpackages, each as "importer -> testing…".
func testingImporters(t *testing.T, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", strings.Join(pkgs, " "), err)
	}
	var found []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == "testing" || strings.HasPrefix(imp, "testing/") {
				found = append(found, f[0]+" -> "+imp)
			}
		}
	}
	slices.Sort(found)
	return slices.Compact(found)
}

func ours(pkg string) bool { return pkg == module || strings.HasPrefix(pkg, module+"/") }

// TestShippedBinariesDoNotImportTesting keeps test support out of what the
// packages install: no package of this module that the binaries link may
// import testing. A dependency may: github.com/hashicorp/go-plugin (v1.5 and
// later) imports it for its exported test helpers, so testing is linked in
// through it and cannot be removed from here (docs/architecture.md).
func TestShippedBinariesDoNotImportTesting(t *testing.T) {
	// The check itself: a package of ours that imports testing is found.
	if got := testingImporters(t, "./internal/testing/poll"); !slices.Contains(got, module+"/internal/testing/poll -> testing") {
		t.Fatalf("importers of testing under internal/testing/poll = %v: the check cannot see our own importers", got)
	}

	importers := testingImporters(t, shippedMains...)
	var bad []string
	for _, imp := range importers {
		if ours(strings.Fields(imp)[0]) {
			bad = append(bad, imp)
		}
	}
	t.Logf("importers of testing linked into %s: %v", strings.Join(shippedMains, " and "), importers)
	if len(bad) > 0 {
		t.Errorf("packages of this module linked into the shipped binaries import testing: %s\n"+
			"move what they need from testing into test files or internal/testing, which only tests import",
			strings.Join(bad, ", "))
	}
}
