package distributor

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/schedule"
)

// idSpace is the UUID namespace of the job ids distributors derive.
var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:jobengine:distributor"))

// JobID returns the deterministic id of the job that distributor name
// creates at the tick with id tickID for key (the job's action, target and
// unique key, see TickJobs): a version 5 (SHA-1, name-based) UUID. Every
// instance computes the same id, so creating a tick's job again after a
// failover fails atomically on the existing document instead of making a
// second job.
func JobID(name, tickID, key string) string {
	return "job/" + uuid.NewSHA1(idSpace, []byte(name+"\x00"+tickID+"\x00"+key)).String()
}

// CreatedBy returns the created-by field of the jobs an instance creates:
// the distributor's name and the instance's identifier, e.g.
// "nightly@host1/4242", so a job tells which leader created it.
func CreatedBy(name, identifier string) string {
	if identifier == "" {
		return name
	}
	return name + "@" + identifier
}

// declared returns the jobs of a declared distributor for one tick: one per
// target, or one without a target.
func declared(d Definition) []jobs.NewJob {
	if len(d.Targets) == 0 {
		return []jobs.NewJob{{}}
	}
	out := make([]jobs.NewJob, len(d.Targets))
	for i, t := range d.Targets {
		out[i] = jobs.NewJob{Target: t}
	}
	return out
}

// TickJobs returns the jobs d creates at tick, completed from d: for a
// Generator distributor list is what the generator returned, for a declared
// one it is ignored and the jobs are one per target. Empty fields are
// filled from the definition (action, priority, payload, timeout), the
// unique key by the dedup policy, CreatedBy with identifier, Tick with the
// tick's id, and ID with JobID unless the job has one. The result depends
// only on its arguments: every instance computes the same jobs, the same
// ids.
func TickJobs(d Definition, tick schedule.Tick, identifier string, list []jobs.NewJob) ([]jobs.NewJob, error) {
	d = d.Normalized()
	if d.Generator == nil {
		list = declared(d)
	}
	tickID := tick.ID()
	out := make([]jobs.NewJob, 0, len(list))
	seen := map[string]int{}
	for i, nj := range list {
		if nj.Action == "" {
			nj.Action = d.Action
		}
		if nj.Action == "" {
			return nil, fmt.Errorf("%w: job %d of tick %s has no action (set Action on the job or the definition)", ErrConfig, i, tickID)
		}
		if nj.Priority == 0 {
			nj.Priority = d.Priority
		}
		if len(nj.Payload) == 0 {
			nj.Payload = d.Payload
		}
		if nj.Timeout == 0 {
			nj.Timeout = d.Timeout
		}
		switch d.Dedup {
		case DedupAlways:
			nj.UniqueKey = ""
		default:
			if nj.UniqueKey == "" {
				tmpl := d.UniqueKey
				if tmpl == "" {
					tmpl = DefaultUniqueKey
				}
				nj.UniqueKey = strings.NewReplacer("{action}", nj.Action, "{target}", nj.Target, "{name}", d.Name).Replace(tmpl)
			}
		}
		nj.CreatedBy = CreatedBy(d.Name, identifier)
		nj.Tick = tickID
		if nj.ID == "" {
			key := nj.Action + "\x00" + nj.Target + "\x00" + nj.UniqueKey
			// Two jobs alike in action, target and key still get two ids,
			// told apart by their order among the alike.
			if n := seen[key]; n > 0 {
				seen[key]++
				key = fmt.Sprintf("%s\x00#%d", key, n)
			} else {
				seen[key] = 1
			}
			nj.ID = JobID(d.Name, tickID, key)
		}
		out = append(out, nj)
	}
	return out, nil
}
