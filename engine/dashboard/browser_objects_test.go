package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jobengine/jobengine/internal/testing/poll"
)

// checkSearch finds the canceled job id by its template's name, typed in
// the jobs page's search box, and by a word of its log (from the history).
func checkSearch(t *testing.T, ctx context.Context, c *cluster, shots, id string) {
	t.Helper()
	// Search: by the template's name, typed in the search box, and by a
	// word of the job's log (from the history).
	do(t, ctx, "search the jobs by template",
		chromedp.Navigate(c.base+"/#/jobs"),
		chromedp.WaitVisible(chromedp.ID("f-search")),
		chromedp.SendKeys(chromedp.ID("f-search"), "long\r"),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		rows := eval[[]string](t, ctx, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job)`)
		if len(rows) != 1 || rows[0] != id || !strings.Contains(eval[string](t, ctx, `location.hash`), "search=long") {
			return fmt.Errorf("rows %v, want only %s", rows, id)
		}
		return nil
	})
	do(t, ctx, "search the jobs by a word of a log", chromedp.Navigate(c.base+"/#/jobs?search=sleeping"))
	poll.For(t, wait, 200*time.Millisecond, func() error {
		rows := eval[[]string](t, ctx, `[...document.querySelectorAll('tr[data-job]')].map(r => r.dataset.job)`)
		if !slices.Contains(rows, id) {
			return fmt.Errorf("rows %v, want %s among them", rows, id)
		}
		return nil
	})
	screenshot(t, ctx, shots, "jobs-search")
}

// checkArtifacts runs a playbook that records set_stats data and finds it
// on its job's page; without ansible-playbook it says so and returns.
func checkArtifacts(t *testing.T, ctx context.Context, c *cluster, shots string) {
	t.Helper()
	// Artifacts: what a playbook recorded with set_stats, on its job's page.
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Log("ansible-playbook is not installed: the artifacts step is left out")
	} else {
		dir := t.TempDir()
		book := "- hosts: all\n  gather_facts: false\n  tasks:\n    - set_stats:\n        data: {release: \"1.4.2\", image: \"registry.example/web:1.4.2\"}\n      run_once: true\n"
		if err := os.WriteFile(filepath.Join(dir, "release.yml"), []byte(book), 0o644); err != nil {
			t.Fatal(err)
		}
		c.call("POST", "/api/v1/projects", `{"name": "local", "kind": "directory", "directory": "`+dir+`"}`, 201, nil)
		c.call("POST", "/api/v1/inventories/here/import", `{"_meta": {"hostvars": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}, "ungrouped": {"hosts": ["localhost"]}}`, 201, nil)
		c.call("POST", "/api/v1/templates", `{"name": "release", "description": "records the release it made", "action": "ansible_playbook", "project": "local", "playbook": "release.yml", "inventory": "here"}`, 201, nil)
		var rel struct{ Job struct{ ID string } }
		c.call("POST", "/api/v1/templates/release/launch", "", 201, &rel)
		do(t, ctx, "open the release job", chromedp.Navigate(c.base+"/#/jobs/"+strings.TrimPrefix(rel.Job.ID, "job/")))
		poll.For(t, wait, 200*time.Millisecond, func() error {
			got := eval[[]string](t, ctx, `[...document.querySelectorAll('#artifacts tr[data-artifact]')].map(r => r.textContent)`)
			if strings.Join(got, " ") != "imageregistry.example/web:1.4.2 release1.4.2" {
				return fmt.Errorf("artifacts shown: %v; job %s", got, eval[string](t, ctx, `(document.querySelector('main .card') || {}).textContent || ''`))
			}
			return nil
		})
		screenshot(t, ctx, shots, "job-artifacts", true)
	}
}

// checkForms creates a template with the keyboard (a bad name refused on
// its field first), edits it, launches it with a prompted value,
// schedules it, disables and deletes the schedule, and deletes another
// template, confirming in the page.
func checkForms(t *testing.T, ctx context.Context, c *cluster, shots string) {
	t.Helper()
	// Create a template with the keyboard: a bad name is refused on its
	// field, then a good one is created.
	do(t, ctx, "open the new template form",
		chromedp.Navigate(c.base+"/#/templates"),
		chromedp.WaitVisible(chromedp.ID("new")),
		chromedp.Click(chromedp.ID("new")),
		chromedp.WaitVisible(chromedp.ID("template-form")),
		chromedp.SendKeys(chromedp.ID("e-name"), "bad name"),
		chromedp.SendKeys(chromedp.ID("e-action"), "echo"),
		chromedp.SendKeys(chromedp.ID("e-payload"), `{"message": "the daily report"}`),
		chromedp.SendKeys(chromedp.ID("e-prompt-payload"), " "),
		chromedp.SendKeys(chromedp.ID("e-description"), "\r"),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		flash := eval[string](t, ctx, `document.getElementById('flash').textContent`)
		invalid := eval[string](t, ctx, `(document.querySelector('[aria-invalid="true"]') || {}).id || ''`)
		if !strings.Contains(flash, "bad name") || invalid != "e-name" {
			return fmt.Errorf("flash %q, invalid field %q", flash, invalid)
		}
		return nil
	})
	screenshot(t, ctx, shots, "template-form", true)
	eval[string](t, ctx, `document.getElementById('e-name').value = ''`)
	do(t, ctx, "fix the name", chromedp.SendKeys(chromedp.ID("e-name"), "report\r"))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if h := eval[string](t, ctx, `location.hash`); h != "#/templates/report" {
			return fmt.Errorf("on %s: %s", h, eval[string](t, ctx, `document.getElementById('flash').textContent`))
		}
		return nil
	})
	var tpl struct {
		Action      string
		Description string
		Payload     map[string]string
		Prompts     []string
	}
	c.call("GET", "/api/v1/templates/report", "", 200, &tpl)
	if tpl.Action != "echo" || tpl.Payload["message"] != "the daily report" || strings.Join(tpl.Prompts, ",") != "payload" {
		t.Fatalf("template created as %+v", tpl)
	}
	// Edit it: a description.
	do(t, ctx, "edit the template",
		chromedp.WaitVisible(chromedp.ID("edit")),
		chromedp.Click(chromedp.ID("edit")),
		chromedp.WaitVisible(chromedp.ID("template-form")),
		chromedp.SendKeys(chromedp.ID("e-description"), "mails the daily report\r"),
	)
	poll.For(t, wait, 100*time.Millisecond, func() error {
		c.call("GET", "/api/v1/templates/report", "", 200, &tpl)
		if tpl.Description != "mails the daily report" || tpl.Action != "echo" || strings.Join(tpl.Prompts, ",") != "payload" {
			return fmt.Errorf("template is %+v", tpl)
		}
		return nil
	})
	// Launch it with a value its prompts allow: the job runs with it.
	do(t, ctx, "launch with a prompted payload",
		chromedp.WaitVisible(chromedp.ID("l-payload")),
		chromedp.SendKeys(chromedp.ID("l-payload"), `{"message": "the report, now"}`),
	)
	screenshot(t, ctx, shots, "template-prompts", true)
	do(t, ctx, "launch", chromedp.Click(chromedp.ID("launch")))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		hash := eval[string](t, ctx, `location.hash`)
		if !strings.HasPrefix(hash, "#/jobs/") {
			return fmt.Errorf("on %s: %s", hash, eval[string](t, ctx, `document.getElementById('flash').textContent`))
		}
		var job struct {
			State   string
			Payload map[string]string
		}
		c.call("GET", "/api/v1/jobs/"+strings.TrimPrefix(hash, "#/jobs/"), "", 200, &job)
		if job.State != "SUCCESS" || job.Payload["message"] != "the report, now" {
			return fmt.Errorf("the launched job: %+v", job)
		}
		return nil
	})
	do(t, ctx, "back to the template", chromedp.Navigate(c.base+"/#/templates/report"))

	// Schedule it from its page.
	do(t, ctx, "schedule the template",
		chromedp.WaitVisible(chromedp.ID("edit")),
		chromedp.Click(chromedp.CSS(`a[href^="#/schedules/+new"]`)),
		chromedp.WaitVisible(chromedp.ID("schedule-form")),
		chromedp.SendKeys(chromedp.ID("e-name"), "daily-report"),
		chromedp.SendKeys(chromedp.ID("e-cron"), "0 7 * * 1-5"),
	)
	eval[string](t, ctx, `document.getElementById('e-time-zone').value = 'Europe/Paris'`)
	screenshot(t, ctx, shots, "schedule-form", true)
	do(t, ctx, "create the schedule", chromedp.SendKeys(chromedp.ID("e-description"), "weekday mornings\r"))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if h := eval[string](t, ctx, `location.hash`); h != "#/schedules/daily-report" {
			return fmt.Errorf("on %s: %s", h, eval[string](t, ctx, `document.getElementById('flash').textContent`))
		}
		return nil
	})
	var sched struct {
		Enabled  bool
		Cron     string
		TimeZone string `json:"time-zone"`
		Launch   struct{ Template string }
	}
	c.call("GET", "/api/v1/schedules/daily-report", "", 200, &sched)
	if !sched.Enabled || sched.Cron != "0 7 * * 1-5" || sched.TimeZone != "Europe/Paris" || sched.Launch.Template != "report" {
		t.Fatalf("schedule created as %+v", sched)
	}
	// Disable it, then delete it, confirming in the page.
	do(t, ctx, "disable daily-report", chromedp.WaitVisible(chromedp.ID("toggle")), chromedp.Click(chromedp.ID("toggle")))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		c.call("GET", "/api/v1/schedules/daily-report", "", 200, &sched)
		if sched.Enabled {
			return fmt.Errorf("daily-report is still enabled")
		}
		return nil
	})
	do(t, ctx, "delete daily-report", chromedp.Click(chromedp.ID("delete")), chromedp.WaitVisible(chromedp.ID("confirm-delete")),
		chromedp.SendKeys(chromedp.ID("confirm-delete"), "\r"))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if status(c, "/api/v1/schedules/daily-report") != 404 || eval[string](t, ctx, `location.hash`) != "#/schedules" {
			return fmt.Errorf("daily-report still there, or the page is %s", eval[string](t, ctx, `location.hash`))
		}
		return nil
	})
	// Delete a template, confirming in the page.
	c.call("POST", "/api/v1/templates", `{"name": "scratch", "action": "echo"}`, 201, nil)
	do(t, ctx, "delete a template",
		chromedp.Navigate(c.base+"/#/templates/scratch"),
		chromedp.WaitVisible(chromedp.ID("delete")),
		chromedp.Click(chromedp.ID("delete")),
		chromedp.WaitVisible(chromedp.ID("confirm-delete")),
	)
	if f := eval[string](t, ctx, `document.activeElement.id`); f != "confirm-delete" {
		t.Errorf("the focus is on %q after Delete, want the confirmation", f)
	}
	do(t, ctx, "confirm", chromedp.SendKeys(chromedp.ID("confirm-delete"), "\r"))
	poll.For(t, wait, 100*time.Millisecond, func() error {
		if code := status(c, "/api/v1/templates/scratch"); code != 404 || eval[string](t, ctx, `location.hash`) != "#/templates" {
			return fmt.Errorf("scratch: %d, on %s", code, eval[string](t, ctx, `location.hash`))
		}
		return nil
	})
}
