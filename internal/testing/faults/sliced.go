package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/template"
)

// Sliced jobs in the workload: launches of a template with a slice count
// over a small inventory, so that a container and its slices live
// through the faults. Every slice sleeps the same time, so the slices of
// a launch end at nearly the same moment: the container's state, written
// by whoever finishes a slice, must come out exact anyway. With the
// scheduler in the run (Config.Scheduled > 0) the template names the
// default instance group, so the maintenance leader places the slices.

// Names and sizes of the objects the sliced launches use.
const (
	slicedInventory = "faults-hosts"
	slicedTemplate  = "faults-sliced"
	// SlicedHosts is the inventory's size, SlicedCount the template's
	// slice count: slices of 2, 2 and 1 hosts.
	SlicedHosts = 5
	SlicedCount = 3
	slicedSleep = 600 // ms, every slice
)

// setUpSliced stores the inventory and the sliced template.
func (h *Harness) setUpSliced(ctx context.Context) error {
	c := &inventory.Content{}
	for i := 1; i <= SlicedHosts; i++ {
		c.Hosts = append(c.Hosts, inventory.Host{Name: fmt.Sprintf("host%d", i), Enabled: true})
	}
	if err := inventory.NewStore(h.conn, inventory.Config{}).Create(ctx, &inventory.Inventory{Name: slicedInventory, Kind: inventory.Static}, c); err != nil {
		return fmt.Errorf("faults: the sliced launches' inventory: %w", err)
	}
	payload, _ := json.Marshal(Payload{SleepMS: slicedSleep})
	t := &template.Template{Name: slicedTemplate, Action: RecordAction, Payload: payload, Priority: workloadPriority,
		Inventory: slicedInventory, SliceCount: SlicedCount}
	if h.Plan.Config.Scheduled > 0 {
		t.InstanceGroups = []string{jobs.DefaultGroup}
	}
	if err := template.NewStore(h.conn, nil).Create(ctx, t); err != nil {
		return fmt.Errorf("faults: the sliced template: %w", err)
	}
	return nil
}

// submitSliced launches the plan's sliced jobs at even times over the
// workload, halfway between the workflows' launches, each with a fixed
// container id (a launch whose answer was lost is found on the retry).
func (h *Harness) submitSliced(ctx context.Context) error {
	cfg := h.Plan.Config
	l := &template.Launcher{Jobs: h.store, Templates: template.NewStore(h.conn, nil),
		Inventories: inventory.NewStore(h.conn, inventory.Config{})}
	for i := 0; i < cfg.Sliced; i++ {
		at := cfg.Duration * time.Duration(2*i+1) / time.Duration(2*cfg.Sliced)
		if err := sleep(ctx, time.Until(h.start.Add(at))); err != nil {
			return err
		}
		id, _ := jobs.NewID()
		for attempt := 0; ; attempt++ {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := l.Launch(cctx, template.Request{Template: slicedTemplate, CreatedBy: "faults-sliced", ID: id})
			cancel()
			if errors.Is(err, jobs.ErrDuplicate) {
				err = nil
			}
			if err == nil {
				h.mu.Lock()
				h.submitted[id] = Submission{Source: SourceSliced, At: time.Now()}
				h.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if attempt%20 == 0 {
				h.logf("launching sliced job %s failed, retrying: %v", id, err)
			}
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// wantContainer is the state a sliced container's final slices imply, as
// the engine's contract states it: CANCELED when its cancel was asked
// for, else FAILED when a slice failed or was canceled (or is missing:
// nil), else SUCCESS. It is written out here, not taken from the engine,
// so the checker tests the engine's derivation rather than repeat it.
func wantContainer(cancelRequested bool, slices []*jobs.Job) jobs.State {
	bad := false
	for _, s := range slices {
		if s == nil || s.State != jobs.Success {
			bad = true
		}
	}
	switch {
	case cancelRequested:
		return jobs.Canceled
	case bad:
		return jobs.Failed
	}
	return jobs.Success
}

// checkSliced: every sliced launch of the workload is a sliced container
// with SlicedCount slices, each a final job that names the container and
// its place in it, and the container is final in the state its slices
// imply.
func checkSliced(r *Report, in Input, docs map[string]*jobs.Job, runsByJob map[string][]Run) {
	for id, sub := range in.Submitted {
		if sub.Source != SourceSliced {
			continue
		}
		c, ok := docs[id]
		switch {
		case !ok:
			continue // reported as lost by checkJobs
		case !c.IsContainer() || !c.Sliced:
			r.violate("sliced job %s is not a sliced container (kind %q, sliced %v)", id, c.Kind, c.Sliced)
			continue
		case c.SliceCount != SlicedCount || len(c.NestedJobs) != c.SliceCount:
			r.violate("sliced job %s: slice count %d and %d slices, want %d of each", id, c.SliceCount, len(c.NestedJobs), SlicedCount)
		}
		slices := make([]*jobs.Job, len(c.NestedJobs))
		allFinal := true
		for k, sid := range c.NestedJobs {
			s, ok := docs[sid]
			if !ok {
				r.violate("sliced job %s: slice %d (%s) has no document", id, k+1, sid)
				continue
			}
			slices[k] = s
			if s.ParentJob != id || s.SliceNumber != k+1 || s.SliceCount != c.SliceCount {
				r.violate("sliced job %s: slice %s is slice %d of %d of %q, want %d of %d of it", id, sid, s.SliceNumber, s.SliceCount, s.ParentJob, k+1, c.SliceCount)
			}
			if !s.State.Final() {
				allFinal = false // reported as left unfinished by checkJobs
			}
		}
		if !c.State.Final() {
			continue // reported as left unfinished by checkJobs
		}
		if !allFinal {
			r.violate("sliced job %s ended %s while a slice of it is not final", id, c.State)
			continue
		}
		if want := wantContainer(c.CancelRequested, slices); c.State != want {
			r.violate("sliced job %s ended %s (%s), but its slices imply %s", id, c.State, c.StatusMessage, want)
		}
		if r.Jobs.Containers == nil {
			r.Jobs.Containers = map[string]int{}
		}
		r.Jobs.Containers[string(c.State)]++
		if spread, ok := endSpread(slices, runsByJob); ok {
			r.Jobs.SliceEndSpreads = append(r.Jobs.SliceEndSpreads, spread)
		}
	}
	sort.Slice(r.Jobs.SliceEndSpreads, func(i, k int) bool { return r.Jobs.SliceEndSpreads[i] < r.Jobs.SliceEndSpreads[k] })
}

// endSpread is how far apart the completed runs that made slices SUCCESS
// ended; false unless every slice succeeded with such a run.
func endSpread(slices []*jobs.Job, runsByJob map[string][]Run) (Millis, bool) {
	var first, last int64
	for _, s := range slices {
		if s == nil || s.State != jobs.Success {
			return 0, false
		}
		var end int64
		for _, run := range runsByJob[s.ID] {
			if run.Attempt == s.Attempt && run.Outcome == OutcomeDone {
				end = run.End
			}
		}
		if end == 0 {
			return 0, false
		}
		if first == 0 || end < first {
			first = end
		}
		last = max(last, end)
	}
	return Millis(time.Duration(last - first)), len(slices) > 0
}
