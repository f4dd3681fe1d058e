package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
)

// Schedules launch a template, a workflow template, or a plain job, at
// each occurrence of a cron expression or an RRULE (engine/schedules; the
// leader runs them). Who sees and does what:
//
//	see        system admin or auditor; read on the template (or workflow
//	           template) it launches
//	create,    system admin; execute on the template or workflow template
//	change,    it launches (a schedule launches it as its user could); a
//	delete     schedule of a plain job (any action): system admin only
//
// A schedule the caller may not see is answered 404.

func (s *Server) scheduleRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/schedules", handle: s.listSchedules},
		{method: "POST", pattern: Prefix + "/schedules", handle: s.createSchedule},
		{method: "GET", pattern: Prefix + "/schedules/{name}", handle: s.showSchedule},
		{method: "PATCH", pattern: Prefix + "/schedules/{name}", handle: s.patchSchedule},
		{method: "DELETE", pattern: Prefix + "/schedules/{name}", handle: s.deleteSchedule},
	}
}

// NextRuns is how many next occurrences a schedule shows.
const NextRuns = 3

// ScheduleView is a schedule as the API shows it.
type ScheduleView struct {
	*schedules.Schedule
	// Rule describes the rule ("cron 0 9 * * 1 (Europe/Paris)").
	Rule string `json:"rule"`
	// NextRuns are the next occurrences while it is enabled.
	NextRuns []time.Time `json:"next-runs"`
	// LastRun is the last occurrence handled, when there is one.
	LastRun *schedules.State `json:"last-run,omitempty"`
}

func (s *Server) scheduleView(rq *request, sc *schedules.Schedule) (ScheduleView, error) {
	v := ScheduleView{Schedule: sc, Rule: sc.Rule(), NextRuns: []time.Time{}}
	if sc.Enabled {
		after := time.Now()
		if sc.Since.After(after) {
			after = sc.Since
		}
		if next := sc.Next(after, NextRuns); next != nil {
			v.NextRuns = next
		}
	}
	st, _, err := s.schedules.ReadState(rq.ctx, sc.Name)
	if err != nil {
		return v, err
	}
	if st.UID == sc.UID && st.Tick != "" {
		v.LastRun = &st
	}
	return v, nil
}

// canSeeSchedule and canWriteSchedule say what the caller may do with sc.
func canSeeSchedule(p *access.Principal, sc *schedules.Schedule) bool {
	return p.ReadsAll() || sc.Launch.Template != "" && p.Can(access.KindTemplate, sc.Launch.Template, access.RoleRead) ||
		sc.Launch.Workflow != "" && p.Can(access.KindWorkflow, sc.Launch.Workflow, access.RoleRead)
}

func canWriteSchedule(p *access.Principal, sc *schedules.Schedule) error {
	wf := sc.Launch.Workflow
	switch {
	case p.IsAdmin():
		return nil
	case wf != "" && !p.Can(access.KindWorkflow, wf, access.RoleRead):
		return notFound("workflow %s: no such workflow template", wf)
	case wf != "" && !p.Can(access.KindWorkflow, wf, access.RoleExecute):
		return forbidden("a schedule of workflow %s needs the execute role on it", wf)
	case wf != "":
		return nil
	case sc.Launch.Template == "":
		return forbidden("a schedule of a plain job needs a system administrator")
	case !p.Can(access.KindTemplate, sc.Launch.Template, access.RoleRead):
		return notFound("template %s: no such template", sc.Launch.Template)
	case !p.Can(access.KindTemplate, sc.Launch.Template, access.RoleExecute):
		return forbidden("a schedule of template %s needs the execute role on it", sc.Launch.Template)
	}
	return nil
}

func scheduleError(err error) error {
	switch {
	case errors.Is(err, schedules.ErrInvalid):
		return badField("", "%v", err)
	case errors.Is(err, schedules.ErrNotFound):
		return notFound("%v", err)
	case errors.Is(err, schedules.ErrExists), errors.Is(err, schedules.ErrConflict):
		return errorf(http.StatusConflict, "%v", err)
	}
	return err
}

func (s *Server) listSchedules(rq *request) error {
	lp, f, err := rq.namedListParams("template")
	if err != nil {
		return err
	}
	all, _, err := s.schedules.List(rq.ctx)
	if err != nil {
		return scheduleError(err)
	}
	out := []ScheduleView{}
	for _, sc := range all {
		if !canSeeSchedule(rq.p, sc) {
			continue
		}
		if v := rq.param("template"); v != "" && sc.Launch.Template != v {
			continue
		}
		v, err := s.scheduleView(rq, sc)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return rq.reply(http.StatusOK, pageOf(out, func(v ScheduleView) named {
		return named{Name: v.Name, Description: v.Description, Created: v.Created, Updated: v.Updated}
	}, f, lp))
}

// visibleSchedule reads a schedule the caller may see (404 otherwise).
func (rq *request) visibleSchedule() (*schedules.Schedule, int32, error) {
	name := rq.r.PathValue("name")
	sc, ver, err := rq.s.schedules.Get(rq.ctx, name)
	if err != nil {
		return nil, 0, scheduleError(err)
	}
	if !canSeeSchedule(rq.p, sc) {
		return nil, 0, notFound("%v: %s", schedules.ErrNotFound, name)
	}
	return sc, ver, nil
}

func (s *Server) showSchedule(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	sc, ver, err := rq.visibleSchedule()
	if err != nil {
		return err
	}
	v, err := s.scheduleView(rq, sc)
	if err != nil {
		return err
	}
	rq.setETag(ver)
	return rq.reply(http.StatusOK, v)
}

// scheduleInput is the body of POST /schedules and PATCH /schedules/{name}:
// the fields a caller sets (a PATCH changes those given).
type scheduleInput struct {
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Enabled     *bool             `json:"enabled"`
	Cron        *string           `json:"cron"`
	TimeZone    *string           `json:"time-zone"`
	RRule       *string           `json:"rrule"`
	CatchUp     *schedule.CatchUp `json:"catch-up"`
	Launch      *schedules.Launch `json:"launch"`
}

func (in *scheduleInput) apply(sc *schedules.Schedule) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&sc.Description, in.Description)
	set(&sc.Cron, in.Cron)
	set(&sc.TimeZone, in.TimeZone)
	set(&sc.RRule, in.RRule)
	if in.Enabled != nil {
		sc.Enabled = *in.Enabled
	}
	if in.CatchUp != nil {
		sc.CatchUp = *in.CatchUp
	}
	if in.Launch != nil {
		sc.Launch = *in.Launch
	}
}

// checkLaunch checks that what sc launches exists and may be launched by
// the caller.
func (rq *request) checkLaunch(sc *schedules.Schedule) error {
	if err := canWriteSchedule(rq.p, sc); err != nil {
		return err
	}
	if wf := sc.Launch.Workflow; wf != "" {
		if _, _, err := rq.s.workflows.Get(rq.ctx, wf); err != nil {
			if isNotFound(err) {
				return badField("launch", "workflow %s does not exist", wf)
			}
			return err
		}
	}
	if t := sc.Launch.Template; t != "" {
		if _, _, err := rq.s.templates.Get(rq.ctx, t); err != nil {
			if isNotFound(err) {
				return badField("launch", "template %s does not exist", t)
			}
			return err
		}
	}
	return nil
}

func (s *Server) createSchedule(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	var in scheduleInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name == nil || *in.Name == "" {
		return badField("name", "name is required")
	}
	sc := &schedules.Schedule{Name: *in.Name, Enabled: true, UID: "00000000-0000-4000-8000-000000000000"}
	in.apply(sc)
	// The placeholder uid passes validation; Create gives the real one.
	if err := sc.Validate(); err != nil {
		return scheduleError(err)
	}
	if err := rq.checkLaunch(sc); err != nil {
		return err
	}
	if err := s.schedules.Create(rq.ctx, sc); err != nil {
		return scheduleError(err)
	}
	v, err := s.scheduleView(rq, sc)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Location", Prefix+"/schedules/"+sc.Name)
	return rq.reply(http.StatusCreated, v)
}

func (s *Server) patchSchedule(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.visibleSchedule()
	if err != nil {
		return err
	}
	if err := canWriteSchedule(rq.p, cur); err != nil {
		return err
	}
	if err := rq.ifMatch("schedule", cur.Name, ver); err != nil {
		return err
	}
	var in scheduleInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != nil && *in.Name != cur.Name {
		return badField("name", "the name of a schedule cannot change (create another one)")
	}
	// A copy: the launch is replaced, not merged.
	data, _ := json.Marshal(cur)
	var next schedules.Schedule
	if err := json.Unmarshal(data, &next); err != nil {
		return err
	}
	in.apply(&next)
	if in.Cron != nil && *in.Cron != "" && in.RRule == nil {
		next.RRule = ""
	}
	if in.RRule != nil && *in.RRule != "" && in.Cron == nil {
		next.Cron, next.TimeZone = "", ""
	}
	if err := next.Validate(); err != nil {
		return scheduleError(err)
	}
	if err := rq.checkLaunch(&next); err != nil {
		return err
	}
	if err := s.schedules.Update(rq.ctx, &next, ver); err != nil {
		return scheduleError(rq.conflicted(err, "schedule", cur.Name))
	}
	v, err := s.scheduleView(rq, &next)
	if err != nil {
		return err
	}
	rq.written(ver)
	return rq.reply(http.StatusOK, v)
}

func (s *Server) deleteSchedule(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	sc, _, err := rq.visibleSchedule()
	if err != nil {
		return err
	}
	if err := canWriteSchedule(rq.p, sc); err != nil {
		return err
	}
	if err := s.schedules.Delete(rq.ctx, sc.Name); err != nil {
		return scheduleError(err)
	}
	return rq.noContent()
}
