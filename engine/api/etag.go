package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/schedules"
)

// Optimistic concurrency: the GET of an object that PUT or PATCH change
// answers its version in ZooKeeper as a strong ETag ("7"), and so do
// their answers. A PUT or PATCH with If-Match is applied only to that
// version: otherwise 412, and nothing is written. Without If-Match a
// write applies to whatever the object is when it is read, as before.

// etag is the entity tag of version ver of an object.
func etag(ver int32) string { return `"` + strconv.FormatInt(int64(ver), 10) + `"` }

// setETag sends the version of the object answered.
func (rq *request) setETag(ver int32) { rq.w.Header().Set("ETag", etag(ver)) }

// written sends the version a compare-and-set over ver wrote: every
// object with an ETag is one znode, set once per write.
func (rq *request) written(ver int32) { rq.setETag(ver + 1) }

// ifMatch checks the request's If-Match against version ver of the
// object named kind name: 412 when it names another version.
func (rq *request) ifMatch(kind, name string, ver int32) error {
	h := rq.r.Header.Values("If-Match")
	if len(h) == 0 {
		return nil
	}
	want := etag(ver)
	for _, v := range h {
		for _, tag := range strings.Split(v, ",") {
			// Weak tags never match: If-Match compares strongly.
			if tag = strings.TrimSpace(tag); tag == "*" || tag == want {
				return nil
			}
		}
	}
	return stale(kind, name, strings.Join(h, ", "))
}

// stale is the 412 about an object changed since the client read it.
func stale(kind, name, tags string) *Error {
	return errorf(http.StatusPreconditionFailed,
		"%s %s changed since it was read (If-Match %s is not its version): read it again (GET, whose ETag is its version) and apply the change to what it is now",
		kind, name, tags)
}

// conflicted turns the compare-and-set failure of a conditional write into
// its 412: the object changed between its read and the write.
func (rq *request) conflicted(err error, kind, name string) error {
	if err == nil || len(rq.r.Header.Values("If-Match")) == 0 {
		return err
	}
	for _, c := range []error{configstore.ErrConflict, schedules.ErrConflict, credential.ErrConflict, notify.ErrConflict} {
		if errors.Is(err, c) {
			return stale(kind, name, strings.Join(rq.r.Header.Values("If-Match"), ", "))
		}
	}
	return err
}

// showVersioned answers the GET of one object with its version as ETag.
func showVersioned[T, V any](rq *request, read func() (T, int32, error), view func(T) V) error {
	if err := rq.query(); err != nil {
		return err
	}
	v, ver, err := read()
	if err != nil {
		return err
	}
	rq.setETag(ver)
	return rq.reply(http.StatusOK, view(v))
}
