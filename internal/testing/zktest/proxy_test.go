package zktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// A silenced proxy keeps the connection open and carries nothing: the
// client finds out by its own timeout, and after Unblock it talks again.
func TestProxySilence(t *testing.T) {
	zc := zktest.StartT(t, zkserver.Options{})
	px, err := zktest.NewProxy(zc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: []string{px.Addr()}, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	px.Silence()
	poll.For(t, 20*time.Second, 20*time.Millisecond, func() error {
		if conn.Connected() {
			return errors.New("the client has not noticed the silence yet")
		}
		return nil
	})
	px.Unblock()
	poll.For(t, 30*time.Second, 20*time.Millisecond, func() error {
		if !conn.Connected() {
			return errors.New("not connected again")
		}
		return nil
	})
	if _, _, err := conn.Exists("/"); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
}
