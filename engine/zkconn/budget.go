package zkconn

import (
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper refuses a request longer than its jute.maxbuffer (1048575
// bytes unless the server sets it) by closing the client's connection —
// every request in flight on it fails, and a client that sends the same
// request again is disconnected again. So every write the engine sends is
// measured first, and one over the budget is not sent at all.
const (
	// ServerMaxRequestBytes is ZooKeeper's default jute.maxbuffer: the
	// longest request a server accepts unless configured otherwise.
	ServerMaxRequestBytes = 1048575
	// RequestBudget is the longest request the engine sends: the server's
	// limit less a margin of 64 KiB for servers that count their framing
	// differently.
	RequestBudget = ServerMaxRequestBytes - 64<<10
)

// ErrTooLarge is wrapped by the error of a write whose request would be
// over RequestBudget: it was not sent.
var ErrTooLarge = errors.New("zookeeper request over the byte budget")

// Jute encodings of the parts of a request: a length prefix of the packet,
// the request header (xid, opcode), a multi operation's header (type, done,
// err), an int32, and the length prefix of a string or a byte array.
const (
	framingBytes     = 4 + 8
	multiHeaderBytes = 4 + 1 + 4
	int32Bytes       = 4
	lenBytes         = 4
)

// RequestSize returns the length in bytes of the request that sends ops as
// one multi transaction, as ZooKeeper's jute encoding writes it (framing
// included). An operation of an unknown type counts as 0: go-zookeeper
// refuses it anyway.
func RequestSize(ops ...interface{}) int {
	n := framingBytes + multiHeaderBytes // the closing header
	for _, op := range ops {
		n += multiHeaderBytes + opSize(op)
	}
	return n
}

func opSize(op interface{}) int {
	switch o := op.(type) {
	case *zk.CreateRequest:
		return createSize(o.Path, o.Data, o.Acl)
	case *zk.SetDataRequest:
		return lenBytes + len(o.Path) + lenBytes + len(o.Data) + int32Bytes
	case *zk.DeleteRequest:
		return lenBytes + len(o.Path) + int32Bytes
	case *zk.CheckVersionRequest:
		return lenBytes + len(o.Path) + int32Bytes
	}
	return 0
}

func createSize(path string, data []byte, acl []zk.ACL) int {
	n := lenBytes + len(path) + lenBytes + len(data) + lenBytes + int32Bytes
	for _, a := range acl {
		n += int32Bytes + lenBytes + len(a.Scheme) + lenBytes + len(a.ID)
	}
	return n
}

// CheckRequest returns an error wrapping ErrTooLarge when a request of size
// bytes is over the budget; what names the request for the message.
func CheckRequest(what string, size int) error {
	if size > RequestBudget {
		return fmt.Errorf("%w: %s takes %d bytes, over the budget of %d (ZooKeeper drops the connection of a request over %d bytes)",
			ErrTooLarge, what, size, RequestBudget, ServerMaxRequestBytes)
	}
	return nil
}

// Set writes a node's data, as go-zookeeper's Set does, unless the request
// would be over RequestBudget (ErrTooLarge, nothing sent).
func (c *Conn) Set(path string, data []byte, version int32) (*zk.Stat, error) {
	if err := CheckRequest("writing "+path, framingBytes+opSize(&zk.SetDataRequest{Path: path, Data: data})); err != nil {
		return nil, err
	}
	return c.Conn.Set(path, data, version)
}

// Writes of objects that are split over several transactions (inventories,
// launched containers, configuration) are packed with a coarser estimate
// that bounds each operation from above, under a budget lower still.
const (
	// MaxRequestBytes is ZooKeeper's default jute.maxbuffer.
	MaxRequestBytes = ServerMaxRequestBytes
	// DefaultBudget is the size a packed request of the engine may reach:
	// the server's limit less room for the request header and the
	// estimate's error.
	DefaultBudget = 900 << 10
	// opOverhead bounds what an operation adds to a multi besides its path
	// and data: the multi header (type, done, error), the lengths, the
	// version or flags, and the ACL the engine creates nodes with.
	opOverhead = 64
)

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
