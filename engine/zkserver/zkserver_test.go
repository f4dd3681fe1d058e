package zkserver_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

func TestStandaloneStopRestartPause(t *testing.T) {
	c := zktest.StartT(t, zkserver.Options{})
	s := c.Servers[0]
	if m, err := s.Mode(); err != nil || m != "standalone" {
		t.Fatalf("mode = %q, %v; want standalone", m, err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FourLetter("srvr", 500*time.Millisecond); err == nil {
		t.Fatal("a paused server answered srvr")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitServing(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mode(); err == nil {
		t.Fatal("a killed server answered")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitServing(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestEnsembleLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble test skipped in -short mode")
	}
	c := zktest.StartT(t, zkserver.Options{Servers: 3})
	leader, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		nl, err := c.Leader()
		if err != nil {
			return err
		}
		if nl == leader {
			return fmt.Errorf("node %d is still leader", leader.ID)
		}
		return nil
	})
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestTLSNeedsBothStores(t *testing.T) {
	if _, err := zkserver.Start(zkserver.Options{TLSKeyStore: "server.pem"}); err == nil || !strings.Contains(err.Error(), "both a key store and a trust store") {
		t.Fatalf("Start with a key store only: %v", err)
	}
}

// TestEnsemblePeersThroughProxies: with PeerAddr the nodes reach each
// other through the addresses it gives — the election proxies rewrite
// each hello (ElectionHello) so that a node that connects back does so
// through a proxy too — and blocking those of one node cuts it off from
// its peers: alone, it stops serving, the others elect a leader among
// themselves and serve, and it serves again once they reach it.
func TestEnsemblePeersThroughProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble test skipped in -short mode")
	}
	var mu sync.Mutex
	links := map[int][]*zktest.Proxy{}
	election := map[[2]int]*zktest.Proxy{}
	c := zktest.StartT(t, zkserver.Options{Servers: 3, PeerAddr: func(from, to int, port zkserver.PeerPort, addr string) (string, error) {
		var px *zktest.Proxy
		var err error
		if port == zkserver.ElectionPort {
			px, err = zktest.NewHelloProxy(addr, zkserver.ElectionHello(func() string {
				mu.Lock()
				defer mu.Unlock()
				if back := election[[2]int{to, from}]; back != nil {
					return back.Addr()
				}
				return ""
			}))
		} else {
			px, err = zktest.NewProxy(addr)
			if err == nil {
				px.SetDialPatience(3 * time.Second)
			}
		}
		if err != nil {
			return "", err
		}
		t.Cleanup(px.Close)
		mu.Lock()
		defer mu.Unlock()
		links[from] = append(links[from], px)
		links[to] = append(links[to], px)
		if port == zkserver.ElectionPort {
			election[[2]int{from, to}] = px
		}
		return px.Addr(), nil
	}})
	leader, err := c.Leader()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	cut := links[leader.ID]
	mu.Unlock()
	if len(cut) != 8 { // to and from 2 peers, quorum and election ports
		t.Fatalf("%d proxies to and from node %d, want 8", len(cut), leader.ID)
	}
	for _, px := range cut {
		px.Block()
	}
	poll.For(t, 30*time.Second, 100*time.Millisecond, func() error {
		if m, err := leader.Mode(); err == nil && (m == "leader" || m == "follower") {
			return fmt.Errorf("node %d, cut off, still serves as %s", leader.ID, m)
		}
		nl, err := c.Leader()
		if err != nil {
			return err
		}
		if nl == leader {
			return fmt.Errorf("node %d is still leader", leader.ID)
		}
		return nil
	})
	// The other two go on serving: the cut-off node reaches neither of
	// them, not even for an election (it would win it, as the one with
	// the highest id or the latest data, and lead nobody).
	for _, s := range c.Servers {
		if s == leader {
			continue
		}
		if err := s.WaitServing(20 * time.Second); err != nil {
			t.Fatalf("node %d of the majority: %v", s.ID, err)
		}
	}
	for _, px := range cut {
		px.Unblock()
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestElectionHelloRewritesTheAddress(t *testing.T) {
	hello := func(version int64, sid int64, addr string) []byte {
		b := binary.BigEndian.AppendUint64(nil, uint64(version))
		b = binary.BigEndian.AppendUint64(b, uint64(sid))
		b = binary.BigEndian.AppendUint32(b, uint32(len(addr)))
		return append(b, addr...)
	}
	rest := []byte("the election messages")
	for name, tc := range map[string]struct {
		in, want []byte
		back     string
	}{
		"rewritten":    {hello(-65536, 2, "127.0.0.1:4001"), hello(-65536, 2, "127.0.0.1:5999"), "127.0.0.1:5999"},
		"kept":         {hello(-65535, 3, "127.0.0.1:4001|127.0.0.1:4002"), hello(-65535, 3, "127.0.0.1:4001|127.0.0.1:4002"), ""},
		"old protocol": {binary.BigEndian.AppendUint64(nil, 2), binary.BigEndian.AppendUint64(nil, 2), "127.0.0.1:5999"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			in := bytes.NewReader(append(append([]byte(nil), tc.in...), rest...))
			if err := zkserver.ElectionHello(func() string { return tc.back })(in, &out); err != nil {
				t.Fatal(err)
			}
			left, _ := io.ReadAll(in)
			if !bytes.Equal(out.Bytes(), tc.want) || !bytes.Equal(left, rest) {
				t.Fatalf("wrote %q and left %q; want %q and %q", out.Bytes(), left, tc.want, rest)
			}
		})
	}
	huge := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(1<<63)), 1), 1<<20)
	if err := zkserver.ElectionHello(func() string { return "x" })(bytes.NewReader(huge), io.Discard); err == nil {
		t.Fatal("a hello naming 1 MB of addresses was passed on")
	}
}
