package command

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/zkserver"
)

// testZK is the ZooKeeper server every test of this package shares; each
// test works under its own root (testRoot).
var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	// The commands read JOBENGINE_* variables; the caller's must not leak in.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "JOBENGINE_") {
			os.Unsetenv(k)
		}
	}
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

var testRootSeq atomic.Int64

// testRoot returns a --zk-root of its own for a test.
func testRoot(t testing.TB) string {
	return fmt.Sprintf("/t%d-%s", testRootSeq.Add(1), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
}

// run runs the command line in-process (args without the program name) and
// returns what it wrote and its exit code.
func run(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut syncBuffer
	code = Main(append([]string{"jobengine"}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
