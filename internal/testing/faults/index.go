package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/internal/check"
	"github.com/jobengine/jobengine/internal/testing/estest"
)

// indexPrefix names the run's indices.
const indexPrefix = "faults-"

// startIndex starts the in-process Elasticsearch the processes index
// into (Config.Index), and makes the harness's own writes go through the
// outbox as every writer's do.
func (h *Harness) startIndex(ctx context.Context) (stop func(), err error) {
	h.es, err = estest.New(estest.Options{RefreshInterval: -1})
	if err != nil {
		return nil, err
	}
	if err := index.EnsurePaths(ctx, h.conn); err != nil {
		h.es.Close()
		return nil, err
	}
	return h.es.Close, nil
}

// indexArgs are the global flags that turn indexing on in a process.
func (h *Harness) indexArgs() []string {
	if h.es == nil {
		return nil
	}
	return []string{"--es-hosts", h.es.URL(), "--es-index-prefix", indexPrefix}
}

// elasticsearchDown stops the in-process Elasticsearch (connections
// refused) for the hold, then starts it again and notes how long indexing
// took to resume and how many outbox entries had piled up.
func (h *Harness) elasticsearchDown(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	e.Target = "elasticsearch"
	e.At = time.Now()
	h.es.Down()
	probe()
	herr := sleep(ctx, f.Hold)
	e.HealAt = time.Now()
	st, _ := index.Stats(ctx, h.conn)
	before := h.es.Stats().BulkItems
	if err := h.es.Up(); err != nil {
		return err
	}
	e.Healed = time.Now()
	if herr != nil {
		return herr
	}
	// The pump backs off up to 30s; how long until it indexes again.
	wctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	err := check.Until(wctx, 20*time.Millisecond, func() error {
		if h.es.Stats().BulkItems == before {
			return fmt.Errorf("nothing indexed since the restart")
		}
		return nil
	})
	if err != nil {
		e.Note = fmt.Sprintf("(%d outbox entries at the restart; indexing not resumed within 45s)", st.Entries)
		return nil
	}
	e.Note = fmt.Sprintf("(%d outbox entries at the restart; indexing again after %s)", st.Entries, time.Since(e.Healed).Round(10*time.Millisecond))
	return nil
}

// drainOutbox runs a pump in the harness until the outbox is empty: the
// distributors, whose leader runs the cluster's pump, are stopped by now.
func (h *Harness) drainOutbox(ctx context.Context) error {
	es, err := index.New(index.Config{Hosts: []string{h.es.URL()}, Prefix: indexPrefix}, nil)
	if err != nil {
		return err
	}
	defer es.Close(context.Background())
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	p := index.NewPump(h.conn, es, nil, index.PumpOptions{Name: "faults-harness", MaxBackoff: time.Second})
	go func() { defer close(done); _ = p.Run(pctx) }()
	defer func() { cancel(); <-done }()
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer dcancel()
	return check.Until(dctx, 200*time.Millisecond, func() error {
		st, err := index.Stats(dctx, h.conn)
		if err != nil {
			return err
		}
		if st.Entries > 0 {
			return fmt.Errorf("%d outbox entries left", st.Entries)
		}
		return nil
	})
}

// history reads what the in-process Elasticsearch holds at the end.
func (h *Harness) history(ctx context.Context) (*History, error) {
	st, err := index.Stats(ctx, h.conn)
	if err != nil {
		return nil, err
	}
	out := &History{Outbox: st.Entries, Failed: st.Failed, Indexed: map[string]int64{}, States: map[string]map[int64]int{}}
	for _, d := range h.es.Docs(indexPrefix + "jobs") {
		var j struct {
			ID      string `json:"id"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal(d.Source, &j); err != nil {
			return nil, fmt.Errorf("faults: indexed job %s: %w", d.ID, err)
		}
		out.Indexed[j.ID] = j.Version
	}
	for _, d := range h.es.Docs(indexPrefix + "job-events") {
		var ev index.Event
		if err := json.Unmarshal(d.Source, &ev); err != nil {
			return nil, fmt.Errorf("faults: indexed event %s: %w", d.ID, err)
		}
		if ev.Type != index.EventState {
			continue
		}
		// State events are "<uuid>-state-<version>" (index.StateEventID).
		i := strings.LastIndexByte(d.ID, '-')
		v, err := strconv.ParseInt(d.ID[i+1:], 10, 64)
		if i < 0 || err != nil || d.ID != index.StateEventID(strings.TrimPrefix(ev.Job, "job/"), v) {
			return nil, fmt.Errorf("faults: state event %s of %s is not named by its version", d.ID, ev.Job)
		}
		if out.States[ev.Job] == nil {
			out.States[ev.Job] = map[int64]int{}
		}
		out.States[ev.Job][v]++
	}
	return out, nil
}
