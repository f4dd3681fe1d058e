package zkconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// RequestSize counts what the server counts: a server whose jute.maxbuffer
// is M accepts a request of M bytes after its 4-byte length prefix and
// closes the connection on one byte more. And a request over the engine's
// budget is never sent.
func TestRequestSizeIsWhatTheServerCounts(t *testing.T) {
	const max = 100_000
	c := zktest.StartT(t, zkserver.Options{JuteMaxBuffer: max})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: c.Addrs(), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/n", nil, 0, zkconn.ACL); err != nil {
		t.Fatal(err)
	}
	ops := func(extra int) []interface{} {
		set := &zk.SetDataRequest{Path: "/n", Version: -1}
		// The request with no data, then data up to the server's limit.
		set.Data = make([]byte, max+4-zkconn.RequestSize(set)+extra)
		return []interface{}{set}
	}
	if n := zkconn.RequestSize(ops(0)...); n != max+4 {
		t.Fatalf("sized %d bytes, want %d", n, max+4)
	}
	if _, err := conn.Multi(ops(0)...); err != nil {
		t.Fatalf("a request of exactly the server's limit: %v", err)
	}
	_, err = conn.Multi(ops(1)...)
	if !errors.Is(err, zk.ErrConnectionClosed) {
		t.Fatalf("a request one byte over the server's limit: %v, want the connection closed", err)
	}

	// Over the engine's budget: refused before it is sent, so the session
	// keeps its connection.
	big := []interface{}{&zk.SetDataRequest{Path: "/n", Data: make([]byte, zkconn.RequestBudget), Version: -1}}
	if _, err := conn.Multi(big...); !errors.Is(err, zkconn.ErrTooLarge) {
		t.Fatalf("multi over the budget: %v, want ErrTooLarge", err)
	}
	if _, err := conn.Set("/n", make([]byte, zkconn.RequestBudget), -1); !errors.Is(err, zkconn.ErrTooLarge) {
		t.Fatalf("set over the budget: %v, want ErrTooLarge", err)
	}
	if _, err := conn.Create("/m", make([]byte, zkconn.RequestBudget), 0, zkconn.ACL); !errors.Is(err, zkconn.ErrTooLarge) {
		t.Fatalf("create over the budget: %v, want ErrTooLarge", err)
	}
}

func TestRequestSizeOfEachOperation(t *testing.T) {
	acl := zk.WorldACL(zk.PermAll) // perms 4, "world" 4+5, "anyone" 4+6
	for _, tc := range []struct {
		op   interface{}
		want int
	}{
		{&zk.CheckVersionRequest{Path: "/a"}, 4 + 2 + 4},
		{&zk.DeleteRequest{Path: "/a"}, 4 + 2 + 4},
		{&zk.SetDataRequest{Path: "/a", Data: make([]byte, 10)}, 4 + 2 + 4 + 10 + 4},
		{&zk.CreateRequest{Path: "/a", Data: make([]byte, 10), Acl: acl}, 4 + 2 + 4 + 10 + 4 + (4 + 4 + 5 + 4 + 6) + 4},
	} {
		// Framing (12), the closing header (9) and the operation's header (9).
		if got := zkconn.RequestSize(tc.op) - 12 - 9 - 9; got != tc.want {
			t.Errorf("%T: %d bytes, want %d", tc.op, got, tc.want)
		}
	}
	if zkconn.RequestBudget >= zkconn.ServerMaxRequestBytes {
		t.Fatal("no margin below the server's limit")
	}
}
