package zkconn

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/go-zookeeper/zk"
)

// wireConn is the engine's side of a ZooKeeper connection, under
// go-zookeeper: it reads through a buffer, and it carries the engine's own
// read batches (multiRead, see multiread.go) in the same session,
// between go-zookeeper's requests.
//
// The buffer: go-zookeeper reads each response with two reads (its length,
// then its body), each a system call on the bare connection; through the
// buffer, one call brings in as many responses as have arrived, which
// matters when many requests are in flight at once.
//
// The batches: ZooKeeper answers a session's requests in order, each
// reply carrying the xid of its request. A batch is written as one whole
// packet between go-zookeeper's (each of which is one Write), with an xid
// go-zookeeper never uses (below minOwnXid); its reply is taken out of the
// stream before go-zookeeper reads it, so go-zookeeper sees exactly the
// stream it would have without it. Sharing the session means sharing its
// credentials and its order: a batch sent after a write sees that write.
type wireConn struct {
	net.Conn
	r *bufio.Reader

	// Read side, used by go-zookeeper's one reading goroutine at a time.
	greeted   bool // the handshake's reply has passed
	remaining int  // bytes of the current frame still to hand over

	wmu sync.Mutex // one packet at a time on the wire

	mu      sync.Mutex
	ready   bool // a reply to go-zookeeper's own requests has passed: auth is done
	closed  error
	waiting map[int32]chan []byte
	nextXid int32
}

// bufferedReadBytes is the read buffer of a connection: many small
// responses, or the head of a large one (read on directly).
const bufferedReadBytes = 64 << 10

// minOwnXid bounds the xids of the engine's own requests: go-zookeeper
// counts its xids up from 1 and uses -1 (watch events), -2 (pings), -4
// (auth) and -8 (watches set again).
const minOwnXid = -1 << 20

func newWireConn(c net.Conn) *wireConn {
	return &wireConn{Conn: c, r: bufio.NewReaderSize(c, bufferedReadBytes), waiting: make(map[int32]chan []byte), nextXid: minOwnXid}
}

// Read hands go-zookeeper the stream, less the replies to the engine's own
// requests.
func (w *wireConn) Read(p []byte) (int, error) {
	for w.remaining == 0 {
		head, err := w.r.Peek(8)
		if err != nil {
			w.fail(err)
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(head[:4]))
		xid := int32(binary.BigEndian.Uint32(head[4:8]))
		switch {
		case !w.greeted:
			// The handshake's reply has no xid.
			w.greeted = true
		case xid <= minOwnXid:
			if n > MaxResponseBytes {
				err := fmt.Errorf("zkconn: a reply of %d bytes, over the limit of %d", n, MaxResponseBytes)
				w.fail(err)
				return 0, err
			}
			frame := make([]byte, 4+n)
			if _, err := io.ReadFull(w.r, frame); err != nil {
				w.fail(err)
				return 0, err
			}
			w.deliver(xid, frame[4:])
			continue
		case xid > 0 || xid == -2:
			w.setReady()
		}
		w.remaining = 4 + n
	}
	if len(p) > w.remaining {
		p = p[:w.remaining]
	}
	k, err := w.r.Read(p)
	w.remaining -= k
	if err != nil {
		w.fail(err)
	}
	return k, err
}

// Write writes one of go-zookeeper's packets.
func (w *wireConn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.Conn.Write(p)
}

// Close closes the connection and fails the engine's requests on it.
func (w *wireConn) Close() error {
	w.fail(zk.ErrConnectionClosed)
	return w.Conn.Close()
}

func (w *wireConn) setReady() {
	w.mu.Lock()
	w.ready = true
	w.mu.Unlock()
}

// fail ends every request waiting for a reply: the connection is gone.
func (w *wireConn) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed == nil {
		w.closed = err
	}
	for xid, ch := range w.waiting {
		close(ch)
		delete(w.waiting, xid)
	}
}

func (w *wireConn) deliver(xid int32, body []byte) {
	w.mu.Lock()
	ch, ok := w.waiting[xid]
	delete(w.waiting, xid)
	w.mu.Unlock()
	if ok {
		ch <- body
	}
}

// send writes one of the engine's packets (body without its length and
// xid) and returns the channel its reply comes on: the reply body from its
// header on, or a closed channel if the connection ends first. ok is false
// when the connection cannot carry it yet (before go-zookeeper's auth is
// through) or any more.
func (w *wireConn) send(opcode int32, body []byte) (reply <-chan []byte, cancel func(), ok bool, err error) {
	w.mu.Lock()
	if !w.ready || w.closed != nil {
		w.mu.Unlock()
		return nil, nil, false, nil
	}
	xid := w.nextXid
	if w.nextXid--; w.nextXid < minOwnXid-1<<24 {
		w.nextXid = minOwnXid
	}
	ch := make(chan []byte, 1)
	w.waiting[xid] = ch
	w.mu.Unlock()
	cancel = func() {
		w.mu.Lock()
		delete(w.waiting, xid)
		w.mu.Unlock()
	}
	packet := make([]byte, 12, 12+len(body))
	binary.BigEndian.PutUint32(packet[0:4], uint32(8+len(body)))
	binary.BigEndian.PutUint32(packet[4:8], uint32(xid))
	binary.BigEndian.PutUint32(packet[8:12], uint32(opcode))
	packet = append(packet, body...)
	w.wmu.Lock()
	_, err = w.Conn.Write(packet)
	w.wmu.Unlock()
	if err != nil {
		// Part of the packet may be on the wire: the stream is lost.
		cancel()
		w.fail(err)
		_ = w.Conn.Close()
		return nil, nil, true, err
	}
	return ch, cancel, true, nil
}
