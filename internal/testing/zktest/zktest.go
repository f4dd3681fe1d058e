// Package zktest is test support around a real ZooKeeper: a cluster per test
// or per package, and a TCP proxy that can cut connections.
package zktest

import (
	"fmt"
	"os"
	"testing"

	"github.com/jobengine/jobengine/engine/zkserver"
)

// StartT starts a cluster for a test and closes it when the test ends. It
// fails the test when ZooKeeper cannot start.
func StartT(t testing.TB, opts zkserver.Options) *zkserver.Cluster {
	t.Helper()
	c, err := zkserver.Start(opts)
	if err != nil {
		t.Fatalf("starting ZooKeeper: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// RunTests is the body of a package's TestMain when its tests share one
// ZooKeeper: it starts the cluster into *c, runs the tests, stops the
// cluster and returns the exit code for os.Exit.
func RunTests(m *testing.M, opts zkserver.Options, c **zkserver.Cluster) int {
	var err error
	*c, err = zkserver.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer (*c).Close()
	return m.Run()
}
