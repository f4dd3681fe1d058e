package inventory

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// An inventory's content is stored as immutable generations. A generation
// is the content encoded as JSON, compressed with gzip and cut into chunks
// of at most ChunkBytes, under
//
//	/config/inventory-data/<inventory>/<generation>          the Generation record
//	/config/inventory-data/<inventory>/<generation>/c-00000  chunk 0, 1, …
//	/config/inventory-data/<inventory>/<generation>/pins/<job uuid>
//
// A writer writes a whole new generation (in as many transactions as the
// byte budget needs; nobody reads it yet), then points the head at it with
// a compare-and-set: readers see the old content or the new one, never a
// mix. A generation that a live job pins (its snapshot) is kept; others are
// deleted once the head has moved past them.

const (
	// ChunkBytes bounds one chunk: three fit in one transaction.
	ChunkBytes = 256 << 10
	// maxChunks bounds the chunks of a generation (MaxContentBytes
	// compresses to far fewer).
	maxChunks = MaxContentBytes/ChunkBytes + 1
	dataDir   = "inventory-data"
	pinsDir   = "pins"
	chunkFmt  = "c-%05d"
)

var genIDRe = regexp.MustCompile(`^g-[0-9a-f]{16}$`)

// Generation describes one immutable snapshot of an inventory's content.
type Generation struct {
	// ID names the generation ("g-" and 16 hex digits).
	ID string `json:"id"`
	// Chunks is the number of chunks; Bytes their total size (compressed).
	Chunks int   `json:"chunks"`
	Bytes  int64 `json:"bytes"`
	// RawBytes is the size of the content's JSON; SHA256 its hash.
	RawBytes int64  `json:"raw-bytes"`
	SHA256   string `json:"sha256"`
	// Counts, for listings that do not read the content.
	Hosts   int       `json:"hosts"`
	Enabled int       `json:"enabled-hosts"`
	Groups  int       `json:"groups"`
	Written time.Time `json:"written"`
}

// Validate checks a generation record.
func (g *Generation) Validate() error {
	switch {
	case !genIDRe.MatchString(g.ID):
		return fmt.Errorf("%w: generation id %q", ErrInvalid, g.ID)
	case g.Chunks < 1 || g.Chunks > maxChunks:
		return fmt.Errorf("%w: generation %s has %d chunks", ErrInvalid, g.ID, g.Chunks)
	case g.Bytes <= int64(g.Chunks-1)*ChunkBytes || g.Bytes > int64(g.Chunks)*ChunkBytes:
		return fmt.Errorf("%w: generation %s: %d bytes do not make %d chunks", ErrInvalid, g.ID, g.Bytes, g.Chunks)
	case g.RawBytes < 2 || g.RawBytes > MaxContentBytes:
		return fmt.Errorf("%w: generation %s: content of %d bytes", ErrInvalid, g.ID, g.RawBytes)
	case len(g.SHA256) != 64:
		return fmt.Errorf("%w: generation %s: bad sha256", ErrInvalid, g.ID)
	case g.Hosts < 0 || g.Hosts > MaxHosts || g.Enabled < 0 || g.Enabled > g.Hosts || g.Groups < 0 || g.Groups > MaxGroups:
		return fmt.Errorf("%w: generation %s: bad counts", ErrInvalid, g.ID)
	}
	if _, err := hex.DecodeString(g.SHA256); err != nil {
		return fmt.Errorf("%w: generation %s: bad sha256", ErrInvalid, g.ID)
	}
	return nil
}

// genRecord is the data of a generation's znode.
type genRecord struct {
	Inventory string `json:"inventory"`
	Generation
}

func newGenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "g-" + hex.EncodeToString(b[:])
}

// encoded is content ready to be written.
type encoded struct {
	gen    Generation
	chunks [][]byte
}

// encode normalizes, validates and encodes c.
func encode(c *Content, now time.Time) (*encoded, error) {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(raw) > MaxContentBytes {
		return nil, fmt.Errorf("%w: the content takes %d bytes, over the %d-byte limit", ErrInvalid, len(raw), MaxContentBytes)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	e := &encoded{gen: Generation{
		ID: newGenID(), Bytes: int64(buf.Len()), RawBytes: int64(len(raw)), SHA256: hex.EncodeToString(sum[:]),
		Hosts: len(c.Hosts), Enabled: c.EnabledCount(), Groups: len(c.Groups), Written: now.UTC(),
	}}
	z := buf.Bytes()
	for len(z) > 0 {
		n := min(len(z), ChunkBytes)
		e.chunks = append(e.chunks, z[:n])
		z = z[n:]
	}
	e.gen.Chunks = len(e.chunks)
	return e, nil
}

// contentHash returns the hash a generation of c would have.
func contentHash(c *Content) (string, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

func (s *Store) dataPath(name string, p ...string) string {
	return s.conn.Path(append([]string{configstore.Root, dataDir, name}, p...)...)
}

// writeGeneration writes e as a new generation of the inventory name, in
// transactions within the byte budget. On failure it removes what it wrote.
func (s *Store) writeGeneration(ctx context.Context, name string, e *encoded) error {
	if err := s.conn.EnsurePath(ctx, s.dataPath(name)); err != nil {
		return fmt.Errorf("inventory %s: %w", name, err)
	}
	rec, err := json.Marshal(genRecord{Inventory: name, Generation: e.gen})
	if err != nil {
		return err
	}
	dir := s.dataPath(name, e.gen.ID)
	ops := []interface{}{
		&zk.CreateRequest{Path: dir, Data: rec, Acl: zkconn.ACL},
		&zk.CreateRequest{Path: dir + "/" + pinsDir, Acl: zkconn.ACL},
	}
	for i, c := range e.chunks {
		ops = append(ops, &zk.CreateRequest{Path: dir + "/" + fmt.Sprintf(chunkFmt, i), Data: c, Acl: zkconn.ACL})
	}
	batches, err := zkconn.Pack(ops, s.cfg.Budget)
	if err != nil {
		return err
	}
	for _, b := range batches {
		if err := configstore.Multi(ctx, s.conn, b); err != nil {
			s.dropGeneration(name, e.gen.ID)
			return fmt.Errorf("inventory %s: writing generation %s: %w", name, e.gen.ID, err)
		}
	}
	return nil
}

// dropGeneration removes a generation that was never made current, on a
// context of its own (the caller's may be what failed).
func (s *Store) dropGeneration(name, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.deleteGeneration(ctx, name, id); err != nil && !errors.Is(err, zk.ErrNoNode) {
		s.log.Warn("leftover generation not removed; the next write of the inventory removes it", zapInv(name), zapGen(id), errField(err))
	}
}

// errGenGone is wrapped when a generation disappears while it is read: its
// inventory moved on and nothing pinned it.
var errGenGone = errors.New("replaced, and pinned by no job")

// ReadGeneration reads generation id of the inventory name: its record and
// its content, verified (size, hash, strict decoding, validation).
func (s *Store) ReadGeneration(ctx context.Context, name, id string) (*Generation, *Content, error) {
	if !genIDRe.MatchString(id) {
		return nil, nil, fmt.Errorf("%w: %q is not a snapshot id", ErrInvalid, id)
	}
	dir := s.dataPath(name, id)
	var data []byte
	err := zkconn.Do(ctx, func() error {
		var err error
		data, _, err = s.conn.Get(dir)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil, fmt.Errorf("snapshot %s of inventory %s %w (%w)", id, name, ErrNotFound, errGenGone)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading inventory %s: %w", name, err)
	}
	var rec genRecord
	if err := configstore.DecodeStrict(data, &rec); err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	if err := rec.Validate(); err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	if rec.Inventory != name || rec.ID != id {
		return nil, nil, s.corrupt(dir, fmt.Errorf("it describes %s/%s", rec.Inventory, rec.ID))
	}
	chunks := make([][]byte, rec.Chunks)
	errs := make([]error, rec.Chunks)
	err = zkconn.Do(ctx, func() error {
		var wg sync.WaitGroup
		for i := range chunks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				chunks[i], _, errs[i] = s.conn.Get(dir + "/" + fmt.Sprintf(chunkFmt, i))
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if err != nil {
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil, fmt.Errorf("snapshot %s of inventory %s %w (%w)", id, name, ErrNotFound, errGenGone)
		}
		return nil, nil, fmt.Errorf("reading inventory %s: %w", name, err)
	}
	var total int64
	for i, c := range chunks {
		if len(c) == 0 || len(c) > ChunkBytes {
			return nil, nil, s.corrupt(dir, fmt.Errorf("chunk %d has %d bytes", i, len(c)))
		}
		total += int64(len(c))
	}
	if total != rec.Bytes {
		return nil, nil, s.corrupt(dir, fmt.Errorf("chunks hold %d bytes, the record says %d", total, rec.Bytes))
	}
	zr, err := gzip.NewReader(io.MultiReader(readers(chunks)...))
	if err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, rec.RawBytes+1))
	if err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	sum := sha256.Sum256(raw)
	if int64(len(raw)) != rec.RawBytes || hex.EncodeToString(sum[:]) != rec.SHA256 {
		return nil, nil, s.corrupt(dir, errors.New("the content does not match its size and hash"))
	}
	var c Content
	if err := configstore.DecodeStrict(raw, &c); err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, s.corrupt(dir, err)
	}
	return &rec.Generation, &c, nil
}

func readers(chunks [][]byte) []io.Reader {
	out := make([]io.Reader, len(chunks))
	for i, c := range chunks {
		out[i] = bytes.NewReader(c)
	}
	return out
}

func (s *Store) corrupt(where string, err error) error {
	err = fmt.Errorf("%w: %s: %v", configstore.ErrCorrupt, where, err)
	s.log.Warn("bad inventory data in ZooKeeper; not used", pathField(where), errField(err))
	return err
}

// generations lists the generations of the inventory name with the zxid
// that created each, oldest first.
func (s *Store) generations(ctx context.Context, name string) ([]genDir, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.dataPath(name))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []genDir
	for _, n := range names {
		if !genIDRe.MatchString(n) {
			s.log.Warn("unknown node among an inventory's generations; left alone", pathField(s.dataPath(name, n)))
			continue
		}
		var st *zk.Stat
		err := zkconn.Do(ctx, func() error {
			var err error
			_, st, err = s.conn.Exists(s.dataPath(name, n))
			return err
		})
		if err != nil {
			return nil, err
		}
		if st != nil && st.Czxid != 0 {
			out = append(out, genDir{id: n, czxid: st.Czxid})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].czxid < out[b].czxid })
	return out, nil
}

type genDir struct {
	id    string
	czxid int64
}

// deleteGeneration deletes a generation unless a job pins it: the pins
// directory goes first, in the first transaction, so a pin created
// meanwhile makes the whole deletion fail (ErrInUse) before any chunk is
// gone, and a launch that pins afterwards finds no pins directory and
// takes the inventory's current generation instead.
func (s *Store) deleteGeneration(ctx context.Context, name, id string) error {
	dir := s.dataPath(name, id)
	var kids []string
	err := zkconn.Do(ctx, func() error {
		var err error
		kids, _, err = s.conn.Children(dir)
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(kids)
	var ops []interface{}
	for _, k := range kids {
		if k == pinsDir {
			ops = append([]interface{}{&zk.DeleteRequest{Path: dir + "/" + k, Version: -1}}, ops...)
		} else {
			ops = append(ops, &zk.DeleteRequest{Path: dir + "/" + k, Version: -1})
		}
	}
	ops = append(ops, &zk.DeleteRequest{Path: dir, Version: -1})
	batches, err := zkconn.Pack(ops, s.cfg.Budget)
	if err != nil {
		return err
	}
	for i, b := range batches {
		err := configstore.Multi(ctx, s.conn, b)
		var oe *zkconn.OpError
		if i == 0 && errors.As(err, &oe) && errors.Is(oe.Err, zk.ErrNotEmpty) {
			return fmt.Errorf("%w: snapshot %s of inventory %s is pinned by a job", ErrInUse, id, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
