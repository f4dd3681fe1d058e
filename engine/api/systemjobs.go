package api

import (
	"net/http"

	"github.com/jobengine/jobengine/engine/systemjob"
)

// System jobs: the cluster's housekeeping launched as jobs (key system,
// impact 5). Every caller sees the kinds; only a system administrator
// launches one.

func (s *Server) systemJobRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/system-jobs", handle: s.listSystemJobKinds},
		{method: "POST", pattern: Prefix + "/system-jobs/{kind}/launch", handle: s.launchSystemJob},
	}
}

func (s *Server) listSystemJobKinds(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	return rq.reply(http.StatusOK, map[string]any{"items": systemjob.Kinds})
}

// systemJobLaunch is the body of a launch: the age, for a kind that takes
// one (none: the kind's default).
type systemJobLaunch struct {
	Days *int `json:"days,omitempty"`
}

func (s *Server) launchSystemJob(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("launching a system job needs a system administrator")
	}
	kind := systemjob.Kind(rq.r.PathValue("kind"))
	if _, err := systemjob.Info(kind); err != nil {
		return notFound("%v", err)
	}
	var in systemJobLaunch
	if _, err := rq.decodeOptional(&in); err != nil {
		return err
	}
	n, err := systemjob.NewJob(kind, in.Days, rq.p.Identity())
	if err != nil {
		return badField("days", "%v", err)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	j, err := s.cfg.Jobs.Create(rq.ctx, n)
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launched{Job: j})
}
