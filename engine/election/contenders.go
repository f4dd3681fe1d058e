package election

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// lockMarker separates a contender's random prefix from the sequence number
// ZooKeeper appends, exactly as in kazoo's Lock recipe.
const lockMarker = "__lock__"

// contenderRE is kazoo's contender pattern for a plain Lock (the recipe
// behind kazoo's Election): the marker followed by the 10-digit sequence
// (a wrapped, negative counter keeps its sign) at the end of the name.
// kazoo's Lock counts only "__lock__" nodes; "__rlock__" nodes belong to its
// ReadLock and only its WriteLock waits for them, so they are ignored here
// too, as are names that match nothing.
var contenderRE = regexp.MustCompile(`(?:` + lockMarker + `)(-?\d{10})$`)

// newPrefix returns a contender's node name before the sequence number:
// kazoo's uuid4().hex followed by the marker. The random part lets a
// contender find a node whose create succeeded although the reply was lost.
func newPrefix() string {
	return strings.ReplaceAll(uuid.NewString(), "-", "") + lockMarker
}

// sortContenders returns the contender nodes among children in kazoo's
// order: by the sequence text after the marker, compared as strings (as
// Python compares the regex groups), lowest first. The first one leads.
func sortContenders(children []string) []string {
	type entry struct{ name, seq string }
	var es []entry
	for _, c := range children {
		if m := contenderRE.FindStringSubmatch(c); m != nil {
			es = append(es, entry{c, m[1]})
		}
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].seq != es[j].seq {
			return es[i].seq < es[j].seq
		}
		return es[i].name < es[j].name // never equal under one parent; keeps the order total
	})
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.name
	}
	return out
}

// Contender is one node of an election, as listed by Contenders.
type Contender struct {
	// Node is the node's name under the election's path.
	Node string
	// Identifier is the node's data: the contender's name.
	Identifier string
	// Session is the id of the ZooKeeper session that owns the node.
	Session int64
	// Created is when the node was created (server time).
	Created time.Time
}

// Contenders lists the election's contenders, the leader first, in the order
// kazoo's Election.contenders() reports them. An election nobody has joined
// yet has no contenders (and no error).
func (e *Election) Contenders(ctx context.Context) ([]Contender, error) {
	if err := e.valid(); err != nil {
		return nil, err
	}
	var children []string
	err := zkconn.Do(ctx, func() error {
		var err error
		children, _, err = e.conn.Children(e.dir)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("election: listing %s: %w", e.dir, err)
	}
	var out []Contender
	for _, name := range sortContenders(children) {
		var (
			data []byte
			st   *zk.Stat
		)
		err := zkconn.Do(ctx, func() error {
			var err error
			data, st, err = e.conn.Get(path.Join(e.dir, name))
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue // left between the listing and the read
		}
		if err != nil {
			return nil, fmt.Errorf("election: reading %s: %w", path.Join(e.dir, name), err)
		}
		out = append(out, Contender{
			Node:       name,
			Identifier: string(data),
			Session:    st.EphemeralOwner,
			Created:    time.UnixMilli(st.Ctime),
		})
	}
	return out, nil
}

// Leader returns the identifier of the current leader, or ErrNoLeader when
// nobody contends. The answer can be stale the moment it is returned; it is
// meant for display, never to decide who may act.
func (e *Election) Leader(ctx context.Context) (string, error) {
	cs, err := e.Contenders(ctx)
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "", fmt.Errorf("%w in %s", ErrNoLeader, e.dir)
	}
	return cs[0].Identifier, nil
}
