package jobs

import "github.com/jobengine/jobengine/engine/action"

// HostSummary is the outcome of a job per host (Ansible's play recap), as
// its action reported it: the hosts ok, changed, failed and unreachable. It
// is bounded (action.MaxSummaryHosts hosts listed by name), so it never
// threatens the document's size budget.
type HostSummary = action.HostSummary
