package daemon

import (
	"reflect"
	"testing"
)

func TestGoroutineGroups(t *testing.T) {
	const dump = `goroutine 1 [running]:
main.main()
	/src/cmd/main.go:10 +0x1d

goroutine 7 [select, 3 minutes]:
github.com/jobengine/jobengine/engine/executor.(*Executor).worker(0xc000123456, 0x1)
	/src/engine/executor/executor.go:270 +0x5a
created by github.com/jobengine/jobengine/engine/executor.Start in goroutine 1
	/src/engine/executor/executor.go:208 +0x99

goroutine 8 [select]:
github.com/jobengine/jobengine/engine/executor.(*Executor).worker(0xc000654321, 0x2)
	/src/engine/executor/executor.go:270 +0x5a
created by github.com/jobengine/jobengine/engine/executor.Start in goroutine 1
	/src/engine/executor/executor.go:208 +0x99

goroutine 9 [chan receive, 12 minutes, locked to thread]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/lib/go/src/runtime/proc.go:435 +0xce
net/http.(*conn).serve(0xc0001)
	/usr/lib/go/src/net/http/server.go:2000 +0x1
`
	got := goroutineGroups(dump)
	want := []*goroutineGroup{
		{state: "select", longest: "3 minutes", ids: []int{7, 8}, frames: []string{
			"executor.(*Executor).worker executor.go:270", "created by executor.Start executor.go:208"}},
		{state: "running", ids: []int{1}, frames: []string{"main.main main.go:10"}},
		{state: "chan receive, locked to thread", longest: "12 minutes", ids: []int{9}, frames: []string{
			"runtime.gopark proc.go:435", "http.(*conn).serve server.go:2000"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("group %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if w := where(want[2].frames); w != "http.(*conn).serve server.go:2000" {
		t.Errorf("where = %q", w)
	}
}
