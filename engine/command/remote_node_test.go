package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/ansibletest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// loopbackSSHD is an sshd (Debian's openssh-server) started by a test on a
// free port of 127.0.0.1, with its own host key, letting the current user
// in with a key of its own.
type loopbackSSHD struct {
	t    *testing.T
	cmd  *exec.Cmd
	port int
	key  string // the client's private key
}

func startSSHD(t *testing.T) *loopbackSSHD {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("openssh-server is not installed")
	}
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
		return p
	}
	hostKey, clientKey := keygen("host"), keygen("client")
	pub, _ := os.ReadFile(clientKey + ".pub")
	writeFile(t, dir, "authorized_keys", string(pub), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := writeFile(t, dir, "sshd_config", fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
`, port, hostKey, dir, dir), 0o600)
	// sshd wants its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd cannot run here: %v", err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", config)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &loopbackSSHD{t: t, cmd: cmd, port: port, key: clientKey}
	t.Cleanup(func() {
		s.killSessions()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd:\n%s", out.String())
		}
	})
	poll.For(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err
	})
	return s
}

// command is the executor's --remote-command reaching the built worker.
func (s *loopbackSSHD) command(t *testing.T) string {
	return fmt.Sprintf("ssh -T -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR {node} %s worker --keepalive-seconds 1 --enable-test-actions",
		s.key, s.port, filepath.Join(builtBinaries(t), "jobengine"))
}

// killSessions kills the per-connection processes of sshd: every
// connection it serves drops, as when a network link dies.
func (s *loopbackSSHD) killSessions() int {
	n := 0
	for _, pid := range childrenOf(s.cmd.Process.Pid) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

func childrenOf(ppid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) > 1 {
			if p, _ := strconv.Atoi(fields[1]); p == ppid {
				pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
				out = append(out, pid)
			}
		}
	}
	return out
}

// processRunning reports whether a process's command line contains
// fragment; its arguments are separated by spaces, and a final \x00 in
// fragment matches the end of the command line.
func processRunning(fragment string) bool {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		cmd := strings.ReplaceAll(strings.TrimSuffix(string(b), "\x00"), "\x00", " ") + "\x00"
		if strings.Contains(cmd, fragment) {
			return true
		}
	}
	return false
}

// workerCmd ends the command line of the remote worker of a run (not one
// answering --worker-info).
const workerCmd = "jobengine worker --keepalive-seconds 1 --enable-test-actions\x00"

// workerRunning reports whether the remote worker of a run is running:
// the jobengine process itself, which exists only once sshd has accepted
// the connection — not the ssh client, whose command line ends the same.
func workerRunning() bool {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		cmd := strings.Join(argv, " ") + "\x00"
		if filepath.Base(argv[0]) == "jobengine" && strings.HasSuffix(cmd, workerCmd) {
			return true
		}
	}
	return false
}

// TestExecutorServesANodeOverSSH: an executor serving a node through a
// real loopback sshd takes the node's capacity from its --worker-info, runs
// a playbook there with its events in the job's log and its recap on the
// document; when the connection is killed mid-job, the playbook job (which
// does not rerun lost runs) fails saying the connection was cut, and the
// remote run stops; an action that reruns lost runs runs again and
// succeeds.
func TestExecutorServesANodeOverSSH(t *testing.T) {
	ansibletest.Need(t)
	sshd := startSSHD(t)
	root := testRoot(t)
	s := testStore(t, root)
	const marker = "3600.6262"
	project := ansibletest.Project(t, map[string]string{
		"site.yml": ansibletest.Playbook,
		"slow.yml": "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: wait\n      command: sleep " + marker + "\n",
	})
	d := startDaemon(t, root, "executor", "--threads", "2", "--plugin-dir", t.TempDir(), "--enable-test-actions",
		"--remote-command", sshd.command(t), "--remote-node", "127.0.0.1")
	d.waitLog(30*time.Second, "remote node ready", `"node":"127.0.0.1"`, `"capacity"`)

	final := func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s is %s", j.ID, j.State)
		}
		return nil
	}
	ok := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "site.yml", ansibletest.Inventory("good"), nil))
	got := waitJob(t, s, ok.ID, 90*time.Second, final)
	if got.State != jobs.Success || got.HostSummary == nil || got.HostSummary.Changed != 1 {
		t.Fatalf("remote playbook: %s %q %+v\n%s", got.State, got.StatusMessage, got.HostSummary, d.out.String())
	}
	logs, _, _ := runBinary(t, nil, "--zk-hosts", testZK.ConnectString(), "--zk-root", root, "job", "logs", ok.ID)
	if !strings.Contains(logs, "changed: [good]") || !strings.Contains(logs, "PLAY RECAP") {
		t.Fatalf("job log of the remote run:\n%s", logs)
	}

	// The connection dies while the playbook runs.
	slow := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "slow.yml", ansibletest.Inventory("good"), nil))
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		if !processRunning("sleep " + marker) {
			return errors.New("the remote task is not running yet")
		}
		return nil
	})
	if sshd.killSessions() == 0 {
		t.Fatal("no ssh session to kill")
	}
	got = waitJob(t, s, slow.ID, 60*time.Second, final)
	if got.State != jobs.Failed || !strings.Contains(got.StatusMessage, "connection was cut") || !strings.Contains(got.StatusMessage, "127.0.0.1") {
		t.Fatalf("after the connection died: %s %q", got.State, got.StatusMessage)
	}
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if processRunning("sleep " + marker) {
			return errors.New("the orphaned remote run still runs")
		}
		if workerRunning() {
			return errors.New("the orphaned remote worker still runs")
		}
		return nil
	})

	// An action that reruns lost runs: killed mid-run, it runs again.
	rerun := createJob(t, s, "sleep", `{"duration": "4s"}`)
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		j, _, err := s.Get(t.Context(), rerun.ID)
		// The worker of the run, not one answering --worker-info.
		if err != nil || j.State != jobs.Running || !workerRunning() {
			return errors.New("not running remotely yet")
		}
		return nil
	})
	if sshd.killSessions() == 0 {
		t.Fatal("no ssh session to kill")
	}
	got = waitJob(t, s, rerun.ID, 90*time.Second, final)
	if got.State != jobs.Success || got.Attempt != 2 {
		t.Fatalf("rerun after a lost connection: %s attempt %d %q", got.State, got.Attempt, got.StatusMessage)
	}
}

// TestMachineCredentialOverSSH: a playbook reaches a host over real SSH (a
// loopback sshd) with nothing but a machine credential's private key, run
// by an executor, and again through transmit | worker | process, the
// credential travelling in the stream to the worker.
func TestMachineCredentialOverSSH(t *testing.T) {
	ansibletest.Need(t)
	sshd := startSSHD(t)
	root := testRoot(t)
	s := testStore(t, root)
	dir := t.TempDir()
	g := []string{"--zk-hosts", testZK.ConnectString(), "--zk-root", root}
	keyFile := filepath.Join(dir, "credential.key")
	if _, errOut, code := runBinary(t, nil, "credential", "keygen", keyFile); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := runBinary(t, nil, append(g, "credential", "create", "ssh", "--kind", "machine", "--username", "root",
		"--ssh-key-file", sshd.key, "--credential-key-file", keyFile)...); code != 0 {
		t.Fatal(errOut)
	}
	project := ansibletest.Project(t, map[string]string{"ssh.yml": `- hosts: all
  gather_facts: false
  tasks:
    - name: who am i
      command: id -un
      register: who
    - name: tell
      debug:
        msg: "logged in as {{ who.stdout }} over {{ ansible_connection }}"
`})
	inv, _ := json.Marshal(map[string]any{
		"all": map[string]any{"hosts": []string{"sshhost"}},
		"_meta": map[string]any{"hostvars": map[string]any{"sshhost": map[string]any{
			"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": sshd.port,
			"ansible_python_interpreter": "/usr/bin/python3",
			"ansible_ssh_common_args":    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes -o IdentityAgent=none",
		}}},
	})
	payload := playbookPayload(t, project, "ssh.yml", inv, map[string]any{"credentials": []string{"ssh"}})

	d := startDaemonEnv(t, root, []string{"JOBENGINE_CREDENTIAL_KEY_FILE=" + keyFile, "HOME=" + t.TempDir()},
		"executor", "--threads", "1", "--plugin-dir", t.TempDir())
	final := func(j *jobs.Job) error {
		if !j.State.Final() {
			return fmt.Errorf("%s", j.State)
		}
		return nil
	}
	j := createJob(t, s, "ansible_playbook", payload)
	got := waitJob(t, s, j.ID, 90*time.Second, final)
	if got.State != jobs.Success {
		t.Fatalf("over ssh with the credential: %s %q", got.State, got.StatusMessage)
	}
	logs, _, _ := runBinary(t, nil, append(g, "job", "logs", j.ID)...)
	if !strings.Contains(logs, "logged in as root over ssh") {
		t.Fatalf("job log:\n%s", logs)
	}
	// Without the credential there is no key to log in with.
	bare := createJob(t, s, "ansible_playbook", playbookPayload(t, project, "ssh.yml", inv, nil))
	if got := waitJob(t, s, bare.ID, 90*time.Second, final); got.State != jobs.Failed || !strings.Contains(got.StatusMessage, "unreachable hosts: sshhost") {
		t.Fatalf("without the credential: %s %q", got.State, got.StatusMessage)
	}
	d.signal(syscall.SIGTERM)
	d.wait(30 * time.Second)

	// transmit | worker | process: the worker has no key of its own.
	j2 := createJob(t, s, "ansible_playbook", payload)
	out, code := sh(t, fmt.Sprintf(`"$JE" %s transmit %s --credential-key-file %s | HOME=%s "$JE" worker | "$JE" %s process %s --job %s`,
		strings.Join(g, " "), j2.ID, keyFile, t.TempDir(), strings.Join(g, " "), t.TempDir(), j2.ID))
	got, _, _ = s.Get(t.Context(), j2.ID)
	if code != 0 || got.State != jobs.Success || !strings.Contains(out, "logged in as root over ssh") {
		t.Fatalf("transmitted with its credential: exit %d, job %s %q\n%s", code, got.State, got.StatusMessage, out)
	}
}

// TestKilledExecutorEndsItsRemoteRun: an executor killed by SIGKILL while
// a silent job runs on its node takes the ssh connection with it — the
// worker's next keepalive makes its ssh client write to the dead
// executor's side and end the session — and the worker, finding its own
// stdout's reader (sshd) gone, stops the run instead of going on while
// the lost job runs again elsewhere. (Without keepalives nothing makes
// the ssh client write: the run would go on until it wrote something.)
func TestKilledExecutorEndsItsRemoteRun(t *testing.T) {
	sshd := startSSHD(t)
	root := testRoot(t)
	s := testStore(t, root)
	// A kill grace of its own marks this run's worker among the processes.
	tail := fmt.Sprintf(" worker --keepalive-seconds 1 --enable-test-actions --kill-grace %dms\x00", 3000+os.Getpid()%1000)
	command := fmt.Sprintf("ssh -T -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR {node} %s%s",
		sshd.key, sshd.port, filepath.Join(builtBinaries(t), "jobengine"), strings.TrimSuffix(tail, "\x00"))
	running := func() bool {
		files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range files {
			b, _ := os.ReadFile(f)
			argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
			if filepath.Base(argv[0]) == "jobengine" && strings.HasSuffix(strings.Join(argv, " ")+"\x00", tail) {
				return true
			}
		}
		return false
	}
	d := startDaemon(t, root, "executor", "--threads", "1", "--plugin-dir", t.TempDir(), "--enable-test-actions",
		"--remote-command", command, "--remote-node", "127.0.0.1")
	d.waitLog(30*time.Second, "remote node ready", `"node":"127.0.0.1"`)
	j := createJob(t, s, "sleep", `{"duration": "600s"}`)
	poll.For(t, 60*time.Second, 50*time.Millisecond, func() error {
		got, _, err := s.Get(t.Context(), j.ID)
		if err != nil || got.State != jobs.Running || !running() {
			return errors.New("not running remotely yet")
		}
		return nil
	})
	d.signal(syscall.SIGKILL)
	d.wait(30 * time.Second)
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if running() {
			return errors.New("the remote worker of the killed executor still runs")
		}
		return nil
	})
}
