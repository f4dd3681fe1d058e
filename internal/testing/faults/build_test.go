package faults

import (
	"os/exec"
	"testing"
)

// TestBuildPackagesExist keeps Build's import paths true to the tree: the
// suite itself runs only with -tags faults, so a moved package would
// otherwise be noticed only there.
func TestBuildPackagesExist(t *testing.T) {
	for _, pkg := range []string{binPackage, recorderPackage} {
		out, err := exec.Command("go", "list", "-f", "{{.Name}}", pkg).CombinedOutput()
		if err != nil || string(out) != "main\n" {
			t.Errorf("go list %s: %v\n%s(Build compiles it: is it still a main package there?)", pkg, err, out)
		}
	}
}
