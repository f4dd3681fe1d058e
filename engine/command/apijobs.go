package command

// The job and template commands through the API: the same arguments and
// output as their ZooKeeper forms; what the API cannot give (invalid and
// quarantined documents in `job list`) is left out.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/api"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/jobs"
)

func init() {
	apiActions["job list"] = apiJobList
	apiActions["job show"] = apiJobShow
	apiActions["job cancel"] = apiJobCancel
	apiActions["job relaunch"] = apiJobRelaunch
	apiActions["job logs"] = apiJobLogs
	apiActions["template launch"] = apiTemplateLaunch
	apiActions["job wait"] = apiJobWait
}

// apiJobPage is the answer of GET /jobs.
type apiJobPage struct {
	Items        []history.Job `json:"items"`
	Next         string        `json:"next"`
	HistoryError string        `json:"history-error"`
}

func apiJobList(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	q := url.Values{}
	if s := c.String("state"); s != "" {
		st, err := parseState(s)
		if err != nil {
			return err
		}
		q.Set("state", string(st))
	}
	if a := c.String("action"); a != "" {
		q.Set("action", a)
	}
	f, err := readLaunchFilter(c, time.Now())
	if err != nil {
		return err
	}
	setNonEmpty(q, "template", f.Template)
	setNonEmpty(q, "slices-of", f.SlicesOf)
	setNonEmpty(q, "launch-type", string(f.LaunchType))
	if f.Sliced {
		q.Set("sliced", "true")
	}
	if f.Slices {
		q.Set("slices", "true")
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	switch n := c.Int("limit"); {
	case n < 0:
		return negativeLimit(n)
	case n == 0 || n > api.MaxLimit:
		return usagef("--limit %d: through the API a page holds 1–%d jobs; page on with --after", n, api.MaxLimit)
	default:
		q.Set("limit", strconv.Itoa(n))
	}
	if a := c.String("after"); a != "" {
		if _, err := history.ParseCursor(a); err != nil {
			return usagef("--after %q is not a cursor: type the value a previous `job list` printed after --after", a)
		}
		q.Set("cursor", a)
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
	return watchRun(c, w, func() error { return apiListJobs(c, cl, q) })
}

// apiListJobs prints a page of GET /jobs as `job list` does.
func apiListJobs(c *cli.Context, cl *apiClient, q url.Values) error {
	var page apiJobPage
	if err := cl.do(c.Context, http.MethodGet, "/jobs", q, nil, &page); err != nil {
		return err
	}
	if page.HistoryError != "" {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: warning: history left out: %s\n", printable(page.HistoryError))
	}
	for _, j := range page.Items {
		if j.Job == nil {
			return fmt.Errorf("%w: GET /jobs: a job without its document", errAPI)
		}
	}
	if err := printJobs(c, history.Page{Jobs: page.Items}); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(c.App.ErrWriter, "jobengine: %d jobs shown, more match: for the next page, run the same command with --after %s\n", len(page.Items), printable(page.Next))
	}
	return nil
}

func setNonEmpty(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

// apiJobArg reads the ID argument and opens the client.
func apiJobArg(c *cli.Context) (string, *apiClient, error) {
	args, err := parseArgs(c, "ID")
	if err != nil {
		return "", nil, err
	}
	_, uid, err := parseJobID(args[0])
	if err != nil {
		return "", nil, err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return "", nil, err
	}
	return uid, cl, nil
}

func apiJobShow(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	var v history.Job
	if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid, nil, nil, &v); err != nil {
		return err
	}
	if v.Job == nil {
		return fmt.Errorf("%w: GET /jobs/%s: no job document in the answer", errAPI, uid)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, v)
	}
	return writeJobText(c.App.Writer, v)
}

func apiJobCancel(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	var v canceledJob
	if err := cl.do(c.Context, http.MethodPost, "/jobs/"+uid+"/cancel", nil, nil, &v); err != nil {
		return err
	}
	switch {
	case v.Job.Job == nil:
		return fmt.Errorf("%w: POST /jobs/%s/cancel: no job document in the answer", errAPI, uid)
	case c.Bool("json"):
		return writeJSON(c.App.Writer, v)
	case v.CancelRequested:
		fmt.Fprintf(c.App.Writer, "%s cancel requested (RUNNING: its executor stops it)\n", printable(v.ID))
	default:
		fmt.Fprintf(c.App.Writer, "%s %s\n", printable(v.ID), printable(string(v.State)))
	}
	return nil
}

// apiLaunched is the answer of a launch or relaunch.
type apiLaunched struct {
	Job    *jobs.Job `json:"job"`
	Slices []string  `json:"slices"`
}

// printAPILaunch prints a launch as printLaunch does; --json holds the
// slices' ids (the API answers with ids, not documents).
func printAPILaunch(c *cli.Context, what string, v apiLaunched) error {
	if v.Job == nil {
		return fmt.Errorf("%w: %s: no job in the answer", errAPI, what)
	}
	if c.Bool("json") {
		if v.Slices == nil {
			v.Slices = []string{}
		}
		return writeJSON(c.App.Writer, v)
	}
	fmt.Fprintln(c.App.Writer, printable(v.Job.ID))
	return nil
}

func apiJobRelaunch(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	var v apiLaunched
	if err := cl.do(c.Context, http.MethodPost, "/jobs/"+uid+"/relaunch", nil, nil, &v); err != nil {
		return err
	}
	return printAPILaunch(c, "relaunch", v)
}

func apiTemplateLaunch(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	if err := checkName("template", args[0]); err != nil {
		return err
	}
	values, err := launchValues(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	body := values
	if body == nil {
		body = &jobs.LaunchValues{}
	}
	var v apiLaunched
	if err := cl.do(c.Context, http.MethodPost, "/templates/"+url.PathEscape(args[0])+"/launch", nil, body, &v); err != nil {
		return err
	}
	return printAPILaunch(c, "launch", v)
}

// apiLogLines is the answer of GET /jobs/{id}/logs.
type apiLogLines struct {
	Items        []jobs.LogLine `json:"items"`
	HistoryError string         `json:"history-error"`
}

func apiJobLogs(c *cli.Context) error {
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	emit := printLines
	if c.Bool("json") {
		emit = printJSONLines
	}
	if !c.Bool("follow") {
		var v apiLogLines
		if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid+"/logs", nil, nil, &v); err != nil {
			return err
		}
		if v.HistoryError != "" {
			fmt.Fprintf(c.App.ErrWriter, "jobengine: warning: job-events index left out: %s\n", printable(v.HistoryError))
		}
		return emit(c.App.Writer, v.Items)
	}
	return cl.follow(c.Context, "/jobs/"+uid+"/logs", func(ev sseEvent) (bool, error) {
		switch ev.name {
		case "log":
			var l jobs.LogLine
			if err := json.Unmarshal(ev.data, &l); err != nil {
				return false, fmt.Errorf("%w: a log event that is not a log line: %v", errAPI, err)
			}
			return false, emit(c.App.Writer, []jobs.LogLine{l})
		case "end":
			return true, nil
		}
		return false, nil
	})
}

// apiJobWait follows the job's events until it is final; the exit codes
// are those of `job wait`.
func apiJobWait(c *cli.Context) error {
	// The arguments first: flags given after the ID are read with them.
	uid, cl, err := apiJobArg(c)
	if err != nil {
		return err
	}
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return usagef("--timeout %s is negative: type a duration such as 30s, or 0 to wait as long as it takes", timeout)
	}
	ctx, cancel := c.Context, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(c.Context, timeout, errWaitTimeout)
	}
	defer cancel()
	var last *jobs.Job
	p := newWaitProgress(c)
	err = cl.follow(ctx, "/jobs/"+uid+"/events", func(ev sseEvent) (bool, error) {
		switch ev.name {
		case "job":
			var j jobs.Job
			if err := json.Unmarshal(ev.data, &j); err != nil {
				return false, fmt.Errorf("%w: a job event that is not a job: %v", errAPI, err)
			}
			last = &j
			if !j.State.Final() {
				p.show(&j, apiChildren(ctx, cl, p, &j))
			}
		case "end":
			return true, nil
		}
		return false, nil
	})
	p.end()
	if errors.Is(context.Cause(ctx), errWaitTimeout) {
		state := "still not final"
		if last != nil {
			state = "it is " + string(last.State)
		}
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for job/%s; %s", timeout, uid, state)}
	}
	if err != nil {
		return err
	}
	// The document as it ended (the stream may not send the last change
	// of a job that was final before it started).
	var v history.Job
	if err := cl.do(c.Context, http.MethodGet, "/jobs/"+uid, nil, nil, &v); err != nil {
		return err
	}
	if v.Job == nil {
		return fmt.Errorf("%w: GET /jobs/%s: no job document in the answer", errAPI, uid)
	}
	if c.Bool("json") {
		err = writeJSON(c.App.Writer, v)
	} else {
		fmt.Fprintln(c.App.Writer, printable(finalLine(v.Job)))
	}
	if err != nil || v.State == jobs.Success {
		return err
	}
	return &ExitError{Code: ExitFailure, Err: &withCause{fmt.Sprintf("%s ended %s", v.ID, v.State), errJobFailed}}
}

// apiChildren reads the children of a container for the progress of `job
// wait`, in the container's order (nil: a child missing, or one the caller
// may not see); nil when there is no progress to show or the read failed.
func apiChildren(ctx context.Context, cl *apiClient, p *waitProgress, j *jobs.Job) []*jobs.Job {
	if p == nil || len(j.NestedJobs) == 0 {
		return nil
	}
	q := url.Values{"slices-of": {j.ID}, "limit": {strconv.Itoa(api.MaxLimit)}}
	var page apiJobPage
	if err := cl.do(ctx, http.MethodGet, "/jobs", q, nil, &page); err != nil {
		return nil
	}
	byID := map[string]*jobs.Job{}
	for _, v := range page.Items {
		if v.Job != nil {
			byID[v.ID] = v.Job
		}
	}
	out := make([]*jobs.Job, len(j.NestedJobs))
	for i, id := range j.NestedJobs {
		out[i] = byID[id]
	}
	return out
}
