package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/estest"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

// Where the screenshots go: the test's own directory, or
// $JOBENGINE_SCREENSHOT_DIR; and docs/screenshots too when
// JOBENGINE_DOCS_SCREENSHOTS=1 (to refresh the documentation's pictures).
const (
	screenshotDirEnv  = "JOBENGINE_SCREENSHOT_DIR"
	docsScreenshotEnv = "JOBENGINE_DOCS_SCREENSHOTS"
)

const wait = 60 * time.Second

// cluster is a real controller and executor on a real ZooKeeper.
type cluster struct {
	t    *testing.T
	base string // http://host:port
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	core, obs := observer.New(zapcore.InfoLevel)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range obs.All() {
				if e.Level >= zapcore.WarnLevel {
					t.Logf("%s %s %s %v", e.LoggerName, e.Level, e.Message, e.ContextMap())
				}
			}
		}
	})
	log := zap.New(core)
	zc := zkconn.Config{Hosts: testZK.Addrs(), Root: "/" + t.Name(), SessionTimeout: 5 * time.Second}
	ctx := context.Background()
	// The history, so that the search reaches the logs.
	es := &index.Config{Hosts: []string{estest.Start(t, estest.Options{}).URL()}, Prefix: "dash-"}
	cfg := daemon.NewControllerConfig()
	cfg.ZK, cfg.Listen, cfg.Identifier, cfg.Logger = zc, "127.0.0.1:0", "ctl1", log.Named("ctl1")
	cfg.Elasticsearch = es
	ctl, err := daemon.StartController(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	xcfg := daemon.NewExecutorConfig()
	xcfg.ZK, xcfg.Name, xcfg.Threads, xcfg.EnableTestActions = zc, "x1", 4, true
	xcfg.Plugins.Dir, xcfg.Logger = t.TempDir(), log.Named("x1")
	xcfg.Elasticsearch = es
	x, err := daemon.StartExecutor(ctx, xcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Stop)
	// The bootstrap: the first administrator, directly in ZooKeeper.
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(dctx, zc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := access.NewStore(conn, nil).CreateUser(dctx, access.NewUser{Name: "root", Role: access.SystemAdmin, Password: "root-password"}); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, base: "http://" + ctl.Addr().String()}
}

// call sends a request to the API as root.
func (c *cluster) call(method, path, body string, want int, out any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.SetBasicAuth("root", "root-password")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

// status is the status code of a GET as root.
func status(c *cluster, path string) int {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.SetBasicAuth("root", "root-password")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// browser starts headless chromium, or skips the test without it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: the dashboard's browser tests need it (make deps, or apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900))
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot writes the page (the viewport; all of it when full) as
// name.png into the test's directory and, when asked, into
// docs/screenshots.
func screenshot(t *testing.T, ctx context.Context, dir, name string, full ...bool) {
	t.Helper()
	shot := chromedp.CaptureScreenshot()
	if len(full) > 0 && full[0] {
		shot = chromedp.FullScreenshot(100) // quality 100: a PNG
	}
	buf, err := chromedp.Run(ctx, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{dir}
	if os.Getenv(docsScreenshotEnv) == "1" {
		dirs = append(dirs, filepath.Join("..", "..", "docs", "screenshots"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// login logs in with the keyboard: the user name, Tab, the password, Enter.
func login(t *testing.T, ctx context.Context, base, user, password string) {
	t.Helper()
	do(t, ctx, "log in as "+user,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user+"\t"+password+"\r"),
		chromedp.WaitVisible(chromedp.CSS("header#top nav")),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
	)
	if who := eval[string](t, ctx, `document.getElementById('whoami').textContent`); who != user {
		t.Fatalf("logged in as %q, want %q", who, user)
	}
}

// TestDashboard drives the dashboard in a real browser against a real
// controller and executor: log in with the keyboard, launch a sliced
// template from its page and watch its slices go to SUCCESS without a
// reload, expand the container in the jobs list, cancel a running job
// with its button, search the jobs, see a playbook's artifacts, create,
// edit and delete templates and schedules (browser_objects_test.go), see
// the cluster's executor, and, as a user who may only read a template,
// be refused its launch. Each main page is
// photographed, on a desktop and on a phone-sized screen.
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped in -short mode")
	}
	ctx := browser(t)
	c := startCluster(t)
	shots := os.Getenv(screenshotDirEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	c.call("POST", "/api/v1/inventories/lab/import", `{"ungrouped": {"hosts": ["w1", "w2", "w3", "w4", "w5", "w6"]}}`, 201, nil)
	c.call("POST", "/api/v1/templates", `{"name": "web", "description": "deploys the web tier", "action": "sleep", "payload": {"duration": "3s"}, "inventory": "lab", "slice-count": 3}`, 201, nil)
	c.call("POST", "/api/v1/templates", `{"name": "long", "description": "runs until canceled", "action": "dummy_test_action", "payload": {"duration": "10m"}}`, 201, nil)
	c.call("POST", "/api/v1/projects", `{"name": "site", "kind": "directory", "directory": "/srv/site"}`, 201, nil)
	c.call("POST", "/api/v1/schedules", `{"name": "nightly", "description": "the web tier every night", "cron": "0 2 * * *", "time-zone": "Europe/Paris", "launch": {"template": "web"}}`, 201, nil)
	c.call("POST", "/api/v1/notification-templates", `{"name": "ops-hook", "kind": "webhook", "description": "tells the ops channel", "webhook": {"url": "https://hooks.example.invalid/ops"}, "secret": "signing-secret"}`, 201, nil)
	c.call("POST", "/api/v1/templates", `{"name": "step", "description": "one short step", "action": "sleep", "payload": {"duration": "1s"}}`, 201, nil)
	c.call("POST", "/api/v1/workflows", `{"name": "release", "description": "build, then ship or roll back", "nodes": [
		{"id": "build", "template": "step", "success": ["ship"], "failure": ["rollback"]},
		{"id": "ship", "template": "step", "always": ["notify"]},
		{"id": "rollback", "template": "step"},
		{"id": "notify", "template": "step"}]}`, 201, nil)
	c.call("POST", "/api/v1/templates", `{"name": "flaky", "description": "fails", "action": "fail", "payload": {"code": 2}}`, 201, nil)
	c.call("POST", "/api/v1/users", `{"name": "viewer", "password": "viewer-password"}`, 201, nil)
	c.call("POST", "/api/v1/grants", `{"subject-kind": "user", "subject": "viewer", "kind": "template", "object": "web", "role": "read"}`, 201, nil)

	// Unauthenticated, the dashboard asks to log in.
	do(t, ctx, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	screenshot(t, ctx, shots, "login")
	login(t, ctx, c.base, "root", "root-password")

	// Launch the sliced template from its page; the page is never
	// reloaded (the marker survives) while the slices go to SUCCESS.
	do(t, ctx, "open template web",
		chromedp.Navigate(c.base+"/#/templates/web"),
		chromedp.WaitVisible(chromedp.ID("launch")),
	)
	screenshot(t, ctx, shots, "template")
	eval[bool](t, ctx, `window.notReloaded = true`)
	do(t, ctx, "launch web", chromedp.Click(chromedp.ID("launch")))
	seen := map[string]bool{}
	poll.For(t, wait, 100*time.Millisecond, func() error {
		states := eval[[]string](t, ctx, `[...document.querySelectorAll('tr.slice')].map(r => r.dataset.state)`)
		for _, s := range states {
			seen[s] = true
		}
		if len(states) != 3 {
			return fmt.Errorf("%d slices shown on %s", len(states), eval[string](t, ctx, `location.hash + ' | ' + document.body.innerText`))
		}
		for _, s := range states {
			if s != "SUCCESS" {
				return fmt.Errorf("slices %v", states)
			}
		}
		return nil
	})
	if len(seen) < 2 {
		t.Errorf("the slices were only ever shown as %v: not followed live", seen)
	}
	if !eval[bool](t, ctx, `window.notReloaded === true && location.hash.startsWith('#/jobs/')`) {
		t.Fatal("the page was reloaded, or is not the job's")
	}
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if st := eval[string](t, ctx, `document.querySelector('main .card .state').textContent`); st != "SUCCESS" {
			return fmt.Errorf("the container is %s", st)
		}
		return nil
	})
	screenshot(t, ctx, shots, "job-sliced", true)

	// A workflow: its template's graph, then its job's graph following
	// the nodes live until the workflow succeeds.
	do(t, ctx, "open workflow release",
		chromedp.Navigate(c.base+"/#/workflows/release"),
		chromedp.WaitVisible(chromedp.ID("launch")),
		chromedp.WaitVisible(chromedp.CSS(`svg.wf-graph g[data-node="notify"]`)),
	)
	if kinds := eval[[]string](t, ctx, `[...document.querySelectorAll('svg.wf-graph path[data-edge]')].map(e => e.dataset.edge + ':' + e.dataset.kind).sort()`); strings.Join(kinds, " ") != "build>rollback:failure build>ship:success ship>notify:always" {
		t.Errorf("the template's edges are drawn as %v", kinds)
	}
	screenshot(t, ctx, shots, "workflow")
	do(t, ctx, "launch release", chromedp.Click(chromedp.ID("launch")))
	want := "build=succeeded notify=succeeded rollback=do-not-run ship=succeeded"
	poll.For(t, wait, 100*time.Millisecond, func() error {
		got := strings.Join(eval[[]string](t, ctx, `[...document.querySelectorAll('svg.wf-graph g[data-node]')].map(g => g.dataset.node + '=' + g.dataset.status).sort()`), " ")
		if got != want {
			return fmt.Errorf("nodes %q on %s", got, eval[string](t, ctx, `location.hash`))
		}
		return nil
	})
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if st := eval[string](t, ctx, `document.querySelector('main .card .state').textContent`); st != "SUCCESS" {
			return fmt.Errorf("the workflow job is %s", st)
		}
		return nil
	})
	screenshot(t, ctx, shots, "job-workflow", true)
	// Relaunched from ship: a new workflow job of ship and what follows.
	first := eval[string](t, ctx, `location.hash`)
	do(t, ctx, "relaunch from ship", chromedp.Click(chromedp.CSS(`button[data-from="ship"]`)))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		got := strings.Join(eval[[]string](t, ctx, `[...document.querySelectorAll('svg.wf-graph g[data-node]')].map(g => g.dataset.node + '=' + g.dataset.status).sort()`), " ")
		if hash := eval[string](t, ctx, `location.hash`); hash == first || got != "notify=succeeded ship=succeeded" {
			return fmt.Errorf("nodes %q on %s", got, hash)
		}
		return nil
	})

	// The jobs list: the container expands into its slices.
	do(t, ctx, "open the jobs list",
		chromedp.Navigate(c.base+"/#/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label^="Show the slices"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label^="Show the slices"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label^="Hide the slices"]`)),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if n := eval[int](t, ctx, `document.querySelectorAll('tr.slice').length`); n != 3 {
			return fmt.Errorf("%d slices under the container", n)
		}
		return nil
	})
	// A workflow job expands into its node jobs (the relaunch from ship:
	// the newest workflow job, first in the list).
	do(t, ctx, "expand a workflow job", chromedp.Click(chromedp.CSS(`button[aria-label^="Show the nodes"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label^="Hide the nodes"]`)))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		got := eval[[]string](t, ctx, `[...document.querySelectorAll('tr.node td:first-child a')].map(a => a.textContent)`)
		if strings.Join(got, " ") != "node ship node notify" {
			return fmt.Errorf("node rows %v", got)
		}
		return nil
	})
	screenshot(t, ctx, shots, "jobs")

	// Cancel a running job with its button.
	var launched struct{ Job struct{ ID string } }
	c.call("POST", "/api/v1/templates/long/launch", "", 201, &launched)
	id := strings.TrimPrefix(launched.Job.ID, "job/")
	do(t, ctx, "open the running job", chromedp.Navigate(c.base+"/#/jobs/"+id))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if st := eval[string](t, ctx, `(document.querySelector('main .card .state') || {}).textContent || ''`); st != "RUNNING" {
			return fmt.Errorf("the job is %q", st)
		}
		return nil
	})
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if n := eval[int](t, ctx, `document.querySelectorAll('#log span').length`); n == 0 {
			return fmt.Errorf("no log line followed yet")
		}
		return nil
	})
	screenshot(t, ctx, shots, "job-running")
	do(t, ctx, "cancel", chromedp.Click(chromedp.ID("cancel")))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if st := eval[string](t, ctx, `document.querySelector('main .card .state').textContent`); st != "CANCELED" {
			return fmt.Errorf("the job is %s", st)
		}
		return nil
	})
	var j struct{ State string }
	c.call("GET", "/api/v1/jobs/"+id, "", 200, &j)
	if j.State != "CANCELED" {
		t.Fatalf("the API says the canceled job is %s", j.State)
	}

	checkSearch(t, ctx, c, shots, id)
	checkArtifacts(t, ctx, c, shots)

	// Retry a failed job with its button: the page moves to the retry,
	// which names the job it retries.
	c.call("POST", "/api/v1/templates/flaky/launch", "", 201, &launched)
	failed := strings.TrimPrefix(launched.Job.ID, "job/")
	do(t, ctx, "open the failing job", chromedp.Navigate(c.base+"/#/jobs/"+failed))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if st := eval[string](t, ctx, `(document.querySelector('main .card .state') || {}).textContent || ''`); st != "FAILED" {
			return fmt.Errorf("the job is %q", st)
		}
		return nil
	})
	do(t, ctx, "retry", chromedp.WaitVisible(chromedp.ID("retry")), chromedp.Click(chromedp.ID("retry")))
	var retried string
	poll.For(t, wait, 100*time.Millisecond, func() error {
		retried = strings.TrimPrefix(eval[string](t, ctx, `location.hash`), "#/jobs/")
		if retried == failed || !strings.Contains(eval[string](t, ctx, `(document.querySelector('main .card') || {}).textContent || ''`), "Retry of"+failed) {
			return fmt.Errorf("on %s: %s", retried, eval[string](t, ctx, `document.body.innerText`))
		}
		return nil
	})
	var r struct {
		RetryOf    string `json:"retry-of"`
		LaunchType string `json:"launch-type"`
		CreatedBy  string `json:"created-by"`
	}
	c.call("GET", "/api/v1/jobs/"+retried, "", 200, &r)
	if r.RetryOf != launched.Job.ID || r.LaunchType != "retry" || r.CreatedBy != "user/root" {
		t.Fatalf("the retry, as the API shows it: %+v", r)
	}

	// Filters: by state through the form, and by creation time.
	do(t, ctx, "filter the jobs by state",
		chromedp.Navigate(c.base+"/#/jobs"),
		chromedp.WaitVisible(chromedp.ID("f-state")),
		chromedp.SetValue(chromedp.ID("f-state"), "CANCELED"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		states := eval[[]string](t, ctx, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.state)`)
		if len(states) != 1 || states[0] != "CANCELED" || !strings.Contains(eval[string](t, ctx, `location.hash`), "state=CANCELED") {
			return fmt.Errorf("filtered rows %v", states)
		}
		return nil
	})
	do(t, ctx, "filter the jobs by time", chromedp.Navigate(c.base+"/#/jobs?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if txt := eval[string](t, ctx, `document.querySelector('main tbody').textContent`); txt != "No job matches." {
			return fmt.Errorf("jobs of the next hour: %q", txt)
		}
		return nil
	})

	// The cluster: the executor with its capacity, the leader.
	do(t, ctx, "open the cluster page",
		chromedp.Navigate(c.base+"/#/cluster"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-executor="x1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#charts figure`)),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if txt := eval[string](t, ctx, `document.getElementById('queue').textContent`); !strings.Contains(txt, "ctl1") {
			return fmt.Errorf("no leader shown: %s", txt)
		}
		return nil
	})
	screenshot(t, ctx, shots, "cluster", true)
	for _, p := range []string{"templates", "workflows", "inventories", "projects", "schedules", "notification-templates"} {
		do(t, ctx, "open "+p, chromedp.Navigate(c.base+"/#/"+p), chromedp.WaitVisible(chromedp.CSS(`main table tbody a`)))
		screenshot(t, ctx, shots, p)
	}
	// A schedule: its next runs, and the button that disables it.
	do(t, ctx, "open schedule nightly",
		chromedp.Navigate(c.base+"/#/schedules/nightly"),
		chromedp.WaitVisible(chromedp.ID("toggle")),
	)
	screenshot(t, ctx, shots, "schedule")
	do(t, ctx, "disable nightly", chromedp.Click(chromedp.ID("toggle")))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		var sc struct{ Enabled bool }
		c.call("GET", "/api/v1/schedules/nightly", "", 200, &sc)
		if sc.Enabled {
			return fmt.Errorf("nightly is still enabled")
		}
		return nil
	})
	checkForms(t, ctx, c, shots)

	// On a phone-sized screen.
	do(t, ctx, "a phone's screen", chromedp.EmulateViewport(390, 844), chromedp.Navigate(c.base+"/#/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job]`)))
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the jobs page is %d px wide on a 390 px screen", w)
	}
	screenshot(t, ctx, shots, "jobs-phone")
	do(t, ctx, "a form on a phone's screen", chromedp.Navigate(c.base+"/#/templates/report/edit"), chromedp.WaitVisible(chromedp.ID("template-form")))
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the template form is %d px wide on a 390 px screen", w)
	}
	screenshot(t, ctx, shots, "template-form-phone")
	do(t, ctx, "a desktop's screen", chromedp.EmulateViewport(1280, 900))

	// A user who may read template web but not launch it is refused.
	do(t, ctx, "log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("username")))
	login(t, ctx, c.base, "viewer", "viewer-password")
	do(t, ctx, "open template web as viewer",
		chromedp.Navigate(c.base+"/#/templates/web"),
		chromedp.WaitVisible(chromedp.ID("launch")),
		chromedp.Click(chromedp.ID("launch")),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if txt := eval[string](t, ctx, `document.getElementById('flash').textContent`); !strings.Contains(txt, "Permission refused") {
			return fmt.Errorf("flash %q", txt)
		}
		return nil
	})
	screenshot(t, ctx, shots, "refused")
	// And does not see the jobs of a template it may not read.
	do(t, ctx, "viewer's jobs", chromedp.Navigate(c.base+"/#/jobs"), chromedp.WaitVisible(chromedp.CSS(`tr[data-job]`)))
	if txt := eval[string](t, ctx, `document.querySelector('main table').textContent`); strings.Contains(txt, "long") {
		t.Fatal("viewer sees the jobs of template long")
	}
	t.Logf("screenshots in %s", shots)
}
