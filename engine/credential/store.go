package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// Dir is the ZooKeeper directory of credentials, under the root prefix.
const Dir = "/config/credentials"

// maxNode bounds a credential's znode.
const maxNode = 2*MaxSecretBytes + 4096

// stored is a credential's znode: its fields in clear, its secrets sealed.
type stored struct {
	Credential
	Sealed sealed `json:"sealed"`
}

// Store keeps credentials in ZooKeeper. A store without a key can list,
// show and delete credentials but neither create nor open them.
type Store struct {
	conn *zkconn.Conn
	key  *Key
	now  func() time.Time
}

// NewStore returns a store on conn; key may be nil.
func NewStore(conn *zkconn.Conn, key *Key) *Store {
	return &Store{conn: conn, key: key, now: time.Now}
}

func (s *Store) path(name string) string { return s.conn.Path(Dir, name) }

func (s *Store) needKey(what string) error {
	if s.key == nil {
		return fmt.Errorf("%w: %s needs the credential key (--credential-key-file or JOBENGINE_CREDENTIAL_KEY_FILE)", ErrKey, what)
	}
	return nil
}

// Create validates c, seals its secrets and stores it; a credential of the
// same name must not exist.
func (s *Store) Create(ctx context.Context, c *Credential) error {
	if err := s.needKey("creating a credential"); err != nil {
		return err
	}
	c.Created = s.now().UTC().Truncate(time.Millisecond)
	data, err := s.encode(c)
	if err != nil {
		return err
	}
	err = zkconn.Do(ctx, func() error {
		_, err := s.conn.Create(s.path(c.Name), data, 0, zkconn.ACL)
		if errors.Is(err, zk.ErrNoNode) {
			if err := zkconn.EnsureSync(s.conn.Conn, s.conn.Path(Dir)); err != nil {
				return err
			}
			_, err = s.conn.Create(s.path(c.Name), data, 0, zkconn.ACL)
		}
		return err
	})
	if errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("%w: %s (delete it first to replace it)", ErrExists, c.Name)
	}
	return err
}

// encode validates c, seals its secrets and returns its znode's data
// (with SecretFields set from the secrets).
func (s *Store) encode(c *Credential) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	plain, err := json.Marshal(&c.Secrets)
	if err != nil {
		return nil, err
	}
	if len(plain) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: %s: secrets of %d bytes; at most %d", ErrInvalid, c.Name, len(plain), MaxSecretBytes)
	}
	c.SecretFields = c.Secrets.Fields()
	st := stored{Credential: *c}
	st.Sealed, err = s.key.seal(plain, c.Name, c.Kind)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// Update changes a credential with compare-and-set: fn receives it with
// its secrets opened and changes it in place (not its name). The secrets
// are sealed again, so the key is needed. ErrConflict when it changed
// since it was read.
func (s *Store) Update(ctx context.Context, name string, fn func(c *Credential) error) (*Credential, error) {
	c, _, err := s.UpdateVersion(ctx, name, -1, fn)
	return c, err
}

// UpdateVersion is Update of version ver of the credential (-1: the
// version it reads); it returns the version written.
func (s *Store) UpdateVersion(ctx context.Context, name string, ver int32, fn func(c *Credential) error) (*Credential, int32, error) {
	if err := s.needKey("changing a credential"); err != nil {
		return nil, 0, err
	}
	st, read, err := s.readVersion(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if ver < 0 {
		ver = read
	} else if ver != read {
		return nil, 0, fmt.Errorf("%w: %s", ErrConflict, name)
	}
	c, err := s.open(st)
	if err != nil {
		return nil, 0, err
	}
	if err := fn(&c); err != nil {
		return nil, 0, err
	}
	if c.Name != name {
		return nil, 0, fmt.Errorf("%w: the name of credential %s cannot change (create another one)", ErrInvalid, name)
	}
	c.Created, c.Updated = st.Created, s.now().UTC().Truncate(time.Millisecond)
	data, err := s.encode(&c)
	if err != nil {
		return nil, 0, err
	}
	var stat *zk.Stat
	err = zkconn.Do(ctx, func() error {
		var err error
		stat, err = s.conn.Set(s.path(name), data, ver)
		return err
	})
	switch {
	case errors.Is(err, zk.ErrBadVersion):
		return nil, 0, fmt.Errorf("%w: %s", ErrConflict, name)
	case errors.Is(err, zk.ErrNoNode):
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	case err != nil:
		return nil, 0, err
	}
	c.Secrets = Secrets{}
	return &c, stat.Version, nil
}

// read reads and validates a credential's znode.
func (s *Store) read(ctx context.Context, name string) (*stored, error) {
	st, _, err := s.readVersion(ctx, name)
	return st, err
}

// readVersion is read, with the znode's version.
func (s *Store) readVersion(ctx context.Context, name string) (*stored, int32, error) {
	if !ValidName(name) {
		return nil, 0, fmt.Errorf("%w: %q is not a credential name", ErrInvalid, name)
	}
	var data []byte
	var stat *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, stat, err = s.conn.Get(s.path(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading credential %s: %w", name, err)
	}
	st, err := decodeStored(name, data)
	if err != nil {
		return nil, 0, err
	}
	return st, stat.Version, nil
}

// decodeStored validates what ZooKeeper holds: it may have been written by
// another version or by hand.
func decodeStored(name string, data []byte) (*stored, error) {
	if len(data) > maxNode {
		return nil, fmt.Errorf("%w: %s: node of %d bytes", ErrInvalid, name, len(data))
	}
	var st stored
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %s: stored data is not a credential: %v", ErrInvalid, name, err)
	}
	if st.Name != name {
		return nil, fmt.Errorf("%w: node %s holds credential %q", ErrInvalid, name, st.Name)
	}
	switch st.Kind {
	case Machine, Vault, Secret:
	default:
		return nil, fmt.Errorf("%w: %s: unknown kind %q", ErrInvalid, name, st.Kind)
	}
	if len(st.Sealed.Data) == 0 {
		return nil, fmt.Errorf("%w: %s: no sealed secrets", ErrInvalid, name)
	}
	return &st, nil
}

// Get returns a credential without its secrets.
func (s *Store) Get(ctx context.Context, name string) (*Credential, error) {
	c, _, err := s.GetVersion(ctx, name)
	return c, err
}

// GetVersion is Get with the version of the credential (for UpdateVersion).
func (s *Store) GetVersion(ctx context.Context, name string) (*Credential, int32, error) {
	st, ver, err := s.readVersion(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	c := st.Credential
	return &c, ver, nil
}

// Open returns a credential with its secrets decrypted.
func (s *Store) Open(ctx context.Context, name string) (*Credential, error) {
	if err := s.needKey("opening credential " + name); err != nil {
		return nil, err
	}
	st, err := s.read(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := s.open(st)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// open decrypts a stored credential's secrets (the key is needed).
func (s *Store) open(st *stored) (Credential, error) {
	plain, err := s.key.open(st.Sealed, st.Name, st.Kind)
	if err != nil {
		return Credential{}, err
	}
	c := st.Credential
	if err := json.Unmarshal(plain, &c.Secrets); err != nil {
		return Credential{}, fmt.Errorf("%w: %s: decrypted secrets do not decode", ErrInvalid, st.Name)
	}
	return c, nil
}

// Resolve opens the named credentials, for one run.
func (s *Store) Resolve(ctx context.Context, names []string) ([]*Credential, error) {
	out := make([]*Credential, 0, len(names))
	for _, n := range names {
		c, err := s.Open(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// List returns every credential without secrets, sorted by name. A node
// that is not a valid credential is skipped and reported in bad.
func (s *Store) List(ctx context.Context) (out []*Credential, bad []error, err error) {
	var names []string
	err = zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.conn.Path(Dir))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing credentials: %w", err)
	}
	sort.Strings(names)
	for _, n := range names {
		c, err := s.Get(ctx, n)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			bad = append(bad, err)
		default:
			out = append(out, c)
		}
	}
	return out, bad, nil
}

// Delete removes a credential.
func (s *Store) Delete(ctx context.Context, name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q is not a credential name", ErrInvalid, name)
	}
	err := zkconn.Do(ctx, func() error { return s.conn.Delete(s.path(name), -1) })
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return err
}
