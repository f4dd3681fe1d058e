package packaging_test

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCopyrightCoversModules checks that packaging/copyright, which both
// packages ship, has a Files paragraph for every Go module compiled into
// the shipped binaries, each with a license that has its own paragraph.
func TestCopyrightCoversModules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	// Files paragraphs: pattern -> license; License paragraphs with text.
	covered := map[string]string{}
	texts := map[string]bool{}
	for _, para := range strings.Split(string(b), "\n\n") {
		fields := map[string][]string{}
		key := ""
		for _, line := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
				key = k
				fields[k] = append(fields[k], v)
			} else if strings.HasPrefix(line, " ") && key != "" {
				fields[key] = append(fields[key], strings.TrimSpace(line))
			}
		}
		switch {
		case fields["Files"] != nil:
			for _, p := range fields["Files"] {
				covered[p] = fields["License"][0]
			}
		case fields["License"] != nil && len(fields["License"]) > 1:
			texts[fields["License"][0]] = true
		}
	}
	for pattern, license := range covered {
		for _, l := range strings.Split(license, " and ") {
			if !texts[l] {
				t.Errorf("copyright: %s is under %q, which has no License paragraph", pattern, l)
			}
		}
	}

	bin, plugin := binaries(t)
	for _, p := range []string{bin, plugin} {
		info, err := buildinfo.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, dep := range info.Deps {
			// jobengine's own modules (the plugin SDK) are "Files: *".
			if dep.Path == "github.com/jobengine/jobengine" || strings.HasPrefix(dep.Path, "github.com/jobengine/jobengine/") {
				continue
			}
			if _, ok := covered[dep.Path+"/*"]; !ok {
				t.Errorf("%s holds the module %s, which packaging/copyright does not list: add a Files paragraph with its copyright and license",
					filepath.Base(p), dep.Path)
			}
		}
	}
}

// projectContact returns the project's address, packaging/copyright's
// Upstream-Contact, after checking that the README gives the same one.
func projectContact(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	var contact string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Upstream-Contact: "); ok {
			contact = v
			break
		}
	}
	if contact == "" {
		t.Fatal("packaging/copyright has no Upstream-Contact")
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(readme)), " "), contact) {
		t.Errorf("README.md does not give the project's address %q", contact)
	}
	return contact
}

// The packages, the copyright file and the README name one address.
func TestProjectContact(t *testing.T) {
	contact := projectContact(t)
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "JOBENGINE_MAINTAINER:-"+contact+"}") {
		t.Errorf("packaging/build.sh's default maintainer is not %q", contact)
	}
}

// The SDK module is copied into plugins' repositories on its own: it
// carries the project's license.
func TestSDKModuleCarriesTheLicense(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(repoRoot, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repoRoot, "actions/sdk/LICENSE"))
	if err != nil || string(got) != string(want) {
		t.Errorf("actions/sdk/LICENSE is not the repository's LICENSE (%v): copy it", err)
	}
}
