package zkconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
