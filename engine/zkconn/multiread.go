package zkconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"
)

// Reading many nodes in one request.
//
// ZooKeeper (3.6 and later) reads several nodes in one request
// (multiRead): one pass through its request pipeline instead of one per
// node, which is most of what a read costs it. go-zookeeper does not send
// it, so the engine writes it on go-zookeeper's own connection (see
// wireConn). A server that does not know the request answers it with an
// error, after which the connection's reads go one by one.

// Got is what a read of one node of GetMany returned.
type Got struct {
	Data []byte
	Stat *zk.Stat
	// Err is the read's error (zk.ErrNoNode, zk.ErrNoAuth, …); nil when
	// the node was read.
	Err error
}

const (
	opGetData   = 4
	opMultiRead = 22
	opError     = -1
)

// maxMultiRead bounds the nodes of one multiRead request, and so its
// reply: 64 documents of the largest size stay well within
// MaxResponseBytes.
const maxMultiRead = 64

// GetMany reads the nodes at paths, in one request where the server
// allows it, and returns what each read returned, in order. Its error is
// the connection's (transient, as Transient tells); a node's own error is
// in its Got.
func (c *Conn) GetMany(ctx context.Context, paths []string) ([]Got, error) {
	out := make([]Got, len(paths))
	if len(paths) <= maxMultiRead {
		if err := c.getMany(ctx, paths, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	// The requests of the chunks go together: the session pipelines them.
	var wg sync.WaitGroup
	errs := make([]error, (len(paths)+maxMultiRead-1)/maxMultiRead)
	for k := range errs {
		start, end := k*maxMultiRead, min((k+1)*maxMultiRead, len(paths))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.getMany(ctx, paths[start:end], out[start:end])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *Conn) getMany(ctx context.Context, paths []string, out []Got) error {
	if len(paths) > 1 && !c.noMultiRead.Load() {
		if w := c.wire.Load(); w != nil {
			done, err := c.multiRead(ctx, w, paths, out)
			if done || err != nil {
				return err
			}
		}
	}
	// One by one, in parallel: the connection pipelines the requests.
	var wg sync.WaitGroup
	errs := make([]error, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Do(ctx, func() error {
				data, st, err := c.Conn.Get(p)
				out[i] = Got{Data: data, Stat: st}
				return err
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrNoAuth):
			out[i] = Got{Err: err}
		default:
			return err
		}
	}
	return nil
}

// multiRead sends paths as one multiRead on w. done is false when w cannot
// carry it (then nothing was sent).
func (c *Conn) multiRead(ctx context.Context, w *wireConn, paths []string, out []Got) (done bool, err error) {
	body := encodeMultiRead(paths)
	if len(body) > RequestBudget {
		return false, nil
	}
	reply, cancel, ok, err := w.send(opMultiRead, body)
	if !ok {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("%w (sending a read of %d nodes)", zk.ErrConnectionClosed, len(paths))
	}
	select {
	case b, ok := <-reply:
		if !ok {
			return true, zk.ErrConnectionClosed
		}
		code, err := decodeMultiRead(b, out)
		switch {
		case err != nil:
			// A reply that cannot be read (the frame was whole, so the
			// stream is not out of step): a server that does not know
			// the request and answered something else. Read one by one.
			c.noMultiRead.Store(true)
			c.logger.Warn("the ZooKeeper server's answer to a read of many nodes could not be read; reading them one by one", zap.Error(err))
			return false, nil
		case code == 0:
			c.multiReads.Add(1)
			return true, nil
		case code == codeUnimplemented || code == codeBadArguments:
			c.noMultiRead.Store(true)
			c.logger.Info("the ZooKeeper server does not read many nodes in one request; reading them one by one")
			return false, nil
		default:
			return true, fmt.Errorf("zkconn: a read of %d nodes failed with ZooKeeper error %d", len(paths), code)
		}
	case <-ctx.Done():
		cancel()
		return true, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

const (
	codeUnimplemented = -6
	codeBadArguments  = -8
)

// encodeMultiRead encodes the body of a multiRead of getData operations:
// for each, a header (type, done, error) and the request (path, watch);
// then the closing header.
func encodeMultiRead(paths []string) []byte {
	n := 9
	for _, p := range paths {
		n += 9 + 4 + len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range paths {
		b = appendMultiHeader(b, opGetData, false, -1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
		b = append(b, 0) // no watch
	}
	return appendMultiHeader(b, -1, true, -1)
}

func appendMultiHeader(b []byte, typ int32, done bool, errCode int32) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(typ))
	if done {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint32(b, uint32(errCode))
}

// decodeMultiRead decodes a multiRead reply (from its reply header on)
// into out, and returns the reply's own error code.
func decodeMultiRead(b []byte, out []Got) (int32, error) {
	d := decoder{b: b}
	d.u32() // xid
	d.u64() // zxid
	code := int32(d.u32())
	if d.err != nil || code != 0 {
		return code, d.err
	}
	for i := 0; ; i++ {
		typ := int32(d.u32())
		done := d.byte() != 0
		d.u32() // the header's error; an error result repeats it
		if d.err != nil {
			return 0, d.err
		}
		if done {
			if i != len(out) {
				return 0, fmt.Errorf("a read of %d nodes answered %d", len(out), i)
			}
			return 0, nil
		}
		if i >= len(out) {
			return 0, fmt.Errorf("a read of %d nodes answered more", len(out))
		}
		switch typ {
		case opGetData:
			data := d.bytes()
			st := d.stat()
			out[i] = Got{Data: data, Stat: st}
		case opError:
			out[i] = Got{Err: errOfCode(int32(d.u32()))}
		default:
			return 0, fmt.Errorf("unexpected operation type %d in a read's reply", typ)
		}
		if d.err != nil {
			return 0, d.err
		}
	}
}

// errOfCode is go-zookeeper's error for a ZooKeeper error code.
func errOfCode(code int32) error {
	switch code {
	case -101:
		return zk.ErrNoNode
	case -102:
		return zk.ErrNoAuth
	}
	return fmt.Errorf("zkconn: ZooKeeper error %d", code)
}

// decoder reads jute's big-endian encoding; its first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errors.New("a read's reply is cut short")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// bytes reads a length-prefixed buffer (-1: none).
func (d *decoder) bytes() []byte {
	n := int32(d.u32())
	if n < 0 {
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) stat() *zk.Stat {
	return &zk.Stat{
		Czxid: int64(d.u64()), Mzxid: int64(d.u64()), Ctime: int64(d.u64()), Mtime: int64(d.u64()),
		Version: int32(d.u32()), Cversion: int32(d.u32()), Aversion: int32(d.u32()),
		EphemeralOwner: int64(d.u64()), DataLength: int32(d.u32()), NumChildren: int32(d.u32()), Pzxid: int64(d.u64()),
	}
}
