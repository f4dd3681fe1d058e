package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/template"
)

// Who sees and does what with jobs:
//
//	see (list, show, logs, events)   system admin or auditor; whoever may read
//	                                 the job's template (a sliced job and
//	                                 every slice with it); whoever launched it
//	cancel                           system admin; execute on its template;
//	                                 whoever launched it
//	relaunch, retry                  execute on its template
//	delete                           system admin; admin on its template
//
// A job the caller may not see is answered 404, as an unknown one.

func (s *Server) jobRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/jobs", handle: s.listJobs},
		{method: "GET", pattern: Prefix + "/jobs/{id}", handle: s.showJob},
		{method: "DELETE", pattern: Prefix + "/jobs/{id}", handle: s.deleteJob},
		{method: "POST", pattern: Prefix + "/jobs/{id}/cancel", handle: s.cancelJob},
		{method: "POST", pattern: Prefix + "/jobs/{id}/relaunch", handle: s.relaunchJob},
		{method: "POST", pattern: Prefix + "/jobs/{id}/retry", handle: s.retryJob},
		{method: "GET", pattern: Prefix + "/jobs/{id}/logs", stream: true, handle: s.jobLogs},
		{method: "GET", pattern: Prefix + "/jobs/{id}/events", stream: true, handle: s.jobEvents},
	}
}

// canSee reports whether the caller may see j.
func canSee(p *access.Principal, j *jobs.Job) bool {
	return p.ReadsAll() || j.CreatedBy != "" && j.CreatedBy == p.Identity() ||
		j.Template != "" && p.Can(access.KindTemplate, j.Template, access.RoleRead) ||
		j.WorkflowTemplate != "" && p.Can(access.KindWorkflow, j.WorkflowTemplate, access.RoleRead)
}

// scope is what the caller may see of the jobs; nil: everything.
func scope(p *access.Principal) *jobs.Scope {
	if p.ReadsAll() {
		return nil
	}
	return &jobs.Scope{Templates: p.Objects(access.KindTemplate, access.RoleRead), CreatedBy: []string{p.Identity()},
		Workflows: p.Objects(access.KindWorkflow, access.RoleRead)}
}

func noSuchJob(id string) error { return notFound("%v: %s", jobs.ErrNotFound, id) }

// jobID reads the job id of the path; a malformed one is a 404 as well.
func (rq *request) jobID() (string, error) {
	raw := rq.r.PathValue("id")
	id, _, err := jobs.ParseID(raw)
	if err != nil {
		return "", notFound("%v: %s is not a job id (want a uuid or job/<uuid>)", jobs.ErrNotFound, raw)
	}
	return id, nil
}

// visibleJob reads a job the caller may see.
func (rq *request) visibleJob() (history.Job, error) {
	id, err := rq.jobID()
	if err != nil {
		return history.Job{}, err
	}
	j, err := rq.s.history.Get(rq.ctx, id)
	if isNotFound(err) {
		return j, noSuchJob(id)
	}
	if err != nil {
		return j, err
	}
	if !canSee(rq.p, j.Job) {
		return j, noSuchJob(id)
	}
	return j, nil
}

var jobListParams = []string{"state", "action", "template", "workflow", "slices-of", "sliced", "slices", "launch-type", "since", "until", "search"}

// jobPage is the answer of GET /jobs.
type jobPage struct {
	Items []history.Job `json:"items"`
	Next  string        `json:"next,omitempty"`
	// HistoryError says why the page holds live jobs only.
	HistoryError string `json:"history-error,omitempty"`
}

func (s *Server) listJobs(rq *request) error {
	if err := rq.query(append(slices.Clone(listParamNames), jobListParams...)...); err != nil {
		return err
	}
	lp, err := rq.parseList("-created")
	if err != nil {
		return err
	}
	q := history.Query{Limit: lp.limit, Action: rq.param("action"), Text: strings.TrimSpace(rq.param("search"))}
	if len(q.Text) > history.MaxText {
		return badField("search", "search is %d bytes long: search for at most %d", len(q.Text), history.MaxText)
	}
	if v := rq.param("cursor"); v != "" {
		c, err := history.ParseCursor(v)
		if err != nil {
			return badField("cursor", "cursor=%q is not a cursor of this list: pass the \"next\" of the previous page", v)
		}
		q.After = &c
	}
	if v := rq.param("state"); v != "" {
		st, err := jobs.ParseState(v)
		if err != nil {
			return badField("state", "%v", err)
		}
		q.State = st
	}
	if err := readLaunchFilter(rq, &q.Launch); err != nil {
		return err
	}
	q.Launch.Within = scope(rq.p)
	page, err := s.history.List(rq.ctx, q)
	if err != nil {
		return err
	}
	out := jobPage{Items: page.Jobs}
	if page.Next != nil {
		out.Next = page.Next.String()
	}
	if page.HistoryErr != nil {
		out.HistoryError = page.HistoryErr.Error()
	}
	return rq.reply(http.StatusOK, out)
}

// readLaunchFilter reads the job list's launch filters.
func readLaunchFilter(rq *request, f *jobs.LaunchFilter) error {
	f.Template = rq.param("template")
	if f.Template != "" {
		if err := configstore.ValidName("template", f.Template); err != nil {
			return badField("template", "%v", err)
		}
	}
	f.Workflow = rq.param("workflow")
	if f.Workflow != "" {
		if err := configstore.ValidName("workflow", f.Workflow); err != nil {
			return badField("workflow", "%v", err)
		}
	}
	var err error
	if f.Sliced, err = rq.boolParam("sliced"); err != nil {
		return err
	}
	if f.Slices, err = rq.boolParam("slices"); err != nil {
		return err
	}
	if f.Sliced && f.Slices {
		return badField("slices", "sliced and slices: a job is a container or a slice, not both")
	}
	if v := rq.param("slices-of"); v != "" {
		id, _, err := jobs.ParseID(v)
		if err != nil {
			return badField("slices-of", "slices-of=%q is not a job id", v)
		}
		f.SlicesOf = id
	}
	if v := rq.param("launch-type"); v != "" {
		t, err := jobs.ParseLaunchType(v)
		if err != nil {
			return badField("launch-type", "%v", err)
		}
		f.LaunchType = t
	}
	for _, k := range []string{"since", "until"} {
		v := rq.param(k)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badField(k, "%s=%q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", k, v)
		}
		if k == "since" {
			f.Since = t
		} else {
			f.Until = t
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return badField("until", "until is before since")
	}
	return nil
}

func (s *Server) showJob(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	return rq.reply(http.StatusOK, j)
}

// canceledJob is the answer of a cancel: the job after it, and whether its
// executor was asked to stop it (a RUNNING job).
type canceledJob struct {
	history.Job
	CancelRequested bool `json:"cancel-requested"`
}

func (s *Server) cancelJob(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	p := rq.p
	allowed := p.IsAdmin() || j.CreatedBy == p.Identity() || j.Template != "" && p.Can(access.KindTemplate, j.Template, access.RoleExecute) ||
		j.IsWorkflow() && canRunWorkflowJob(p, j.Job)
	if !allowed && j.IsWorkflow() {
		return forbidden("canceling %s needs the execute role on workflow %q (or to have launched it)", j.ID, j.WorkflowTemplate)
	}
	if !allowed {
		return forbidden("canceling %s needs the execute role on template %q (or to have launched it)", j.ID, j.Template)
	}
	if j.Source != history.Live {
		return errorf(http.StatusConflict, "%v: %s is %s", jobs.ErrFinal, j.ID, j.State)
	}
	c, err := s.cfg.Jobs.CancelJob(rq.ctx, j.ID, p.Identity())
	if errors.Is(err, jobs.ErrFinal) {
		return errorf(http.StatusConflict, "%s is already %s; a job in a final state cannot be canceled", j.ID, c.State)
	}
	if err != nil {
		return err
	}
	return rq.reply(http.StatusOK, canceledJob{history.Job{Job: c, Source: history.Live}, c.State == jobs.Running})
}

// launched is the answer of a launch or relaunch: the job, and the ids of
// its slices when it is sliced.
type launched struct {
	Job    *jobs.Job `json:"job"`
	Slices []string  `json:"slices,omitempty"`
}

func launchedOf(res *template.Result) launched {
	out := launched{Job: res.Job}
	for _, sl := range res.Slices {
		out.Slices = append(out.Slices, sl.ID)
	}
	return out
}

func (s *Server) relaunchJob(rq *request) error {
	if err := rq.query("from"); err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	if j.IsWorkflow() {
		return s.relaunchWorkflowJob(rq, j.Job, rq.param("from"))
	}
	if rq.param("from") != "" {
		return badField("from", "from names a node of a workflow job; %s is not one", j.ID)
	}
	if j.Template == "" {
		if !rq.p.IsAdmin() {
			return forbidden("%s was not launched from a template; only a system administrator may try to relaunch it", j.ID)
		}
	} else if !rq.p.Can(access.KindTemplate, j.Template, access.RoleExecute) {
		return forbidden("relaunching %s needs the execute role on template %s", j.ID, j.Template)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	res, err := s.launcher.Relaunch(rq.ctx, j.ID, rq.p.Identity())
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launchedOf(res))
}

// deleted is the answer of DELETE /jobs/{id}.
type deleted struct {
	Deleted []string `json:"deleted"`
}

func (s *Server) deleteJob(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	if !(rq.p.IsAdmin() || j.Template != "" && rq.p.Can(access.KindTemplate, j.Template, access.RoleAdmin)) {
		return forbidden("deleting %s needs the admin role on its template (or to be a system administrator)", j.ID)
	}
	if !j.State.Final() {
		return errorf(http.StatusConflict, "%v: %s is %s; only a final job can be deleted (cancel it first)", jobs.ErrNotFinal, j.ID, j.State)
	}
	ids := append([]string{j.ID}, j.NestedJobs...)
	if es := s.cfg.Index; es != nil {
		pending, err := index.Pending(rq.ctx, s.cfg.Conn)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, uid, err := jobs.ParseID(id); err == nil && pending[uid] {
				return errorf(http.StatusConflict, "%s has versions not yet indexed into Elasticsearch; try again once the index pump has sent them", id)
			}
		}
	}
	out := deleted{Deleted: []string{}}
	if j.Source == history.Live {
		d, err := s.cfg.Jobs.DeleteJob(rq.ctx, j.ID)
		out.Deleted = append(out.Deleted, d...)
		if err != nil {
			return err
		}
	} else {
		out.Deleted = ids
	}
	if es := s.cfg.Index; es != nil {
		if err := es.DeleteJobs(rq.ctx, ids...); err != nil {
			return fmt.Errorf("deleted from ZooKeeper, but not from the history (send the same request again): %w", err)
		}
	}
	return rq.reply(http.StatusOK, out)
}

// ensureJobs creates the job store's directories (idempotent) before a
// launch: the first job of a fresh cluster may come from the API.
func (s *Server) ensureJobs(ctx context.Context) error {
	if err := s.cfg.Jobs.Ensure(ctx); err != nil {
		return err
	}
	if s.cfg.Index != nil {
		return index.EnsurePaths(ctx, s.cfg.Conn)
	}
	return nil
}

// wantsStream reports whether the caller asked for server-sent events.
func (rq *request) wantsStream(follow bool) bool {
	return follow || strings.Contains(rq.r.Header.Get("Accept"), "text/event-stream")
}
