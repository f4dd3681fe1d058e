package zkserver

import (
	"testing"
)

// StartT starts a cluster for a test and closes it when the test ends. It
// fails the test when ZooKeeper cannot start.
func StartT(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Start(opts)
	if err != nil {
		t.Fatalf("starting ZooKeeper: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
