//go:build faults

package faults

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

var flagSummarize = flag.String("faults.summarize", "", "TestFaultSummary: a directory whose */report.json are summed up (make test-faults-release)")

// TestFaultSummary sums up the reports of several runs (the release run's
// seeds): jobs, violations, and min / median / max of each recovery figure
// per fault kind. It fails when a report has a violation.
func TestFaultSummary(t *testing.T) {
	if *flagSummarize == "" {
		t.Skip("-faults.summarize names the directory of the reports")
	}
	paths, err := filepath.Glob(filepath.Join(*flagSummarize, "*", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no */report.json under %s", *flagSummarize)
	}
	var reps []*Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		reps = append(reps, &r)
	}
	s := SummarizeReports(reps)
	t.Logf("release run (%s):\n%s", *flagSummarize, s)
	if err := os.WriteFile(filepath.Join(*flagSummarize, "summary.txt"), []byte(s), 0o644); err != nil {
		t.Error(err)
	}
	for i, r := range reps {
		for _, v := range r.Violations {
			t.Errorf("%s: %s", paths[i], v)
		}
	}
}

// SummarizeReports is the release run's table: per report a line, then per
// fault kind (and scope) min / median / max of each recovery figure.
func SummarizeReports(reps []*Report) string {
	var b strings.Builder
	faults, jobs, versions, viol, allowed, forbidden, ticks, dupTicks, midTick, resumed := 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
	for _, r := range reps {
		nAllowed := 0
		for _, o := range r.Overlaps {
			if o.Allowed {
				nAllowed++
			}
		}
		v := 0
		if r.History != nil {
			v = r.History.Versions
		}
		fmt.Fprintf(&b, "seed %d: %d faults, %d jobs (%s), %d reruns, overlaps %d allowed / %d forbidden, ticks %d (%d doubled, %d killed mid-tick, %d resumed), %d versions indexed, %d violations, took %s\n",
			r.Seed, len(r.Faults), r.Jobs.Submitted, counts(r.Jobs.Final), r.Runs.Reruns, nAllowed, len(r.Overlaps)-nAllowed,
			r.Ticks.Ticks, len(r.Ticks.Duplicates), r.Ticks.MidTickKills, r.Ticks.Resumed, v, len(r.Violations), r.Elapsed)
		faults += len(r.Faults)
		jobs += r.Jobs.Submitted
		versions += v
		viol += len(r.Violations)
		allowed += nAllowed
		forbidden += len(r.Overlaps) - nAllowed
		ticks += r.Ticks.Ticks
		dupTicks += len(r.Ticks.Duplicates)
		midTick += r.Ticks.MidTickKills
		resumed += r.Ticks.Resumed
	}
	fmt.Fprintf(&b, "total: %d runs, %d faults, %d jobs, %d job versions indexed, overlaps %d allowed / %d forbidden, %d ticks (%d doubled; %d leaders killed mid-tick, %d half-done ticks completed), %d violations\n",
		len(reps), faults, jobs, versions, allowed, forbidden, ticks, dupTicks, midTick, resumed, viol)

	type figs struct{ probe, rerun, rejoin, leader, tick []time.Duration }
	by := map[string]*figs{}
	var kinds []string
	for _, r := range reps {
		for _, f := range r.Faults {
			k := string(f.Kind)
			if f.Scope != "" {
				k += " (" + f.Scope + ")"
			}
			if by[k] == nil {
				by[k] = &figs{}
				kinds = append(kinds, k)
			}
			g := by[k]
			add := func(dst *[]time.Duration, m Millis) {
				if m >= 0 {
					*dst = append(*dst, time.Duration(m))
				}
			}
			add(&g.probe, f.ProbeRecovery)
			add(&g.rerun, f.RerunAfter)
			add(&g.rejoin, f.Rejoin)
			add(&g.leader, f.NewLeader)
			add(&g.tick, f.NextTick)
		}
	}
	sort.Strings(kinds)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FAULT\tN\tPROBE RUNS AFTER\tIN-FLIGHT RERUN AFTER\tREJOIN\tNEW LEADER\tNEXT TICK")
	n := map[string]int{}
	for _, r := range reps {
		for _, f := range r.Faults {
			k := string(f.Kind)
			if f.Scope != "" {
				k += " (" + f.Scope + ")"
			}
			n[k]++
		}
	}
	for _, k := range kinds {
		g := by[k]
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\n", k, n[k], spread(g.probe), spread(g.rerun), spread(g.rejoin), spread(g.leader), spread(g.tick))
	}
	tw.Flush()
	return b.String()
}

// spread is "min / median / max (n)" of ds, or "-".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	r := func(d time.Duration) time.Duration {
		if d < time.Second {
			return d.Round(time.Millisecond)
		}
		return d.Round(10 * time.Millisecond)
	}
	return fmt.Sprintf("%s / %s / %s (%d)", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}
