package zkconn

import (
	"fmt"

	"github.com/go-zookeeper/zk"
)

// OpError reports that one operation of a multi failed, so that none of the
// multi was applied. It is the one error of the engine for "operation i of
// my transaction failed": the queue, the job store and the distributors
// return it for the operations their callers passed.
//
// Index counts among the caller's operations: a package that puts
// operations of its own in front of the caller's (the queue's fence, the
// store's document write) reports its own failures with errors of its own
// and the caller's with an OpError whose Index is in the caller's list.
// errors.Is sees the ZooKeeper error through it (zk.ErrBadVersion,
// zk.ErrNoNode, …); errors.As finds it through any wrapping.
type OpError struct {
	// Index is the position of the failed operation among the caller's.
	Index int
	// Op names the kind of operation: "create", "set", "delete" or "check".
	Op string
	// Path is the znode the operation named.
	Path string
	// Err is ZooKeeper's answer to that operation.
	Err error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("operation %d of the transaction (%s %s) failed: %v", e.Index, e.Op, e.Path, e.Err)
}

// Unwrap returns ZooKeeper's error, for errors.Is.
func (e *OpError) Unwrap() error { return e.Err }

// FailedOp returns the operation that made a multi of ops fail as an
// *OpError whose Index counts from ops[0], or nil when no operation is
// marked (a connection error, or success: see err itself). Shift the
// result by the number of operations a package added in front of its
// caller's before returning it.
func FailedOp(ops []interface{}, res []zk.MultiResponse, err error) *OpError {
	i, opErr := MultiError(res, err)
	if i < 0 {
		return nil
	}
	e := &OpError{Index: i, Err: opErr}
	if i < len(ops) {
		e.Op, e.Path = describeOp(ops[i])
	}
	return e
}

// Shift returns a copy of e whose Index counts from operation n of the
// multi, for a caller whose operations started there.
func (e *OpError) Shift(n int) *OpError {
	c := *e
	c.Index -= n
	return &c
}

func describeOp(op interface{}) (kind, path string) {
	switch o := op.(type) {
	case *zk.CreateRequest:
		return "create", o.Path
	case *zk.SetDataRequest:
		return "set", o.Path
	case *zk.DeleteRequest:
		return "delete", o.Path
	case *zk.CheckVersionRequest:
		return "check", o.Path
	}
	return fmt.Sprintf("%T", op), ""
}
