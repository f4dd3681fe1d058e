// Package configstore keeps the control plane's configuration objects in
// ZooKeeper under /config: one JSON document per object at
// /config/<kind>/<name>, written with compare-and-set and validated on
// every write and on every read. What is read from ZooKeeper may have been
// written by another version, by hand or by an attacker: an object that
// does not decode strictly, does not validate or is stored under another
// name is reported as ErrCorrupt and never acted on.
package configstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Errors of the configuration store. Messages read "inventory web does
// not exist", "invalid template: …".
var (
	// ErrNotFound: no object of that kind and name.
	ErrNotFound = errors.New("does not exist")
	// ErrExists: creating an object whose name is taken.
	ErrExists = errors.New("exists already")
	// ErrConflict: the object changed between read and write.
	ErrConflict = errors.New("changed concurrently (read it again and retry)")
	// ErrInvalid: an object or a name given to the store is not valid.
	// Packages make their own with Invalid.
	ErrInvalid = Invalid("object")
	// ErrCorrupt: an object read from ZooKeeper is not valid.
	ErrCorrupt = errors.New("bad object in ZooKeeper")
)

// invalidError is an ErrInvalid of one kind of object.
type invalidError struct{ what string }

func (e invalidError) Error() string { return "invalid " + e.what }

func (e invalidError) Is(target error) bool {
	_, ok := target.(invalidError)
	return ok
}

// Invalid returns a sentinel for bad input about what ("invalid
// inventory"); errors.Is matches it with ErrInvalid.
func Invalid(what string) error { return invalidError{what} }

// Root is the directory of every configuration object, under the
// connection's root prefix.
const Root = "config"

// Limits.
const (
	// MaxNameBytes bounds the name of an object.
	MaxNameBytes = 128
	// MaxObjectBytes bounds the encoded document of one object, well within
	// ZooKeeper's request limit together with the operations written with
	// it (a job's creation, for instance).
	MaxObjectBytes = 512 << 10
	// MaxDescription bounds free-text descriptions, in bytes.
	MaxDescription = 4096
)

// Object is a configuration object: it knows its name and validates itself.
type Object interface {
	// ObjectName is the name the object is stored under.
	ObjectName() string
	// Validate returns an error wrapping ErrInvalid naming what is wrong.
	Validate() error
}

// ValidName checks an object name: 1–128 bytes of letters, digits, '.', '_'
// and '-', starting with a letter or digit. Names are znode names and
// command-line arguments, so nothing else is allowed.
func ValidName(kind, name string) error {
	if name == "" || len(name) > MaxNameBytes {
		return fmt.Errorf("%w: %s name %q must be 1–%d characters", Invalid("name"), kind, name, MaxNameBytes)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("%w: %s name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", Invalid("name"), kind, name)
		}
	}
	return nil
}

// ValidDescription checks a free-text description.
func ValidDescription(d string) error {
	if len(d) > MaxDescription {
		return fmt.Errorf("%w: description of %d bytes is over %d", Invalid("description"), len(d), MaxDescription)
	}
	return nil
}

// Store holds the objects of one kind at /config/<kind>/<name>.
type Store struct {
	conn *zkconn.Conn
	kind string
	log  *zap.Logger
}

// New returns the store of objects of kind (a directory name such as
// "templates") on conn.
func New(conn *zkconn.Conn, kind string, log *zap.Logger) *Store {
	if log == nil {
		log = zap.NewNop()
	}
	return &Store{conn: conn, kind: kind, log: log}
}

// Kind returns the store's kind.
func (s *Store) Kind() string { return s.kind }

// Conn returns the store's connection.
func (s *Store) Conn() *zkconn.Conn { return s.conn }

// Dir returns the directory of the objects.
func (s *Store) Dir() string { return s.conn.Path(Root, s.kind) }

// Path returns the znode of the object called name.
func (s *Store) Path(name string) string { return s.conn.Path(Root, s.kind, name) }

// Encode validates v and returns its document, refusing one over
// MaxObjectBytes.
func Encode(v Object) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(data) > MaxObjectBytes {
		return nil, fmt.Errorf("%w: %s takes %d bytes, over the %d-byte limit of one object", ErrInvalid, v.ObjectName(), len(data), MaxObjectBytes)
	}
	return data, nil
}

// Decode reads a stored document into v strictly (no unknown field, no
// trailing data), validates it and checks that it is the object stored at
// where under name. Every failure wraps ErrCorrupt.
func Decode(data []byte, where, name string, v Object) error {
	if len(data) > MaxObjectBytes {
		return fmt.Errorf("%w: %s holds %d bytes, over the %d-byte limit", ErrCorrupt, where, len(data), MaxObjectBytes)
	}
	if err := DecodeStrict(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
	}
	if err := v.Validate(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, where, err)
	}
	if got := v.ObjectName(); got != name {
		return fmt.Errorf("%w: %s holds an object named %q", ErrCorrupt, where, got)
	}
	return nil
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields and
// anything after the value.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// Get reads the object called name into v and returns the znode version to
// compare-and-set with.
func (s *Store) Get(ctx context.Context, name string, v Object) (int32, error) {
	if err := ValidName(s.kind, name); err != nil {
		return 0, err
	}
	p := s.Path(name)
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return 0, fmt.Errorf("%s %s %w", s.singular(), name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s %s: %w", s.singular(), name, err)
	}
	if err := Decode(data, p, name, v); err != nil {
		s.log.Warn("bad object in ZooKeeper; not used", zap.String("path", p), zap.Error(err))
		return 0, err
	}
	return st.Version, nil
}

// CreateOp returns the operation that creates v.
func (s *Store) CreateOp(v Object) (*zk.CreateRequest, error) {
	if err := ValidName(s.kind, v.ObjectName()); err != nil {
		return nil, err
	}
	data, err := Encode(v)
	if err != nil {
		return nil, err
	}
	return &zk.CreateRequest{Path: s.Path(v.ObjectName()), Data: data, Acl: zkconn.ACL}, nil
}

// UpdateOp returns the operation that writes v over znode version ver.
func (s *Store) UpdateOp(v Object, ver int32) (*zk.SetDataRequest, error) {
	if err := ValidName(s.kind, v.ObjectName()); err != nil {
		return nil, err
	}
	data, err := Encode(v)
	if err != nil {
		return nil, err
	}
	return &zk.SetDataRequest{Path: s.Path(v.ObjectName()), Data: data, Version: ver}, nil
}

// Create writes a new object, with extra operations in the same
// transaction; ErrExists when the name is taken.
func (s *Store) Create(ctx context.Context, v Object, extra ...interface{}) error {
	op, err := s.CreateOp(v)
	if err != nil {
		return err
	}
	if err := s.conn.EnsurePath(ctx, s.Dir()); err != nil {
		return fmt.Errorf("creating %s: %w", s.Dir(), err)
	}
	err = s.Multi(ctx, append([]interface{}{op}, extra...))
	var oe *zkconn.OpError
	if errors.As(err, &oe) && oe.Index == 0 && errors.Is(oe.Err, zk.ErrNodeExists) {
		return fmt.Errorf("%s %s %w", s.singular(), v.ObjectName(), ErrExists)
	}
	if err != nil {
		return err
	}
	s.log.Info("object created", zap.String("kind", s.kind), zap.String("name", v.ObjectName()))
	return nil
}

// Update writes v over znode version ver (compare-and-set), with extra
// operations in the same transaction; ErrConflict when it changed since it
// was read, ErrNotFound when it is gone.
func (s *Store) Update(ctx context.Context, v Object, ver int32, extra ...interface{}) error {
	op, err := s.UpdateOp(v, ver)
	if err != nil {
		return err
	}
	return s.casErr(s.Multi(ctx, append([]interface{}{op}, extra...)), v.ObjectName())
}

// Delete removes the object if it is still at version ver (-1: any).
func (s *Store) Delete(ctx context.Context, name string, ver int32, extra ...interface{}) error {
	if err := ValidName(s.kind, name); err != nil {
		return err
	}
	op := &zk.DeleteRequest{Path: s.Path(name), Version: ver}
	if err := s.casErr(s.Multi(ctx, append([]interface{}{op}, extra...)), name); err != nil {
		return err
	}
	s.log.Info("object deleted", zap.String("kind", s.kind), zap.String("name", name))
	return nil
}

func (s *Store) casErr(err error, name string) error {
	var oe *zkconn.OpError
	if errors.As(err, &oe) && oe.Index == 0 {
		switch {
		case errors.Is(oe.Err, zk.ErrBadVersion):
			return fmt.Errorf("%s %s %w", s.singular(), name, ErrConflict)
		case errors.Is(oe.Err, zk.ErrNoNode):
			return fmt.Errorf("%s %s %w", s.singular(), name, ErrNotFound)
		}
	}
	return err
}

// Multi runs ops as one transaction after checking them against the byte
// budget. A failed operation is reported as a *zkconn.OpError.
func (s *Store) Multi(ctx context.Context, ops []interface{}) error {
	return Multi(ctx, s.conn, ops)
}

// Multi runs ops on conn as one transaction after checking them against
// the byte budget. A failed operation is reported as a *zkconn.OpError.
func Multi(ctx context.Context, conn *zkconn.Conn, ops []interface{}) error {
	if err := zkconn.CheckBudget(ops, 0); err != nil {
		return err
	}
	var res []zk.MultiResponse
	err := zkconn.Do(ctx, func() error {
		var err error
		res, err = conn.Multi(ops...)
		return err
	})
	if err == nil {
		return nil
	}
	if oe := zkconn.FailedOp(ops, res, err); oe != nil {
		return oe
	}
	return err
}

// Names lists the names of the stored objects, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.Dir())
		if errors.Is(err, zk.ErrNoNode) {
			names, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.kind, err)
	}
	sort.Strings(names)
	return names, nil
}

// singular names one object of the store's kind in messages.
func (s *Store) singular() string {
	switch {
	case strings.HasSuffix(s.kind, "ies"):
		return strings.TrimSuffix(s.kind, "ies") + "y"
	case strings.HasSuffix(s.kind, "s"):
		return strings.TrimSuffix(s.kind, "s")
	}
	return s.kind
}

// List reads every object of the store, sorted by name. Objects that fail
// validation are left out and returned as errors (wrapping ErrCorrupt), one
// per object, so a caller can report them; a missing object (deleted
// meanwhile) is skipped.
func List[T any, P interface {
	*T
	Object
}](ctx context.Context, s *Store) ([]P, []error, error) {
	names, err := s.Names(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]P, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v := P(new(T))
			if _, err := s.Get(ctx, n, v); err != nil {
				errs[i] = err
				return
			}
			out[i] = v
		}()
	}
	wg.Wait()
	var objs []P
	var bad []error
	for i := range names {
		switch {
		case out[i] != nil:
			objs = append(objs, out[i])
		case errors.Is(errs[i], ErrNotFound):
		case errors.Is(errs[i], ErrCorrupt), errors.Is(errs[i], ErrInvalid):
			bad = append(bad, errs[i])
		default:
			return nil, nil, errs[i]
		}
	}
	return objs, bad, nil
}
