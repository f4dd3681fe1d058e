package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Notifications are written in the transaction that causes them. A job
// names the notification templates it notifies per event (Notifications,
// resolved when it is created); the write that starts it or makes it final
// creates one notice per template in the same multi, under
// /notifications/outbox, so a notice exists exactly when its state change
// does. A leader-run sender (engine/notify) delivers notices and deletes
// them; nothing here waits for delivery. Observers (events.go) are told of
// their own process's writes at most once, which is why notifications are
// not observers.

// NotifyEvent is what a job notifies of.
type NotifyEvent string

// The events. AWX's "error" is Failure: FAILED and CANCELED jobs notify
// failure, as AWX notifies its canceled jobs.
const (
	NotifyStarted NotifyEvent = "started" // QUEUED → RUNNING, the first write of an attempt
	NotifySuccess NotifyEvent = "success" // → SUCCESS
	NotifyFailure NotifyEvent = "failure" // → FAILED or CANCELED
)

// NotifyEvents lists the events in lifecycle order.
var NotifyEvents = []NotifyEvent{NotifyStarted, NotifySuccess, NotifyFailure}

// ParseNotifyEvent parses an event name.
func ParseNotifyEvent(s string) (NotifyEvent, error) {
	for _, e := range NotifyEvents {
		if string(e) == strings.ToLower(strings.TrimSpace(s)) {
			return e, nil
		}
	}
	return "", fmt.Errorf("%w: unknown event %q (want started, success or failure)", ErrInvalid, s)
}

// Limits of notifications.
const (
	// MaxNotifications bounds the templates one event of a job notifies.
	MaxNotifications = 8
	// MaxNotificationName bounds a notification template's name.
	MaxNotificationName = 64
)

// notificationName is the rule for notification template names.
var notificationName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidNotificationName reports whether s can name a notification template.
func ValidNotificationName(s string) bool { return notificationName.MatchString(s) }

// Notifications names the notification templates a job notifies, per
// event.
type Notifications struct {
	Started []string `json:"started,omitempty"`
	Success []string `json:"success,omitempty"`
	Failure []string `json:"failure,omitempty"`
}

// For returns the templates notified of ev.
func (n *Notifications) For(ev NotifyEvent) []string {
	if n == nil {
		return nil
	}
	switch ev {
	case NotifyStarted:
		return n.Started
	case NotifySuccess:
		return n.Success
	case NotifyFailure:
		return n.Failure
	}
	return nil
}

// Empty reports whether no event notifies anything.
func (n *Notifications) Empty() bool {
	return n == nil || len(n.Started)+len(n.Success)+len(n.Failure) == 0
}

// Add adds names to the templates notified of ev, once each, keeping the
// order of first appearance.
func (n *Notifications) Add(ev NotifyEvent, names ...string) {
	var list *[]string
	switch ev {
	case NotifyStarted:
		list = &n.Started
	case NotifySuccess:
		list = &n.Success
	case NotifyFailure:
		list = &n.Failure
	default:
		return
	}
	for _, name := range names {
		if !slices.Contains(*list, name) {
			*list = append(*list, name)
		}
	}
}

// Merge adds every name of o to n (see Add).
func (n *Notifications) Merge(o Notifications) {
	for _, ev := range NotifyEvents {
		n.Add(ev, o.For(ev)...)
	}
}

// Validate checks the names and their number.
func (n *Notifications) Validate() error {
	for _, ev := range NotifyEvents {
		names := n.For(ev)
		if len(names) > MaxNotifications {
			return fmt.Errorf("%w: %d notifications for %s, at most %d", ErrInvalid, len(names), ev, MaxNotifications)
		}
		for i, name := range names {
			if !ValidNotificationName(name) {
				return fmt.Errorf("%w: notification %q: a name is 1–%d letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, name, MaxNotificationName)
			}
			if slices.Contains(names[:i], name) {
				return fmt.Errorf("%w: notification %q is named twice for %s", ErrInvalid, name, ev)
			}
		}
	}
	return nil
}

// NotificationResolver adds to a new job the notifications attached to what
// it is — its action today; its template and inventory next (engine/notify
// keeps the attachments). The store asks it for each job it creates
// (StoreConfig.Notifications).
type NotificationResolver interface {
	// NotificationsFor returns the notifications attached to n. An error
	// fails the creation: notifications are not dropped silently.
	NotificationsFor(ctx context.Context, n *NewJob) (Notifications, error)
}

// NoticeDir is the directory of notices waiting for delivery, under the
// connection's root.
const NoticeDir = "notifications/outbox"

// NoticePath returns the directory of notices waiting for delivery.
func (s *Store) NoticePath() string { return s.conn.Path(NoticeDir) }

// NoticeName returns the name of the notice of template notification for
// version version of job uuid: "<uuid>-<version %010d>-<notification>". It
// is unique per delivery and the same on every retry, so it serves as the
// delivery's idempotency key.
func NoticeName(uid string, version int64, notification string) string {
	return fmt.Sprintf("%s-%010d-%s", uid, version, notification)
}

// ParseNoticeName splits a notice name into job uuid, version and
// notification template.
func ParseNoticeName(name string) (uid string, version int64, notification string, ok bool) {
	const uuidLen = 36
	if len(name) < uuidLen+1+10+2 || name[uuidLen] != '-' || name[uuidLen+11] != '-' {
		return "", 0, "", false
	}
	if _, _, err := ParseID(name[:uuidLen]); err != nil {
		return "", 0, "", false
	}
	v, err := strconv.ParseInt(name[uuidLen+1:uuidLen+11], 10, 64)
	if err != nil || v < 0 {
		return "", 0, "", false
	}
	n := name[uuidLen+12:]
	if !ValidNotificationName(n) {
		return "", 0, "", false
	}
	return name[:uuidLen], v, n, true
}

// Notice is what a job's transaction records for one notification: the
// event, the template to notify, and the job as it was written.
type Notice struct {
	// ID is the notice's name (NoticeName): the delivery's idempotency key.
	ID string `json:"id"`
	// Event is what happened.
	Event NotifyEvent `json:"event"`
	// Notification names the template to deliver with.
	Notification string `json:"notification"`
	// Time is when the state was written.
	Time time.Time `json:"time"`
	// Job is the job as written, without its payload.
	Job NoticeJob `json:"job"`
}

// NoticeJob is the part of a job document a notification carries: what a
// receiver needs to say what happened, bounded in size. The payload is
// left out (its size is up to 256 KB, and it is the action's business).
type NoticeJob struct {
	ID                 string     `json:"id"`
	Action             string     `json:"action"`
	State              State      `json:"state"`
	StatusMessage      string     `json:"status-message,omitempty"`
	ReturnCode         *int       `json:"return-code,omitempty"`
	Target             string     `json:"target,omitempty"`
	Priority           int        `json:"priority"`
	Attempt            int        `json:"attempt"`
	Executor           string     `json:"executor,omitempty"`
	Created            time.Time  `json:"created"`
	Started            *time.Time `json:"started,omitempty"`
	TimeOfStatusChange time.Time  `json:"time-of-status-change"`
	Duration           *float64   `json:"duration,omitempty"`
	CreatedBy          string     `json:"created-by,omitempty"`
	Tick               string     `json:"tick,omitempty"`
	Tags               []string   `json:"tags,omitempty"`
	Version            int64      `json:"version"`
}

// maxNoticeTags bounds the tags a notice carries.
const maxNoticeTags = 16

func noticeJob(j *Job) NoticeJob {
	return NoticeJob{
		ID: j.ID, Action: j.Action, State: j.State, StatusMessage: j.StatusMessage, ReturnCode: j.ReturnCode,
		Target: j.Target(), Priority: j.Priority, Attempt: j.Attempt, Executor: j.Executor, Created: j.Created,
		Started: j.Started, TimeOfStatusChange: j.TimeOfStatusChange, Duration: j.Duration, CreatedBy: j.CreatedBy,
		Tick: j.Tick, Tags: j.Tags[:min(len(j.Tags), maxNoticeTags)], Version: j.Version,
	}
}

// noticeEvent returns the event of a write that takes a job from state
// from to j's state, if it notifies one. A new attempt after a lost
// executor (RUNNING → RUNNING) does not notify started again; a job given
// back by a stopping executor (RUNNING → QUEUED) does, when it starts
// again.
func noticeEvent(from State, j *Job) (NotifyEvent, bool) {
	switch {
	case j.State == from:
		return "", false
	case j.State == Running && from == Queued:
		return NotifyStarted, true
	case j.State == Running && from == Pending && j.IsContainer():
		// A container starts when its first slice or node does.
		return NotifyStarted, true
	case j.State == Success:
		return NotifySuccess, true
	case j.State == Failed || j.State == Canceled:
		return NotifyFailure, true
	}
	return "", false
}

// noticeOps returns the operations that record the notices of the write
// taking j (as written: its final Version and Updated) from state from:
// none when the write notifies nothing.
func (s *Store) noticeOps(j *Job, from State) ([]interface{}, error) {
	ev, ok := noticeEvent(from, j)
	if !ok {
		return nil, nil
	}
	names := j.Notifications.For(ev)
	if len(names) == 0 {
		return nil, nil
	}
	ops := make([]interface{}, 0, len(names))
	for _, name := range names {
		n := Notice{ID: NoticeName(j.UUID(), j.Version, name), Event: ev, Notification: name, Time: j.Updated, Job: noticeJob(j)}
		data, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		ops = append(ops, &zk.CreateRequest{Path: s.conn.Path(NoticeDir, n.ID), Data: data, Acl: zkconn.ACL})
	}
	return ops, nil
}

// isNoticeOp reports whether op records a notice.
func (s *Store) isNoticeOp(op interface{}) bool {
	c, ok := op.(*zk.CreateRequest)
	return ok && strings.HasPrefix(c.Path, s.NoticePath()+"/")
}

// ensureNoticeDir creates the notice directory, for a transaction that
// failed because it was missing (removed by hand).
func (s *Store) ensureNoticeDir() error {
	return zkconn.EnsureSync(s.conn.Conn, s.NoticePath())
}
