package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var seq atomic.Int64

// dial opens a session under a root of the test's own.
func dial(t testing.TB) *zkconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: fmt.Sprintf("/inv%d", seq.Add(1)), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	return NewStore(dial(t), cfg)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// generated builds an Ansible JSON inventory of n hosts named host-00001…,
// spread over groups g0…g{groups-1} (host i in group i mod groups, group
// g0 a child of "parent"), each with a few variables.
func generated(n, groups int) []byte {
	type group struct {
		Hosts    []string       `json:"hosts,omitempty"`
		Children []string       `json:"children,omitempty"`
		Vars     map[string]any `json:"vars,omitempty"`
	}
	top := map[string]any{}
	hostvars := map[string]map[string]any{}
	gs := make([]group, groups)
	for i := 0; i < n; i++ {
		h := fmt.Sprintf("host-%05d.example.com", i+1)
		hostvars[h] = map[string]any{
			"ansible_host": fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256),
			"rack":         fmt.Sprintf("r%02d", i%40),
			"env":          []string{"prod", "staging"}[i%2],
		}
		if groups > 0 {
			gs[i%groups].Hosts = append(gs[i%groups].Hosts, h)
		}
	}
	for i := range gs {
		gs[i].Vars = map[string]any{"group_index": i}
		top[fmt.Sprintf("g%d", i)] = gs[i]
	}
	if groups > 0 {
		top["parent"] = group{Children: []string{"g0"}}
	}
	top["all"] = group{Vars: map[string]any{"ntp": "pool.ntp.org"}}
	top["_meta"] = map[string]any{"hostvars": hostvars}
	b, err := json.Marshal(top)
	if err != nil {
		panic(err)
	}
	return b
}

func mustParse(t testing.TB, data []byte) *Content {
	t.Helper()
	c, err := ParseAnsible(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
