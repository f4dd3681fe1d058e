package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the report as a table for people.
func (r *Report) Summary() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "fault run: seed %d, %d executors × %d threads, session timeout %s, workload %s, took %s\n",
		r.Seed, c.Executors, c.Threads, c.SessionTimeout, c.Duration, r.Elapsed)
	fmt.Fprintf(&b, "jobs:      %d submitted (%d workload, %d probes, %d by the distributor, %d by the schedule, %d workflow and node jobs, %d sliced containers and slices); placed by the scheduler: %d; final: %s; left unfinished: %d\n",
		r.Jobs.Submitted, r.Jobs.Workload, r.Jobs.Probes, r.Jobs.Distributor, r.Jobs.Scheduled, r.Jobs.Workflow, r.Jobs.Sliced, r.Jobs.Placed, counts(r.Jobs.Final), len(r.Jobs.NotFinal))
	fmt.Fprintf(&b, "runs:      %d; reruns: %d on %d jobs, highest attempt %d; killed mid-run: %d; stopped on session loss: %d\n",
		r.Runs.Total, r.Runs.Reruns, r.Runs.JobsRerun, r.Runs.MaxAttempt, r.Runs.Unfinished, r.Runs.Canceled)
	if n := len(r.Jobs.SliceEndSpreads); r.Jobs.Containers != nil {
		spread := "-"
		if n > 0 {
			sp := r.Jobs.SliceEndSpreads
			ms := func(m Millis) time.Duration { return time.Duration(m).Round(time.Millisecond) }
			spread = fmt.Sprintf("%s / %s / %s", ms(sp[0]), ms(sp[n/2]), ms(sp[n-1]))
		}
		fmt.Fprintf(&b, "sliced:    containers final: %s; their slices' runs ended within (min / median / max): %s\n", counts(r.Jobs.Containers), spread)
	}
	allowed := 0
	for _, o := range r.Overlaps {
		if o.Allowed {
			allowed++
		}
	}
	fmt.Fprintf(&b, "overlaps:  %d allowed (first executor frozen past its session), %d forbidden\n", allowed, len(r.Overlaps)-allowed)
	if c.Distributor {
		fmt.Fprintf(&b, "ticks:     %d, of which %d made more than one job; leaders killed mid-tick (job created, tick not recorded): %d; ticks a new leader found half done and completed: %d\n",
			r.Ticks.Ticks, len(r.Ticks.Duplicates), r.Ticks.MidTickKills, r.Ticks.Resumed)
	}
	if h := r.History; h != nil {
		fmt.Fprintf(&b, "history:   %d job versions indexed, each with its state event exactly once; outbox left %d, refused %d\n",
			h.Versions, h.Outbox, h.Failed)
	}
	if o := r.Occurrences; o != nil {
		fmt.Fprintf(&b, "schedule:  %d occurrences due, %d launched once, %d launched more than once, %d missed; dropped by catch-up while no leader ran: %d\n",
			o.Due, o.Launched, len(o.Doubled), len(o.Missed), o.Dropped)
	}
	if n := r.Notices; n != nil {
		dups := ""
		if len(n.DuplicateKeys) > 0 {
			dups = " (" + strings.Join(n.DuplicateKeys, ", ") + ")"
		}
		fmt.Fprintf(&b, "notices:   %d expected, %d delivered at least once, in %d deliveries; duplicates: %d%s; left in the outbox %d, parked %d\n",
			n.Expected, n.Delivered, n.Deliveries, n.Duplicates, dups, n.Pending, n.Parked)
	}
	if m := r.Mail; m != nil {
		dups := ""
		if len(m.DuplicateKeys) > 0 {
			dups = " (" + strings.Join(m.DuplicateKeys, ", ") + ")"
		}
		fmt.Fprintf(&b, "e-mails:   %d expected, %d delivered at least once, in %d e-mails; duplicates: %d%s\n",
			m.Expected, m.Delivered, m.Deliveries, m.Duplicates, dups)
	}
	fmt.Fprintf(&b, "faults:    %d injected\n", len(r.Faults))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tAT\tFAULT\tTARGET\tHELD\tPROBE RUNS AFTER\tIN-FLIGHT\tRERUN\tRERUN AFTER\tREJOIN\tNEW LEADER\tNEXT TICK\tSTOPPED RUNS\tNOTE")
	for _, f := range r.Faults {
		held := "-"
		if !f.HealAt.IsZero() {
			held = f.Healed.Sub(f.At).Round(10 * time.Millisecond).String()
		}
		kind := string(f.Kind)
		if f.Scope != "" {
			kind += " (" + f.Scope + ")"
		}
		inflight, rerun := "-", "-"
		if f.Kind.executorFault() || f.Kind.remoteFault() {
			inflight, rerun = fmt.Sprint(f.InFlight), fmt.Sprint(f.Rerun)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", f.N, f.Offset, kind, f.Target, held,
			f.ProbeRecovery, inflight, rerun, f.RerunAfter, f.Rejoin, f.NewLeader, f.NextTick, f.Canceled, f.Note)
	}
	tw.Flush()
	for _, o := range r.Overlaps {
		verdict := "ALLOWED"
		if !o.Allowed {
			verdict = "FORBIDDEN"
		}
		fmt.Fprintf(&b, "overlap %s: job %s: %s\n", verdict, o.Job, o.Evidence)
	}
	for _, u := range r.Jobs.Unsuccessful {
		fmt.Fprintf(&b, "not successful: %s\n", u)
	}
	if len(r.Violations) == 0 {
		b.WriteString("verdict:   no job lost, none run twice at once, no tick doubled")
		if r.History != nil {
			b.WriteString(", every job version in the history once")
		}
		if r.Occurrences != nil {
			b.WriteString(", every occurrence launched once")
		}
		if r.Notices != nil {
			b.WriteString(", every notice delivered")
		}
		if r.Mail != nil {
			b.WriteString(" (e-mails too)")
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "verdict:   %d VIOLATIONS\n", len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "  - %s\n", v)
		}
	}
	return b.String()
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// WriteJSON writes the report to path, indented.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
