package zkserver

import (
	"fmt"
	"os"
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

// RunTests is the body of a package's TestMain when its tests share one
// ZooKeeper: it starts the cluster into *c, runs the tests, stops the
// cluster and returns the exit code for os.Exit.
func RunTests(m *testing.M, opts Options, c **Cluster) int {
	var err error
	*c, err = Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer (*c).Close()
	return m.Run()
}
