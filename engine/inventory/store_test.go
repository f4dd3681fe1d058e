package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// walk calls fn for every znode under p with its data size.
func walk(t *testing.T, conn *zkconn.Conn, p string, fn func(path string, size int)) {
	t.Helper()
	data, _, err := conn.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	fn(p, len(data))
	kids, _, err := conn.Children(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		walk(t, conn, p+"/"+k, fn)
	}
}

// TestLargeInventoryIsChunked stores 20,000 hosts with enough variables
// that the content needs several chunks and several transactions, and
// reads the same content back.
func TestLargeInventoryIsChunked(t *testing.T) {
	if testing.Short() {
		t.Skip("large inventory")
	}
	s := newTestStore(t, Config{Budget: 300 << 10}) // a small budget: several transactions
	ctx := ctxT(t)
	c := mustParse(t, generated(20000, 50))
	// Variables that do not compress well, so the content spans chunks.
	for i := range c.Hosts {
		c.Hosts[i].Variables = json.RawMessage(fmt.Sprintf(`{"serial":"%x"}`, sha256.Sum256([]byte(fmt.Sprint(i)))))
	}
	want, _ := json.Marshal(c)
	if _, _, err := s.Import(ctx, "big", c); err != nil {
		t.Fatal(err)
	}
	inv, got, err := s.Content(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got); string(b) != string(want) {
		t.Fatal("content read back differs from what was written")
	}
	if inv.Snapshot.Chunks < 3 || inv.Snapshot.Hosts != 20000 || inv.Snapshot.Enabled != 20000 || inv.Snapshot.Groups != 51 {
		t.Fatalf("snapshot %+v: want ≥ 3 chunks, 20000 hosts, 51 groups", inv.Snapshot)
	}
	nodes := 0
	walk(t, s.conn, s.conn.Path(configstore.Root), func(p string, size int) {
		nodes++
		if size > ChunkBytes {
			t.Errorf("%s holds %d bytes, over a chunk", p, size)
		}
	})
	if nodes < inv.Snapshot.Chunks+4 {
		t.Fatalf("only %d nodes under /config", nodes)
	}
}

// TestReadersNeverSeeAHalfWrittenInventory rewrites an inventory between
// two contents while readers read it: every read is one of the two.
func TestReadersNeverSeeAHalfWrittenInventory(t *testing.T) {
	s := newTestStore(t, Config{Budget: 200 << 10})
	ctx := ctxT(t)
	a, b := mustParse(t, generated(3000, 5)), mustParse(t, generated(3500, 3))
	for i := range b.Hosts {
		b.Hosts[i].Variables = json.RawMessage(fmt.Sprintf(`{"salt":"%x"}`, uint64(i)*0x9E3779B97F4A7C15))
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if _, _, err := s.Import(ctx, "flip", a); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				_, c, err := s.Content(ctx, "flip")
				if err != nil {
					errc <- err
					return
				}
				got, _ := json.Marshal(c)
				if string(got) != string(ja) && string(got) != string(jb) {
					errc <- fmt.Errorf("read a content that is neither version (%d hosts)", len(c.Hosts))
					return
				}
				reads.Add(1)
			}
		}()
	}
	for i := 0; i < 10; i++ {
		next := a
		if i%2 == 0 {
			next = b
		}
		cp := *next
		if _, err := s.Modify(ctx, "flip", func(c *Content) error { *c = cp; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Fatal("no read completed")
	}
	// Nothing is pinned: only the current generation is left.
	gens, err := s.generations(ctx, "flip")
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 1 {
		t.Fatalf("%d generations left, want 1", len(gens))
	}
}

// TestPinnedSnapshotOutlivesRewrites pins a generation for a live job:
// rewriting the inventory keeps it readable; once the job is no longer
// live, the next write removes it.
func TestPinnedSnapshotOutlivesRewrites(t *testing.T) {
	var live atomic.Bool
	live.Store(true)
	const uid = "0b9f1a4e-8c1d-4a7e-9d5c-2f3b4a5c6d7e"
	s := newTestStore(t, Config{Live: func(_ context.Context, u string) (bool, error) { return u == uid && live.Load(), nil }})
	ctx := ctxT(t)
	if _, _, err := s.Import(ctx, "pinned", mustParse(t, generated(100, 2))); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx, "pinned")
	if err != nil {
		t.Fatal(err)
	}
	pin, err := s.PinOp("pinned", snap.Generation.ID, uid)
	if err != nil {
		t.Fatal(err)
	}
	if err := configstore.Multi(ctx, s.conn, []interface{}{pin}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "pinned"); !errors.Is(err, ErrInUse) {
		t.Fatalf("deleting a pinned inventory: %v, want ErrInUse", err)
	}
	if _, _, err := s.Import(ctx, "pinned", mustParse(t, generated(50, 1))); err != nil {
		t.Fatal(err)
	}
	_, old, err := s.ReadGeneration(ctx, "pinned", snap.Generation.ID)
	if err != nil {
		t.Fatalf("pinned snapshot gone after a rewrite: %v", err)
	}
	if !reflect.DeepEqual(old, snap.Content) {
		t.Fatal("pinned snapshot changed")
	}
	live.Store(false)
	if _, _, err := s.Import(ctx, "pinned", mustParse(t, generated(60, 1))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadGeneration(ctx, "pinned", snap.Generation.ID); !errors.Is(err, configstore.ErrNotFound) {
		t.Fatalf("snapshot of an ended job still there: %v", err)
	}
	// A pin on a removed generation fails: the launcher takes a new snapshot.
	err = configstore.Multi(ctx, s.conn, []interface{}{pin})
	if !IsPinGone(err) {
		t.Fatalf("pinning a removed generation: %v, want ErrNoNode", err)
	}
	if err := s.Delete(ctx, "pinned"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := s.conn.Exists(s.dataPath("pinned")); ok {
		t.Fatal("data of a deleted inventory left behind")
	}
}

// TestBadObjectsAreReportedNotUsed writes garbage where an inventory's
// head and chunks are: reads fail with ErrCorrupt naming the path.
func TestBadObjectsAreReportedNotUsed(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	if _, _, err := s.Import(ctx, "good", mustParse(t, []byte(sample))); err != nil {
		t.Fatal(err)
	}
	inv, _, err := s.Get(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	set := func(p string, data []byte) {
		t.Helper()
		if err := s.conn.EnsurePath(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.conn.Set(p, data, -1); err != nil {
			t.Fatal(err)
		}
	}
	heads := s.heads
	for name, data := range map[string]string{
		"notjson":   `{"name": `,
		"unknown":   `{"name": "unknown", "kind": "static", "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z", "owner": "x"}`,
		"renamed":   `{"name": "other", "kind": "static", "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z"}`,
		"badkind":   `{"name": "badkind", "kind": "dynamic", "created": "2024-01-01T00:00:00Z", "updated": "2024-01-01T00:00:00Z"}`,
		"bad_name!": `{}`,
	} {
		p := heads.Path(name)
		if !strings.HasSuffix(name, "!") {
			set(p, []byte(data))
		} else if _, err := s.conn.Create(p, []byte(data), 0, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, name); !errors.Is(err, configstore.ErrCorrupt) && !errors.Is(err, configstore.ErrInvalid) {
			t.Errorf("%s: %v, want a bad-object error", name, err)
		}
	}
	list, bad, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "good" || len(bad) != 5 {
		t.Fatalf("list: %d good (want 1), %d bad (want 5): %v", len(list), len(bad), bad)
	}
	chunk := s.dataPath("good", inv.Snapshot.ID, "c-00000")
	set(chunk, []byte("not gzip"))
	if _, _, err := s.Content(ctx, "good"); !errors.Is(err, configstore.ErrCorrupt) {
		t.Fatalf("corrupt chunk: %v, want ErrCorrupt", err)
	}
	if _, err := s.conn.Set(s.dataPath("good", inv.Snapshot.ID), []byte(`{"inventory": "good"}`), -1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Content(ctx, "good"); !errors.Is(err, configstore.ErrCorrupt) {
		t.Fatalf("bad generation record: %v, want ErrCorrupt", err)
	}
}

func TestSmartInventory(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	if _, _, err := s.Import(ctx, "east", mustParse(t, []byte(`{
		"web": {"hosts": ["web1", "web2"]}, "db": {"hosts": ["db1"]}, "site": {"children": ["web"]},
		"_meta": {"hostvars": {"web1": {"env": "prod", "port": 22}, "web2": {"env": "dev", "port": "22"}, "db1": {"env": "prod"}}}
	}`))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Import(ctx, "west", mustParse(t, []byte(`{
		"web": {"hosts": ["web1", "web3"]}, "_meta": {"hostvars": {"web1": {"env": "west"}, "web3": {"env": "prod"}}}
	}`))); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		f    Filter
		want string
	}{
		"all":         {Filter{Sources: []string{"east", "west"}}, "db1 web1 web2 web3"},
		"first wins":  {Filter{Sources: []string{"west", "east"}, Variables: []VarMatch{{"env", "west"}}}, "web1"},
		"name":        {Filter{Sources: []string{"east", "west"}, Name: "web*"}, "web1 web2 web3"},
		"group":       {Filter{Sources: []string{"east"}, Group: "site"}, "web1 web2"},
		"variable":    {Filter{Sources: []string{"east", "west"}, Variables: []VarMatch{{"env", "prod"}}}, "db1 web1 web3"},
		"number":      {Filter{Sources: []string{"east"}, Variables: []VarMatch{{"port", "22"}}}, "web1 web2"},
		"every cond.": {Filter{Sources: []string{"east", "west"}, Name: "web*", Group: "web", Variables: []VarMatch{{"env", "prod"}}}, "web1 web3"},
	} {
		t.Run(name, func(t *testing.T) {
			inv := &Inventory{Name: "smart-" + strings.ReplaceAll(strings.TrimSuffix(name, "."), " ", "-"), Kind: Smart, Filter: &tc.f}
			if err := s.Create(ctx, inv, nil); err != nil {
				t.Fatal(err)
			}
			_, c, err := s.Content(ctx, inv.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(c.Select(nil), " "); got != tc.want {
				t.Fatalf("hosts %q, want %q", got, tc.want)
			}
		})
	}
	// A launch snapshot is stored as a generation of the smart inventory,
	// reused while the sources give the same hosts.
	s1, err := s.Snapshot(ctx, "smart-all")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := s.Snapshot(ctx, "smart-all")
	if err != nil {
		t.Fatal(err)
	}
	if s1.Generation == nil || s1.Generation.ID != s2.Generation.ID {
		t.Fatalf("unchanged sources gave two snapshots: %+v %+v", s1.Generation, s2.Generation)
	}
	if _, err := s.SetEnabled(ctx, "west", []string{"web3"}, false); err != nil {
		t.Fatal(err)
	}
	s3, err := s.Snapshot(ctx, "smart-all")
	if err != nil {
		t.Fatal(err)
	}
	if s3.Generation.ID == s1.Generation.ID || s3.Content.EnabledCount() != 3 {
		t.Fatalf("a changed source must give a new snapshot with 3 enabled hosts: %+v", s3.Generation)
	}
	// Bad filters.
	for name, f := range map[string]Filter{
		"no source":      {},
		"missing source": {Sources: []string{"nosuch"}},
		"smart source":   {Sources: []string{"smart-all"}},
		"bad pattern":    {Sources: []string{"east"}, Name: "web["},
		"bad group":      {Sources: []string{"east"}, Group: "a b"},
	} {
		err := s.Create(ctx, &Inventory{Name: "bad-" + strings.ReplaceAll(name, " ", "-"), Kind: Smart, Filter: &f}, nil)
		if !errors.Is(err, configstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Modify(ctx, "smart-all", func(*Content) error { return nil }); !errors.Is(err, configstore.ErrInvalid) {
		t.Errorf("modifying a smart inventory's hosts: %v, want ErrInvalid", err)
	}
}

func TestImportKeepsDisabledHostsAndRefusesUnknownOnes(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	inv, created, err := s.Import(ctx, "keep", mustParse(t, []byte(sample)))
	if err != nil || !created {
		t.Fatalf("first import: created=%v, %v", created, err)
	}
	first := inv.Snapshot.ID
	if _, err := s.SetEnabled(ctx, "keep", []string{"web1"}, false); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetEnabled(ctx, "keep", []string{"web2", "nosuch"}, false)
	if !errors.Is(err, configstore.ErrInvalid) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("disabling an unknown host: %v", err)
	}
	_, c, _ := s.Content(ctx, "keep")
	if !c.Hosts[c.HostIndex("web2")].Enabled {
		t.Fatal("a refused change was half applied")
	}
	inv, created, err = s.Import(ctx, "keep", mustParse(t, []byte(sample)))
	if err != nil || created {
		t.Fatalf("second import: created=%v, %v", created, err)
	}
	if inv.Snapshot.ID == first || inv.Snapshot.Enabled != inv.Snapshot.Hosts-1 {
		t.Fatalf("after re-import: %+v, want web1 still disabled", inv.Snapshot)
	}
	// Only the current generation is left.
	gens, _ := s.generations(ctx, "keep")
	if len(gens) != 1 || gens[0].id != inv.Snapshot.ID {
		t.Fatalf("generations left: %+v", gens)
	}
	// Creating an existing inventory is refused.
	if err := s.Create(ctx, &Inventory{Name: "keep", Kind: Static}, nil); !errors.Is(err, configstore.ErrExists) {
		t.Fatalf("create over an existing inventory: %v", err)
	}
	if err := s.Delete(ctx, "keep"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "keep"); !errors.Is(err, configstore.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if ok, _, err := s.conn.Exists(s.dataPath("keep")); ok || err != nil {
		t.Fatalf("data left after delete (%v)", err)
	}
}
