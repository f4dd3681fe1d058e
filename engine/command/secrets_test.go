package command

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/internal/testing/estest"
)

// TestElasticsearchSecretsFromFiles: the password and the API key come
// from files or systemd credentials; the password on the command line still
// works, with a warning.
func TestElasticsearchSecretsFromFiles(t *testing.T) {
	root := testRoot(t)
	testStore(t, root)
	secret := func(name, value string, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(value+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	basic := estest.Start(t, estest.Options{Username: "elastic", Password: "pw-from-file"})
	keyed := estest.Start(t, estest.Options{APIKey: "aWQ6a2V5"})
	list := func(es string, extra ...string) (string, int) {
		args := append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", root, "--es-hosts", es}, extra...)
		_, errOut, code := run(t, append(args, "job", "list")...)
		return errOut, code
	}

	if errOut, code := list(basic.URL(), "--es-username", "elastic", "--es-password-file", secret("pw", "pw-from-file", 0o600)); code != 0 || errOut != "" {
		t.Errorf("--es-password-file: exit %d, stderr:\n%s", code, errOut)
	}
	if errOut, code := list(basic.URL(), "--es-username", "elastic", "--es-password", "pw-from-file"); code != 0 || !strings.Contains(errOut, "--es-password is deprecated") || strings.Contains(errOut, "history left out") {
		t.Errorf("--es-password: exit %d, stderr:\n%s", code, errOut)
	}
	if errOut, code := list(basic.URL(), "--es-username", "elastic", "--es-password-file", secret("loose", "pw-from-file", 0o644)); code != ExitUsage || !strings.Contains(errOut, "readable by every user") || strings.Contains(errOut, "pw-from-file\n") {
		t.Errorf("world-readable password file: exit %d, stderr:\n%s", code, errOut)
	}
	if errOut, code := list(keyed.URL(), "--es-api-key-file", secret("key", "aWQ6a2V5", 0o600)); code != 0 || errOut != "" {
		t.Errorf("--es-api-key-file: exit %d, stderr:\n%s", code, errOut)
	}
	if errOut, code := list(keyed.URL(), "--es-username", "elastic", "--es-api-key-file", secret("key", "aWQ6a2V5", 0o600)); code != ExitUsage || !strings.Contains(errOut, "keep one of them") {
		t.Errorf("API key and username: exit %d, stderr:\n%s", code, errOut)
	}

	// systemd's LoadCredential=: the file is found by its credential name.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "es-api-key"), []byte("aWQ6a2V5"), 0o400); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if errOut, code := list(keyed.URL()); code != 0 || errOut != "" {
		t.Errorf("API key from $CREDENTIALS_DIRECTORY: exit %d, stderr:\n%s", code, errOut)
	}
	if errOut, _ := list(basic.URL(), "--es-username", "elastic"); !strings.Contains(errOut, "keep one of them") {
		t.Errorf("a systemd API key with a username: stderr:\n%s", errOut)
	}
}
