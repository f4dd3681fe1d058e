package zkconn

import (
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper refuses a request larger than its jute.maxbuffer (1 MB − 1 by
// default) and drops the session that sent it. Every write of an object
// that can grow is therefore sized before it is sent.
const (
	// MaxRequestBytes is ZooKeeper's default jute.maxbuffer.
	MaxRequestBytes = 0xfffff
	// DefaultBudget is the size a request of the engine may reach: the
	// server's limit less room for the request header and the estimate's
	// error.
	DefaultBudget = 900 << 10
	// opOverhead bounds what an operation adds to a multi besides its path
	// and data: the multi header (type, done, error), the lengths, the
	// version or flags, and the ACL the engine creates nodes with.
	opOverhead = 64
)

// ErrTooLarge is returned for an operation that alone exceeds the budget.
var ErrTooLarge = errors.New("zookeeper request over the byte budget")

// OpBytes estimates, from above, the bytes an operation adds to a multi.
func OpBytes(op interface{}) int {
	switch o := op.(type) {
	case *zk.CreateRequest:
		return opOverhead + len(o.Path) + len(o.Data)
	case *zk.SetDataRequest:
		return opOverhead + len(o.Path) + len(o.Data)
	case *zk.DeleteRequest:
		return opOverhead + len(o.Path)
	case *zk.CheckVersionRequest:
		return opOverhead + len(o.Path)
	}
	// Unknown operations are not used by the engine; count them as large
	// so that a mistake shows up as an extra request, not a refused one.
	return 4 << 10
}

// OpsBytes estimates the size of a multi of ops.
func OpsBytes(ops []interface{}) int {
	n := 0
	for _, op := range ops {
		n += OpBytes(op)
	}
	return n
}

// Pack splits ops, in order, into as few multis as the budget allows, each
// at most budget bytes (DefaultBudget when budget ≤ 0). An operation that
// alone exceeds the budget is refused with ErrTooLarge.
func Pack(ops []interface{}, budget int) ([][]interface{}, error) {
	if budget <= 0 {
		budget = DefaultBudget
	}
	var out [][]interface{}
	var cur []interface{}
	size := 0
	for i, op := range ops {
		n := OpBytes(op)
		if n > budget {
			return nil, fmt.Errorf("%w: operation %d takes about %d bytes, the budget is %d", ErrTooLarge, i, n, budget)
		}
		if size+n > budget && len(cur) > 0 {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, op)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// CheckBudget refuses a multi that would exceed the budget (DefaultBudget
// when budget ≤ 0).
func CheckBudget(ops []interface{}, budget int) error {
	if budget <= 0 {
		budget = DefaultBudget
	}
	if n := OpsBytes(ops); n > budget {
		return fmt.Errorf("%w: %d operations take about %d bytes, the budget is %d", ErrTooLarge, len(ops), n, budget)
	}
	return nil
}
