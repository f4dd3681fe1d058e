package actions

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSourceFileStaysInTheProject: a source file inside the project is
// found, through a link inside it too; a missing one or a link out of the
// project is refused.
func TestSourceFileStaysInTheProject(t *testing.T) {
	proj := t.TempDir()
	outside := filepath.Join(t.TempDir(), "hosts.yml")
	for _, f := range []string{filepath.Join(proj, "inv", "hosts.yml"), outside} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("all: {}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("inv/hosts.yml", filepath.Join(proj, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(proj, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"inv/hosts.yml", "inside", "inv"} {
		if _, err := sourceFile(proj, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"escape", "missing.yml"} {
		if f, err := sourceFile(proj, bad); err == nil {
			t.Errorf("%s was accepted as %s", bad, f)
		}
	}
}

// TestLimitWriter: output past the limit is noted, not kept.
func TestLimitWriter(t *testing.T) {
	var kept []byte
	w := &limitWriter{w: writerFunc(func(p []byte) (int, error) { kept = append(kept, p...); return len(p), nil }), n: 5}
	w.Write([]byte("abc"))
	if w.over {
		t.Fatal("over after 3 of 5 bytes")
	}
	w.Write([]byte("defg"))
	if !w.over || string(kept) != "abcde" {
		t.Fatalf("over %v, kept %q", w.over, kept)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
