package zkconn_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// TestGetManyReadsWhatGetReads reads nodes in batches larger than one
// request carries, with missing nodes among them, and compares each
// result with go-zookeeper's own read, while go-zookeeper's requests
// (reads, writes, listings) go on the same connection at the same time.
func TestGetManyReadsWhatGetReads(t *testing.T) {
	c := zktest.StartT(t, zkserver.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: c.Addrs(), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.EnsurePath(ctx, "/many"); err != nil {
		t.Fatal(err)
	}
	const n = 300
	var paths []string
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("/many/n%03d", i)
		if i%7 == 3 {
			p += "-missing"
		} else if _, err := conn.Create(p, bytes.Repeat([]byte{byte(i)}, i*10), 0, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// An empty node, and a node whose data was set (version 1).
	if _, err := conn.Set(paths[1], nil, 0); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T) {
		got, err := conn.GetMany(ctx, paths)
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		if len(got) != n {
			t.Fatalf("GetMany returned %d results for %d paths", len(got), n)
		}
		for i, p := range paths {
			data, st, err := conn.Get(p)
			switch {
			case errors.Is(err, zk.ErrNoNode):
				if !errors.Is(got[i].Err, zk.ErrNoNode) {
					t.Errorf("%s: GetMany %v, want ErrNoNode", p, got[i].Err)
				}
			case err != nil:
				t.Fatalf("Get %s: %v", p, err)
			case got[i].Err != nil:
				t.Errorf("%s: GetMany %v", p, got[i].Err)
			case !bytes.Equal(got[i].Data, data):
				t.Errorf("%s: GetMany read %d bytes, Get %d", p, len(got[i].Data), len(data))
			case *got[i].Stat != *st:
				t.Errorf("%s: GetMany stat %+v, Get %+v", p, *got[i].Stat, *st)
			}
		}
	}
	check(t)
	if zkconn.MultiReads(conn) == 0 {
		t.Fatal("no read went as one request (multiRead)")
	}

	// The same while go-zookeeper's own requests share the connection.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := conn.Set(paths[0], []byte{byte(k)}, -1); err != nil {
					errc <- err
					return
				}
				if _, _, err := conn.Children("/many"); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for r := 0; r < 5; r++ {
		var inner sync.WaitGroup
		for g := 0; g < 4; g++ {
			inner.Add(1)
			go func() {
				defer inner.Done()
				got, err := conn.GetMany(ctx, paths[2:])
				if err != nil {
					errc <- err
					return
				}
				for i, p := range paths[2:] {
					if (i+2)%7 != 3 && (got[i].Err != nil || len(got[i].Data) != (i+2)*10) {
						errc <- fmt.Errorf("%s: %d bytes, %v", p, len(got[i].Data), got[i].Err)
						return
					}
				}
			}()
		}
		inner.Wait()
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	check(t)
}

// TestGetManyOverALostConnection cuts the connection under a batch of
// reads: GetMany fails with a transient error, and reads again once the
// session has a new connection.
func TestGetManyOverALostConnection(t *testing.T) {
	c := zktest.StartT(t, zkserver.Options{})
	proxy, err := zktest.NewProxy(c.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: []string{proxy.Addr()}, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	paths := []string{"/a", "/b", "/c"}
	for _, p := range paths {
		if _, err := conn.Create(p, []byte(p), 0, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Silence()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = conn.GetMany(short, paths)
	cancelShort()
	if err == nil || !zkconn.Transient(err) {
		t.Fatalf("GetMany over a silent connection: %v, want a transient error", err)
	}
	proxy.Block()
	proxy.Unblock()
	// The first reads of a new connection go one by one, until a reply to
	// go-zookeeper's own requests shows that its credentials were sent.
	before := zkconn.MultiReads(conn)
	poll.For(t, 30*time.Second, 50*time.Millisecond, func() error {
		got, err := conn.GetMany(ctx, paths)
		if err != nil {
			if !zkconn.Transient(err) {
				t.Fatalf("GetMany after the cut: %v", err)
			}
			return err
		}
		for i, p := range paths {
			if string(got[i].Data) != p {
				t.Fatalf("%s read %q", p, got[i].Data)
			}
		}
		if zkconn.MultiReads(conn) == before {
			return errors.New("no read went as one request (multiRead) on the new connection")
		}
		return nil
	})
}

// oldServerProxy forwards ZooKeeper connections but answers every
// multiRead itself with ZUNIMPLEMENTED, as a server older than 3.6 does.
func oldServerProxy(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	frame := func(r io.Reader) ([]byte, error) {
		var head [4]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil, err
		}
		b := make([]byte, 4+binary.BigEndian.Uint32(head[:]))
		copy(b, head[:])
		_, err := io.ReadFull(r, b[4:])
		return b, err
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			var mu sync.Mutex // one frame at a time towards the client
			go func() {
				defer client.Close()
				defer server.Close()
				for {
					b, err := frame(server)
					if err != nil {
						return
					}
					mu.Lock()
					_, err = client.Write(b)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer client.Close()
				defer server.Close()
				for first := true; ; first = false {
					b, err := frame(client)
					if err != nil {
						return
					}
					if !first && len(b) >= 12 && int32(binary.BigEndian.Uint32(b[8:12])) == 22 {
						reply := binary.BigEndian.AppendUint32(nil, 16)
						reply = append(reply, b[4:8]...) // the xid
						reply = binary.BigEndian.AppendUint64(reply, 0)
						unimplemented := int32(-6)
						reply = binary.BigEndian.AppendUint32(reply, uint32(unimplemented))
						mu.Lock()
						_, err = client.Write(reply)
						mu.Unlock()
					} else {
						_, err = server.Write(b)
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestGetManyFromAnOlderServer reads through a server that does not know
// multiRead: the reads go one by one, with the same results.
func TestGetManyFromAnOlderServer(t *testing.T) {
	c := zktest.StartT(t, zkserver.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: []string{oldServerProxy(t, c.Addrs()[0])}, SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	paths := []string{"/x", "/y", "/none"}
	for _, p := range paths[:2] {
		if _, err := conn.Create(p, []byte(p), 0, zkconn.ACL); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		got, err := conn.GetMany(ctx, paths)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if string(got[0].Data) != "/x" || string(got[1].Data) != "/y" || got[1].Stat == nil || !errors.Is(got[2].Err, zk.ErrNoNode) {
			t.Fatalf("round %d read %+v", round, got)
		}
	}
	if n := zkconn.MultiReads(conn); n != 0 {
		t.Fatalf("%d multiRead requests answered by a server that does not know them", n)
	}
	if !zkconn.ReadsOneByOne(conn) {
		t.Fatal("the refusal was not seen: no multiRead was sent")
	}
}
