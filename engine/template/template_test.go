package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/internal/testing/zktest"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
)

var zkc *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &zkc))
}

var seq atomic.Int64

// env is a launcher on a root of the test's own.
type env struct {
	conn *zkconn.Conn
	l    *Launcher
}

func newEnv(t testing.TB, budget int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: zkc.Addrs(), Root: fmt.Sprintf("/tpl%d", seq.Add(1)), SessionTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	js := jobs.NewStore(conn, jobs.StoreConfig{})
	if err := js.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return &env{conn: conn, l: &Launcher{Jobs: js, Templates: NewStore(conn, nil), Inventories: inventory.NewStore(conn, inventory.Config{}), Budget: budget}}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// hosts returns a content of n hosts with a few variables each.
func hosts(n int) *inventory.Content {
	c := &inventory.Content{Groups: []inventory.Group{{Name: "all_hosts"}}}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("host-%05d.example.com", i)
		c.Hosts = append(c.Hosts, inventory.Host{Name: name, Enabled: true,
			Variables: json.RawMessage(fmt.Sprintf(`{"ansible_host":"10.%d.%d.%d","rack":"r%02d"}`, i/65536, i/256%256, i%256, i%40))})
		c.Groups[0].Hosts = append(c.Groups[0].Hosts, name)
	}
	return c
}

func TestValidateRefusesBadTemplates(t *testing.T) {
	good := func() *Template { return &Template{Name: "t", Action: "echo", Priority: 100} }
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Template){
		"bad name":        func(t *Template) { t.Name = "a/b" },
		"no action":       func(t *Template) { t.Action = "" },
		"payload array":   func(t *Template) { t.Payload = json.RawMessage(`[1]`) },
		"huge payload":    func(t *Template) { t.Payload = json.RawMessage(`{"x":"` + strings.Repeat("x", MaxPayloadBytes) + `"}`) },
		"extra-vars":      func(t *Template) { t.ExtraVars = json.RawMessage(`"x"`) },
		"forks":           func(t *Template) { t.Forks = -1 },
		"verbosity":       func(t *Template) { t.Verbosity = 6 },
		"playbook":        func(t *Template) { t.Playbook = "/etc/x.yml" },
		"project":         func(t *Template) { t.Project = "a b" },
		"inventory":       func(t *Template) { t.Inventory = "-x" },
		"limit":           func(t *Template) { t.Limit = "a,,b" },
		"slices":          func(t *Template) { t.SliceCount = inventory.MaxSlices + 1 },
		"timeout":         func(t *Template) { t.Timeout = -1 },
		"priority":        func(t *Template) { t.Priority = 1000 },
		"instance groups": func(t *Template) { t.InstanceGroups = []string{"a", "a"} },
		"empty tag":       func(t *Template) { t.Tags = []string{""} },
		"prompt":          func(t *Template) { t.Prompts = []string{"action"} },
		"job tags":        func(t *Template) { t.JobTags = "a\nb" },
	} {
		tp := good()
		mod(tp)
		if err := tp.Validate(); !errors.Is(err, configstore.ErrInvalid) && !errors.Is(err, jobs.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid-input error", name, err)
		}
	}
}

func TestResolve(t *testing.T) {
	tp := &Template{Name: "t", Action: "echo", Payload: json.RawMessage(`{"a":1,"b":2}`), Limit: "web", SliceCount: 2,
		Ansible: jobs.Ansible{ExtraVars: json.RawMessage(`{"x":1}`), Forks: 5}, Prompts: []string{PromptPayload, PromptLimit, PromptForks}}
	limit, forks := "db", 9
	r, err := tp.Resolve(&jobs.LaunchValues{Payload: json.RawMessage(`{"b":3,"c":4}`), Limit: &limit, Forks: &forks})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Payload) != `{"a":1,"b":3,"c":4}` || r.Limit != "db" || r.Ansible.Forks != 9 || string(r.Ansible.ExtraVars) != `{"x":1}` || r.SliceCount != 2 {
		t.Fatalf("resolved: %+v %+v", r, r.Ansible)
	}
	if tp.Forks != 5 || string(tp.Payload) != `{"a":1,"b":2}` {
		t.Fatal("Resolve changed the template")
	}
	n := 3
	inv := "other"
	_, err = tp.Resolve(&jobs.LaunchValues{SliceCount: &n, Inventory: &inv, Limit: &limit})
	if !errors.Is(err, ErrNotPromptable) || !strings.Contains(err.Error(), "inventory, slice-count") || strings.Contains(err.Error(), "limit") {
		t.Fatalf("non-promptable fields: %v", err)
	}
	bad := -1
	if _, err := tp.Resolve(&jobs.LaunchValues{Forks: &bad}); !errors.Is(err, jobs.ErrInvalid) {
		t.Fatalf("bad prompted forks: %v", err)
	}
	if r, err := tp.Resolve(nil); err != nil || r.Limit != "web" {
		t.Fatalf("no values: %+v %v", r, err)
	}
}

// TestLaunchPacksSlicesIntoTransactions launches many slices with a small
// byte budget: they are created in several transactions, all of them.
func TestLaunchPacksSlicesIntoTransactions(t *testing.T) {
	e := newEnv(t, 40<<10)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "inv", hosts(300)); err != nil {
		t.Fatal(err)
	}
	tp := &Template{Name: "many", Action: "echo", Inventory: "inv", SliceCount: 120, Priority: 100,
		Payload: json.RawMessage(`{"pad":"` + strings.Repeat("p", 2000) + `"}`)}
	if err := e.l.Templates.Create(ctx, tp); err != nil {
		t.Fatal(err)
	}
	res, err := e.l.Launch(ctx, Request{Template: "many"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Slices) != 120 || len(res.Job.NestedJobs) != 120 {
		t.Fatalf("%d slices", len(res.Slices))
	}
	total := 0
	for k, s := range res.Slices {
		j, _, err := e.l.Jobs.Get(ctx, s.ID)
		if err != nil {
			t.Fatalf("slice %d: %v", k+1, err)
		}
		total += j.Hosts
		if j.Hosts != 2 && j.Hosts != 3 {
			t.Fatalf("slice %d has %d hosts", k+1, j.Hosts)
		}
	}
	if total != 300 {
		t.Fatalf("slices hold %d hosts, want 300", total)
	}
	// Every slice waits for the scheduler; none is queued before it.
	if n, _ := e.l.Jobs.PendingCount(ctx); n != 120 {
		t.Fatalf("%d pending jobs, want 120", n)
	}
	if n, _ := e.l.Jobs.Queue().Len(ctx); n != 0 {
		t.Fatalf("%d queue entries, want none before the scheduler", n)
	}
	// A pin holds the snapshot for the container.
	pins, err := e.l.Inventories.Pins(ctx, "inv", res.Job.InventorySnapshot)
	if err != nil || len(pins) != 1 || "job/"+pins[0] != res.Job.ID {
		t.Fatalf("pins %v (%v), want the container", pins, err)
	}
}

// TestLaunchOverSmartInventory slices a smart inventory: its filter is
// applied at launch and kept as a snapshot of its own.
func TestLaunchOverSmartInventory(t *testing.T) {
	e := newEnv(t, 0)
	ctx := ctxT(t)
	if _, _, err := e.l.Inventories.Import(ctx, "src", hosts(20)); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Inventories.Create(ctx, &inventory.Inventory{Name: "smart", Kind: inventory.Smart,
		Filter: &inventory.Filter{Sources: []string{"src"}, Variables: []inventory.VarMatch{{Name: "rack", Value: "r01"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	// 20 hosts over racks r00–r19: only host-00001 is in r01.
	if err := e.l.Templates.Create(ctx, &Template{Name: "s", Action: "echo", Inventory: "smart", SliceCount: 4, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := e.l.Launch(ctx, Request{Template: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Slices) != 0 || res.Job.Hosts != 1 || res.Job.InventorySnapshot == "" {
		t.Fatalf("one host matches: want a plain job over it, got %+v", res.Job)
	}
	_, c, err := e.l.Inventories.ReadGeneration(ctx, "smart", res.Job.InventorySnapshot)
	if err != nil || len(c.Hosts) != 1 || c.Hosts[0].Name != "host-00001.example.com" {
		t.Fatalf("snapshot of the smart inventory: %+v %v", c, err)
	}
}
