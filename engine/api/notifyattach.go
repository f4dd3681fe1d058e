package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
)

// Where notification templates are attached, test deliveries, and the
// notices the sender keeps (pending, and failed ones parked for a retry).
//
// Notification templates have no roles of their own, and jobengine has no
// organizations: AWX's rule (admin on the notification template's
// organization and on the object attached to) becomes system
// administrator, who alone creates and changes notification templates.
// Attaching one decides what runs, and where messages go, whenever a job
// of the object ends, so attach, detach, test and retry need a system
// administrator; system administrators and auditors read attachments and
// notices. Others get 403 on what they read (as on GET of a template) and
// 404 on what changes one template (as on its PUT and DELETE).

// NotificationAttachment is one event of one object a notification
// template is attached to.
type NotificationAttachment struct {
	Kind   notify.AttachKind `json:"kind"`
	Target string            `json:"target"`
	Event  jobs.NotifyEvent  `json:"event"`
}

// attachInput is the body of POST
// /notification-templates/{name}/attachments.
type attachInput struct {
	Kind   notify.AttachKind  `json:"kind"`
	Target string             `json:"target"`
	Events []jobs.NotifyEvent `json:"events"`
}

// testResult is the answer of POST /notification-templates/{name}/test:
// whether the receiver took the test notification, and its error when it
// did not.
type testResult struct {
	Name      string `json:"name"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

// retryInput is the body of POST /notifications/retry.
type retryInput struct {
	// IDs names the parked notices to send again; all when empty.
	IDs []string `json:"ids"`
}

// retryResult is the answer of POST /notifications/retry.
type retryResult struct {
	Retried int `json:"retried"`
}

func (s *Server) notificationAttachRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/notification-attachments", handle: s.listAttachments},
		{method: "GET", pattern: Prefix + "/notification-templates/{name}/attachments", handle: s.templateAttachments},
		{method: "POST", pattern: Prefix + "/notification-templates/{name}/attachments", handle: s.attachNotification},
		{method: "DELETE", pattern: Prefix + "/notification-templates/{name}/attachments/{kind}/{target}", handle: s.detachNotification},
		// A test delivery lasts up to the template's timeout (at most
		// notify.MaxTimeout), longer than the request timeout: the
		// handler sets its own bound.
		{method: "POST", pattern: Prefix + "/notification-templates/{name}/test", stream: true, handle: s.testNotification},
		{method: "GET", pattern: Prefix + "/notifications", handle: s.listNotices},
		{method: "POST", pattern: Prefix + "/notifications/retry", handle: s.retryNotices},
	}
}

// attachmentOrders are the orders of the lists of attachments: by kind
// and target (then event).
var attachmentOrders = []string{"object", "-object"}

// attachmentParams reads the list parameters of an attachment list with
// its filters.
func (rq *request) attachmentParams(filters ...string) (listParams, error) {
	if err := rq.query(append(slices.Clone(listParamNames), filters...)...); err != nil {
		return listParams{}, err
	}
	lp, err := rq.parseList(attachmentOrders...)
	if err != nil {
		return lp, err
	}
	if k := rq.param("kind"); k != "" {
		if _, err := notify.ParseAttachKind(k); err != nil {
			return lp, badField("kind", "kind=%q: want action, template, workflow or inventory", k)
		}
	}
	return lp, rq.parseCursor(&lp)
}

// listAttachments answers every attachment: each object with the
// templates attached to it per event.
func (s *Server) listAttachments(rq *request) error {
	lp, err := rq.attachmentParams("kind", "target", "notification")
	if err != nil {
		return err
	}
	if err := rq.readsConfig("notification attachments"); err != nil {
		return err
	}
	all, err := s.notify.Attachments(rq.ctx)
	if err != nil {
		return notifyError(err)
	}
	out := []notify.Attachment{}
	for _, a := range all {
		if k := rq.param("kind"); k != "" && string(a.Kind) != k {
			continue
		}
		if t := rq.param("target"); t != "" && a.Target != t {
			continue
		}
		if n := rq.param("notification"); n != "" && !attachedFor(a.Notifications, n) {
			continue
		}
		out = append(out, a)
	}
	return rq.reply(http.StatusOK, pageOf(out, func(a notify.Attachment) named {
		return named{Name: string(a.Kind) + "/" + a.Target}
	}, nameFilter{}, lp))
}

// attachedFor reports whether n names template name for any event.
func attachedFor(n jobs.Notifications, name string) bool {
	for _, ev := range jobs.NotifyEvents {
		if slices.Contains(n.For(ev), name) {
			return true
		}
	}
	return false
}

// visibleNotification reads the template of the path for a caller who
// may see it: 404 for one who may not, as for the template itself.
func (rq *request) visibleNotification() (*notify.Template, error) {
	name := rq.r.PathValue("name")
	if err := rq.readsConfig("notification templates"); err != nil {
		return nil, notFound("%v: %s", notify.ErrNotFound, name)
	}
	t, _, err := rq.s.notify.Get(rq.ctx, name)
	if err != nil {
		return nil, notifyError(err)
	}
	return t, nil
}

// changesNotification is visibleNotification for a change: a system
// administrator's, 403 for an auditor.
func (rq *request) changesNotification(doing string) (*notify.Template, error) {
	t, err := rq.visibleNotification()
	if err != nil {
		return nil, err
	}
	if !rq.p.IsAdmin() {
		return nil, forbidden("%s a notification template needs a system administrator", doing)
	}
	return t, nil
}

// templateAttachments answers where one template is attached: one item
// per object and event.
func (s *Server) templateAttachments(rq *request) error {
	lp, err := rq.attachmentParams("kind")
	if err != nil {
		return err
	}
	if err := rq.readsConfig("notification templates"); err != nil {
		return err
	}
	t, err := rq.visibleNotification()
	if err != nil {
		return err
	}
	all, err := s.notify.Attachments(rq.ctx)
	if err != nil {
		return notifyError(err)
	}
	out := []NotificationAttachment{}
	for _, a := range all {
		if k := rq.param("kind"); k != "" && string(a.Kind) != k {
			continue
		}
		for _, ev := range jobs.NotifyEvents {
			if slices.Contains(a.Notifications.For(ev), t.Name) {
				out = append(out, NotificationAttachment{Kind: a.Kind, Target: a.Target, Event: ev})
			}
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(a NotificationAttachment) named {
		return named{Name: string(a.Kind) + "/" + a.Target + "/" + string(a.Event)}
	}, nameFilter{}, lp))
}

// parseEvents checks events named in field: at least one, each known;
// repeats are dropped.
func parseEvents(field string, names []string) ([]jobs.NotifyEvent, error) {
	var out []jobs.NotifyEvent
	for _, n := range names {
		ev, err := jobs.ParseNotifyEvent(strings.TrimSpace(n))
		if err != nil {
			return nil, badField(field, "%s: %q is not an event: want started, success or failure", field, n)
		}
		if !slices.Contains(out, ev) {
			out = append(out, ev)
		}
	}
	if len(out) == 0 {
		return nil, badField(field, "%s: name at least one event: started, success or failure", field)
	}
	return out, nil
}

// checkTarget checks what a template is attached to.
func checkTarget(kind, target string) (notify.AttachKind, error) {
	k, err := notify.ParseAttachKind(kind)
	if err != nil {
		return "", badField("kind", "kind %q: want action, template, workflow or inventory", kind)
	}
	if !notify.ValidTarget(target) {
		return "", badField("target", "target %q: give the name of the %s, 1–64 characters without spaces or slashes", target, k)
	}
	return k, nil
}

// attachNotification attaches the template to an object for events, in
// one write, and answers what is attached to that object.
func (s *Server) attachNotification(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, err := rq.changesNotification("attaching")
	if err != nil {
		return err
	}
	var in attachInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	kind, err := checkTarget(string(in.Kind), in.Target)
	if err != nil {
		return err
	}
	names := make([]string, len(in.Events))
	for i, ev := range in.Events {
		names[i] = string(ev)
	}
	events, err := parseEvents("events", names)
	if err != nil {
		return err
	}
	if err := s.notify.AttachEvents(rq.ctx, kind, in.Target, t.Name, events...); err != nil {
		return notifyError(err)
	}
	n, err := s.notify.AttachedTo(rq.ctx, kind, in.Target)
	if err != nil {
		return notifyError(err)
	}
	return rq.reply(http.StatusOK, notify.Attachment{Kind: kind, Target: in.Target, Notifications: n})
}

// detachNotification detaches the template from an object for the
// events of ?events= (comma-separated; every event it is attached for
// when absent), in one write: when it is not attached for one of them,
// nothing changes (404).
func (s *Server) detachNotification(rq *request) error {
	if err := rq.query("events"); err != nil {
		return err
	}
	t, err := rq.changesNotification("detaching")
	if err != nil {
		return err
	}
	kind, err := checkTarget(rq.r.PathValue("kind"), rq.r.PathValue("target"))
	if err != nil {
		return err
	}
	target := rq.r.PathValue("target")
	var events []jobs.NotifyEvent
	if v, ok := rq.r.URL.Query()["events"]; ok {
		if events, err = parseEvents("events", strings.Split(v[0], ",")); err != nil {
			return err
		}
	} else {
		n, err := s.notify.AttachedTo(rq.ctx, kind, target)
		if err != nil {
			return notifyError(err)
		}
		for _, ev := range jobs.NotifyEvents {
			if slices.Contains(n.For(ev), t.Name) {
				events = append(events, ev)
			}
		}
		if len(events) == 0 {
			return notFound("%v: %s is not attached to %s %s", notify.ErrNotFound, t.Name, kind, target)
		}
	}
	if err := s.notify.DetachEvents(rq.ctx, kind, target, t.Name, events...); err != nil {
		return notifyError(err)
	}
	return rq.noContent()
}

// testNotification delivers a test notification with the template from
// this controller, now, and says whether the receiver took it. A
// delivery that fails is an answer (200, delivered false, with its
// error), not an error of the request.
func (s *Server) testNotification(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	t, err := rq.changesNotification("testing")
	if err != nil {
		return err
	}
	// The route has no request timeout: the delivery's own bound, and
	// the request timeout for the reads around it.
	limit := time.Duration(t.Timeout)
	if limit <= 0 {
		limit = notify.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(rq.ctx, limit+s.cfg.RequestTimeout)
	defer cancel()
	err = s.notify.Test(ctx, t.Name)
	switch {
	case err == nil:
		return rq.reply(http.StatusOK, testResult{Name: t.Name, Delivered: true})
	case errors.Is(err, notify.ErrDelivery):
		return rq.reply(http.StatusOK, testResult{Name: t.Name, Error: err.Error()})
	}
	return notifyError(err)
}

// listNotices answers the notices of ?state=: pending (waiting for
// delivery) or failed (parked after the sender gave up).
func (s *Server) listNotices(rq *request) error {
	if err := rq.query(append(slices.Clone(listParamNames), "state", "notification")...); err != nil {
		return err
	}
	lp, err := rq.parseList("id", "-id")
	if err != nil {
		return err
	}
	if err := rq.parseCursor(&lp); err != nil {
		return err
	}
	read := s.notify.Pending
	switch st := rq.param("state"); st {
	case "pending":
	case "failed":
		read = s.notify.Failed
	default:
		return badField("state", "state=%q: want pending (waiting for delivery) or failed (parked)", st)
	}
	if err := rq.readsConfig("notifications"); err != nil {
		return err
	}
	recs, err := read(rq.ctx)
	if err != nil {
		return notifyError(err)
	}
	out := []*notify.Record{}
	for _, r := range recs {
		if n := rq.param("notification"); n == "" || r.Notification == n {
			out = append(out, r)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(r *notify.Record) named { return named{Name: r.ID} }, nameFilter{}, lp))
}

// retryNotices sends parked notices back to the outbox: those named, or
// all. Every one named is checked first; when one is not a parked notice
// that can be delivered, none is moved.
func (s *Server) retryNotices(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("sending notifications again needs a system administrator")
	}
	var in retryInput
	if _, err := rq.decodeOptional(&in); err != nil {
		return err
	}
	for _, id := range in.IDs {
		if _, _, _, ok := jobs.ParseNoticeName(id); !ok {
			return badField("ids", "%q is not a notice id (see GET %s/notifications?state=failed)", id, Prefix)
		}
	}
	n, err := s.notify.Retry(rq.ctx, in.IDs...)
	if err != nil {
		return notifyError(err)
	}
	return rq.reply(http.StatusOK, retryResult{Retried: n})
}
