package zkconn

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

func TestPackKeepsEveryBatchWithinTheBudget(t *testing.T) {
	var ops []interface{}
	for i := 0; i < 100; i++ {
		ops = append(ops, &zk.CreateRequest{Path: "/a/b", Data: make([]byte, 1000*(i%7))})
	}
	ops = append(ops, &zk.DeleteRequest{Path: "/x"}, &zk.CheckVersionRequest{Path: "/y"}, &zk.SetDataRequest{Path: "/z", Data: []byte("d")})
	const budget = 10_000
	batches, err := Pack(ops, budget)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, b := range batches {
		if OpsBytes(b) > budget {
			t.Fatalf("batch %d takes %d bytes", i, OpsBytes(b))
		}
		if i > 0 && OpsBytes(batches[i-1])+OpBytes(b[0]) <= budget {
			t.Fatalf("batch %d could have joined the one before", i)
		}
		for _, op := range b {
			if op != ops[n] {
				t.Fatalf("operation %d out of order", n)
			}
			n++
		}
	}
	if n != len(ops) {
		t.Fatalf("%d of %d operations packed", n, len(ops))
	}
}

func TestPackRefusesAnOversizeOperation(t *testing.T) {
	big := &zk.CreateRequest{Path: "/big", Data: make([]byte, DefaultBudget)}
	if _, err := Pack([]interface{}{big}, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if err := CheckBudget([]interface{}{big}, 0); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if DefaultBudget >= MaxRequestBytes {
		t.Fatal("the default budget must leave room under ZooKeeper's limit")
	}
}
