package command

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/instance"
)

func init() {
	apiActions["cluster status"] = apiClusterStatus
}

// apiClusterStatus is `cluster status` over GET /cluster: the same table
// and JSON, less what the API does not show of an executor (its process
// id, and the jobs placed on it and not started: JOBS counts those it
// runs).
func apiClusterStatus(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	w, err := startWatch(c)
	if err != nil {
		return err
	}
	defer w.Close()
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	return watchRun(c, w, func() error {
		var v api.ClusterView
		if err := cl.do(c.Context, http.MethodGet, "/cluster", nil, nil, &v); err != nil {
			return err
		}
		rows := apiClusterRows(v.Instances)
		if c.Bool("json") {
			return writeJSON(c.App.Writer, rows)
		}
		writeClusterTable(c.App.Writer, rows)
		writeAPIClusterWarnings(c.App.ErrWriter, rows)
		return nil
	})
}

func apiClusterRows(insts []api.Instance) []clusterRow {
	rows := []clusterRow{}
	for _, in := range insts {
		r := clusterRow{Name: in.Name, Host: in.Host, Version: in.Version, Threads: in.Threads, Busy: in.Busy, Actions: in.Actions,
			Started: in.Started, LastSeen: in.LastSeen, Running: in.Running, State: in.State, Groups: in.Groups,
			Capacity: in.Capacity, Used: in.Used, Jobs: len(in.Running), Placed: []instance.Placed{}}
		if r.Running == nil {
			r.Running = []instance.RunningJob{}
		}
		if r.Groups == nil {
			r.Groups = []string{}
		}
		rows = append(rows, r)
	}
	return rows
}

// writeAPIClusterWarnings says what writeClusterWarnings says of what the
// API shows: no executor, live executors of different versions.
func writeAPIClusterWarnings(w io.Writer, rows []clusterRow) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no executor is running")
	}
	versions := map[string][]string{}
	for _, r := range rows {
		if r.State == instance.StateLive {
			versions[r.Version] = append(versions[r.Version], r.Name)
		}
	}
	if len(versions) > 1 {
		var parts []string
		for ver, names := range versions {
			sort.Strings(names)
			parts = append(parts, fmt.Sprintf("%s (%s)", dash(printable(ver)), printable(strings.Join(names, ", "))))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "warning: live executors run different versions: %s\n", strings.Join(parts, "; "))
	}
}
