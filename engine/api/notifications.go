package api

import (
	"errors"
	"net/http"

	"github.com/jobengine/jobengine/engine/notify"
)

// Notification templates (engine/notify): a webhook, an e-mail or a
// command run on the host that sends notifications. They have no roles of
// their own: system administrators and auditors see them, system
// administrators create, change and delete them (a command template runs
// what it names). The secret (a webhook's signing key, an SMTP password)
// is write-only: it is given at creation or in a change and never shown,
// only has-secret.

func (s *Server) notificationRoutes() []route {
	routes := []route{
		{method: "GET", pattern: Prefix + "/notification-templates", handle: s.listNotifications},
		{method: "POST", pattern: Prefix + "/notification-templates", handle: s.createNotification},
		{method: "GET", pattern: Prefix + "/notification-templates/{name}", handle: s.showNotification},
		{method: "PUT", pattern: Prefix + "/notification-templates/{name}", handle: s.replaceNotification},
		{method: "PATCH", pattern: Prefix + "/notification-templates/{name}", handle: s.patchNotification},
		{method: "DELETE", pattern: Prefix + "/notification-templates/{name}", handle: s.deleteNotification},
	}
	return append(routes, s.notificationAttachRoutes()...)
}

func notifyError(err error) error {
	switch {
	case errors.Is(err, notify.ErrInvalid):
		return badField("", "%v", err)
	case errors.Is(err, notify.ErrNotFound):
		return notFound("%v", err)
	case errors.Is(err, notify.ErrExists), errors.Is(err, notify.ErrConflict), errors.Is(err, notify.ErrAttached):
		return errorf(http.StatusConflict, "%v", err)
	}
	return err
}

// readsConfig refuses callers who may not see the cluster-wide objects
// without roles of their own (notification templates, credentials).
func (rq *request) readsConfig(what string) error {
	if !rq.p.ReadsAll() {
		return forbidden("%s are shown to system administrators and auditors only", what)
	}
	return nil
}

func (s *Server) listNotifications(rq *request) error {
	lp, f, err := rq.namedListParams("kind")
	if err != nil {
		return err
	}
	if err := rq.readsConfig("notification templates"); err != nil {
		return err
	}
	all, _, err := s.notify.List(rq.ctx)
	if err != nil {
		return notifyError(err)
	}
	out := []*notify.Template{}
	for _, t := range all {
		if k := rq.param("kind"); k == "" || string(t.Kind) == k {
			out = append(out, t)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(t *notify.Template) named {
		return named{Name: t.Name, Description: t.Description, Created: t.Created, Updated: t.Updated}
	}, f, lp))
}

func (s *Server) showNotification(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if err := rq.readsConfig("notification templates"); err != nil {
		return err
	}
	t, ver, err := s.notify.Get(rq.ctx, rq.r.PathValue("name"))
	if err != nil {
		return notifyError(err)
	}
	rq.setETag(ver)
	return rq.reply(http.StatusOK, t)
}

// notificationInput is the body of POST /notification-templates: a
// template and its secret.
type notificationInput struct {
	notify.Template
	// Secret is write-only.
	Secret string `json:"secret"`
}

func (s *Server) createNotification(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a notification template needs a system administrator")
	}
	var in notificationInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if !in.Created.IsZero() || in.HasSecret {
		return badField("", "created and has-secret are set by the server; give the secret as \"secret\"")
	}
	if err := s.notify.Create(rq.ctx, in.Template, []byte(in.Secret)); err != nil {
		return notifyError(err)
	}
	t, _, err := s.notify.Get(rq.ctx, in.Name)
	if err != nil {
		return notifyError(err)
	}
	rq.w.Header().Set("Location", Prefix+"/notification-templates/"+t.Name)
	return rq.reply(http.StatusCreated, t)
}

func (s *Server) deleteNotification(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		if err := rq.readsConfig("notification templates"); err != nil {
			return notFound("%v: %s", notify.ErrNotFound, rq.r.PathValue("name"))
		}
		return forbidden("deleting a notification template needs a system administrator")
	}
	if err := s.notify.Delete(rq.ctx, rq.r.PathValue("name")); err != nil {
		return notifyError(err)
	}
	return rq.noContent()
}

// notificationUpdate is the body of PUT and PATCH
// /notification-templates/{name}: the template, and its secret when it
// changes (absent: kept; "": none).
type notificationUpdate struct {
	notify.Template
	Secret *string `json:"secret"`
}

func (s *Server) replaceNotification(rq *request) error { return s.writeNotification(rq, false) }
func (s *Server) patchNotification(rq *request) error   { return s.writeNotification(rq, true) }

// writeNotification replaces a notification template (PUT: fields not
// given are cleared) or changes the fields given (PATCH), with
// compare-and-set on the version read.
func (s *Server) writeNotification(rq *request, patch bool) error {
	if err := rq.query(); err != nil {
		return err
	}
	name := rq.r.PathValue("name")
	if err := rq.readsConfig("notification templates"); err != nil {
		return notFound("%v: %s", notify.ErrNotFound, name)
	}
	cur, ver, err := s.notify.Get(rq.ctx, name)
	if err != nil {
		return notifyError(err)
	}
	if !rq.p.IsAdmin() {
		return forbidden("changing a notification template needs a system administrator")
	}
	if err := rq.ifMatch("notification template", name, ver); err != nil {
		return err
	}
	var in notificationUpdate
	if patch {
		in.Template = *cur
	}
	base := in.Template
	if err := rq.decode(&in); err != nil {
		return err
	}
	if !in.Created.Equal(base.Created) || !in.Updated.Equal(base.Updated) || in.HasSecret != base.HasSecret {
		return badField("", "created, updated and has-secret are set by the server; give the secret as \"secret\"")
	}
	if in.Name == "" {
		in.Name = cur.Name
	}
	if in.Name != cur.Name {
		return badField("name", "the name of a notification template cannot change (create another one)")
	}
	var secret *[]byte
	if in.Secret != nil {
		b := []byte(*in.Secret)
		secret = &b
	}
	t, err := s.notify.Update(rq.ctx, in.Template, ver, secret)
	if err != nil {
		return notifyError(rq.conflicted(err, "notification template", name))
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, t)
}
