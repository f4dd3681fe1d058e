package index_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// A 2xx bulk answer that leaves an entry out: the entry is retried a
// bounded number of times, then moved to failed/ with the answer, and the
// entries behind it flow meanwhile; the stuck entry shows in a warning, the
// pump's stats and the outbox's.
func TestPumpParksAnEntryAnswersLeaveOut(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 0)

	var js []*jobs.Job
	for i := range 6 {
		j := newJob("deploy", i)
		write(t, c, j)
		js = append(js, j)
	}
	stuck := js[2]
	s.Omit(stuck.UUID()) // its job document is left out of every answer

	p := index.NewPump(c, es, log, index.PumpOptions{
		Name: "p", BatchSize: 25, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxMissing: 3,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The others are indexed at the first attempt, whatever the stuck one.
	for _, j := range js {
		if j != stuck {
			indexedAt(t, s, es, j)
		}
	}
	outboxEmpty(t, c)
	failed, err := index.Failed(ctxT(t, wait), c)
	if err != nil || len(failed) != 1 || failed[0] != index.EntryName(stuck.UUID(), 1) {
		t.Fatalf("failed/ = %v, %v; want the stuck entry", failed, err)
	}
	why, err := index.FailedReasonOf(ctxT(t, wait), c, failed[0])
	if err != nil || !strings.Contains(why.Error, "3 answers in a row") || !strings.Contains(why.Answer, `"items"`) || why.Pump != "p" {
		t.Fatalf("why it failed: %+v, %v", why, err)
	}
	if st := p.Stats(); st.Missing != 3 || st.Failed != 1 || st.Indexed != 5 || st.Stuck != 0 {
		t.Fatalf("pump stats: %+v", st)
	}
	entry := zap.String("entry", failed[0])
	if n := obs.FilterLevelExact(zap.WarnLevel).FilterField(entry).Len(); n != 1 {
		t.Fatalf("%d warnings naming the stuck entry, want 1", n)
	}
	if n := obs.FilterLevelExact(zap.ErrorLevel).FilterFieldKey("answer").Len(); n != 1 {
		t.Fatalf("%d errors with the answer, want 1", n)
	}
	if st, err := index.Stats(ctxT(t, wait), c); err != nil || st.Entries != 0 || st.Failed != 1 || !st.Oldest.IsZero() {
		t.Fatalf("outbox stats: %+v, %v", st, err)
	}

	// Fixed: moved back, it is indexed, and its record of why goes too.
	s.Allow(stuck.UUID())
	if n, err := index.RetryFailed(ctxT(t, wait), c); err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v", n, err)
	}
	indexedAt(t, s, es, stuck)
	outboxEmpty(t, c)
	if st, err := index.Stats(ctxT(t, wait), c); err != nil || st.Failed != 0 {
		t.Fatalf("outbox stats after the retry: %+v, %v", st, err)
	}
}

// Stats shows an outbox that does not move: its entries and the oldest's
// age.
func TestOutboxStatsShowsTheOldestEntry(t *testing.T) {
	c := dial(t, "", root(t), 0)
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		write(t, c, newJob("deploy", i))
	}
	st, err := index.Stats(ctxT(t, wait), c)
	if err != nil || st.Entries != 3 || st.Failed != 0 || st.Oldest.Before(before) || st.Oldest.After(time.Now().Add(time.Second)) {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
}

// The outbox's metrics count its entries and failed/.
func TestOutboxCollector(t *testing.T) {
	c := dial(t, "", root(t), 0)
	for i := range 2 {
		write(t, c, newJob("deploy", i))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(index.OutboxCollector(c))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if len(got) != 2 || got["jobengine_index_outbox_entries"] != 2 || got["jobengine_index_failed_entries"] != 0 {
		t.Fatalf("metrics: %v", got)
	}
}

// Templates refused: the pump keeps every entry, says so at error level,
// and indexes once they go in.
func TestPumpWaitsForRefusedTemplates(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	log, obs := logs(t)
	es := newClient(t, s, log)
	c := dial(t, "", root(t), 0)
	j := newJob("deploy", 0)
	write(t, c, j)
	s.RefuseTemplates(http.StatusForbidden, "security_exception", "action [indices:admin/index_template/put] is unauthorized")
	p, _ := runPump(t, c, es, log, "p")
	poll.For(t, wait, 10*time.Millisecond, func() error {
		return errorIf(p.Stats().Retries < 2, "the pump has not retried yet")
	})
	if n := obs.FilterLevelExact(zap.ErrorLevel).Len(); n != 1 {
		t.Fatalf("%d error lines about the refused templates, want 1", n)
	}
	if n := len(childrenOf(t, c, index.OutboxPath(c))); n != 1 {
		t.Fatalf("outbox holds %d entries while the templates are refused, want 1", n)
	}
	s.AcceptTemplates()
	indexedAt(t, s, es, j)
	outboxEmpty(t, c)
}
