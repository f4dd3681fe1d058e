package command

import (
	"encoding/json"
	"strings"
	"testing"
)

// parisMondays is "every Monday at 9 AM Europe/Paris" from 2035 on, so its
// next occurrences do not depend on when the test runs.
const parisMondays = "DTSTART;TZID=Europe/Paris:20350101T090000 RRULE:FREQ=WEEKLY;BYDAY=MO"

func TestScheduleCommands(t *testing.T) {
	e := newJobEnv(t)
	out := e.ok("schedule", "create", "weekly", "--rrule", parisMondays, "--action", "report", "--payload", `{"format":"pdf"}`,
		"--values", `{"format":"html"}`, "--notify-failure", "ops", "--description", "the weekly report")
	if !strings.Contains(out, "schedule weekly created; next: 2035-01-01 09:00:00 CET (2035-01-01T08:00:00Z)") {
		t.Fatalf("create said %q", out)
	}
	show := e.ok("schedule", "show", "weekly")
	for _, want := range []string{
		"rule:", "rrule " + parisMondays,
		"launches:", "job report",
		"catch-up:", "last",
		"next:", "2035-01-01 09:00:00 CET  (2035-01-01T08:00:00Z)",
		"2035-01-29 09:00:00 CET  (2035-01-29T08:00:00Z)",
		"values:", `{"format":"html"}`,
	} {
		if !strings.Contains(show, want) {
			t.Fatalf("show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "2035-02-05") {
		t.Fatalf("show prints more than 5 occurrences:\n%s", show)
	}
	var v struct {
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
		Launch  struct {
			Job struct {
				Action        string `json:"action"`
				Notifications struct {
					Failure []string `json:"failure"`
				} `json:"notifications"`
			} `json:"job"`
		} `json:"launch"`
		Next []struct{ UTC, Zone string } `json:"next"`
	}
	if err := json.Unmarshal([]byte(e.ok("schedule", "show", "weekly", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Enabled || v.Launch.Job.Action != "report" || len(v.Next) != 5 || v.Next[0].UTC != "2035-01-01T08:00:00Z" || v.Launch.Job.Notifications.Failure[0] != "ops" {
		t.Fatalf("show --json: %+v", v)
	}

	// Summer time: 9 AM is 07:00 UTC.
	e.ok("schedule", "edit", "weekly", "--cron", "0 9 * * 1", "--time-zone", "Europe/Paris", "--target", "site/7")
	show = e.ok("schedule", "show", "weekly")
	if !strings.Contains(show, "cron 0 9 * * 1 (Europe/Paris)") || !strings.Contains(show, "job report on site/7") {
		t.Fatalf("after edit:\n%s", show)
	}
	if out := e.ok("schedule", "disable", "weekly"); !strings.Contains(out, "next: none (disabled)") {
		t.Fatalf("disable said %q", out)
	}
	list := e.ok("schedule", "list")
	if !strings.Contains(list, "weekly") || !strings.Contains(list, "none (disabled)") {
		t.Fatalf("list:\n%s", list)
	}
	e.ok("schedule", "enable", "weekly")
	// A schedule of a template that does not exist is refused, as the API
	// refuses it: it would fail at every occurrence.
	for _, args := range [][]string{{"--template", "web"}, {"--workflow", "nightly"}} {
		_, errOut, code := e.run(append([]string{"schedule", "create", "deploy", "--cron", "30 2 * * *"}, args...)...)
		if code != 2 || !strings.Contains(errOut, args[0]+" "+args[1]+": no such") {
			t.Fatalf("a schedule of a missing %s: exit %d, %s", args[0], code, errOut)
		}
	}
	if _, errOut, code := e.run("schedule", "show", "deploy"); code != 1 || !strings.Contains(errOut, "no such schedule") {
		t.Fatalf("a refused schedule was written: exit %d, %s", code, errOut)
	}
	e.ok("template", "create", "web", "--action", "echo")
	e.ok("schedule", "create", "deploy", "--cron", "30 2 * * *", "--template", "web", "--values", `{"limit":"web1"}`, "--disabled", "--catch-up", "none")
	list = e.ok("schedule", "list")
	if !strings.Contains(list, "template web") || strings.Count(list, "\n") != 3 {
		t.Fatalf("list:\n%s", list)
	}
	if _, errOut, code := e.run("schedule", "create", "deploy", "--cron", "30 2 * * *", "--template", "web"); code != 1 || !strings.Contains(errOut, "schedule exists") {
		t.Fatalf("creating twice: exit %d, %s", code, errOut)
	}
	e.ok("schedule", "delete", "deploy")
	if _, errOut, code := e.run("schedule", "show", "deploy"); code != 1 || !strings.Contains(errOut, "no such schedule") {
		t.Fatalf("show after delete: exit %d, %s", code, errOut)
	}
}

// Bad input is refused with what to type, exit 2, before any server is
// asked: nothing is written.
func TestScheduleBadInput(t *testing.T) {
	e := newJobEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule", "create", "s", "--action", "a"}, "say when"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1"}, "say what to launch"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--rrule", parisMondays, "--action", "a"}, "not both"},
		{[]string{"schedule", "create", "s", "--cron", "61 9 * * 1", "--action", "a"}, "cron expression"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--time-zone", "Paris", "--action", "a"}, "IANA"},
		{[]string{"schedule", "create", "s", "--rrule", "RRULE:FREQ=DAILY", "--action", "a"}, "no DTSTART"},
		{[]string{"schedule", "create", "s", "--rrule", "DTSTART:20350101T090000 RRULE:FREQ=DAILY", "--action", "a"}, "no time zone"},
		{[]string{"schedule", "create", "s", "--rrule", parisMondays, "--time-zone", "UTC", "--action", "a"}, "DTSTART"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--template", "t", "--payload", "{}"}, "--payload is a setting of a job"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--action", "a", "--catch-up", "all"}, "--catch-up"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--action", "a", "--values", "[1]"}, "--values is not a JSON object"},
		{[]string{"schedule", "create", "a/b", "--cron", "0 9 * * 1", "--action", "a"}, "not a schedule name"},
		{[]string{"schedule", "create", "s", "--cron", "0 9 * * 1", "--action", "a", "--notify-failure", "no spaces"}, "notification"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := e.run(tc.args...)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 saying %q", code, out, errOut, tc.want)
			}
		})
	}
	if ok, _, _ := e.conn.Exists(e.conn.Path("/config")); ok {
		t.Fatal("bad input wrote the configuration")
	}
}
