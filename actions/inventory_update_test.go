package actions

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/invsource"
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

// TestInventoryUpdateRefusesBadPayloads: a payload that is not strict
// JSON, names a path out of the project or a bad project is refused
// before anything is fetched; a process without an inventory store says
// it cannot write inventories.
func TestInventoryUpdateRefusesBadPayloads(t *testing.T) {
	run := func(payload string) error {
		_, err := InventoryUpdate(InventoryUpdateOptions{}).Runner.Run(context.Background(),
			&action.Job{ID: "job/x", Action: invsource.UpdateAction, Payload: json.RawMessage(payload)}, &recorder{})
		return err
	}
	for _, p := range []string{
		`{"inventory": "inv", "path": "../hosts", "project": {"project": "site", "kind": "git", "url": "file:///srv/site"}}`,
		`{"inventory": "inv", "path": "hosts", "project": {"project": "site", "kind": "git", "url": "https://u:pw@example.com/r"}}`,
		`{"inventory": "", "path": "hosts", "project": {"project": "site", "kind": "directory", "directory": "/srv"}}`,
		`{"inventory": "inv", "path": "hosts", "project": {"project": "site", "kind": "directory", "directory": "/srv"}, "extra": 1}`,
	} {
		if err := run(p); err == nil || !strings.Contains(err.Error(), "payload") {
			t.Errorf("%s: %v", p, err)
		}
	}
	err := run(`{"inventory": "inv", "path": "hosts", "project": {"project": "site", "kind": "directory", "directory": "/srv"}}`)
	if err == nil || !strings.Contains(err.Error(), "cannot write inventories") {
		t.Errorf("without a store: %v", err)
	}
}
