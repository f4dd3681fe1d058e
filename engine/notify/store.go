package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ZooKeeper layout of notifications, under the connection's root:
//
//	/config/notifications/<name>                       a template (JSON)
//	/config/notification-secrets/<name>                its secret (JSON), never shown
//	/config/notification-attachments/<kind>/<target>   the templates attached to an action, template, … (JSON, per event)
//	/notifications/outbox/<notice>                     a notice waiting for delivery (written with the job's state, see jobs.Notice)
//	/notifications/failed/<notice>                     a notice whose delivery kept failing, parked with its error
const (
	templatesDir   = "config/notifications"
	secretsDir     = "config/notification-secrets"
	attachmentsDir = "config/notification-attachments"
	failedDir      = "notifications/failed"
)

// Store keeps notification templates, their secrets and attachments, and
// reads the notices, in ZooKeeper. Everything it reads is validated.
type Store struct {
	conn *zkconn.Conn
	now  func() time.Time
}

// NewStore returns the store on conn.
func NewStore(conn *zkconn.Conn) *Store {
	return &Store{conn: conn, now: time.Now}
}

// Conn returns the store's connection.
func (s *Store) Conn() *zkconn.Conn { return s.conn }

func (s *Store) templatePath(name string) string { return s.conn.Path(templatesDir, name) }
func (s *Store) secretPath(name string) string   { return s.conn.Path(secretsDir, name) }

// OutboxPath returns the directory of notices waiting for delivery.
func (s *Store) OutboxPath() string { return s.conn.Path(jobs.NoticeDir) }

// FailedPath returns the directory of parked notices.
func (s *Store) FailedPath() string { return s.conn.Path(failedDir) }

// Ensure creates the store's directories (idempotent).
func (s *Store) Ensure(ctx context.Context) error {
	for _, p := range []string{templatesDir, secretsDir, attachmentsDir, jobs.NoticeDir, failedDir} {
		if err := s.conn.EnsurePath(ctx, s.conn.Path(p)); err != nil {
			return fmt.Errorf("notify: creating %s: %w", p, err)
		}
	}
	return nil
}

// secretDoc is the secret node's content.
type secretDoc struct {
	Secret string `json:"secret"`
}

// checkSecret validates a secret as given.
func checkSecret(secret []byte) error {
	switch {
	case len(secret) > MaxSecretBytes:
		return fmt.Errorf("%w: the secret is %d bytes, at most %d", ErrInvalid, len(secret), MaxSecretBytes)
	case strings.ContainsAny(string(secret), "\r\n\x00"):
		return fmt.Errorf("%w: the secret must be one line (a trailing newline of a file is removed)", ErrInvalid)
	}
	return nil
}

// Create stores a new template with its secret (nil for none). A webhook
// needs a secret: receivers check its signature.
func (s *Store) Create(ctx context.Context, t Template, secret []byte) error {
	return s.create(ctx, t, secret, true)
}

func (s *Store) create(ctx context.Context, t Template, secret []byte, again bool) error {
	secret = []byte(strings.TrimRight(string(secret), "\r\n"))
	if err := checkSecret(secret); err != nil {
		return err
	}
	t.HasSecret = len(secret) > 0
	now := s.now().UTC()
	t.Created, t.Updated = now, now
	data, err := encodeTemplate(&t)
	if err != nil {
		return err
	}
	if err := s.Ensure(ctx); err != nil {
		return err
	}
	ops := []interface{}{&zk.CreateRequest{Path: s.templatePath(t.Name), Data: data, Acl: zkconn.ACL}}
	// The secret node is written (or cleared) with the template: a template
	// never meets a stale secret of an earlier template of its name.
	sdata, _ := json.Marshal(secretDoc{Secret: string(secret)})
	ops = append(ops, &zk.CreateRequest{Path: s.secretPath(t.Name), Data: sdata, Acl: zkconn.ACL})
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		res, err = s.conn.Multi(ops...)
		return err
	})
	i, opErr := zkconn.MultiError(res, err)
	switch {
	case err == nil:
		return nil
	case i == 0 && errors.Is(opErr, zk.ErrNodeExists):
		return fmt.Errorf("%w: %s (delete it first, or pick another name)", ErrExists, t.Name)
	case i == 1 && errors.Is(opErr, zk.ErrNodeExists) && again:
		// A secret left without its template (by hand): it goes, and the
		// template is created once more.
		if derr := zkconn.Do(ctx, func() error { return s.conn.Delete(s.secretPath(t.Name), -1) }); derr != nil && !errors.Is(derr, zk.ErrNoNode) {
			return fmt.Errorf("notify: removing the stale secret of %s: %w", t.Name, derr)
		}
		return s.create(ctx, t, secret, false)
	}
	return fmt.Errorf("notify: creating %s: %w", t.Name, opErr)
}

// encodeTemplate validates a template about to be written (HasSecret
// set) and returns its node's data.
func encodeTemplate(t *Template) ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if t.Kind == Webhook && !t.HasSecret {
		return nil, fmt.Errorf("%w: notification template %q: a webhook needs a secret to sign its requests with", ErrInvalid, t.Name)
	}
	data, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTemplateBytes {
		return nil, fmt.Errorf("%w: notification template %q is %d bytes encoded, at most %d", ErrInvalid, t.Name, len(data), MaxTemplateBytes)
	}
	return data, nil
}

// Get reads a template and its znode version. A template that is not
// valid is an error wrapping ErrInvalid.
func (s *Store) Get(ctx context.Context, name string) (*Template, int32, error) {
	if !jobs.ValidNotificationName(name) {
		return nil, 0, fmt.Errorf("%w: %q is not a notification template name", ErrNotFound, name)
	}
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.templatePath(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("notify: reading %s: %w", name, err)
	}
	t, err := decodeTemplate(name, data)
	if err != nil {
		return nil, 0, err
	}
	return t, st.Version, nil
}

// decodeTemplate parses and validates a template read from ZooKeeper.
func decodeTemplate(name string, data []byte) (*Template, error) {
	if len(data) > MaxTemplateBytes {
		return nil, fmt.Errorf("%w: stored template %s is %d bytes, over %d", ErrInvalid, name, len(data), MaxTemplateBytes)
	}
	var t Template
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("%w: stored template %s is not valid JSON: %v", ErrInvalid, name, err)
	}
	if t.Name != name {
		return nil, fmt.Errorf("%w: stored template %s names itself %q", ErrInvalid, name, t.Name)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Problem is a stored object that could not be read as valid.
type Problem struct {
	Name string `json:"name"`
	Err  string `json:"error"`
}

// List reads every template, sorted by name, and the stored ones that are
// not valid.
func (s *Store) List(ctx context.Context) ([]*Template, []Problem, error) {
	names, err := s.children(ctx, s.conn.Path(templatesDir))
	if err != nil {
		return nil, nil, err
	}
	var out []*Template
	var bad []Problem
	for _, n := range names {
		t, _, err := s.Get(ctx, n)
		switch {
		case errors.Is(err, ErrNotFound) && jobs.ValidNotificationName(n):
			continue // deleted meanwhile
		case err != nil && (errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound)):
			bad = append(bad, Problem{Name: n, Err: err.Error()})
		case err != nil:
			return nil, nil, err
		default:
			out = append(out, t)
		}
	}
	return out, bad, nil
}

// Delete removes a template and its secret. A template still attached
// somewhere is refused with ErrAttached, naming where: detach it first.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, _, err := s.Get(ctx, name); err != nil && !errors.Is(err, ErrInvalid) {
		return err
	}
	atts, err := s.Attachments(ctx)
	if err != nil {
		return err
	}
	var where []string
	for _, a := range atts {
		for _, ev := range jobs.NotifyEvents {
			for _, n := range a.Notifications.For(ev) {
				if n == name {
					where = append(where, fmt.Sprintf("%s %s (%s)", a.Kind, a.Target, ev))
				}
			}
		}
	}
	if len(where) > 0 {
		return fmt.Errorf("%w: %s is attached to %s: detach it first", ErrAttached, name, strings.Join(where, ", "))
	}
	return zkconn.Do(ctx, func() error {
		_, err := s.conn.Multi(&zk.DeleteRequest{Path: s.templatePath(name), Version: -1})
		if err != nil {
			return zkconn.MultiErrorOnly(nil, err)
		}
		if err := s.conn.Delete(s.secretPath(name), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		return nil
	})
}

// secret returns a template's secret, "" when it has none.
func (s *Store) secret(ctx context.Context, name string) (string, error) {
	var data []byte
	err := zkconn.Do(ctx, func() error {
		var err error
		data, _, err = s.conn.Get(s.secretPath(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("notify: reading the secret of %s: %w", name, err)
	}
	var d secretDoc
	if err := json.Unmarshal(data, &d); err != nil || checkSecret([]byte(d.Secret)) != nil {
		return "", fmt.Errorf("%w: the stored secret of %s is not valid: set it again", ErrInvalid, name)
	}
	return d.Secret, nil
}

// children lists a directory, sorted; a missing directory is empty.
func (s *Store) children(ctx context.Context, dir string) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(dir)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("notify: listing %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// Update replaces a template with compare-and-set on version (from Get):
// ErrConflict when it changed meanwhile. secret, when not nil, replaces the
// secret (empty: none); nil keeps it. The name and creation time stay.
func (s *Store) Update(ctx context.Context, t Template, version int32, secret *[]byte) (*Template, error) {
	cur, _, err := s.Get(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	t.Created, t.Updated, t.HasSecret = cur.Created, s.now().UTC(), cur.HasSecret
	var sec []byte
	if secret != nil {
		sec = []byte(strings.TrimRight(string(*secret), "\r\n"))
		if err := checkSecret(sec); err != nil {
			return nil, err
		}
		t.HasSecret = len(sec) > 0
	}
	data, err := encodeTemplate(&t)
	if err != nil {
		return nil, err
	}
	ops := []interface{}{&zk.SetDataRequest{Path: s.templatePath(t.Name), Data: data, Version: version}}
	if secret != nil {
		sdata, _ := json.Marshal(secretDoc{Secret: string(sec)})
		var exists bool
		if err := zkconn.Do(ctx, func() error {
			var err error
			exists, _, err = s.conn.Exists(s.secretPath(t.Name))
			return err
		}); err != nil {
			return nil, fmt.Errorf("notify: updating %s: %w", t.Name, err)
		}
		if exists {
			ops = append(ops, &zk.SetDataRequest{Path: s.secretPath(t.Name), Data: sdata, Version: -1})
		} else {
			ops = append(ops, &zk.CreateRequest{Path: s.secretPath(t.Name), Data: sdata, Acl: zkconn.ACL})
		}
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		var err error
		res, err = s.conn.Multi(ops...)
		return err
	})
	if _, opErr := zkconn.MultiError(res, err); err != nil {
		switch {
		case errors.Is(opErr, zk.ErrBadVersion):
			return nil, fmt.Errorf("%w: %s changed meanwhile: read it again", ErrConflict, t.Name)
		case errors.Is(opErr, zk.ErrNoNode):
			return nil, fmt.Errorf("%w: %s", ErrNotFound, t.Name)
		}
		return nil, fmt.Errorf("notify: updating %s: %w", t.Name, opErr)
	}
	return &t, nil
}
