package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// Message is what every kind of template delivers: the webhook's body, the
// command's stdin, the data of the e-mail's text. Its ID is the delivery's
// idempotency key: the same on every retry of one notice, so a receiver
// that sees an ID twice has seen the same notification twice.
type Message struct {
	jobs.Notice
	// Test is true for `notification test`.
	Test bool `json:"test,omitempty"`
}

// Headers of a webhook request.
const (
	HeaderSignature = "X-Jobengine-Signature" // "sha256=" + hex HMAC-SHA256 of "<timestamp>.<body>"
	HeaderTimestamp = "X-Jobengine-Timestamp" // Unix seconds when the request was signed
	HeaderDelivery  = "X-Jobengine-Delivery"  // the message ID, the idempotency key
	HeaderEvent     = "X-Jobengine-Event"     // started, success or failure
)

// DefaultTolerance is how far from now Verify accepts a signature's
// timestamp: a request replayed later than that is refused.
const DefaultTolerance = 5 * time.Minute

// Sign returns the signature header value of body signed at timestamp ts
// (Unix seconds) with secret: "sha256=" and the hex HMAC-SHA256 of
// "<ts>.<body>". The timestamp is signed with the body, so a receiver that
// checks it against its clock refuses replays of old requests.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request as a receiver should: the signature
// header is the HMAC of the timestamp header and the body with the shared
// secret, compared in constant time, and the timestamp is within
// tolerance of now. Receivers should also remember the delivery IDs they
// have acted on: delivery is at least once.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrInvalid, HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now (a replay, or a clock off by more than %s)", ErrInvalid, time.Unix(ts, 0).UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(strings.TrimSpace(signature))) {
		return fmt.Errorf("%w: the signature does not match the body", ErrInvalid)
	}
	return nil
}

// encode returns the message as JSON.
func (m *Message) encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

// TestMessage returns the message `notification test` sends with template
// name: a made-up successful job, marked as a test.
func TestMessage(name string, now time.Time) *Message {
	now = now.UTC().Truncate(time.Second)
	uid := "00000000-0000-4000-8000-000000000000"
	zero := 0
	d := 0.0
	return &Message{
		Test: true,
		Notice: jobs.Notice{
			ID:           jobs.NoticeName(uid, 0, name),
			Event:        jobs.NotifySuccess,
			Notification: name,
			Time:         now,
			Job: jobs.NoticeJob{
				ID: "job/" + uid, Action: "notification_test", State: jobs.Success, StatusMessage: "a test of notification " + name,
				ReturnCode: &zero, Created: now, Started: &now, TimeOfStatusChange: now, Duration: &d, Attempt: 1,
				CreatedBy: "notification test", Version: 0,
			},
		},
	}
}

// summary is the one-line description of a message, for an e-mail
// subject.
func (m *Message) summary() string {
	what := map[jobs.NotifyEvent]string{jobs.NotifyStarted: "started", jobs.NotifySuccess: "succeeded", jobs.NotifyFailure: "failed"}[m.Event]
	if m.Job.State == jobs.Canceled {
		what = "was canceled"
	}
	s := fmt.Sprintf("[jobengine] %s %s: %s", m.Job.Action, what, m.Job.ID)
	if m.Test {
		s = "[test] " + s
	}
	return s
}

// text is the human-readable body of an e-mail.
func (m *Message) text() string {
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-15s %s\n", k+":", v)
		}
	}
	fmt.Fprintf(&b, "%s\n\n", strings.TrimPrefix(m.summary(), "[jobengine] "))
	j := m.Job
	line("Job", j.ID)
	line("Action", j.Action)
	line("State", string(j.State))
	line("Status", j.StatusMessage)
	if j.ReturnCode != nil {
		line("Return code", strconv.Itoa(*j.ReturnCode))
	}
	line("Target", j.Target)
	line("Executor", j.Executor)
	if j.Attempt > 0 {
		line("Attempt", strconv.Itoa(j.Attempt))
	}
	line("Created", j.Created.UTC().Format(time.RFC3339))
	if j.Started != nil {
		line("Started", j.Started.UTC().Format(time.RFC3339))
	}
	if j.State.Final() {
		line("Ended", j.TimeOfStatusChange.UTC().Format(time.RFC3339))
	}
	if j.Duration != nil {
		line("Duration", (time.Duration(*j.Duration * float64(time.Second))).Round(time.Millisecond).String())
	}
	line("Created by", j.CreatedBy)
	line("Tick", j.Tick)
	fmt.Fprintf(&b, "\nNotification %s, event %s, delivery %s.\n", m.Notification, m.Event, m.ID)
	return b.String()
}
