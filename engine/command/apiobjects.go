package command

// The object commands most users need, through the API: the same
// arguments and output as their ZooKeeper forms (they share the printing
// functions). A listing reads every page of the API's list.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
)

func init() {
	apiActions["job delete"] = apiJobDelete
	apiActions["template list"] = apiListAction("/templates", printTemplates)
	apiActions["template show"] = apiTemplateShow
	apiActions["template create"] = apiTemplateCreate
	apiActions["inventory list"] = apiListAction("/inventories", printInventories)
	apiActions["inventory show"] = apiInventoryShow
	apiActions["project list"] = apiListAction("/projects", printProjects)
	apiActions["project show"] = apiProjectShow
	apiActions["workflow list"] = apiListAction("/workflows", printWorkflows)
	apiActions["workflow show"] = apiWorkflowShow
	apiActions["workflow launch"] = apiWorkflowLaunch
	apiActions["workflow nodes"] = apiWorkflowNodes
	apiActions["schedule list"] = apiScheduleList
	apiActions["schedule show"] = apiScheduleShow
}

// maxListPages bounds the pages a listing reads (of api.MaxLimit items).
const maxListPages = 1000

// apiList reads every page of the list at path (a named-object list or
// the hosts of an inventory).
func apiList[T any](ctx context.Context, cl *apiClient, path string, q url.Values) ([]T, error) {
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", strconv.Itoa(api.MaxLimit))
	var out []T
	for range maxListPages {
		var page struct {
			Items []T    `json:"items"`
			Next  string `json:"next"`
		}
		if err := cl.do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.Next == "" {
			return out, nil
		}
		q.Set("cursor", page.Next)
	}
	return nil, fmt.Errorf("%w: GET %s: more than %d pages", errAPI, path, maxListPages)
}

// apiListAction is the API form of a listing: every page of path, printed
// by print as the ZooKeeper form prints it.
func apiListAction[T any](path string, print func(*cli.Context, []T) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cl, err := apiNoArgs(c)
		if err != nil {
			return err
		}
		list, err := apiList[T](c.Context, cl, path, nil)
		if err != nil {
			return err
		}
		return print(c, list)
	}
}

// apiNameArg reads the NAME argument of an object of kind and opens the
// client.
func apiNameArg(c *cli.Context, kind string) (string, *apiClient, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", nil, err
	}
	if err := checkName(kind, args[0]); err != nil {
		return "", nil, err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return "", nil, err
	}
	return args[0], cl, nil
}

// apiNoArgs checks that a listing has no argument and opens the client.
func apiNoArgs(c *cli.Context) (*apiClient, error) {
	if _, err := parseArgs(c); err != nil {
		return nil, err
	}
	return openAPI(c, true)
}

// apiDeleted is the answer of DELETE /jobs/{id}.
type apiDeleted struct {
	Deleted []string `json:"deleted"`
}

func apiJobDelete(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	var v apiDeleted
	if err := cl.do(c.Context, http.MethodDelete, "/jobs/"+uid, nil, nil, &v); err != nil {
		return err
	}
	for _, id := range v.Deleted {
		fmt.Fprintf(c.App.Writer, "%s deleted\n", printable(id))
	}
	return nil
}

func apiTemplateShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "template")
	if err != nil {
		return err
	}
	var t template.Template
	if err := cl.do(c.Context, http.MethodGet, "/templates/"+url.PathEscape(name), nil, nil, &t); err != nil {
		return err
	}
	return printTemplate(c, &t)
}

func apiTemplateCreate(c *cli.Context) error {
	t, err := newTemplateFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var made template.Template
	if err := cl.do(c.Context, http.MethodPost, "/templates", nil, t, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "template %s created\n", printable(made.Name))
	return nil
}

// apiHost is a host as GET /inventories/{name}/hosts shows it.
type apiHost struct {
	Name    string   `json:"name"`
	Enabled bool     `json:"enabled"`
	Groups  []string `json:"groups"`
}

func apiInventoryShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "inventory")
	if err != nil {
		return err
	}
	var inv inventory.Inventory
	if err := cl.do(c.Context, http.MethodGet, "/inventories/"+url.PathEscape(name), nil, nil, &inv); err != nil {
		return err
	}
	var n inventoryCounts
	if g := inv.Snapshot; g != nil && inv.Kind == inventory.Static {
		n = inventoryCounts{hosts: g.Hosts, enabled: g.Enabled, groups: g.Groups}
	} else if !c.Bool("json") {
		// A smart inventory's filter is applied now, as the ZooKeeper
		// form does: its hosts say what it holds.
		hosts, err := apiList[apiHost](c.Context, cl, "/inventories/"+url.PathEscape(name)+"/hosts", nil)
		if err != nil {
			return err
		}
		var groups []string
		for _, h := range hosts {
			n.hosts++
			if h.Enabled {
				n.enabled++
			}
			for _, g := range h.Groups {
				if !slices.Contains(groups, g) {
					groups = append(groups, g)
				}
			}
		}
		n.groups = len(groups)
	}
	return printInventory(c, &inv, n)
}

func apiProjectShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "project")
	if err != nil {
		return err
	}
	var p project.Project
	if err := cl.do(c.Context, http.MethodGet, "/projects/"+url.PathEscape(name), nil, nil, &p); err != nil {
		return err
	}
	return printProject(c, &p, func(id string) *jobs.Job {
		_, uid, err := jobs.ParseID(id)
		if err != nil {
			return nil
		}
		var v history.Job
		if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid, nil, nil, &v); err != nil {
			return nil
		}
		return v.Job
	})
}

func apiWorkflowShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "workflow")
	if err != nil {
		return err
	}
	var t workflow.Template
	if err := cl.do(c.Context, http.MethodGet, "/workflows/"+url.PathEscape(name), nil, nil, &t); err != nil {
		return err
	}
	return printWorkflow(c, &t)
}

func apiWorkflowLaunch(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "workflow")
	if err != nil {
		return err
	}
	var v struct {
		Job *jobs.Job `json:"job"`
	}
	if err := cl.do(c.Context, http.MethodPost, "/workflows/"+url.PathEscape(name)+"/launch", nil, nil, &v); err != nil {
		return err
	}
	if v.Job == nil {
		return fmt.Errorf("%w: POST /workflows/%s/launch: no job in the answer", errAPI, name)
	}
	return printWorkflowJob(c, v.Job)
}

func apiWorkflowNodes(c *cli.Context) error {
	args, err := parseArgs(c, "JOB")
	if err != nil {
		return err
	}
	_, uid, err := jobs.ParseID(args[0])
	if err != nil {
		return &UsageError{Err: err}
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	var v struct {
		Nodes []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Job    string `json:"job"`
			State  string `json:"state"`
		} `json:"nodes"`
	}
	if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid+"/nodes", nil, nil, &v); err != nil {
		return err
	}
	rows := make([]nodeRow, len(v.Nodes))
	for i, n := range v.Nodes {
		rows[i] = nodeRow{Node: n.ID, Status: n.Status, Job: n.Job, State: n.State}
	}
	return printNodes(c, rows)
}

// apiSchedule is a schedule as the API shows it: the part the listing
// prints besides the schedule itself.
type apiSchedule struct {
	*schedules.Schedule
	LastRun *schedules.State `json:"last-run"`
}

func apiScheduleList(c *cli.Context) error {
	cl, err := apiNoArgs(c)
	if err != nil {
		return err
	}
	list, err := apiList[apiSchedule](c.Context, cl, "/schedules", nil)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]scheduleJSON, 0, len(list))
	for _, sc := range list {
		if sc.Schedule == nil {
			return fmt.Errorf("%w: GET /schedules: a schedule without its fields", errAPI)
		}
		var st schedules.State
		if sc.LastRun != nil {
			st = *sc.LastRun
		}
		views = append(views, scheduleView(sc.Schedule, st, now))
	}
	return printSchedules(c, views, nil, now)
}

func apiScheduleShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "schedule")
	if err != nil {
		return err
	}
	var sc apiSchedule
	if err := cl.do(c.Context, http.MethodGet, "/schedules/"+url.PathEscape(name), nil, nil, &sc); err != nil {
		return err
	}
	if sc.Schedule == nil {
		return fmt.Errorf("%w: GET /schedules/%s: no schedule in the answer", errAPI, name)
	}
	var st schedules.State
	if sc.LastRun != nil {
		st = *sc.LastRun
	}
	return printSchedule(c, scheduleView(sc.Schedule, st, time.Now()))
}
