package inventory

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/configstore"
)

// sample is what `ansible-inventory --list` prints for a small INI
// inventory, plus a group in the old scripts' bare-list form.
const sample = `{
  "_meta": {"hostvars": {
    "web1": {"http_port": 80, "ansible_host": "10.0.0.1"},
    "web2": {"http_port": 8080},
    "db1": {"role": "primary"},
    "lonely": {"x": [1, 2]}
  }},
  "all": {"children": ["ungrouped", "frontend", "dbs", "legacy"], "vars": {"ntp": "pool.ntp.org"}},
  "ungrouped": {"hosts": ["lonely"]},
  "frontend": {"children": ["web", "edge"], "vars": {"tier": "front"}},
  "web": {"hosts": ["web1", "web2"]},
  "dbs": {"hosts": ["db1"], "vars": {"backup": true}},
  "legacy": ["old1"]
}`

func TestParseAnsible(t *testing.T) {
	c := mustParse(t, []byte(sample))
	var names []string
	for _, h := range c.Hosts {
		names = append(names, h.Name)
		if !h.Enabled {
			t.Errorf("host %s imported disabled", h.Name)
		}
	}
	if want := []string{"db1", "lonely", "old1", "web1", "web2"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("hosts %v, want %v", names, want)
	}
	if got, _ := VarsGet(c.Hosts[c.HostIndex("web2")].Variables, "http_port"); string(got) != "8080" {
		t.Errorf("web2 http_port = %s", got)
	}
	if got, _ := VarsGet(c.Variables, "ntp"); string(got) != `"pool.ntp.org"` {
		t.Errorf("inventory variables: ntp = %s", got)
	}
	var groups []string
	for _, g := range c.Groups {
		groups = append(groups, g.Name)
	}
	// edge is named as a child but never defined: an empty group.
	if want := []string{"dbs", "edge", "frontend", "legacy", "web"}; !reflect.DeepEqual(groups, want) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	fe := c.Groups[2]
	if !reflect.DeepEqual(fe.Children, []string{"edge", "web"}) || string(fe.Variables) != `{"tier":"front"}` {
		t.Errorf("frontend = %+v", fe)
	}
}

func TestParseAnsibleRefusesBadInput(t *testing.T) {
	for name, in := range map[string]string{
		"not json":             `{"web": `,
		"not an object":        `["web1"]`,
		"null":                 `null`,
		"trailing data":        `{} {}`,
		"unknown group field":  `{"web": {"hosts": ["a"], "hostz": []}}`,
		"unknown _meta field":  `{"_meta": {"hostvars": {}, "extra": 1}}`,
		"hostvars not objects": `{"_meta": {"hostvars": {"a": [1]}}}`,
		"group vars a string":  `{"web": {"hosts": ["a"], "vars": "x"}}`,
		"blank in host name":   `{"web": {"hosts": ["a b"]}}`,
		"comma in host name":   `{"web": {"hosts": ["a,b"]}}`,
		"empty host name":      `{"web": {"hosts": [""]}}`,
		"bad group name":       `{"we b": {"hosts": ["a"]}}`,
		"ungrouped with vars":  `{"ungrouped": {"hosts": ["a"], "vars": {"x": 1}}}`,
		"cycle":                `{"a": {"children": ["b"]}, "b": {"children": ["a"]}}`,
		"self child":           `{"a": {"children": ["a"]}}`,
		"host and group":       `{"a": {"hosts": ["b"]}, "b": {"hosts": ["c"]}}`,
		"child named all":      `{"a": {"children": ["all"]}}`,
		"hosts not a list":     `{"web": {"hosts": {"a": {}}}}`,
		"huge variables":       `{"_meta": {"hostvars": {"a": {"v": "` + strings.Repeat("x", MaxVarsBytes) + `"}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseAnsible([]byte(in))
			if !errors.Is(err, configstore.ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid error", err)
			}
		})
	}
}

func TestAnsibleRoundTrip(t *testing.T) {
	c := mustParse(t, []byte(sample))
	out, err := c.Ansible(ExportOptions{Hostvars: true})
	if err != nil {
		t.Fatal(err)
	}
	back := mustParse(t, out)
	if !reflect.DeepEqual(c, back) {
		t.Fatalf("round trip changed the content:\n%+v\n%+v", c, back)
	}
	// The export is what ansible-inventory prints: all lists the top-level
	// groups and ungrouped, ungrouped the hosts in no group.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatal(err)
	}
	var all, ungrouped ansibleGroup
	_ = json.Unmarshal(top["all"], &all)
	_ = json.Unmarshal(top["ungrouped"], &ungrouped)
	if want := []string{"dbs", "frontend", "legacy", "ungrouped"}; !reflect.DeepEqual(all.Children, want) {
		t.Errorf("all.children = %v, want %v", all.Children, want)
	}
	if want := []string{"lonely"}; !reflect.DeepEqual(ungrouped.Hosts, want) {
		t.Errorf("ungrouped.hosts = %v, want %v", ungrouped.Hosts, want)
	}
}

func TestAnsibleExportLeavesOutDisabledHosts(t *testing.T) {
	c := mustParse(t, []byte(sample))
	c.Hosts[c.HostIndex("web1")].Enabled = false
	out, err := c.Ansible(ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "web1") {
		t.Fatalf("disabled host exported: %s", out)
	}
	var top struct {
		Meta ansibleMeta `json:"_meta"`
	}
	_ = json.Unmarshal(out, &top)
	if top.Meta.Hostvars == nil || len(top.Meta.Hostvars) != 0 {
		t.Fatalf("without --hostvars, _meta.hostvars must be present and empty: %s", out)
	}
	out, _ = c.Ansible(ExportOptions{Disabled: true})
	if !strings.Contains(string(out), "web1") {
		t.Fatalf("disabled host missing when asked for: %s", out)
	}
}
