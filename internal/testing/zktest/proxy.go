package zktest

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a ZooKeeper node and can cut them, to
// partition one client from the server: cut for longer than its session
// timeout and the server expires the session while the client still runs.
type Proxy struct {
	ln     net.Listener // guarded by mu: Refuse and Listen replace it
	addr   string
	target string

	mu      sync.Mutex
	blocked bool
	// silent holds what each connection carries, without closing it,
	// until Unblock; resumed is closed and replaced then.
	silent  bool
	resumed chan struct{}
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
	// hello, when set, carries the start of each connection from the
	// client to the server (NewHelloProxy).
	hello func(client io.Reader, server io.Writer) error
	// dialFor is how long a connection waits for the server to accept
	// (SetDialPatience); 0: one try.
	dialFor time.Duration
}

// SetDialPatience makes a connection whose server does not accept yet
// wait for it, trying again for up to d, instead of closing at once. A
// proxy has accepted the client before it knows whether the server will:
// a client that connects to a ZooKeeper leader that has not started to
// listen yet is refused and tries again when direct, but through an
// impatient proxy it sees a connection that closes, gives the leader up
// and elects again. Call it before the proxy is used.
func (p *Proxy) SetDialPatience(d time.Duration) {
	p.mu.Lock()
	p.dialFor = d
	p.mu.Unlock()
}

// dial connects to the server, trying again for the dial patience.
func (p *Proxy) dial() (net.Conn, error) {
	p.mu.Lock()
	until := time.Now().Add(p.dialFor)
	p.mu.Unlock()
	for {
		out, err := net.Dial("tcp", p.target)
		if err == nil || !time.Now().Before(until) {
			return out, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		<-t.C
	}
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	return newProxy(target, nil)
}

func newProxy(target string, hello func(client io.Reader, server io.Writer) error) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, addr: ln.Addr().String(), target: target, conns: make(map[net.Conn]struct{}), resumed: make(chan struct{}), hello: hello}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// NewHelloProxy is NewProxy for a protocol whose client starts by saying
// something the proxy must change (a ZooKeeper node's election hello
// names an address to connect back to): hello reads the start of each
// connection from the client and writes what the server is to get, then
// the proxy forwards the rest both ways. An error from hello closes the
// connection.
func NewHelloProxy(target string, hello func(client io.Reader, server io.Writer) error) (*Proxy, error) {
	return newProxy(target, hello)
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.addr }

// Block closes every forwarded connection and refuses new ones until
// Unblock: the client sees a dead server, the server a silent client.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		c.Close()
	}
}

// Silence stops forwarding without closing anything: connections stay
// open and new ones are accepted, but what either side sends is held
// until Unblock, like a network path that went dark — the case where a
// client notices last, by its own timeouts.
func (p *Proxy) Silence() {
	p.mu.Lock()
	p.silent = true
	p.mu.Unlock()
}

// Unblock forwards connections again, and what was held.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	p.blocked = false
	if p.silent {
		p.silent = false
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
	p.mu.Unlock()
}

// held returns, while the proxy is silent, a channel closed when it
// speaks again; nil otherwise.
func (p *Proxy) held() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent && !p.closed {
		return p.resumed
	}
	return nil
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	if p.silent {
		p.silent = false
		close(p.resumed)
		p.resumed = make(chan struct{})
	}
	ln := p.ln
	p.mu.Unlock()
	p.Block()
	ln.Close()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocked || p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			continue
		}
		p.wg.Add(1)
		go p.connect(in)
	}
}

// connect dials the server for a client's connection, passes the hello
// when there is one, and forwards the rest both ways.
func (p *Proxy) connect(in net.Conn) {
	defer p.wg.Done()
	out, err := p.dial()
	if err != nil {
		p.untrack(in)
		return
	}
	if !p.track(out) {
		p.untrack(in)
		return
	}
	if p.hello != nil {
		_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
		err := p.hello(in, out)
		_ = in.SetReadDeadline(time.Time{})
		if err != nil {
			p.untrack(in)
			p.untrack(out)
			return
		}
	}
	p.wg.Add(2)
	go p.pipe(in, out)
	go p.pipe(out, in)
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if ch := p.held(); ch != nil {
				<-ch
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	p.untrack(dst)
	p.untrack(src)
}
