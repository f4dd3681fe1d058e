package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func testPool(t *testing.T, names []string, caps ...int) *Pool {
	t.Helper()
	p, err := NewPool(PoolOptions{Command: "true {node}", Nodes: names})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range p.nodes {
		n.Info.Capacity, n.Err = caps[i], ""
	}
	return p
}

// TestPlacement: a job goes to the node with the most capacity left that
// fits it; one that fits nowhere runs alone on the largest idle node;
// with neither, it waits until capacity frees.
func TestPlacement(t *testing.T) {
	p := testPool(t, []string{"big", "small"}, 10, 4)
	ctx := context.Background()
	place := func(impact int) (string, func()) {
		t.Helper()
		n, r, err := p.acquire(ctx, impact)
		if err != nil {
			t.Fatal(err)
		}
		return n, r
	}
	var releases []func()
	for i, want := range []struct {
		impact int
		node   string
	}{{3, "big"}, {3, "big"}, {4, "big"}, {5, "small"}} {
		n, r := place(want.impact)
		if n != want.node {
			t.Fatalf("job %d (impact %d) on %s, want %s (nodes %+v)", i, want.impact, n, want.node, p.Nodes())
		}
		releases = append(releases, r)
	}
	type placed struct {
		node    string
		release func()
	}
	got := make(chan placed, 1)
	go func() {
		n, r, err := p.acquire(ctx, 1)
		if err != nil {
			n = err.Error()
		}
		got <- placed{n, r}
	}()
	select {
	case pl := <-got:
		t.Fatalf("placed on %s with every node full", pl.node)
	case <-time.After(50 * time.Millisecond):
	}
	releases[2]() // big has 4 left
	pl := <-got
	if pl.node != "big" {
		t.Fatalf("the waiting job went to %q", pl.node)
	}
	// Released here, not by the goroutine, so the next placement sees
	// every node idle.
	pl.release()
	for _, r := range releases {
		r() // releasing twice is harmless
	}
	if n, r := place(50); n != "big" {
		t.Fatalf("a job bigger than every node went to %s, want the largest idle one", n)
	} else {
		r()
	}

	down := testPool(t, []string{"x"}, 5)
	down.nodes[0].Err = "connection refused"
	down.opts.Command = "exit 1 {node}"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := down.acquire(cctx, 1); !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), "x:") {
		t.Fatalf("no healthy node: %v", err)
	}
}

func TestNewPoolRefusesBadOptions(t *testing.T) {
	for _, o := range []PoolOptions{
		{Command: "ssh host jobengine worker", Nodes: []string{"a"}},
		{Command: "ssh {node} jobengine worker"},
		{Command: "ssh {node} jobengine worker", Nodes: []string{"a;rm -rf /"}},
		{Command: "ssh {node} jobengine worker", Nodes: []string{"a", "a"}},
	} {
		if _, err := NewPool(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
