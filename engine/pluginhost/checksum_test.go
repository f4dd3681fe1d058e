package pluginhost_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	actionv1 "github.com/jobengine/jobengine/actions/sdk/proto/v1"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

const (
	sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	sumB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
)

func TestParseChecksums(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{name: "sha256sum output", in: sumA + "  hello\n" + sumB + " *bin/other\n",
			want: map[string]string{"hello": sumA, "other": sumB}},
		{name: "comments, blank lines, upper case", in: "# pins\n\n" + strings.ToUpper(sumA) + "  /usr/libexec/jobengine/actions/hello\r\n",
			want: map[string]string{"hello": sumA}},
		{name: "escaped name", in: `\` + sumA + `  a\\b` + "\n", want: map[string]string{`a\b`: sumA}},
		{name: "no name", in: sumA + "\n", err: "line 1"},
		{name: "one space", in: sumA + " hello\n", err: `not "HEX  NAME"`},
		{name: "short sum", in: "abc  hello\n", err: "not a SHA-256"},
		{name: "conflicting pins", in: sumA + "  hello\n" + sumB + "  x/hello\n", err: "pinned twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pluginhost.ParseChecksums(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want it to say %q", err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestReadChecksumsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "SHA256SUMS")
	if err := os.WriteFile(path, []byte(sumA+"  hello\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.ReadChecksumsFile(path); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %v, want line 2 of %s", err, path)
	}
	if _, err := pluginhost.ReadChecksumsFile(path + ".missing"); err == nil {
		t.Error("a missing file is no error")
	}
	// A file given by mistake — a secret one — is never quoted.
	secret := filepath.Join(t.TempDir(), "shadow")
	line := "root:$y$j9T$c2VjcmV0:19000:0:99999:7:::"
	if err := os.WriteFile(secret, []byte(line+"\nsecret words here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.ReadChecksumsFile(secret); err == nil || strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "root") {
		t.Errorf("error = %v, want one that does not quote the file", err)
	}
	if err := os.WriteFile(secret, []byte("secret words here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pluginhost.ReadChecksumsFile(secret); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error = %v, want one that does not quote the file", err)
	}
	// Only a regular file is read: a device is refused, not read to its end.
	if _, err := pluginhost.ReadChecksumsFile("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero: error = %v, want not a regular file", err)
	}
}

func TestParseChecksumFlags(t *testing.T) {
	got, err := pluginhost.ParseChecksumFlags([]string{"hello=" + strings.ToUpper(sumA), " other = " + sumB})
	if err != nil || !maps.Equal(got, map[string]string{"hello": sumA, "other": sumB}) {
		t.Errorf("got %v, %v", got, err)
	}
	for in, want := range map[string]string{
		"hello":               "want NAME=HEX",
		"=" + sumA:            "want NAME=HEX",
		"dir/hello=" + sumA:   "want NAME=HEX",
		"hello=xyz":           "not a SHA-256",
		"hello=" + sumA + "0": "not a SHA-256",
	} {
		if _, err := pluginhost.ParseChecksumFlags([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error = %v, want %q", in, err, want)
		}
	}
	if _, err := pluginhost.ParseChecksumFlags([]string{"a=" + sumA, "a=" + sumB}); err == nil {
		t.Error("conflicting pins accepted")
	}
}

// The protocol's limits are the job document's.
func TestProtocolLimitsMatchJobDocument(t *testing.T) {
	if actionv1.MaxStatusBytes != jobs.MaxStatusMessage || actionv1.MaxHrefBytes != jobs.MaxIDBytes {
		t.Errorf("protocol limits %d/%d, job document %d/%d", actionv1.MaxStatusBytes, actionv1.MaxHrefBytes, jobs.MaxStatusMessage, jobs.MaxIDBytes)
	}
}
