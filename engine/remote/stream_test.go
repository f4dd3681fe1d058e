package remote

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/ansible"
)

// TestStreamRoundTrip writes every kind of message, an archive among them,
// and reads them back; the archive keeps modes and symbolic links and is
// followed directly by the next message, as ansible-runner frames it.
func TestStreamRoundTrip(t *testing.T) {
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "inventory", "hosts"), "#!/bin/sh\necho {}\n", 0o755)
	mustWrite(t, filepath.Join(src, "project", "site.yml"), "- hosts: all\n", 0o644)
	if err := os.Symlink("site.yml", filepath.Join(src, "project", "link.yml")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	rc := 2
	for _, err := range []error{
		w.Kwargs(Kwargs{Ident: "x", Playbook: "site.yml"}),
		w.Dir(src),
		w.Status(Status{Status: StatusFailed, RunnerIdent: "x", RC: &rc}),
		w.Event(ansible.Event{Event: ansible.EventOK, UUID: "u1", Counter: 1, Stdout: "ok: [h]"}),
		w.Keepalive(),
		w.EOF(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte("=\n{\"status\"")) && !bytes.Contains(buf.Bytes(), []byte("{\"status\"")) {
		t.Fatal("no status after the archive")
	}
	r := NewReader(&buf)
	var kinds []Kind
	dst := t.TempDir()
	for {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("after %v: %v", kinds, err)
		}
		kinds = append(kinds, m.Kind)
		switch m.Kind {
		case KindZip:
			f, err := r.ArchiveToTemp()
			if err != nil {
				t.Fatal(err)
			}
			if err := ExtractZip(f, m.ZipSize, dst); err != nil {
				t.Fatal(err)
			}
			f.Close()
			os.Remove(f.Name())
		case KindStatus:
			if m.Status.RC == nil || *m.Status.RC != 2 {
				t.Errorf("status %+v", m.Status)
			}
		case KindEvent:
			if m.Event.Stdout != "ok: [h]" {
				t.Errorf("event %+v", m.Event)
			}
		}
		if m.Kind == KindEOF {
			break
		}
	}
	if len(kinds) != 6 {
		t.Fatalf("kinds %v", kinds)
	}
	if fi, err := os.Stat(filepath.Join(dst, "inventory", "hosts")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("inventory script lost its mode: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "project", "link.yml")); err != nil || l != "site.yml" {
		t.Errorf("symlink: %q %v", l, err)
	}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func zipOf(t *testing.T, entries map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, content := range entries {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func archiveStream(t *testing.T, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := NewWriter(&b).Archive(bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestBadResultStreams: each bad stream ends the processor with an error
// status that names what was wrong, with a bounded excerpt; none hangs.
func TestBadResultStreams(t *testing.T) {
	long := strings.Repeat("x", 5000)
	goodZip := archiveStream(t, zipOf(t, map[string]string{"rc": "0"}))
	for _, tc := range []struct {
		name, stream, want string
	}{
		{"unparsable line", "{\"status\": \"running\"}\nnot json " + long + "\n", "line 2: not a JSON object"},
		{"not a message", "{\"hello\": 1}\n", "not a message of the stream"},
		{"event without counter", "{\"event\": \"runner_on_ok\", \"uuid\": \"u\"}\n", "positive \"counter\""},
		{"kwargs in a result stream", "{\"kwargs\": {}}\n", "this is a transmit stream"},
		{"negative archive size", "{\"zipfile\": -4}\n", "size in bytes"},
		{"cut before the end marker", "{\"status\": \"running\"}\n{\"event\": \"verbose\", \"uuid\": \"u\", \"counter\": 1}\n", "ended before its end marker"},
		{"cut inside an archive", goodZip[:len(goodZip)-10], "ended inside an archive"},
		{"bad base64", "{\"zipfile\": 6}\n!!!!!!!!\n{\"eof\": true}\n", "not valid base64"},
		{"not a zip", archiveStream(t, []byte("this is not a zip archive")) + "{\"eof\": true}\n", "not a zip file"},
		{"zip slip", archiveStream(t, zipOf(t, map[string]string{"../evil": "x"})) + "{\"eof\": true}\n", "leaves the directory"},
		{"absolute entry", archiveStream(t, zipOf(t, map[string]string{"/etc/evil": "x"})) + "{\"eof\": true}\n", "absolute path"},
		{"no status", "{\"eof\": true}\n", "without a status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := &Processor{ArtifactDir: filepath.Join(dir, "artifacts")}
			var statuses []Status
			p.OnStatus = func(s Status) { statuses = append(statuses, s) }
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := p.Run(ctx, strings.NewReader(tc.stream))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if out.Status != StatusError || !strings.Contains(out.Explanation, tc.want) {
				t.Errorf("outcome %+v", out)
			}
			if len(err.Error()) > 600 {
				t.Errorf("the error is not bounded: %d bytes", len(err.Error()))
			}
			if n := len(statuses); n == 0 || statuses[n-1].Status != StatusError {
				t.Errorf("no error status reported: %+v", statuses)
			}
			if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
				t.Error("an entry was written outside the artifacts")
			}
		})
	}
}

// TestIdleStreamFails: a stream that stays open and silent fails after the
// idle timeout instead of hanging.
func TestIdleStreamFails(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, "{\"status\": \"running\"}\n") }()
	p := &Processor{ArtifactDir: t.TempDir(), IdleTimeout: 300 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := p.Run(ctx, pr)
	if !errors.Is(err, ErrIdle) {
		t.Fatalf("err %v, want ErrIdle", err)
	}
}
