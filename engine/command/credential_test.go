package command

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// runBinaryIn runs the built binary with stdin.
func runBinaryIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(builtBinaries(t), "jobengine"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("jobengine %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

func randomSecret(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// walkZK returns every znode under the connection's root with its data.
func walkZK(t *testing.T, conn *zkconn.Conn) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var walk func(p string)
	walk = func(p string) {
		data, _, err := conn.Get(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		out[p] = data
		kids, _, err := conn.Children(p)
		if err != nil {
			t.Fatalf("listing %s: %v", p, err)
		}
		for _, k := range kids {
			walk(path.Join(p, k))
		}
	}
	walk(conn.Path("/"))
	return out
}

// TestCredentialsNeverLeak runs a playbook with a machine, a vault and a
// secret credential — at verbosity 3, with the executor logging at debug
// level and indexing into Elasticsearch — and greps every znode, the
// daemon's log, the job's log and document, every indexed document and
// what the credential commands print for each secret: none is found. The
// run did use them: the vault opened and the secret's value was printed,
// redacted.
func TestCredentialsNeverLeak(t *testing.T) {
	ansibletest.Need(t)
	es := estest.Start(t, estest.Options{})
	const prefix = "t-creds-"
	root := testRoot(t)
	s := testStore(t, root)
	dir := t.TempDir()
	g := []string{"--zk-hosts", testZK.ConnectString(), "--zk-root", root}

	token, password, become, vaultPass := randomSecret("T0ken"), randomSecret("Mach1ne"), randomSecret("Bec0me"), randomSecret("Vau1t")
	keyDir := filepath.Join(dir, "sshkey")
	if err := os.Mkdir(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(keyDir, "id")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	sshKey, _ := os.ReadFile(filepath.Join(keyDir, "id"))
	keyBody := strings.Split(strings.TrimSpace(string(sshKey)), "\n")[1] // a line of the key's body
	secrets := map[string]string{"token": token, "password": password, "become password": become, "vault password": vaultPass, "ssh key line": keyBody}

	// A vault-encrypted variable file, opened by the vault credential.
	vaultPassFile := writeFile(t, dir, "vault-pass", vaultPass+"\n", 0o600)
	plain := writeFile(t, dir, "plain.yml", "vaulted: hello-from-the-vault\n", 0o600)
	enc := filepath.Join(dir, "vault.yml")
	if out, err := exec.Command("ansible-vault", "encrypt", "--vault-password-file", vaultPassFile, "--output", enc, plain).CombinedOutput(); err != nil {
		t.Fatalf("ansible-vault: %v %s", err, out)
	}
	vaulted, _ := os.ReadFile(enc)
	project := ansibletest.Project(t, map[string]string{
		"vault.yml": string(vaulted),
		"site.yml": `- hosts: all
  gather_facts: false
  vars_files: [vault.yml]
  tasks:
    - name: show the secret
      debug:
        msg: "token={{ lookup('env', 'MY_TOKEN') }} vaulted={{ vaulted }}"
    - name: echo the secret
      command: echo "{{ lookup('env', 'MY_TOKEN') }}"
`,
	})

	keyFile := filepath.Join(dir, "credential.key")
	if out, errOut, code := runBinary(t, nil, "credential", "keygen", keyFile); code != 0 {
		t.Fatalf("keygen: %s %s", out, errOut)
	}
	me, _ := user.Current()
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{password, []string{"credential", "create", "machine", "--kind", "machine", "--username", me.Username,
			"--ssh-key-file", filepath.Join(keyDir, "id"), "--password-file", "-",
			"--become-password-file", writeFile(t, dir, "become", become, 0o600)}},
		{"", []string{"credential", "create", "vault", "--kind", "vault", "--vault-password-file", vaultPassFile}},
		{token + "\n", []string{"credential", "create", "api", "--kind", "secret", "--secret", "MY_TOKEN=-"}},
	} {
		args := append(append(append([]string{}, g...), tc.args...), "--credential-key-file", keyFile)
		if out, errOut, code := runBinaryIn(t, tc.stdin, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s %s", tc.args, code, out, errOut)
		}
	}
	var printed strings.Builder
	for _, args := range [][]string{{"credential", "list"}, {"credential", "list", "--json"}, {"credential", "show", "machine"}, {"credential", "show", "api", "--json"}} {
		out, errOut, code := runBinary(t, nil, append(append([]string{}, g...), args...)...)
		if code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
		printed.WriteString(out + errOut)
	}
	if !strings.Contains(printed.String(), "value:MY_TOKEN") || !strings.Contains(printed.String(), "ssh-key") {
		t.Fatalf("credential commands do not say which secrets are set:\n%s", printed.String())
	}

	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	d := startDaemonEnv(t, root, []string{"TMPDIR=" + tmp, "JOBENGINE_CREDENTIAL_KEY_FILE=" + keyFile},
		"--log-level", "debug", "--es-hosts", es.URL(), "--es-index-prefix", prefix,
		"executor", "--threads", "1", "--plugin-dir", t.TempDir())
	startPump(t, s.Conn(), es.URL(), prefix)
	j := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "site.yml", ansibletest.Inventory("h1"),
		map[string]any{"credentials": []string{"machine", "vault", "api"}, "verbosity": 3}))
	done := waitJob(t, s, j.ID, 90*time.Second, func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s", j.State)
		}
		return nil
	})
	if done.State != jobs.Success {
		t.Fatalf("job %s: %q\n%s", done.State, done.StatusMessage, d.out.String())
	}
	logs, errOut, code := runBinary(t, nil, append(append([]string{}, g...), "job", "logs", j.ID)...)
	if code != 0 {
		t.Fatal(errOut)
	}
	if !strings.Contains(logs, "token=******** vaulted=hello-from-the-vault") {
		t.Fatalf("the run did not use the credentials, or did not redact:\n%s", logs)
	}
	show, _, _ := runBinary(t, nil, append(append([]string{}, g...), "job", "show", "--json", j.ID)...)

	// Everything indexed: the job's versions and its events.
	var indexed string
	poll.For(t, 30*time.Second, 200*time.Millisecond, func() error {
		resp, err := http.Post(es.URL()+"/"+prefix+"*/_search?refresh=true", "application/json", strings.NewReader(`{"size": 10000, "query": {"match_all": {}}}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		indexed = string(b)
		if !strings.Contains(indexed, `"state":"SUCCESS"`) || !strings.Contains(indexed, "token=********") {
			return errors.New("the final state and the job events are not indexed yet")
		}
		return nil
	})
	_, _ = http.Post(es.URL()+"/_refresh", "application/json", nil)

	znodes := walkZK(t, s.Conn())
	for what, secret := range secrets {
		for p, data := range znodes {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("the %s is in znode %s", what, p)
			}
		}
		for where, text := range map[string]string{"the daemon's log": d.out.String(), "the job's log": logs, "the job document": show,
			"Elasticsearch": indexed, "the credential commands' output": printed.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s is in %s", what, where)
			}
		}
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "*"))
	if len(left) > 0 {
		t.Errorf("the run left files behind: %v", left)
	}
}

// startPump runs an index pump on conn until the test ends, as the
// maintenance leader of a cluster does: it indexes the outbox (the job
// documents' versions and their state events).
func startPump(t *testing.T, conn *zkconn.Conn, esURL, prefix string) {
	t.Helper()
	ix, err := index.New(index.Config{Hosts: []string{esURL}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pump := index.NewPump(conn, ix, nil, index.PumpOptions{Name: "p", MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pump.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
