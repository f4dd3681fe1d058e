package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/check"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// A ZooKeeper node partitioned from the other members of the ensemble:
// the nodes reach each other's quorum and election ports through proxies
// of the harness (zkserver.Options.PeerAddr), one per direction and port,
// so blocking those to and from one node cuts it off from its peers while
// its clients still reach it. A node alone is a minority: it must stop
// serving (its clients move to the others), and serve again once it
// rejoins.

// peerDialPatience is how long a quorum-port proxy waits for a node to
// listen: a new leader opens its quorum port a moment after it is
// elected, and a follower that meets a connection closed at once instead
// of a refused one elects again, which made every election after a
// kill wait out initLimit (10 s) instead of about a second.
const peerDialPatience = 3 * time.Second

// peerLinks are the proxies between the ensemble's nodes.
type peerLinks struct {
	mu       sync.Mutex
	proxies  map[[2]int][]*zktest.Proxy // from, to → the quorum and election proxies
	election map[[2]int]*zktest.Proxy   // from, to → the election proxy
}

// addr is zkserver.Options.PeerAddr: a proxy from node from to addr. An
// election proxy rewrites the address the connecting node names for
// itself in its hello to the proxy back to it, so that a peer that
// connects back (ZooKeeper's lower id dials, the higher one drops that
// and dials back) goes through a proxy too, not around the partition.
func (l *peerLinks) addr(from, to int, port zkserver.PeerPort, addr string) (string, error) {
	var px *zktest.Proxy
	var err error
	if port == zkserver.ElectionPort {
		px, err = zktest.NewHelloProxy(addr, zkserver.ElectionHello(func() string {
			l.mu.Lock()
			defer l.mu.Unlock()
			if back := l.election[[2]int{to, from}]; back != nil {
				return back.Addr()
			}
			return "" // the peer's config is not written yet: keep its own
		}))
	} else {
		px, err = zktest.NewProxy(addr)
		if err == nil {
			// A follower that reaches a new leader before it listens
			// must find it slow, not gone (SetDialPatience).
			px.SetDialPatience(peerDialPatience)
		}
	}
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proxies == nil {
		l.proxies = map[[2]int][]*zktest.Proxy{}
		l.election = map[[2]int]*zktest.Proxy{}
	}
	k := [2]int{from, to}
	l.proxies[k] = append(l.proxies[k], px)
	if port == zkserver.ElectionPort {
		l.election[k] = px
	}
	return px.Addr(), nil
}

// of returns the proxies to and from node id.
func (l *peerLinks) of(id int) []*zktest.Proxy {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*zktest.Proxy
	for k, ps := range l.proxies {
		if k[0] == id || k[1] == id {
			out = append(out, ps...)
		}
	}
	return out
}

func (l *peerLinks) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ps := range l.proxies {
		for _, px := range ps {
			px.Close()
		}
	}
}

// serving reports whether the node answers as a member of a quorum.
func serving(s *zkserver.Server) bool {
	mode, err := s.Mode()
	return err == nil && (mode == "leader" || mode == "follower")
}

// partitionZK cuts one ZooKeeper node — the leader or a follower — off
// from the others for the hold. It notes how long the node took to stop
// serving, and the checker holds it to that: a node still serving at the
// end of the hold, alone, would be a minority answering clients.
func (h *Harness) partitionZK(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	var target *zkserver.Server
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(lctx, 100*time.Millisecond, func() error {
		leader, err := h.zk.Leader()
		if err != nil {
			return err
		}
		target = leader
		if f.Scope == "follower" {
			for _, s := range h.zk.Servers {
				if s != leader {
					target = s
					break
				}
			}
		}
		return nil
	})
	cancel()
	if err != nil {
		return err
	}
	links := h.peers.of(target.ID)
	if len(links) == 0 {
		return errors.New("faults: the ensemble's peers do not talk through the harness's proxies")
	}
	e.Target = fmt.Sprintf("zk%d", target.ID)
	e.At = time.Now()
	for _, px := range links {
		px.Block()
	}
	probe()
	// When the others elect a new leader, if it was the leader.
	elected := make(chan string, 1)
	ectx, ecancel := context.WithTimeout(ctx, f.Hold)
	defer ecancel()
	go func() {
		if f.Scope != "leader" {
			elected <- ""
			return
		}
		err := check.Until(ectx, 20*time.Millisecond, func() error {
			nl, err := h.zk.Leader()
			if err == nil && nl != target {
				elected <- fmt.Sprintf("zk%d elected after %s; ", nl.ID, time.Since(e.At).Round(10*time.Millisecond))
				return nil
			}
			return errors.New("no new leader")
		})
		if err != nil {
			elected <- "no leader elected within the hold; "
		}
	}()
	// When the cut-off node stops serving: it must, within the hold.
	var stopped time.Time
	sctx, cancel := context.WithTimeout(ctx, f.Hold)
	_ = check.Until(sctx, 20*time.Millisecond, func() error {
		if serving(target) {
			return errors.New("still serving")
		}
		stopped = time.Now()
		return nil
	})
	cancel()
	herr := sleep(ctx, time.Until(e.At.Add(f.Hold)))
	e.HealAt = time.Now()
	for _, px := range links {
		px.Unblock()
	}
	ecancel()
	note := <-elected
	if herr != nil {
		return herr
	}
	e.StillServing = stopped.IsZero()
	if err := target.WaitServing(90 * time.Second); err != nil {
		return err
	}
	e.Healed = time.Now()
	if e.StillServing {
		e.Note = fmt.Sprintf("(%sstill serving at the end of the hold; serving as a member again %s after the heal)", note, e.Healed.Sub(e.HealAt).Round(10*time.Millisecond))
		return nil
	}
	e.Note = fmt.Sprintf("(%sstopped serving after %s; serving again %s after the heal)",
		note, stopped.Sub(e.At).Round(10*time.Millisecond), e.Healed.Sub(e.HealAt).Round(10*time.Millisecond))
	return nil
}
