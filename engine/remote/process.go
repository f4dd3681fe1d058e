package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
)

// ErrIdle means a stream sent nothing for longer than its idle timeout.
var ErrIdle = errors.New("stream idle")

// Processor reads a worker's result stream and applies it: events are
// written as artifacts (artifacts[/ident]/job_events/<counter>-<uuid>.json)
// and printed, the artifacts archive is unpacked, and the callbacks see
// every status and event.
type Processor struct {
	// ArtifactDir receives the artifacts (required).
	ArtifactDir string
	// Output, when set, receives each event's text, as ansible-runner
	// prints it.
	Output io.Writer
	// OnStatus and OnEvent, when set, see every status and event in order.
	OnStatus func(Status)
	OnEvent  func(ansible.Event)
	// IdleTimeout, when positive, fails a stream that sends nothing (not
	// even a keepalive) for that long.
	IdleTimeout time.Duration
}

// Outcome is what a result stream said.
type Outcome struct {
	// Status is the last status (StatusError when the stream was bad).
	Status string
	// RC is the return code: the final status's, else the artifacts' rc
	// file (ansible-runner's workers send it there only); nil if neither.
	RC *int
	// Explanation says why a run failed or the stream was bad.
	Explanation string
	// Ident is the runner_ident of the statuses.
	Ident string
	// Hosts is the host summary of the recap event, if any.
	Hosts *action.HostSummary
	// Artifacts is what set_stats recorded for the run, if anything.
	Artifacts json.RawMessage
	// Events counts the events.
	Events int
}

// ReturnCode returns RC, or 0 for a successful run and 1 otherwise.
func (o Outcome) ReturnCode() int {
	if o.RC != nil {
		return *o.RC
	}
	if o.Status == StatusSuccessful {
		return 0
	}
	return 1
}

type readResult struct {
	m   Message
	zip *os.File
	err error
}

// Run reads the stream until its end marker. A bad stream — a line that is
// not a message, an archive that does not unpack, an end before the end
// marker, nothing for IdleTimeout — ends it with an error (a
// *StreamError or ErrIdle) and an outcome of status "error" whose
// explanation says what was wrong; so does ctx ending. On return the
// caller closes in, which ends the reading goroutine.
func (p *Processor) Run(ctx context.Context, in io.Reader) (Outcome, error) {
	out := Outcome{}
	if err := os.MkdirAll(filepath.Join(p.ArtifactDir, "job_events"), 0o700); err != nil {
		return out, err
	}
	msgs := make(chan readResult)
	next := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		r := NewReader(in)
		for {
			m, err := r.Next()
			var zip *os.File
			if err == nil && m.Kind == KindZip {
				zip, err = r.ArchiveToTemp()
			}
			select {
			case msgs <- readResult{m, zip, err}:
			case <-stop:
				if zip != nil {
					zip.Close()
					os.Remove(zip.Name())
				}
				return
			}
			if err != nil {
				return
			}
			select {
			case <-next:
			case <-stop:
				return
			}
		}
	}()
	fail := func(err error) (Outcome, error) {
		out.Status, out.Explanation = StatusError, err.Error()
		st := Status{Status: StatusError, RunnerIdent: out.Ident, JobExplanation: out.Explanation}
		if p.OnStatus != nil {
			p.OnStatus(st)
		}
		_ = os.WriteFile(filepath.Join(p.ArtifactDir, "status"), []byte(StatusError), 0o600)
		_ = os.WriteFile(filepath.Join(p.ArtifactDir, "job_explanation"), []byte(out.Explanation), 0o600)
		return out, err
	}
	var idle <-chan time.Time
	var timer *time.Timer
	if p.IdleTimeout > 0 {
		timer = time.NewTimer(p.IdleTimeout)
		defer timer.Stop()
		idle = timer.C
	}
	lines := 0
	for {
		var rr readResult
		select {
		case rr = <-msgs:
		case <-idle:
			return fail(fmt.Errorf("%w: nothing received for %s (no event, status or keepalive); the worker or its connection is stuck", ErrIdle, p.IdleTimeout))
		case <-ctx.Done():
			return fail(context.Cause(ctx))
		}
		if timer != nil {
			timer.Reset(p.IdleTimeout)
		}
		if errors.Is(rr.err, io.EOF) {
			return fail(&StreamError{Reason: fmt.Sprintf("the stream ended before its end marker ({\"eof\": true}) after %d messages: the worker died or its connection was cut", lines), Cut: true})
		}
		if rr.err != nil {
			return fail(rr.err)
		}
		lines++
		m := rr.m
		switch m.Kind {
		case KindStatus:
			out.Status = m.Status.Status
			if m.Status.RunnerIdent != "" {
				out.Ident = m.Status.RunnerIdent
			}
			if m.Status.RC != nil {
				rc := *m.Status.RC
				out.RC = &rc
			}
			if m.Status.JobExplanation != "" {
				out.Explanation = m.Status.JobExplanation
			}
			if p.OnStatus != nil {
				p.OnStatus(m.Status)
			}
		case KindEvent:
			out.Events++
			ev := m.Event
			name := filepath.Join(p.ArtifactDir, "job_events", fmt.Sprintf("%d-%s.json", ev.Counter, safeName(ev.UUID)))
			_ = os.WriteFile(name, m.Line, 0o600)
			if ev.Event == ansible.EventStats {
				if recap, err := ev.Recap(); err == nil {
					out.Hosts = action.SummarizeHosts(recap)
				}
				out.Artifacts = ev.Artifacts()
			}
			if p.Output != nil && ev.Stdout != "" {
				fmt.Fprintln(p.Output, ev.Stdout)
			}
			if p.OnEvent != nil {
				p.OnEvent(ev)
			}
		case KindZip:
			err := ExtractZip(rr.zip, m.ZipSize, p.ArtifactDir)
			rr.zip.Close()
			os.Remove(rr.zip.Name())
			if err != nil {
				return fail(err)
			}
			if out.RC == nil {
				if b, err := os.ReadFile(filepath.Join(p.ArtifactDir, "rc")); err == nil {
					if rc, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
						out.RC = &rc
					}
				}
			}
		case KindEOF:
			if out.Status == "" {
				return fail(&StreamError{Reason: "the stream ended without a status"})
			}
			return out, nil
		case KindKeepalive:
		case KindKwargs:
			return fail(&StreamError{Reason: "a kwargs line in a result stream: this is a transmit stream; give it to a worker", Excerpt: excerpt(m.Line)})
		}
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
			return fail(context.Cause(ctx))
		}
	}
}

// safeName keeps an event's uuid from naming a path.
func safeName(s string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(s)
}
