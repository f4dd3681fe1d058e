package zkconn

import (
	"bufio"
	"net"
)

// bufferedConn reads a ZooKeeper connection through a buffer.
// go-zookeeper reads each response with two reads (its length, then its
// body), each a system call on the bare connection; through the buffer,
// one call brings in as many responses as have arrived, which matters
// when many requests are in flight on the connection at once (pipelined
// reads, batches of writes).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// bufferedReadBytes is the read buffer of a connection: many small
// responses, or the head of a large one (read on directly).
const bufferedReadBytes = 64 << 10

func newBufferedConn(c net.Conn) net.Conn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, bufferedReadBytes)}
}

// Read reads from the buffer, filling it from the connection (with its
// read deadline) when it is empty.
func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
