package executor

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// TestMetricsLabelUnknownActions: jobs naming actions the executor does not
// have share one label value, however many names they use.
func TestMetricsLabelUnknownActions(t *testing.T) {
	e := newEnv(t)
	m := NewMetrics()
	e.start("metrics", nil, func(c *Config) { c.Metrics = m })
	var unknown []string
	for i := 0; i < 12; i++ {
		unknown = append(unknown, e.add(fmt.Sprintf("random-%d", i), "").ID)
	}
	e.waitState(e.add("echo", `{}`).ID, jobs.Success, 15*time.Second)
	for _, id := range unknown {
		e.waitState(id, jobs.Failed, 15*time.Second)
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "jobengine_jobs_finished_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "action" {
					got[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	var labels []string
	for l := range got {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	if len(got) != 2 || got[UnknownAction] != 12 || got["echo"] != 1 {
		t.Fatalf("finished jobs by action label %v (labels %v), want 12 %q and 1 echo", got, labels, UnknownAction)
	}
}
