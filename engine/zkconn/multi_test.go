package zkconn

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-zookeeper/zk"
)

func TestFailedOp(t *testing.T) {
	ops := []interface{}{
		&zk.CheckVersionRequest{Path: "/owner", Version: 0},
		&zk.DeleteRequest{Path: "/taken", Version: -1},
		&zk.SetDataRequest{Path: "/doc", Version: 3},
		&zk.CreateRequest{Path: "/outbox"},
	}
	// go-zookeeper marks the operations before the failed one nil and
	// those after it as a runtime inconsistency.
	res := []zk.MultiResponse{{}, {}, {Error: zk.ErrBadVersion}, {Error: zk.ErrAPIError}}
	cases := []struct {
		name  string
		res   []zk.MultiResponse
		err   error
		want  *OpError
		shift int
	}{
		{"failed op", res, zk.ErrBadVersion, &OpError{Index: 2, Op: "set", Path: "/doc", Err: zk.ErrBadVersion}, 0},
		{"shifted to the caller's list", res, zk.ErrBadVersion, &OpError{Index: 0, Op: "set", Path: "/doc", Err: zk.ErrBadVersion}, 2},
		{"connection error", nil, zk.ErrConnectionClosed, nil, 0},
		{"success", []zk.MultiResponse{{}, {}, {}, {}}, nil, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := FailedOp(ops, tc.res, tc.err)
			if got != nil && tc.shift > 0 {
				got = got.Shift(tc.shift)
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Fatalf("FailedOp = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOpErrorIsAndAs(t *testing.T) {
	var err error = &OpError{Index: 1, Op: "delete", Path: "/x", Err: zk.ErrNoNode}
	err = fmt.Errorf("jobs: writing job/1: %w", err)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Index != 1 || oe.Path != "/x" {
		t.Fatalf("errors.As: %v", oe)
	}
	if !errors.Is(err, zk.ErrNoNode) || errors.Is(err, zk.ErrBadVersion) {
		t.Fatal("errors.Is does not see ZooKeeper's error through an OpError")
	}
	if want := "jobs: writing job/1: operation 1 of the transaction (delete /x) failed: zk: node does not exist"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	// Shift leaves the original alone.
	if s := oe.Shift(1); s.Index != 0 || oe.Index != 1 {
		t.Fatalf("shift: %d, original %d", s.Index, oe.Index)
	}
}
