package remote

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/jobengine/jobengine/engine/ansible"
)

// Limits of a stream.
const (
	// MaxLine bounds one line of a stream.
	MaxLine = 16 << 20
	// MaxArchive bounds one archive of a stream (its zip size).
	MaxArchive = 4 << 30
	// excerptLen bounds the excerpt of a bad line in an error.
	excerptLen = 200
)

// ErrStream is wrapped by every error about a stream's content.
var ErrStream = errors.New("bad stream")

// ErrCut matches a stream that ended before its end marker: its worker
// died or its connection was cut, which says nothing against the job.
var ErrCut = errors.New("stream cut")

// StreamError says what was wrong with a stream, where, with an excerpt of
// the offending line.
type StreamError struct {
	Line    int    // 1-based line number, 0 when not about a line
	Reason  string // what was wrong
	Excerpt string // at most 200 bytes of the line
	// Cut marks a stream that ended early (it matches ErrCut).
	Cut bool
}

func (e *StreamError) Error() string {
	s := "bad stream"
	if e.Line > 0 {
		s += fmt.Sprintf(", line %d", e.Line)
	}
	s += ": " + e.Reason
	if e.Excerpt != "" {
		s += fmt.Sprintf(" (got %q)", e.Excerpt)
	}
	return s
}

// Unwrap makes a StreamError match ErrStream.
func (e *StreamError) Unwrap() error { return ErrStream }

// Is makes a cut stream's error match ErrCut.
func (e *StreamError) Is(target error) bool { return target == ErrCut && e.Cut }

// excerpt returns at most excerptLen bytes of b, cut on a rune boundary.
func excerpt(b []byte) string {
	if len(b) <= excerptLen {
		return string(b)
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "…"
}

// Kind is the kind of a stream message.
type Kind int

// Kinds of messages.
const (
	KindKwargs    Kind = iota + 1 // {"kwargs": {…}}: the run's arguments (transmit)
	KindZip                       // {"zipfile": N} and N bytes of archive
	KindStatus                    // {"status": …}
	KindEvent                     // a job event
	KindKeepalive                 // {"event": "keepalive"}
	KindEOF                       // {"eof": true}
)

// Statuses a worker reports, as ansible-runner names them.
const (
	StatusStarting   = "starting"
	StatusRunning    = "running"
	StatusSuccessful = "successful"
	StatusFailed     = "failed"
	StatusCanceled   = "canceled"
	StatusTimeout    = "timeout"
	StatusError      = "error"
)

// Final reports whether a status ends a run.
func Final(status string) bool {
	switch status {
	case StatusSuccessful, StatusFailed, StatusCanceled, StatusTimeout, StatusError:
		return true
	}
	return false
}

// Status is a status line. ansible-runner leaves the return code out of
// its final status; a jobengine worker puts it in (RC).
type Status struct {
	Status          string            `json:"status"`
	RunnerIdent     string            `json:"runner_ident,omitempty"`
	RC              *int              `json:"rc,omitempty"`
	JobExplanation  string            `json:"job_explanation,omitempty"`
	ResultTraceback string            `json:"result_traceback,omitempty"`
	Command         []string          `json:"command,omitempty"`
	Cwd             string            `json:"cwd,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
}

// Message is one message read from a stream.
type Message struct {
	Kind Kind
	// Line is the message's line as read.
	Line []byte
	// Kwargs of a KindKwargs message.
	Kwargs json.RawMessage
	// Status of a KindStatus message.
	Status Status
	// Event of a KindEvent message.
	Event ansible.Event
	// ZipSize of a KindZip message: the archive follows; read it with
	// Reader.Archive before the next message.
	ZipSize int64
}

// Reader reads a stream's messages.
type Reader struct {
	br      *bufio.Reader
	line    int
	pending int64 // bytes of archive not yet read
}

// NewReader returns a reader of r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 256<<10)}
}

// Next reads the next message. At the end of the input it returns io.EOF
// (the caller decides whether an end marker was due); a message that
// cannot be read is a *StreamError.
func (r *Reader) Next() (Message, error) {
	if r.pending > 0 {
		return Message{}, &StreamError{Reason: "an archive was not read before the next message"}
	}
	for {
		line, err := r.readLine()
		if len(bytes.TrimSpace(line)) == 0 {
			if err != nil {
				return Message{}, err
			}
			continue // blank lines carry nothing
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return Message{}, err
		}
		return r.parse(line)
	}
}

func (r *Reader) readLine() ([]byte, error) {
	r.line++
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLine {
			return nil, &StreamError{Line: r.line, Reason: fmt.Sprintf("line longer than %d MB", MaxLine>>20), Excerpt: excerpt(append(line, chunk...))}
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return line, fmt.Errorf("reading the stream: %w", err)
		}
		return line, err
	}
}

func (r *Reader) parse(line []byte) (Message, error) {
	m := Message{Line: bytes.TrimRight(line, "\r\n")}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(m.Line, &keys); err != nil || keys == nil {
		return m, &StreamError{Line: r.line, Reason: "not a JSON object", Excerpt: excerpt(m.Line)}
	}
	bad := func(reason string) (Message, error) {
		return m, &StreamError{Line: r.line, Reason: reason, Excerpt: excerpt(m.Line)}
	}
	switch {
	case keys["kwargs"] != nil:
		m.Kind, m.Kwargs = KindKwargs, keys["kwargs"]
	case keys["zipfile"] != nil:
		if err := json.Unmarshal(keys["zipfile"], &m.ZipSize); err != nil || m.ZipSize < 0 {
			return bad("\"zipfile\" must be the archive's size in bytes")
		}
		if m.ZipSize > MaxArchive {
			return bad(fmt.Sprintf("archive of %d bytes; at most %d", m.ZipSize, int64(MaxArchive)))
		}
		m.Kind = KindZip
		r.pending = m.ZipSize
	case keys["eof"] != nil:
		m.Kind = KindEOF
	case keys["status"] != nil:
		if err := json.Unmarshal(m.Line, &m.Status); err != nil || m.Status.Status == "" {
			return bad("a status line needs a \"status\" string")
		}
		m.Kind = KindStatus
	case string(keys["event"]) == `"keepalive"`:
		m.Kind = KindKeepalive
	case keys["event"] != nil:
		ev, err := ansible.DecodeEvent(m.Line)
		if err != nil {
			return bad(err.Error())
		}
		if ev.UUID == "" || ev.Counter <= 0 {
			return bad("an event needs a \"uuid\" and a positive \"counter\"")
		}
		m.Kind, m.Event = KindEvent, ev
	default:
		return bad("not a message of the stream (want kwargs, zipfile, status, an event or eof)")
	}
	return m, nil
}

// Archive copies the archive announced by the last KindZip message to w:
// the base64 that follows it (whitespace ignored), decoded.
func (r *Reader) Archive(w io.Writer) error {
	size := r.pending
	r.pending = 0
	encLen := base64.StdEncoding.EncodedLen(int(size))
	src := &noSpace{r: r.br, left: int64(encLen)}
	n, err := io.Copy(w, base64.NewDecoder(base64.StdEncoding, src))
	switch {
	case src.short:
		return &StreamError{Reason: fmt.Sprintf("the stream ended inside an archive (%d of %d bytes of base64)", int64(encLen)-src.left, encLen), Cut: true}
	case err != nil:
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return &StreamError{Reason: fmt.Sprintf("the archive is not valid base64 (at byte %d)", int64(ce))}
		}
		return fmt.Errorf("reading an archive: %w", err)
	case n != size:
		return &StreamError{Reason: fmt.Sprintf("the archive decodes to %d bytes, not the %d announced", n, size)}
	}
	return nil
}

// ArchiveToTemp reads the pending archive into a temporary file, returned
// open at its start; the caller closes and removes it.
func (r *Reader) ArchiveToTemp() (*os.File, error) {
	f, err := os.CreateTemp("", "jobengine-stream-*.zip")
	if err != nil {
		return nil, err
	}
	if err := r.Archive(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// noSpace reads up to left bytes that are not whitespace.
type noSpace struct {
	r     *bufio.Reader
	left  int64
	short bool
}

func (n *noSpace) Read(p []byte) (int, error) {
	if n.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > n.left {
		p = p[:n.left]
	}
	i := 0
	for i < len(p) {
		b, err := n.r.ReadByte()
		if err != nil {
			n.short = true
			if i > 0 {
				break
			}
			return 0, io.ErrUnexpectedEOF
		}
		switch b {
		case ' ', '\n', '\r', '\t':
			continue
		}
		p[i] = b
		i++
		if i >= len(p) || n.r.Buffered() == 0 {
			break
		}
	}
	n.left -= int64(i)
	return i, nil
}

// Writer writes a stream's messages. It is safe for concurrent use; each
// message is flushed when written, and the first write error is returned
// by every later write.
type Writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	err error
}

// NewWriter returns a writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{bw: bufio.NewWriterSize(w, 64<<10)} }

// Err returns the first write error.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) line(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.raw(data)
}

func (w *Writer) raw(data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	_, _ = w.bw.Write(data)
	_ = w.bw.WriteByte('\n')
	w.err = w.bw.Flush()
	return w.err
}

// Kwargs writes the run's arguments, the first line of a transmit stream.
func (w *Writer) Kwargs(kwargs any) error { return w.line(map[string]any{"kwargs": kwargs}) }

// Status writes a status line.
func (w *Writer) Status(s Status) error { return w.line(s) }

// Event writes an event.
func (w *Writer) Event(ev ansible.Event) error { return w.line(ev) }

// RawEvent writes an event line as it was read.
func (w *Writer) RawEvent(line []byte) error { return w.raw(line) }

// Keepalive writes a keepalive event.
func (w *Writer) Keepalive() error { return w.raw([]byte(`{"event": "keepalive"}`)) }

// EOF writes the end marker.
func (w *Writer) EOF() error { return w.raw([]byte(`{"eof": true}`)) }

// Archive writes a zip archive of size bytes read from r: {"zipfile": N}
// then its base64, with no newline after it (the next message starts right
// after the padding, as ansible-runner writes it).
func (w *Writer) Archive(r io.Reader, size int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	fmt.Fprintf(w.bw, "{\"zipfile\": %d}\n", size)
	enc := base64.NewEncoder(base64.StdEncoding, w.bw)
	n, err := io.Copy(enc, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("archive: %d of %d bytes", n, size)
	}
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if ferr := w.bw.Flush(); err == nil {
		err = ferr
	}
	w.err = err
	return err
}

// Dir writes an archive of dir (see WriteZip).
func (w *Writer) Dir(dir string) error {
	f, err := os.CreateTemp("", "jobengine-stream-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := WriteZip(f, dir); err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return w.Archive(f, size)
}
