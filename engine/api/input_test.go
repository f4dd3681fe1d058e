package api

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// TestBadInput sends bad input to every write endpoint, as the
// administrator: each answer is 400 naming what was wrong (and the field
// when there is one), and nothing is written.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	snapshot := func() string {
		var b strings.Builder
		for _, p := range []string{"/templates", "/inventories", "/projects", "/users", "/teams", "/grants", "/tokens?limit=1000", "/jobs?limit=1000"} {
			r := e.must(200, uAdmin, "GET", Prefix+p, nil)
			b.Write(r.body)
		}
		b.Write(e.must(200, uAdmin, "GET", Prefix+"/inventories/hosts/hosts", nil).body)
		return b.String()
	}
	before := snapshot()
	cases := []struct {
		method, path string
		body         any
		field        string // the field the error must name; "" for none
	}{
		{"POST", "/templates", `{"name": "x", "action": "echo", "colour": "red"}`, "colour"},
		{"POST", "/templates", `{"name": "x", "action": "echo", "priority": "high"}`, "priority"},
		{"POST", "/templates", `{"name": "bad name", "action": "echo"}`, ""},
		{"POST", "/templates", `{"name": "x", "action": "echo", "slice-count": -1}`, ""},
		{"POST", "/templates", `{"name": "x", "action": "echo"} {}`, ""},
		{"POST", "/templates", `not json`, ""},
		{"POST", "/templates", ``, ""},
		{"PUT", "/templates/web", `{"name": "other", "action": "echo"}`, "name"},
		{"POST", "/templates", `{"name": "x", "action": "echo", "inventory": "nosuch"}`, "inventory"},
		{"PATCH", "/templates/web", `{"project": "nosuch"}`, "project"},
		{"POST", "/templates", `{"name": "x", "action": "ansible_playbook", "credentials": ["nosuch"]}`, "credentials"},
		{"PATCH", "/templates/web", `{"timeout": -5}`, ""},
		{"PATCH", "/templates/web", `{"prompts": ["colour"]}`, ""},
		{"POST", "/templates/web/launch", `{"slice-count": 9}`, ""},
		{"POST", "/templates/web/launch", `{"forks": 3}`, ""},
		{"POST", "/templates/web/launch", `{"limit": "w[1"}`, ""},
		{"POST", "/templates/web/launch", `{"payload": [1]}`, ""},
		{"POST", "/templates/web/launch", `{"limit": 5}`, "limit"},
		{"POST", "/inventories", `{"name": "x", "kind": "dynamic"}`, ""},
		{"POST", "/inventories", `{"name": "x", "kind": "smart"}`, ""},
		{"PATCH", "/inventories/hosts", `{"kind": "smart"}`, "kind"},
		{"POST", "/inventories/hosts/import", `{"web": {"hosts": "w1"}}`, ""},
		{"POST", "/inventories/hosts/import", `[]`, ""},
		{"PATCH", "/inventories/hosts/hosts/w1", `{}`, "enabled"},
		{"POST", "/projects", `{"name": "x", "kind": "git", "url": "https://user:pw@example.invalid/r.git"}`, ""},
		{"POST", "/projects", `{"name": "x", "kind": "directory", "directory": "relative"}`, ""},
		{"PATCH", "/projects/site", `{"kind": "git"}`, ""},
		{"POST", "/users", `{"name": "x", "password": "short"}`, "password"},
		{"POST", "/users", `{"name": "x/y", "password": "long-enough"}`, "name"},
		{"POST", "/users", `{"name": "x", "role": "boss"}`, "role"},
		{"PATCH", "/users/carol", `{"role": "boss"}`, "role"},
		{"PATCH", "/users/carol", `{"password": "long-enough"}`, "password"},
		{"POST", "/users/carol/password", `{"password": "short"}`, "password"},
		{"POST", "/teams", `{"name": "x", "members": ["ghost"]}`, ""},
		{"PATCH", "/teams/none", `{}`, ""},
		{"POST", "/tokens", `{"expires": "soon"}`, "expires"},
		{"POST", "/tokens", `{"user": "ghost"}`, ""},
		{"POST", "/grants", `{"subject-kind": "user", "subject": "carol", "kind": "host", "object": "web", "role": "read"}`, ""},
		{"POST", "/grants", `{"subject-kind": "user", "subject": "carol", "kind": "template", "object": "web", "role": "owner"}`, ""},
		{"POST", "/grants", `{"subject-kind": "user", "subject": "ghost", "kind": "template", "object": "web", "role": "read"}`, ""},
		{"POST", "/login", `{"username": "carol", "password": 5}`, "password"},
		{"GET", "/jobs?state=DONE", nil, "state"},
		{"GET", "/jobs?limit=0", nil, "limit"},
		{"GET", "/jobs?cursor=abc", nil, "cursor"},
		{"GET", "/jobs?order=name", nil, "order"},
		{"GET", "/jobs?colour=red", nil, "colour"},
		{"GET", "/jobs?since=yesterday", nil, "since"},
		{"GET", "/templates?order=size", nil, "order"},
		{"GET", "/templates?name=[", nil, "name"},
		{"GET", "/templates?cursor=zzz", nil, "cursor"},
		{"GET", "/inventories/hosts/script?subset=slice3of2", nil, "subset"},
		{"GET", "/inventories/hosts/script?subset=2/5", nil, "subset"},
		{"GET", "/inventories/hosts/script?subset=slice1of9", nil, "subset"},
		{"GET", "/jobs/" + uid(f.dbJob) + "/logs?follow=perhaps", nil, "follow"},
	}
	for _, c := range cases {
		r := e.do(uAdmin, c.method, Prefix+c.path, c.body)
		if c.path == "/teams/none" {
			// An unknown team is 404 before its body is read.
			if r.status != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404: %s", c.method, c.path, r.status, r.body)
			}
			continue
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s %v: %d, want 400: %s", c.method, c.path, c.body, r.status, r.body)
			continue
		}
		var ae Error
		r.json(t, &ae)
		if ae.Message == "" || ae.Field != c.field {
			t.Errorf("%s %s %v: error %+v, want a message and field %q", c.method, c.path, c.body, ae, c.field)
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("bad input changed something:\nbefore %s\nafter  %s", before, after)
	}
	// A body over the limit is refused as too large.
	big := `{"name": "x", "action": "echo", "description": "` + strings.Repeat("a", DefaultMaxBody) + `"}`
	if r := e.do(uAdmin, "POST", Prefix+"/templates", big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d, want 413: %.200s", r.status, r.body)
	}
}

// TestListPaging walks a list page by page in each order and checks every
// object comes once, in order.
func TestListPaging(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 7; i++ {
		e.must(201, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "t" + string(rune('a'+i)), "action": "echo"})
	}
	for _, order := range []string{"name", "-name", "created", "-updated"} {
		var names []string
		next := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("order %s: too many pages", order)
			}
			path := Prefix + "/templates?limit=3&order=" + order
			if next != "" {
				path += "&cursor=" + next
			}
			var p listPage[struct{ Name string }]
			e.must(200, uAdmin, "GET", path, nil).json(t, &p)
			for _, it := range p.Items {
				names = append(names, it.Name)
			}
			if p.Next == "" {
				break
			}
			next = p.Next
		}
		got := strings.Join(names, ",")
		want := "ta,tb,tc,td,te,tf,tg"
		if strings.HasPrefix(order, "-") {
			want = "tg,tf,te,td,tc,tb,ta"
		}
		if got != want {
			t.Errorf("order %s: %s, want %s", order, got, want)
		}
	}
	var p listPage[struct{ Name string }]
	e.must(200, uAdmin, "GET", Prefix+"/templates?name=t[a-c]&search=T", nil).json(t, &p)
	if len(p.Items) != 3 {
		t.Errorf("name and search filters: %+v", p.Items)
	}
	// A cursor of one order is refused with another.
	r := e.must(200, uAdmin, "GET", Prefix+"/templates?limit=2", nil)
	var first listPage[struct{ Name string }]
	r.json(t, &first)
	e.must(400, uAdmin, "GET", Prefix+"/templates?order=-name&cursor="+first.Next, nil)
}

// TestFollowLogs follows a job's log and events as server-sent events: the
// lines come as they are written, and the stream ends with the job.
func TestFollowLogs(t *testing.T) {
	e := newEnv(t)
	f := e.setup()
	for _, path := range []string{"/logs?follow=true", "/events?follow=true"} {
		t.Run(strings.Trim(path[:7], "/?"), func(t *testing.T) {
			j, err := e.store.Create(context.Background(), jobs.NewJob{Action: "echo", CreatedBy: "user/carol"})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", e.srv.URL+Prefix+"/jobs/"+uid(j.ID)+path, nil)
			req.Header.Set("Authorization", "Bearer "+e.tokens[uCarol])
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			events := make(chan [2]string, 100)
			go func() {
				defer close(events)
				sc := bufio.NewScanner(res.Body)
				var ev string
				for sc.Scan() {
					line := sc.Text()
					switch {
					case strings.HasPrefix(line, "event: "):
						ev = strings.TrimPrefix(line, "event: ")
					case strings.HasPrefix(line, "data: "):
						events <- [2]string{ev, strings.TrimPrefix(line, "data: ")}
					}
				}
			}()
			next := func(want string) string {
				t.Helper()
				for {
					select {
					case ev, ok := <-events:
						if !ok {
							t.Fatalf("the stream ended before a %s event", want)
						}
						if ev[0] == want {
							return ev[1]
						}
						if ev[0] == "error" {
							t.Fatalf("error event: %s", ev[1])
						}
					case <-time.After(30 * time.Second):
						t.Fatalf("no %s event within 30s", want)
					}
				}
			}
			if path == "/events?follow=true" {
				if d := next("job"); !strings.Contains(d, `"state":"QUEUED"`) {
					t.Fatalf("first job event: %s", d)
				}
			}
			lines := []jobs.LogLine{{Time: time.Now().UTC(), Level: "info", Message: "first line"}}
			if err := e.store.AppendLog(context.Background(), uid(j.ID), lines); err != nil {
				t.Fatal(err)
			}
			if d := next("log"); !strings.Contains(d, "first line") {
				t.Fatalf("log event: %s", d)
			}
			if err := e.store.AppendLog(context.Background(), uid(j.ID), []jobs.LogLine{{Time: time.Now().UTC(), Level: "warn", Message: "second line"}}); err != nil {
				t.Fatal(err)
			}
			if d := next("log"); !strings.Contains(d, "second line") {
				t.Fatalf("log event: %s", d)
			}
			e.must(200, uCarol, "POST", Prefix+"/jobs/"+uid(j.ID)+"/cancel", nil)
			if path == "/events?follow=true" {
				if d := next("job"); !strings.Contains(d, `"state":"CANCELED"`) {
					t.Fatalf("job event after the cancel: %s", d)
				}
			}
			if d := next("end"); !strings.Contains(d, `"state":"CANCELED"`) {
				t.Fatalf("end event: %s", d)
			}
		})
	}
	// Without follow: the lines so far, as JSON.
	var ll logLines
	e.must(200, uCarol, "GET", Prefix+"/jobs/"+uid(f.slices[0])+"/logs", nil).json(t, &ll)
	if ll.Items == nil {
		t.Errorf("logs without follow: %+v", ll)
	}
}

// TestProvisioningCallback launches a template as the host the request
// comes from, with the template's host config key and no credentials: a
// plain job limited to that host even though the template is sliced. A
// wrong key, a template without a key and an unknown template are the same
// 403; an address that is no host of the inventory is 400.
func TestProvisioningCallback(t *testing.T) {
	e := newEnv(t)
	e.must(201, uAdmin, "POST", Prefix+"/inventories/lab/import",
		`{"ungrouped": {"hosts": ["localhost-by-var", "other1", "other2"]}, "_meta": {"hostvars": {"localhost-by-var": {"ansible_host": "127.0.0.1"}}}}`)
	const key = "provision-key-0123456789"
	e.must(201, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "boot", "action": "echo", "inventory": "lab", "slice-count": 3, "host-config-key": key})
	e.must(201, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "nokey", "action": "echo", "inventory": "lab"})
	e.must(400, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "weak", "action": "echo", "host-config-key": "short"})
	var l launched
	e.must(201, uAnon, "POST", Prefix+"/templates/boot/callback", map[string]string{"host-config-key": key}).json(t, &l)
	if l.Job.Limit != "localhost-by-var" || len(l.Slices) != 0 || l.Job.IsContainer() || l.Job.LaunchType != "callback" || l.Job.Hosts != 1 {
		t.Errorf("callback launched %+v (slices %v)", l.Job, l.Slices)
	}
	var ae Error
	r1 := e.must(403, uAnon, "POST", Prefix+"/templates/boot/callback", map[string]string{"host-config-key": key + "x"})
	r2 := e.must(403, uAnon, "POST", Prefix+"/templates/nokey/callback", map[string]string{"host-config-key": key})
	r3 := e.must(403, uAnon, "POST", Prefix+"/templates/nothing/callback", map[string]string{"host-config-key": key})
	if string(r1.body) != string(r2.body) || string(r2.body) != string(r3.body) {
		t.Errorf("the refusals differ: %s / %s / %s", r1.body, r2.body, r3.body)
	}
	e.must(400, uAnon, "POST", Prefix+"/templates/boot/callback", `{}`).json(t, &ae)
	if ae.Field != "host-config-key" {
		t.Errorf("no key: %+v", ae)
	}
	// The key is shown to the template's administrators only.
	var tp struct {
		Key string `json:"host-config-key"`
	}
	e.must(200, uAdmin, "GET", Prefix+"/templates/boot", nil).json(t, &tp)
	if tp.Key != key {
		t.Errorf("the administrator sees key %q", tp.Key)
	}
	e.must(200, uAuditor, "GET", Prefix+"/templates/boot", nil).json(t, &tp)
	if tp.Key == key {
		t.Errorf("the auditor sees the host config key")
	}
	// An address that is no host of the inventory.
	e.must(200, uAdmin, "POST", Prefix+"/inventories/lab/import", `{"ungrouped": {"hosts": ["other1"]}}`)
	e.must(400, uAnon, "POST", Prefix+"/templates/boot/callback", map[string]string{"host-config-key": key})
}
