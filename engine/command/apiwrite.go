package command

// The commands that change templates, schedules and workflows, through
// the API: the same arguments, checks and output as their ZooKeeper forms.
// An edit reads the object, applies the flags as the ZooKeeper form does
// and writes the whole object back with If-Match set to the version read:
// when another change came between the read and the write, the API
// refuses it (412) and the edit starts again from the object as it is
// now, as the ZooKeeper form retries on its version.

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/schedule"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
)

func init() {
	apiActions["template edit"] = apiTemplateEdit
	apiActions["template delete"] = apiDeleteAction("template", "/templates/")
	apiActions["workflow delete"] = apiDeleteAction("workflow", "/workflows/")
	apiActions["workflow create"] = apiWorkflowCreate
	apiActions["workflow edit"] = apiWorkflowEdit
	apiActions["workflow relaunch"] = apiWorkflowRelaunch
	apiActions["schedule create"] = apiScheduleWrite(false)
	apiActions["schedule edit"] = apiScheduleWrite(true)
	apiActions["schedule delete"] = apiScheduleDelete
	apiActions["schedule enable"] = apiScheduleEnable(true)
	apiActions["schedule disable"] = apiScheduleEnable(false)
	apiActions["project create"] = apiProjectCreate
	apiActions["project update"] = apiProjectUpdate
	apiActions["project delete"] = apiDeleteAction("project", "/projects/")
	apiActions["inventory delete"] = apiDeleteAction("inventory", "/inventories/")
}

// apiDeleteAction is the API form of `KIND delete NAME`: DELETE prefix+NAME.
func apiDeleteAction(kind, prefix string) cli.ActionFunc {
	return func(c *cli.Context) error {
		name, cl, err := apiNameArg(c, kind)
		if err != nil {
			return err
		}
		if err := cl.do(c.Context, http.MethodDelete, prefix+url.PathEscape(name), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s %s deleted\n", kind, name)
		return nil
	}
}

func apiTemplateEdit(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	if err := checkName("template", args[0]); err != nil {
		return err
	}
	changed := false
	for _, f := range definitionFlags("template edit") {
		changed = changed || c.IsSet(f.Names()[0])
	}
	if !changed {
		return usagef("nothing to change: give the fields to change (see --help)")
	}
	apply, err := templateFlags(c, false)
	if err != nil {
		return err
	}
	probe := &template.Template{Name: args[0], Action: "probe", Priority: queue.DefaultPriority}
	apply(probe)
	if err := validTemplate(probe); err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	path := "/templates/" + url.PathEscape(args[0])
	var made template.Template
	err = editVersioned(c.Context, cl, http.MethodPut, path, func(t *template.Template) (any, error) {
		apply(t)
		return t, validTemplate(t)
	}, &made)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "template %s changed\n", printable(made.Name))
	return nil
}

func apiWorkflowRelaunch(c *cli.Context) error {
	args, err := parseArgs(c, "JOB")
	if err != nil {
		return err
	}
	_, uid, err := jobs.ParseID(args[0])
	if err != nil {
		return &UsageError{Err: err}
	}
	q := url.Values{}
	if from := c.String("from"); from != "" {
		if err := checkName("node", from); err != nil {
			return err
		}
		q.Set("from", from)
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var v struct {
		Job *jobs.Job `json:"job"`
	}
	if err := cl.do(c.Context, http.MethodPost, "/jobs/"+uid+"/relaunch", q, nil, &v); err != nil {
		return err
	}
	if v.Job == nil {
		return fmt.Errorf("%w: POST /jobs/%s/relaunch: no job in the answer", errAPI, uid)
	}
	return printWorkflowJob(c, v.Job)
}

// apiScheduleInput is the body of POST /schedules and PATCH
// /schedules/{name}; every field is sent, so an edit writes the whole
// schedule the flags were applied to.
type apiScheduleInput struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Enabled     bool             `json:"enabled"`
	Cron        string           `json:"cron"`
	TimeZone    string           `json:"time-zone"`
	RRule       string           `json:"rrule"`
	CatchUp     schedule.CatchUp `json:"catch-up"`
	Launch      schedules.Launch `json:"launch"`
}

// apiScheduleWrite is the API form of `schedule create` (or `edit`).
func apiScheduleWrite(edit bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := parseArgs(c, "NAME")
		if err != nil {
			return err
		}
		if edit && c.IsSet("disabled") {
			return usagef("schedule edit: use schedule enable or schedule disable")
		}
		if !schedules.ValidName(args[0]) {
			return usagef("%q is not a schedule name: type 1–64 letters, digits, '.', '_' or '-', such as nightly-report", args[0])
		}
		sc := &schedules.Schedule{Name: args[0], Enabled: !c.Bool("disabled")}
		if !edit {
			if err := applyScheduleFlags(c, sc); err != nil {
				return err
			}
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		input := func(sc *schedules.Schedule) *apiScheduleInput {
			return &apiScheduleInput{Name: sc.Name, Description: sc.Description, Enabled: sc.Enabled, Cron: sc.Cron,
				TimeZone: sc.TimeZone, RRule: sc.RRule, CatchUp: sc.CatchUp, Launch: sc.Launch}
		}
		var v apiSchedule
		if !edit {
			if err := cl.do(c.Context, http.MethodPost, "/schedules", nil, input(sc), &v); err != nil {
				return err
			}
			return printScheduleWritten(c, "POST /schedules", v, "created")
		}
		path := "/schedules/" + url.PathEscape(args[0])
		err = editVersioned(c.Context, cl, http.MethodPatch, path, func(cur *apiSchedule) (any, error) {
			if cur.Schedule == nil {
				return nil, fmt.Errorf("%w: GET %s: no schedule in the answer", errAPI, path)
			}
			if err := applyScheduleFlags(c, cur.Schedule); err != nil {
				return nil, err
			}
			return input(cur.Schedule), nil
		}, &v)
		if err != nil {
			return err
		}
		return printScheduleWritten(c, "PATCH "+path, v, "changed")
	}
}

// printScheduleWritten prints the schedule the API answered with as the
// ZooKeeper forms of create, edit, enable and disable do.
func printScheduleWritten(c *cli.Context, call string, v apiSchedule, verb string) error {
	if v.Schedule == nil {
		return fmt.Errorf("%w: %s: no schedule in the answer", errAPI, call)
	}
	now := time.Now()
	if c.Bool("json") {
		var st schedules.State
		if v.LastRun != nil {
			st = *v.LastRun
		}
		return writeJSON(c.App.Writer, scheduleView(v.Schedule, st, now))
	}
	fmt.Fprintf(c.App.Writer, "schedule %s %s; next: %s\n", printable(v.Name), verb, nextText(v.Schedule, now))
	return nil
}

func apiScheduleDelete(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	if err := cl.do(c.Context, http.MethodDelete, "/schedules/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "schedule %s deleted\n", printable(args[0]))
	return nil
}

// apiEnabled is the body of PATCH /schedules/{name} that enables or
// disables a schedule.
type apiEnabled struct {
	Enabled bool `json:"enabled"`
}

// apiScheduleEnable is the API form of `schedule enable` (or `disable`).
func apiScheduleEnable(enable bool) cli.ActionFunc {
	verb := "enabled"
	if !enable {
		verb = "disabled"
	}
	return func(c *cli.Context) error {
		args, err := parseArgs(c, "NAME")
		if err != nil {
			return err
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		path := "/schedules/" + url.PathEscape(args[0])
		var v apiSchedule
		if err := cl.do(c.Context, http.MethodPatch, path, nil, &apiEnabled{Enabled: enable}, &v); err != nil {
			return err
		}
		return printScheduleWritten(c, "PATCH "+path, v, verb)
	}
}

// apiProjectInput is the body of POST /projects.
type apiProjectInput struct {
	Name           string       `json:"name"`
	Description    string       `json:"description,omitempty"`
	Kind           project.Kind `json:"kind"`
	URL            string       `json:"url,omitempty"`
	Branch         string       `json:"branch,omitempty"`
	Directory      string       `json:"directory,omitempty"`
	UpdateOnLaunch bool         `json:"update-on-launch,omitempty"`
	CacheTimeout   float64      `json:"cache-timeout,omitempty"`
}

func apiProjectCreate(c *cli.Context) error {
	p, err := newProjectFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := apiProjectInput{Name: p.Name, Description: p.Description, Kind: p.Kind, URL: p.URL, Branch: p.Branch,
		Directory: p.Directory, UpdateOnLaunch: p.UpdateOnLaunch, CacheTimeout: p.CacheTimeout}
	var made project.Project
	if err := cl.do(c.Context, http.MethodPost, "/projects", nil, &in, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "project %s created\n", printable(made.Name))
	return nil
}

func apiProjectUpdate(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "project")
	if err != nil {
		return err
	}
	var v struct {
		Job *jobs.Job `json:"job"`
	}
	path := "/projects/" + url.PathEscape(name) + "/update"
	if err := cl.do(c.Context, http.MethodPost, path, nil, nil, &v); err != nil {
		return err
	}
	if v.Job == nil {
		return fmt.Errorf("%w: POST %s: no job in the answer", errAPI, path)
	}
	fmt.Fprintln(c.App.Writer, v.Job.ID)
	return nil
}

func apiWorkflowCreate(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	if err := checkName("workflow", args[0]); err != nil {
		return err
	}
	if !c.IsSet("file") {
		return usagef("--file is required: the workflow's nodes, a YAML or JSON file (see docs/workflows.md)")
	}
	t, err := workflowFromFlags(c, args[0])
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var made workflow.Template
	if err := cl.do(c.Context, http.MethodPost, "/workflows", nil, t, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "workflow %s created\n", printable(made.Name))
	return nil
}

// apiWorkflowPatch is the body of PATCH /workflows/{name}: the fields
// given change (the nodes as a whole).
type apiWorkflowPatch struct {
	Description *string              `json:"description,omitempty"`
	Nodes       *[]jobs.WorkflowNode `json:"nodes,omitempty"`
}

func apiWorkflowEdit(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	if err := checkName("workflow", args[0]); err != nil {
		return err
	}
	if !c.IsSet("file") && !c.IsSet("description") {
		return usagef("nothing to change: give --file (the new nodes) or --description")
	}
	var in apiWorkflowPatch
	if c.IsSet("file") {
		// The file's nodes and description, --description over it, as
		// the ZooKeeper form.
		t, err := workflowFromFlags(c, args[0])
		if err != nil {
			return err
		}
		in.Nodes, in.Description = &t.Nodes, &t.Description
	} else {
		d := c.String("description")
		in.Description = &d
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var made workflow.Template
	if err := cl.do(c.Context, http.MethodPatch, "/workflows/"+url.PathEscape(args[0]), nil, &in, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "workflow %s changed\n", printable(made.Name))
	return nil
}
