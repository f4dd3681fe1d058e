package schedules

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
)

// TemplateLauncher returns the LaunchFunc that launches what a schedule
// names: a job template (its launch values are the template's prompts), a
// workflow template, or a job spec (as JobLauncher does). The top job gets
// the occurrence's id and the creating transaction the leader's fence, so
// an occurrence is launched once across failovers. A launch that cannot be
// made (the template is gone or invalid, a value is not promptable) is
// refused: the runner records a FAILED job saying why.
func TemplateLauncher(store *jobs.Store, templates *template.Launcher, workflows *workflow.Launcher) LaunchFunc {
	plain := JobLauncher(store)
	return func(ctx context.Context, o Occurrence) (*jobs.Job, error) {
		l := o.Schedule.Launch
		switch {
		case l.Job != nil:
			return plain(ctx, o)
		case l.Workflow != "":
			j, err := workflows.Launch(ctx, workflow.Request{Workflow: l.Workflow, LaunchType: jobs.LaunchScheduled,
				CreatedBy: o.CreatedBy, ID: o.JobID, Tick: o.Tick.ID(), Extra: []interface{}{o.Fence}})
			return j, refusal(err)
		}
		var values *jobs.LaunchValues
		if len(l.Values) > 0 {
			values = &jobs.LaunchValues{}
			dec := json.NewDecoder(bytes.NewReader(l.Values))
			dec.DisallowUnknownFields()
			if err := dec.Decode(values); err != nil {
				return nil, fmt.Errorf("%w: schedule %s: launch values for template %s: %v", ErrRefused, o.Schedule.Name, l.Template, err)
			}
		}
		res, err := templates.Launch(ctx, template.Request{Template: l.Template, Values: values, LaunchType: jobs.LaunchScheduled,
			CreatedBy: o.CreatedBy, ID: o.JobID, Tick: o.Tick.ID(), Extra: []interface{}{o.Fence}})
		if err != nil {
			return nil, refusal(err)
		}
		return res.Job, nil
	}
}

// refusal marks what a template launcher cannot do at this occurrence as
// refused, and leaves other errors (connection, fence, duplicate) as they
// are.
func refusal(err error) error {
	if err == nil || errors.Is(err, jobs.ErrDuplicate) {
		return err
	}
	if errors.Is(err, configstore.ErrNotFound) || errors.Is(err, configstore.ErrInvalid) || errors.Is(err, configstore.ErrCorrupt) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return err
}
