package zkserver_test

import (
	"fmt"
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
// other through the addresses it gives, so blocking those of one node
// cuts it off from its peers: alone, it stops serving, and it serves
// again once they reach it.
func TestEnsemblePeersThroughProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble test skipped in -short mode")
	}
	var mu sync.Mutex
	links := map[int][]*zktest.Proxy{}
	c := zktest.StartT(t, zkserver.Options{Servers: 3, PeerAddr: func(from, to int, addr string) (string, error) {
		px, err := zktest.NewProxy(addr)
		if err != nil {
			return "", err
		}
		t.Cleanup(px.Close)
		mu.Lock()
		defer mu.Unlock()
		links[from] = append(links[from], px)
		links[to] = append(links[to], px)
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
	for _, px := range cut {
		px.Unblock()
	}
	if err := c.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}
