package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jobengine/jobengine/internal/check"
)

// RemoteNode is the name of the remote node the remote executor serves:
// the harness's loopback sshd.
const RemoteNode = "127.0.0.1"

// remoteKillGrace is the remote worker's kill grace (its plugins' and its
// playbooks'): with keepalives every second, a cut run stops within
// remote.OrphanBound(1s, remoteKillGrace) = 3.25s, which the remote
// executor holds the cut job for before the lost-job policy requeues it.
const remoteKillGrace = time.Second

// hasSSHD reports whether openssh-server is installed.
func hasSSHD() bool {
	_, err := os.Stat("/usr/sbin/sshd")
	return err == nil
}

// sshd is an OpenSSH server the harness runs on a free port of 127.0.0.1,
// with its own host key, letting the current user in with a key of the
// run: the remote node the remote executor reaches its worker through.
type sshd struct {
	cmd  *exec.Cmd
	port int
	key  string
	done chan struct{}
}

// startSSHD starts sshd with its files in dir.
func startSSHD(ctx context.Context, dir string) (*sshd, error) {
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		return nil, fmt.Errorf("faults: the remote node needs openssh-server (/usr/sbin/sshd): %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keygen := func(name string) (string, error) {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", p).CombinedOutput(); err != nil {
			return "", fmt.Errorf("faults: ssh-keygen: %v %s", err, out)
		}
		return p, nil
	}
	hostKey, err := keygen("host")
	if err != nil {
		return nil, err
	}
	clientKey, err := keygen("client")
	if err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	config := filepath.Join(dir, "sshd_config")
	// MaxStartups: the executor connects once per job, several at once.
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s/sshd.pid\nAuthorizedKeysFile %s/authorized_keys\n"+
		"PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"+
		"StrictModes no\nUsePAM no\nMaxStartups 100\nMaxSessions 100\n", port, hostKey, dir, dir)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// sshd wants its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("faults: sshd cannot run here: %w", err)
	}
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &sshd{cmd: cmd, port: port, key: clientKey, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err = check.Until(wctx, 20*time.Millisecond, func() error {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err
	})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("faults: sshd does not listen (see %s): %w", logf.Name(), err)
	}
	return s, nil
}

// close stops sshd and every session it serves.
func (s *sshd) close() {
	for _, pid := range childrenOf(s.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// remoteCommand is the remote executor process id's --remote-command:
// ssh to the node, where the worker runs the node's recorder plugin with
// the recorder's variables naming the executor process.
func (h *Harness) remoteCommand(id string) string {
	return fmt.Sprintf("ssh -T -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR {node} "+
		"env %s=%s %s=%s %s worker --keepalive-seconds 1 --kill-grace %s --plugin-kill-grace %s --plugin-dir %s --plugin-env %s --plugin-env %s",
		h.sshd.key, h.sshd.port, EnvLog, h.recLog, EnvExecutor, id, h.Bin, remoteKillGrace, remoteKillGrace, h.PluginDir, EnvLog, EnvExecutor)
}

// remoteRun finds a run of the remote executor in progress, preferring a
// long one just started (it is cut mid-job), and returns it with the pid
// of its plugin process, waiting up to wait for one.
func (h *Harness) remoteRun(ctx context.Context, wait time.Duration) (Record, error) {
	sleeps := map[string]int{}
	for _, b := range h.Plan.Batches {
		for _, j := range b.Jobs {
			sleeps[j.ID] = j.SleepMS
		}
	}
	prefix := h.remote.name + "#"
	var found Record
	deadline := time.Now().Add(wait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := check.Until(wctx, 50*time.Millisecond, func() error {
		recs, err := ReadRecords(h.recLog)
		if err != nil {
			return err
		}
		open := map[string]Record{}
		for _, r := range recs {
			switch {
			case r.Event == EventStart && strings.HasPrefix(r.Executor, prefix):
				open[r.Run] = r
			case r.Event == EventEnd:
				delete(open, r.Run)
			}
		}
		late := time.Now().Add(wait / 2).After(deadline) // any run will do
		for _, r := range open {
			age := time.Since(time.Unix(0, r.Time))
			if syscall.Kill(r.PID, 0) != nil || (!late && (sleeps[r.Job] < 1000 || age > time.Duration(sleeps[r.Job])*time.Millisecond/2)) {
				continue
			}
			found = r
			return nil
		}
		return errors.New("no run of the remote executor in progress")
	})
	return found, err
}

// parentOf returns a process's parent pid, 0 if it is gone.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(fields[1])
	return p
}

// childrenOf returns the pids of a process's children.
func childrenOf(ppid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err == nil && parentOf(pid) == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// waitGone polls until the process has exited, up to wait; it returns
// when it was seen gone.
func waitGone(ctx context.Context, pid int, wait time.Duration) (time.Time, error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := check.Until(wctx, 10*time.Millisecond, func() error {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			return fmt.Errorf("pid %d still runs", pid)
		}
		return nil
	})
	return time.Now(), err
}

func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+2:]
	return strings.HasPrefix(rest, "Z")
}

// cutRemote plays the two remote faults: a run of the remote executor in
// progress is cut — its worker killed (CutRemoteStream: the stream ends
// without its final record, and the recorder plugin dies with the worker),
// or the sshd processes serving its connection killed (KillRemoteSSH: the
// worker finds its stream closed and stops the run) — and the harness
// waits until the cut job runs again.
func (h *Harness) cutRemote(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	rec, err := h.remoteRun(ctx, 20*time.Second)
	if err != nil {
		return fmt.Errorf("faults: no remote run to cut: %w", err)
	}
	worker := parentOf(rec.PID)
	if worker == 0 {
		return fmt.Errorf("faults: the plugin process %d of run %s is gone", rec.PID, rec.Run)
	}
	if cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", worker)); !strings.Contains(string(cl), "\x00worker\x00") {
		return fmt.Errorf("faults: the parent %d of run %s's plugin is not a jobengine worker: %q", worker, rec.Run, cl)
	}
	e.Job, e.Run, e.Executor = rec.Job, rec.Run, rec.Executor
	var victims []int
	switch f.Kind {
	case CutRemoteStream:
		victims = []int{worker}
		e.Target = fmt.Sprintf("worker pid %d (%s)", worker, rec.Executor)
	case KillRemoteSSH:
		// Every process between sshd and the worker: the session's sshd
		// processes (and a shell, if one stayed).
		for p := parentOf(worker); p != 0 && p != 1 && p != h.sshd.cmd.Process.Pid; p = parentOf(p) {
			victims = append(victims, p)
		}
		if len(victims) == 0 {
			return fmt.Errorf("faults: the worker %d of run %s is not served by the harness's sshd", worker, rec.Run)
		}
		e.Target = fmt.Sprintf("ssh session pids %v (%s)", victims, rec.Executor)
	}
	e.At = time.Now()
	for _, p := range victims {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	probe()
	// The recorder plugin dies with its worker (its parent-death
	// signal), or stops when the worker finds its stream closed.
	gone, err := waitGone(ctx, rec.PID, 30*time.Second)
	if err != nil {
		return fmt.Errorf("faults: the plugin of the cut run %s still runs: %w", rec.Run, err)
	}
	e.RunGone = gone
	e.HealAt = gone
	e.Note = "job " + rec.Job
	// Healed: the cut job ran again (the recorder's lost-job policy is
	// rerun; the remote executor holds it for the node's orphan bound).
	wctx, cancel := context.WithTimeout(ctx, f.Hold+30*time.Second)
	defer cancel()
	err = check.Until(wctx, 50*time.Millisecond, func() error {
		recs, err := ReadRecords(h.recLog)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.Event == EventStart && r.Job == rec.Job && r.Run != rec.Run && r.Time > e.At.UnixNano() {
				return nil
			}
		}
		return errors.New("the cut job has not run again")
	})
	if err != nil {
		h.logf("fault %d: the cut job %s did not run again within %s", e.N, rec.Job, f.Hold+30*time.Second)
	}
	e.Healed = time.Now()
	return nil
}
