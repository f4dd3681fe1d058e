package faults

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/internal/check"
)

// E-mail in the run: the schedule's jobs also notify an e-mail template
// of their outcome, sent to an SMTP server the harness runs (Python's
// aiosmtpd), which its fault kills for a while. The same at-least-once
// rule holds: every notice arrives, duplicates (one delivery id, the
// X-Jobengine-Delivery header, seen twice) are counted and named.

// mailName names the run's e-mail notification template.
const mailName = "faults-mail"

// smtpPython is the interpreter with python3-aiosmtpd (Debian's).
const smtpPython = "/usr/bin/python3"

//go:embed testdata/smtpd.py
var smtpdScript []byte

// HasSMTP reports whether the SMTP receiver can run: python3 with aiosmtpd.
func HasSMTP() bool {
	return exec.Command(smtpPython, "-c", "import aiosmtpd").Run() == nil
}

// mailServer is the SMTP receiver: a process on a fixed port that can be
// killed and started again there. Each incarnation writes its messages to
// a directory of its own.
type mailServer struct {
	dir    string
	script string
	port   int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func startMailServer(ctx context.Context, dir string) (*mailServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &mailServer{dir: dir, script: filepath.Join(dir, "smtpd.py")}
	if err := os.WriteFile(m.script, smtpdScript, 0o644); err != nil {
		return nil, err
	}
	if err := m.up(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// up starts an incarnation on the port (a free one the first time),
// trying again until it listens.
func (m *mailServer) up(ctx context.Context) error {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	err := check.Until(uctx, 200*time.Millisecond, func() error {
		last = m.start(uctx)
		return last
	})
	if err != nil {
		return fmt.Errorf("faults: the SMTP receiver does not start (python3-aiosmtpd): %v", last)
	}
	return nil
}

func (m *mailServer) start(ctx context.Context) error {
	m.mu.Lock()
	m.runs++
	out := filepath.Join(m.dir, fmt.Sprintf("run-%d", m.runs))
	port := m.port
	m.mu.Unlock()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(m.dir, "smtpd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(smtpPython, m.script, "--dir", out, "--port", fmt.Sprint(port))
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var p int
			if _, err := fmt.Sscanf(sc.Text(), "ready %d", &p); err == nil {
				ready <- p
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case p := <-ready:
		m.mu.Lock()
		m.cmd, m.done, m.port = cmd, done, p
		m.mu.Unlock()
		return nil
	case <-done:
		return fmt.Errorf("smtpd.py exited before it listened on port %d (see %s)", port, logf.Name())
	case <-time.After(20 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-done
	return errors.New("smtpd.py did not say it listens")
}

// down kills the incarnation (SIGKILL: a crashed server; connections
// refused until it is up again).
func (m *mailServer) down() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

func (m *mailServer) close() { m.down() }

// snapshot reads the messages every incarnation accepted: each becomes a
// delivery (its X-Jobengine-Delivery, the notice's name, names the job),
// and a message that does not say which notice it is counts as refused.
func (m *mailServer) snapshot() ([]Delivery, int) {
	files, _ := filepath.Glob(filepath.Join(m.dir, "run-*", "*.eml"))
	var out []Delivery
	refused := 0
	for _, f := range files {
		d, err := readMail(f)
		if err != nil {
			refused++
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].At.Before(out[b].At) })
	return out, refused
}

// readMail reads one accepted message into a delivery.
func readMail(path string) (Delivery, error) {
	f, err := os.Open(path)
	if err != nil {
		return Delivery{}, err
	}
	defer f.Close()
	msg, err := mail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return Delivery{}, err
	}
	id := msg.Header.Get(notify.HeaderDelivery)
	uid, _, tmpl, ok := jobs.ParseNoticeName(id)
	if !ok || tmpl != mailName {
		return Delivery{}, fmt.Errorf("%s: delivery id %q is not a notice of %s", path, id, mailName)
	}
	if want := "<" + id + "@jobengine>"; msg.Header.Get("Message-ID") != want {
		return Delivery{}, fmt.Errorf("%s: Message-ID %q, want %q", path, msg.Header.Get("Message-ID"), want)
	}
	fi, err := f.Stat()
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: id, Job: "job/" + uid, Event: jobs.NotifyEvent(strings.TrimSpace(msg.Header.Get(notify.HeaderEvent))), At: fi.ModTime()}, nil
}

// setUpMail starts the SMTP receiver and stores the e-mail template.
func (h *Harness) setUpMail(ctx context.Context) (stop func(), err error) {
	h.mail, err = startMailServer(ctx, filepath.Join(h.OutDir, "smtp"))
	if err != nil {
		return nil, err
	}
	t := notify.Template{Name: mailName, Kind: notify.Email,
		Email: &notify.EmailSpec{Host: "127.0.0.1", Port: h.mail.port, StartTLS: notify.StartTLSOff,
			From: "jobengine@faults.invalid", To: []string{"ops@faults.invalid"}},
		Timeout: notify.Duration(2 * time.Second)}
	if err := notify.NewStore(h.conn).Create(ctx, t, nil); err != nil {
		h.mail.close()
		return nil, fmt.Errorf("faults: the e-mail template: %w", err)
	}
	return h.mail.close, nil
}

// smtpDown kills the SMTP receiver for the hold and starts it again on the
// same port; the note says how many notices waited and when an e-mail was
// accepted again.
func (h *Harness) smtpDown(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	return h.sinkDown(ctx, f, e, probe, h.mail, "SMTP receiver", "no e-mail within 30s", "e-mail accepted again")
}
