package election

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// pythonWithKazoo is Debian's interpreter, which sees python3-kazoo (a
// python3 earlier on PATH may not).
const pythonWithKazoo = "/usr/bin/python3"

// kazooContender runs one kazoo Election contender. It leads by recording
// start, work every 5ms and end, until "release" arrives on stdin; on
// "contenders" it prints kazoo's contenders() as JSON.
const kazooContender = `
import json, sys, threading, time
from kazoo.client import KazooClient

hosts, path, ident, record = sys.argv[1:5]
release = threading.Event()
zk = KazooClient(hosts=hosts, timeout=2.0)
zk.start(timeout=15)
election = zk.Election(path, ident)

def rec(kind):
    with open(record, "a") as f:
        f.write("%s %s %d\n" % (kind, ident, time.time_ns()))

def commands():
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "release":
            release.set()
        elif cmd == "contenders":
            print("contenders " + json.dumps(election.contenders()), flush=True)
    release.set()

def lead():
    rec("start")
    while not release.wait(0.005):
        rec("work")
    rec("end")

threading.Thread(target=commands, daemon=True).start()
print("contending", flush=True)
election.run(lead)
print("done", flush=True)
zk.stop()
zk.close()
`

// kazooProc is a running kazoo contender.
type kazooProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan struct{}
}

func (p *kazooProc) send(t testing.TB, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		t.Fatalf("writing to the kazoo contender: %v", err)
	}
}

// expect waits for a line of output starting with prefix and returns it.
func (p *kazooProc) expect(t testing.TB, prefix string, wait time.Duration) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("the kazoo contender exited while %q was expected", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("no %q from the kazoo contender within %s", prefix, wait)
		}
	}
}

func startKazoo(t *testing.T, electionPath, id, record string) *kazooProc {
	t.Helper()
	if out, err := exec.Command(pythonWithKazoo, "-c", "import kazoo").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import kazoo (apt-get install -y python3-kazoo): %v: %s", pythonWithKazoo, err, strings.TrimSpace(string(out)))
	}
	script := filepath.Join(t.TempDir(), "contender.py")
	if err := os.WriteFile(script, []byte(kazooContender), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonWithKazoo, script, strings.Join(zkc.Addrs(), ","), electionPath, id, record)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &kazooProc{cmd: cmd, in: in, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_ = cmd.Wait() // only after the last read, as os/exec requires
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		go func() {
			for range p.lines { // unblock the reader so it can reap the process
			}
		}()
		<-p.done
		if t.Failed() {
			t.Logf("kazoo contender stderr:\n%s", tail(stderr.String(), 40))
		}
	})
	return p
}

func TestKazooElectionInteroperates(t *testing.T) {
	g := newGroup(t)
	a := g.start("go-a")
	if id := g.leader(10 * time.Second); id != "go-a" {
		t.Fatalf("%s leads, want go-a", id)
	}
	obs := New(dial(t, g.root), g.name, "", nil)
	py := startKazoo(t, obs.Path(), "py", g.record)
	py.expect(t, "contending", 15*time.Second)
	waitFor(t, 10*time.Second, func() error {
		cs, err := obs.Contenders(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if got := identifiers(cs); !reflect.DeepEqual(got, []string{"go-a", "py"}) {
			return fmt.Errorf("contenders %q", got)
		}
		return nil
	})
	py.send(t, "contenders")
	if l := py.expect(t, "contenders ", 10*time.Second); !sameJSON(t, strings.TrimPrefix(l, "contenders "), []string{"go-a", "py"}) {
		t.Fatalf("kazoo sees %s, want [go-a py]", l)
	}

	// Go → kazoo: the Go leader resigns, the kazoo contender leads.
	a.stop(t)
	if id := g.leaderOtherThan("go-a", sessionTimeout+time.Second); id != "py" {
		t.Fatalf("%s leads after go-a resigned, want py", id)
	}
	if id, err := obs.Leader(ctxT(t, 5*time.Second)); err != nil || id != "py" {
		t.Fatalf("Leader() = %q, %v; want py", id, err)
	}

	// A kazoo ReadLock node ahead of the next Go contender is no contender
	// for either side.
	conn := dial(t, g.root)
	rlock := obs.Path() + "/" + strings.TrimSuffix(newPrefix(), lockMarker) + "__rlock__"
	if _, err := conn.Create(rlock, []byte("reader"), zk.FlagSequence, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	g.start("go-b")
	waitFor(t, 10*time.Second, func() error {
		cs, err := obs.Contenders(ctxT(t, 5*time.Second))
		if err != nil {
			return err
		}
		if got := identifiers(cs); !reflect.DeepEqual(got, []string{"py", "go-b"}) {
			return fmt.Errorf("contenders %q", got)
		}
		return nil
	})
	py.send(t, "contenders")
	if l := py.expect(t, "contenders ", 10*time.Second); !sameJSON(t, strings.TrimPrefix(l, "contenders "), []string{"py", "go-b"}) {
		t.Fatalf("kazoo sees %s, want [py go-b]", l)
	}
	if s, err := leading(g.spans()); err != nil || s.id != "py" {
		t.Fatalf("while kazoo holds the election: %v, %v", s, err)
	}

	// kazoo → Go: the kazoo leader finishes, the Go contender leads.
	py.send(t, "release")
	py.expect(t, "done", 10*time.Second)
	if id := g.leaderOtherThan("py", sessionTimeout+time.Second); id != "go-b" {
		t.Fatalf("%s leads after py released, want go-b", id)
	}
	// go-b's term has only begun: let it do some work before the check.
	waitFor(t, 10*time.Second, func() error {
		if sp := g.spans(); len(sp) == 0 || sp[len(sp)-1].id != "go-b" || sp[len(sp)-1].works == 0 {
			return errors.New("go-b's term has done no work yet")
		}
		return nil
	})
	spans := g.spans()
	var order []string
	for _, s := range spans {
		order = append(order, s.id)
		if s.works == 0 {
			t.Errorf("term of %s did no work; the overlap check would prove nothing", s.id)
		}
	}
	if !reflect.DeepEqual(order, []string{"go-a", "py", "go-b"}) {
		t.Errorf("terms %q, want go-a, py, go-b", order)
	}
	g.check()
}

func sameJSON(t testing.TB, s string, want []string) bool {
	t.Helper()
	var got []string
	if err := json.Unmarshal([]byte(s), &got); err != nil {
		t.Fatalf("bad JSON from kazoo: %q: %v", s, err)
	}
	return reflect.DeepEqual(got, want)
}
