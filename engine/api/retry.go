package api

import (
	"net/http"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/history"
)

// retryJob runs a FAILED job again with the inputs it had (see
// template.Launcher.Retry): a new job, retry-of the failed one, created
// by the caller. It needs what a relaunch needs: execute on the job's
// template, or to be a system administrator for a job of no template.
func (s *Server) retryJob(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	j, err := rq.visibleJob()
	if err != nil {
		return err
	}
	switch {
	case j.Template == "" && j.IsWorkflow():
		if !canRunWorkflowJob(rq.p, j.Job) {
			return forbidden("retrying %s needs the execute role on workflow %s", j.ID, j.WorkflowTemplate)
		}
	case j.Template == "":
		if !rq.p.IsAdmin() {
			return forbidden("%s was not launched from a template; only a system administrator may retry it", j.ID)
		}
	case !rq.p.Can(access.KindTemplate, j.Template, access.RoleExecute):
		return forbidden("retrying %s needs the execute role on template %s", j.ID, j.Template)
	}
	if j.Source != history.Live {
		return errorf(http.StatusConflict, "%s is in the history only (its inputs left ZooKeeper); relaunch it instead", j.ID)
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	res, err := s.launcher.Retry(rq.ctx, j.ID, rq.p.Identity())
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launchedOf(res))
}
