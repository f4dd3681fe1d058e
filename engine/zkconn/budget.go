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

// Multi sends ops as one transaction, as go-zookeeper's Multi does, unless
// the request would be over RequestBudget: then nothing is sent and the
// error wraps ErrTooLarge.
func (c *Conn) Multi(ops ...interface{}) ([]zk.MultiResponse, error) {
	if err := CheckRequest(fmt.Sprintf("a transaction of %d operations", len(ops)), RequestSize(ops...)); err != nil {
		return nil, err
	}
	return c.Conn.Multi(ops...)
}

// Create creates a node, as go-zookeeper's Create does, unless the request
// would be over RequestBudget (ErrTooLarge, nothing sent).
func (c *Conn) Create(path string, data []byte, flags int32, acl []zk.ACL) (string, error) {
	if err := CheckRequest("creating "+path, framingBytes+createSize(path, data, acl)); err != nil {
		return "", err
	}
	return c.Conn.Create(path, data, flags, acl)
}

// Set writes a node's data, as go-zookeeper's Set does, unless the request
// would be over RequestBudget (ErrTooLarge, nothing sent).
func (c *Conn) Set(path string, data []byte, version int32) (*zk.Stat, error) {
	if err := CheckRequest("writing "+path, framingBytes+opSize(&zk.SetDataRequest{Path: path, Data: data})); err != nil {
		return nil, err
	}
	return c.Conn.Set(path, data, version)
}
