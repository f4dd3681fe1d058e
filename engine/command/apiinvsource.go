package command

// The inventory source commands through the API: the same arguments,
// checks, output and exit codes as their ZooKeeper forms.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
)

func init() {
	apiActions["inventory source set"] = apiSourceSet
	apiActions["inventory source show"] = apiSourceShow
	apiActions["inventory source remove"] = apiSourceRemove
	apiActions["inventory source update"] = apiSourceUpdate
}

// apiSourceInput is the body of PUT /inventories/{name}/source.
type apiSourceInput struct {
	Project        string  `json:"project"`
	Path           string  `json:"path"`
	UpdateOnLaunch bool    `json:"update-on-launch,omitempty"`
	CacheTimeout   float64 `json:"cache-timeout,omitempty"`
}

// apiSourceView is the answer of GET /inventories/{name}/source.
type apiSourceView struct {
	Inventory string `json:"inventory"`
	inventory.Source
}

// apiStatus is the HTTP status of an error answer of the API (0 for
// another error).
func apiStatus(err error) int {
	var st *apiStatusError
	if errors.As(err, &st) {
		return st.code
	}
	return 0
}

// apiSourcePath is the path of the source of inventory name.
func apiSourcePath(name string) string { return "/inventories/" + url.PathEscape(name) + "/source" }

// apiNoSource explains a 404 about the source of inventory name as the
// ZooKeeper form would: the inventory missing (err as it is), or there
// without a source (what the ZooKeeper form says, exit as it exits).
func apiNoSource(c *cli.Context, cl *apiClient, name string, err error, usage bool) error {
	if apiStatus(err) != http.StatusNotFound {
		return err
	}
	var inv inventory.Inventory
	if gerr := cl.do(c.Context, http.MethodGet, "/inventories/"+url.PathEscape(name), nil, nil, &inv); gerr != nil {
		return gerr
	}
	if inv.Source != nil {
		return err
	}
	if usage {
		return &UsageError{Err: errNoSource(name)}
	}
	return errNoSource(name)
}

func apiSourceSet(c *cli.Context) error {
	name, src, err := sourceFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	// A missing project is "not found", as with ZooKeeper (the API's
	// answer to the PUT would be a 400).
	if err := cl.do(c.Context, http.MethodGet, "/projects/"+url.PathEscape(src.Project), nil, nil, nil); err != nil {
		return err
	}
	in := apiSourceInput{Project: src.Project, Path: src.Path, UpdateOnLaunch: src.UpdateOnLaunch, CacheTimeout: src.CacheTimeout}
	if err := cl.do(c.Context, http.MethodPut, apiSourcePath(name), nil, &in, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "inventory %s: source %s of project %s\n", name, src.Path, src.Project)
	return nil
}

func apiSourceShow(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "inventory")
	if err != nil {
		return err
	}
	var v apiSourceView
	if err := cl.do(c.Context, http.MethodGet, apiSourcePath(name), nil, nil, &v); err != nil {
		return apiNoSource(c, cl, name, err, false)
	}
	return printSource(c, name, &v.Source, func(id string) (*jobs.Job, bool) {
		_, uid, err := jobs.ParseID(id)
		if err != nil {
			return nil, false
		}
		var j history.Job
		if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid, nil, nil, &j); err != nil || j.Job == nil {
			return nil, false
		}
		return j.Job, true
	})
}

func apiSourceRemove(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "inventory")
	if err != nil {
		return err
	}
	if err := cl.do(c.Context, http.MethodDelete, apiSourcePath(name), nil, nil, nil); err != nil {
		var inv inventory.Inventory
		if apiStatus(err) != http.StatusNotFound {
			return err
		}
		// No source: the ZooKeeper form removes none and says so, unless
		// the inventory is missing or smart.
		if gerr := cl.do(c.Context, http.MethodGet, "/inventories/"+url.PathEscape(name), nil, nil, &inv); gerr != nil {
			return gerr
		}
		if inv.Kind != inventory.Static {
			return usagef("inventory %s is %s; only a static inventory has a source", name, inv.Kind)
		}
		if inv.Source != nil {
			return err
		}
	}
	fmt.Fprintf(c.App.Writer, "inventory %s: source removed\n", name)
	return nil
}

func apiSourceUpdate(c *cli.Context) error {
	name, cl, err := apiNameArg(c, "inventory")
	if err != nil {
		return err
	}
	var v struct {
		Job *jobs.Job `json:"job"`
	}
	path := apiSourcePath(name) + "/update"
	if err := cl.do(c.Context, http.MethodPost, path, nil, nil, &v); err != nil {
		// With ZooKeeper, updating an inventory without a source is bad
		// input.
		return apiNoSource(c, cl, name, err, true)
	}
	if v.Job == nil {
		return fmt.Errorf("%w: POST %s: no job in the answer", errAPI, path)
	}
	fmt.Fprintln(c.App.Writer, v.Job.ID)
	return nil
}
