package zkserver_test

import (
	"fmt"
	"strings"
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
