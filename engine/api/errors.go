package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Error is the body of every error answer: what was wrong and, for bad
// input, the field at fault.
type Error struct {
	// Message says what was wrong and, where it can, what to do.
	Message string `json:"error"`
	// Field names the request field (body field or query parameter) at
	// fault, when one is.
	Field string `json:"field,omitempty"`
	// Status is the HTTP status (not in the body).
	Status int `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// errorf returns an *Error with a status.
func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// badField returns a 400 about one field.
func badField(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Errors with a fixed meaning.
var (
	errUnauthenticated = &Error{Status: http.StatusUnauthorized, Message: "authentication required: send a bearer token (Authorization: Bearer jet_…), HTTP basic credentials, or log in at /api/v1/login"}
	errBadCredentials  = &Error{Status: http.StatusUnauthorized, Message: "bad credentials (unknown, wrong, expired or revoked)"}
	errCSRF            = &Error{Status: http.StatusForbidden, Message: "a request authenticated by the session cookie must send the session's CSRF token in the X-CSRF-Token header"}
)

// forbidden is a 403: the object is visible, the action is not allowed.
func forbidden(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, format, args...)
}

// notFound is a 404; objects a user may not see are answered the same way
// as objects that do not exist, so that their existence does not leak.
func notFound(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, format, args...)
}

// toError turns an error of the engine into an answer.
func toError(err error) *Error {
	var e *Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mbe):
		return errorf(http.StatusRequestEntityTooLarge, "the request body is over the %d-byte limit of this endpoint", mbe.Limit)
	case errors.Is(err, access.ErrBadCredentials):
		return errBadCredentials
	case errors.Is(err, configstore.ErrCorrupt):
		return errorf(http.StatusInternalServerError, "%v (an operator must fix or delete it)", err)
	case errors.Is(err, configstore.ErrInvalid), errors.Is(err, jobs.ErrInvalid), errors.Is(err, history.ErrQuery):
		return errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, configstore.ErrNotFound), errors.Is(err, jobs.ErrNotFound):
		return errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, configstore.ErrExists), errors.Is(err, configstore.ErrConflict), errors.Is(err, jobs.ErrConflict),
		errors.Is(err, jobs.ErrFinal), errors.Is(err, jobs.ErrNotFinal), errors.Is(err, jobs.ErrDuplicate),
		errors.Is(err, inventory.ErrInUse), errors.Is(err, project.ErrInUse), errors.Is(err, template.ErrCannotRelaunch), errors.Is(err, jobs.ErrIllegalState),
		errors.Is(err, template.ErrCannotRetry):
		return errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, jobs.ErrBacklogFull):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, zkconn.ErrUnavailable), zkconn.Transient(err), errors.Is(err, index.ErrUnavailable), errors.Is(err, history.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, "%v (try again)", err)
	case errors.Is(err, context.Canceled):
		return errorf(499, "the request was canceled")
	}
	return errorf(http.StatusInternalServerError, "%v", err)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError answers an error, logging server-side failures once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	if e.Status >= 500 {
		s.log.Warn("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", e.Status), zap.Error(err))
	}
	writeJSON(w, e.Status, e)
}
