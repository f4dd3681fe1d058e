package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
)

// decode reads the request body into v strictly: one JSON value, no
// unknown field. Its errors are 400s naming the field at fault.
func (rq *request) decode(v any) error {
	given, err := rq.decodeOptional(v)
	if err == nil && !given {
		return badField("", "the request needs a JSON body")
	}
	return err
}

// decodeOptional is decode for a body that may be empty; it reports
// whether there was one.
func (rq *request) decodeOptional(v any) (bool, error) {
	body, err := io.ReadAll(rq.r.Body)
	if err != nil {
		return false, err // *http.MaxBytesError: 413
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return false, nil
	}
	return true, decodeBytes(body, v)
}

// decodeBytes decodes body into v strictly.
func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badField("", "unexpected data after the JSON body")
	}
	return nil
}

// decodeError turns a JSON decoding error into a 400 that names the field.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return badField(te.Field, "%s: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return badField("", "the body is not valid JSON: %v (at byte %d)", err, se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badField(f, "unknown field %q", f)
	}
	return badField("", "the body is not valid JSON: %v", err)
}

// query checks that the query has only the allowed parameters, each once.
func (rq *request) query(allowed ...string) error {
	for k, vs := range rq.r.URL.Query() {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return badField(k, "unknown query parameter %q (this endpoint takes none)", k)
			}
			return badField(k, "unknown query parameter %q (this endpoint takes %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return badField(k, "query parameter %q is given %d times", k, len(vs))
		}
	}
	return nil
}

// param returns a query parameter.
func (rq *request) param(name string) string { return rq.r.URL.Query().Get(name) }

// boolParam parses a boolean query parameter (absent: false).
func (rq *request) boolParam(name string) (bool, error) {
	v := rq.param(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badField(name, "%s=%q: want true or false", name, v)
	}
	return b, nil
}

// name returns a path value that must be an object name.
func (rq *request) name(kind string) (string, error) {
	n := rq.r.PathValue("name")
	if err := configstore.ValidName(kind, n); err != nil {
		return "", &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("%s %s %v", kind, n, configstore.ErrNotFound)}
	}
	return n, nil
}

// reply writes v as JSON with status.
func (rq *request) reply(status int, v any) error {
	writeJSON(rq.w, status, v)
	return nil
}

// noContent answers 204.
func (rq *request) noContent() error {
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

func isNotFound(err error) bool {
	return errors.Is(err, configstore.ErrNotFound) || errors.Is(err, jobs.ErrNotFound)
}

// showOne answers the GET of one object: no query parameter, then what
// read finds (its error as it is: 404 for what the caller may not see),
// as view shows it.
func showOne[T, V any](rq *request, read func() (T, error), view func(T) V) error {
	if err := rq.query(); err != nil {
		return err
	}
	v, err := read()
	if err != nil {
		return err
	}
	return rq.reply(http.StatusOK, view(v))
}

// same shows an object as it is.
func same[T any](v T) T { return v }
