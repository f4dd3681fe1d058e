package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// LogLine is one line of a job's log as kept in ZooKeeper.
type LogLine struct {
	// ID is the line's identity, unique within its job: the store gives
	// one to every line it records, and the job-events index keeps it with
	// the line, so a reader joining the tail kept here with the history
	// shows each line once whatever time the history gives it. Lines
	// written before lines had one have none.
	ID      string    `json:"id,omitempty"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	// Fields are the line's structured fields (a plugin's
	// job.Log.Info("greeting", "name", "Alice")), apart from the message;
	// action.RenderFields shows them to people.
	Fields []action.Field `json:"fields,omitempty"`
}

// NewLineID returns a new identity for a line of job uid's log
// (LogLine.ID), for a writer that tells the job-events index of the line
// itself rather than through the store's observers.
func NewLineID(uid string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return uid + "-line-" + hex.EncodeToString(b)
}

// LogEntry is what an action reported for a job's log: a line, or a
// structured event (Event set) whose message, when it has one, is also a
// line of the log (Line).
type LogEntry struct {
	Line  LogLine
	Event *action.Event
}

// MaxLogBytes bounds the tail of a job's log kept in ZooKeeper; the full
// log goes to the job-events index when Elasticsearch is configured.
const MaxLogBytes = 64 << 10

// AppendLog appends lines to the tail of a job's log kept in ZooKeeper,
// dropping the oldest lines beyond MaxLogBytes, and hands each line to the
// store's observers — whether or not the tail could be written: the tail
// is a bounded convenience, the observers (the job-events index) keep the
// whole log.
func (s *Store) AppendLog(ctx context.Context, uid string, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	lines = slices.Clone(lines) // the ids are the store's, not the caller's
	obs := s.observers()
	for i := range lines {
		if lines[i].ID == "" {
			lines[i].ID = NewLineID(uid)
		}
		obs.logged("job/"+uid, lines[i])
	}
	return s.appendTail(ctx, uid, lines)
}

// AppendEntries is AppendLog for lines and structured events of attempt
// of a job, in the order the action reported them: the observers are told
// of each (see ActionEventObserver), and the lines and the events' messages
// go to the log's tail.
func (s *Store) AppendEntries(ctx context.Context, uid string, attempt int, entries []LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	obs := s.observers()
	lines := make([]LogLine, 0, len(entries))
	for _, e := range entries {
		if e.Line.ID == "" {
			e.Line.ID = NewLineID(uid)
		}
		obs.recorded("job/"+uid, attempt, e)
		if e.Event == nil || e.Line.Message != "" {
			lines = append(lines, e.Line)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return s.appendTail(ctx, uid, lines)
}

// appendTail writes lines to the tail of a job's log kept in ZooKeeper.
func (s *Store) appendTail(ctx context.Context, uid string, lines []LogLine) error {
	p := s.logPath(uid)
	return zkconn.Do(ctx, func() error {
		for attempt := 0; attempt < 5; attempt++ {
			data, st, err := s.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				buf := encodeLines(nil, lines)
				if err := zkconn.EnsureSync(s.conn.Conn, path.Dir(p)); err != nil {
					return err
				}
				_, err = s.conn.Create(p, buf, 0, zkconn.ACL)
				if errors.Is(err, zk.ErrNodeExists) {
					continue
				}
				return err
			}
			if err != nil {
				return err
			}
			buf := encodeLines(data, lines)
			_, err = s.conn.Set(p, buf, st.Version)
			if errors.Is(err, zk.ErrBadVersion) {
				continue
			}
			return err
		}
		return ErrConflict
	})
}

func encodeLines(old []byte, lines []LogLine) []byte {
	buf := bytes.NewBuffer(old)
	for _, l := range lines {
		b, _ := json.Marshal(l)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	out := buf.Bytes()
	for len(out) > MaxLogBytes {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			return nil
		}
		out = out[i+1:]
	}
	return out
}

// Logs returns the tail of a job's log kept in ZooKeeper.
func (s *Store) Logs(ctx context.Context, uid string) ([]LogLine, error) {
	var data []byte
	err := zkconn.Do(ctx, func() error {
		var err error
		data, _, err = s.conn.Get(s.logPath(uid))
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []LogLine
	for _, l := range bytes.Split(data, []byte("\n")) {
		var line LogLine
		if len(l) > 0 && json.Unmarshal(l, &line) == nil {
			out = append(out, line)
		}
	}
	return out, nil
}
