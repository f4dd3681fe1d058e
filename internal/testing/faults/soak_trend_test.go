package faults

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func samplesOf(proc string, rss []int64, gor []int) []DaemonSample {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []DaemonSample
	for i := range rss {
		out = append(out, DaemonSample{At: t0.Add(time.Duration(i) * time.Minute), Process: proc, RSS: rss[i], Goroutines: gor[i]})
	}
	return out
}

func TestTrendsFlat(t *testing.T) {
	const mb = 1 << 20
	// Warm-up in the first quarter, noise and one spike after: flat.
	rss := []int64{10 * mb, 30 * mb, 40 * mb, 41 * mb, 42 * mb, 40 * mb, 90 * mb, 43 * mb, 41 * mb, 44 * mb, 42 * mb, 43 * mb}
	gor := []int{20, 60, 80, 82, 81, 80, 200, 85, 82, 84, 83, 81}
	tr := Trends(samplesOf("x1#1", rss, gor))
	if len(tr) != 2 {
		t.Fatalf("trends: %+v, want rss and goroutines of x1#1", tr)
	}
	for _, x := range tr {
		if !x.Flat {
			t.Errorf("%s judged not flat: %+v", x.Metric, x)
		}
	}
}

func TestTrendsGrowth(t *testing.T) {
	const mb = 1 << 20
	var rss []int64
	var gor []int
	for i := 0; i < 16; i++ {
		rss = append(rss, int64(40+4*i)*mb) // 4 MB a minute
		gor = append(gor, 80+10*i)          // 10 goroutines a minute
	}
	for _, x := range Trends(samplesOf("x2#1", rss, gor)) {
		if x.Flat {
			t.Errorf("%s judged flat despite steady growth: %+v", x.Metric, x)
		}
	}
}

func TestTrendsTooFewSamples(t *testing.T) {
	// A process with fewer samples than FlatMinSamples is not judged;
	// goroutines unknown (-1) make no series.
	ds := samplesOf("d1#3", []int64{1, 2, 3}, []int{-1, -1, -1})
	if tr := Trends(ds); len(tr) != 0 {
		t.Errorf("trends of 3 samples: %+v, want none", tr)
	}
}

func TestPlanCycle(t *testing.T) {
	p, err := NewPlan(Config{Seed: 3, Duration: 10 * time.Minute, Faults: 19, Cycle: true, Distributor: true, Index: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Faults) != 19 {
		t.Fatalf("%d faults, want 19", len(p.Faults))
	}
	// The kinds that apply come in turn: the first k are distinct, then
	// each fault repeats the kind k before it.
	seen := map[Kind]bool{}
	k := 0
	for _, f := range p.Faults {
		if seen[f.Kind] {
			break
		}
		seen[f.Kind] = true
		k++
	}
	if k < 2 {
		t.Fatalf("the plan starts with %d distinct kinds", k)
	}
	for i, f := range p.Faults {
		if i >= k && f.Kind != p.Faults[i-k].Kind {
			t.Errorf("fault %d is %s, want %s (the kinds in turn, %d of them)", i+1, f.Kind, p.Faults[i-k].Kind, k)
		}
		if i > 0 && f.At <= p.Faults[i-1].At {
			t.Errorf("fault %d at %s, not after fault %d at %s", i+1, f.At, i, p.Faults[i-1].At)
		}
	}
}

func TestCrashLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d2-1.log")
	log := `{"level":"info","msg":"panic: not at the start of a line"}
panic: send on closed channel

goroutine 17536 [running]:
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := crashLines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "panic: send on closed channel" {
		t.Errorf("crash lines %q, want the runtime's panic line only", got)
	}
}
