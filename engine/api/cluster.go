package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/maintenance"
)

// The cluster's overview (GET /cluster) and its activity over the last
// hour (GET /cluster/activity), for the dashboard and for anyone
// authenticated. The overview holds no job; the activity counts only the
// jobs the caller may see.

func (s *Server) clusterRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/cluster", handle: s.showCluster},
		{method: "GET", pattern: Prefix + "/cluster/activity", handle: s.clusterActivity},
	}
}

// Controller is a controller in the maintenance election.
type Controller struct {
	Name string `json:"name"`
	// Leader says it runs the leader-run services (scheduler, reaper,
	// schedules, index pump, cleanup).
	Leader bool `json:"leader"`
	// Since is when it joined the election.
	Since time.Time `json:"since"`
}

// QueueDepth counts the jobs waiting and running, from the queues'
// counts (never by reading job documents, so that polling it costs the
// same with a million live jobs as with ten).
type QueueDepth struct {
	// Pending jobs wait for the scheduler (the index of PENDING jobs).
	Pending int `json:"pending"`
	// Queued counts the entries of the shared queue and of the executors'
	// direct queues that no executor holds yet; Running those held (the
	// job runs, or is about to). Containers of sliced jobs and workflow
	// jobs hold no entry and are not counted.
	Queued  int `json:"queued"`
	Running int `json:"running"`
	// Entries counts the entries of the shared queue.
	Entries int `json:"shared-queue-entries"`
}

// ClusterView is the answer of GET /cluster.
type ClusterView struct {
	// Controller names the controller that answered.
	Controller string `json:"controller,omitempty"`
	// ActiveController names the elected controller; empty when none is.
	ActiveController string          `json:"active-controller"`
	Controllers      []Controller    `json:"controllers"`
	Instances        []Instance      `json:"instances"`
	InstanceGroups   []InstanceGroup `json:"instance-groups"`
	Queue            QueueDepth      `json:"queue"`
	// Quarantined counts the quarantine records of invalid job documents.
	Quarantined int `json:"quarantined"`
}

func (s *Server) controllers(ctx context.Context) ([]Controller, error) {
	cs, err := election.New(s.cfg.Conn, maintenance.ElectionName, "", nil).Contenders(ctx)
	if err != nil && !errors.Is(err, election.ErrNoLeader) {
		return nil, err
	}
	out := []Controller{}
	for i, c := range cs {
		out = append(out, Controller{Name: c.Identifier, Leader: i == 0, Since: c.Created})
	}
	return out, nil
}

// showCluster answers from counts and bounded reads: the election's
// contenders, the executors (their records, heartbeats and direct
// queues, as GET /instances reads them), the shared queue's entries,
// and the sizes of the index of PENDING jobs and of the quarantine.
func (s *Server) showCluster(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	out := ClusterView{Controller: s.cfg.Identifier}
	var err error
	if out.Controllers, err = s.controllers(rq.ctx); err != nil {
		return err
	}
	if len(out.Controllers) > 0 {
		out.ActiveController = out.Controllers[0].Name
	}
	c, err := s.cluster(rq.ctx)
	if err != nil {
		return err
	}
	out.Instances = make([]Instance, 0, len(c.Executors))
	for _, e := range c.Executors {
		out.Instances = append(out.Instances, instanceOf(e))
		for _, p := range e.Placed {
			if p.Taken {
				out.Queue.Running++
			} else {
				out.Queue.Queued++
			}
		}
	}
	sort.Slice(out.Instances, func(a, b int) bool { return out.Instances[a].Name < out.Instances[b].Name })
	out.InstanceGroups = groups(out.Instances)
	st, err := s.cfg.Jobs.Queue().Stats(rq.ctx)
	if err != nil {
		return err
	}
	out.Queue.Entries = st.Entries
	out.Queue.Running += st.Taken
	out.Queue.Queued += st.Entries - st.Taken
	if out.Queue.Pending, err = s.cfg.Jobs.PendingCount(rq.ctx); err != nil {
		return err
	}
	if out.Quarantined, err = s.cfg.Jobs.QuarantineCount(rq.ctx); err != nil {
		return err
	}
	return rq.reply(http.StatusOK, out)
}

// Minute is one minute of the cluster's activity.
type Minute struct {
	// Time is the start of the minute.
	Time time.Time `json:"time"`
	// Started and Finished count the jobs that started (first attempt) and
	// reached a final state in the minute.
	Started  int `json:"started"`
	Finished int `json:"finished"`
	// Waiting counts the jobs created and not yet started at the end of
	// the minute (pending or queued): the queue's depth.
	Waiting int `json:"waiting"`
}

// Activity is the answer of GET /cluster/activity.
type Activity struct {
	Minutes []Minute `json:"minutes"`
	// Jobs is how many jobs the figures are made of; Truncated says that
	// more were created in the window than were read (MaxActivityJobs).
	Jobs      int  `json:"jobs"`
	Truncated bool `json:"truncated,omitempty"`
	// HistoryError says why only live jobs were counted.
	HistoryError string `json:"history-error,omitempty"`
}

// MaxActivityJobs bounds the jobs read for GET /cluster/activity.
const MaxActivityJobs = 20_000

// clusterActivity counts, per minute of the last hour (minutes=1–1440),
// the jobs started and finished and the jobs waiting, from the job
// documents (live ones and the history's): the jobs created in the window
// and the live ones created before it.
func (s *Server) clusterActivity(rq *request) error {
	if err := rq.query("minutes"); err != nil {
		return err
	}
	n := 60
	if v := rq.param("minutes"); v != "" {
		m, err := strconv.Atoi(v)
		if err != nil || m < 1 || m > 1440 {
			return badField("minutes", "minutes=%q: want a number of minutes from 1 to 1440", v)
		}
		n = m
	}
	now := time.Now()
	end := now.Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-time.Duration(n) * time.Minute)
	seen := map[string]*jobs.Job{}
	out := Activity{Minutes: make([]Minute, n)}
	sc := scope(rq.p)
	err := s.cfg.Jobs.Scan(rq.ctx, func(j *jobs.Job, _ int32) {
		if sc == nil || sc.Match(j) {
			seen[j.ID] = j
		}
	}, func(*jobs.BadDocumentError) {})
	if err != nil {
		return err
	}
	q := history.Query{Limit: 1000, Launch: jobs.LaunchFilter{Since: start, Within: sc}}
	for len(seen) < MaxActivityJobs {
		page, err := s.history.List(rq.ctx, q)
		if err != nil {
			return err
		}
		if page.HistoryErr != nil {
			out.HistoryError = page.HistoryErr.Error()
		}
		for _, j := range page.Jobs {
			if _, ok := seen[j.ID]; !ok {
				seen[j.ID] = j.Job
			}
		}
		if page.Next == nil {
			break
		}
		q.After = page.Next
		if len(seen) >= MaxActivityJobs {
			out.Truncated = true
		}
	}
	for i := range out.Minutes {
		out.Minutes[i].Time = start.Add(time.Duration(i) * time.Minute)
	}
	slot := func(t time.Time) int {
		if t.Before(start) || !t.Before(end) {
			return -1
		}
		return int(t.Sub(start) / time.Minute)
	}
	for _, j := range seen {
		if j.IsContainer() {
			continue // a container runs nothing itself
		}
		out.Jobs++
		if j.Started != nil {
			if k := slot(*j.Started); k >= 0 {
				out.Minutes[k].Started++
			}
		}
		var finished time.Time
		if j.State.Final() {
			finished = j.TimeOfStatusChange
			if k := slot(finished); k >= 0 {
				out.Minutes[k].Finished++
			}
		}
		// Waiting from creation until it started (or ended unstarted).
		until := finished
		if j.Started != nil {
			until = *j.Started
		}
		for i := range out.Minutes {
			t := out.Minutes[i].Time.Add(time.Minute)
			if t.After(now) {
				t = now
			}
			if !j.Created.After(t) && (until.IsZero() || until.After(t)) {
				out.Minutes[i].Waiting++
			}
		}
	}
	return rq.reply(http.StatusOK, out)
}
