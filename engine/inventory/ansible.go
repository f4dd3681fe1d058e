package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Ansible's JSON inventory format, as `ansible-inventory --list` prints it
// and as inventory scripts print it for `--list`:
//
//	{
//	  "_meta": {"hostvars": {"web1": {"http_port": 80}}},
//	  "all": {"children": ["ungrouped", "web"], "vars": {"ntp": "pool.ntp.org"}},
//	  "ungrouped": {"hosts": ["db1"]},
//	  "web": {"hosts": ["web1"], "children": ["edge"], "vars": {"tier": "front"}}
//	}
//
// A group may also be a bare list of host names (old scripts print that).

// ansibleGroup is one group of Ansible's JSON inventory.
type ansibleGroup struct {
	Hosts    []string `json:"hosts,omitempty"`
	Children []string `json:"children,omitempty"`
	Vars     Vars     `json:"vars,omitempty"`
}

// exportGroup is a group as Content.Ansible writes it: "hosts" always
// present, empty or not. Ansible's script plugin takes a group given as an
// empty object for a host named after the group, which a slice that keeps
// none of a group's hosts would otherwise write.
type exportGroup struct {
	Hosts    []string `json:"hosts"`
	Children []string `json:"children,omitempty"`
	Vars     Vars     `json:"vars,omitempty"`
}

type ansibleMeta struct {
	Hostvars map[string]json.RawMessage `json:"hostvars"`
}

// MaxImportBytes bounds an Ansible inventory file read by ParseAnsible.
const MaxImportBytes = 256 << 20

// ParseAnsible reads Ansible's JSON inventory format (the output of
// `ansible-inventory --list`, `_meta.hostvars` included). Every host is
// enabled; "all" gives the inventory's variables, "ungrouped" and "all"
// hosts are hosts without a group. Unknown fields are refused.
func ParseAnsible(data []byte) (*Content, error) {
	if len(data) > MaxImportBytes {
		return nil, fmt.Errorf("%w: the file has %d bytes, over the %d-byte limit", ErrInvalid, len(data), MaxImportBytes)
	}
	// The top level is read as a stream, so that _meta (nearly all of a
	// large file) is decoded once, straight into its types.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: not Ansible's JSON inventory format: want a JSON object of groups and _meta", ErrInvalid)
	}
	top := map[string]json.RawMessage{}
	c := &Content{}
	hostVars := map[string]Vars{}
	seen := map[string]bool{} // every host named anywhere
	var order []string
	addHost := func(h string) error {
		if err := ValidHostName(h); err != nil {
			return err
		}
		if !seen[h] {
			seen[h] = true
			order = append(order, h)
		}
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: not Ansible's JSON inventory format: %v", ErrInvalid, err)
		}
		key, _ := tok.(string)
		if key != metaKey {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("%w: not Ansible's JSON inventory format: group %s: %v", ErrInvalid, key, err)
			}
			top[key] = raw
			continue
		}
		var m ansibleMeta
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%w: _meta: %v (want {\"hostvars\": {HOST: {VAR: VALUE}}})", ErrInvalid, err)
		}
		for h, v := range m.Hostvars {
			if err := addHost(h); err != nil {
				return nil, fmt.Errorf("_meta.hostvars: %w", err)
			}
			if hostVars[h], err = compactVars("host "+h, v); err != nil {
				return nil, err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: not Ansible's JSON inventory format: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: not Ansible's JSON inventory format: unexpected data after the JSON object", ErrInvalid)
	}
	groups := map[string]*Group{}
	names := make([]string, 0, len(top))
	for k := range top {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == metaKey {
			continue
		}
		g, err := parseGroup(name, top[name])
		if err != nil {
			return nil, err
		}
		for _, h := range g.Hosts {
			if err := addHost(h); err != nil {
				return nil, fmt.Errorf("group %s: %w", name, err)
			}
		}
		if g.Vars, err = compactVars("group "+name, g.Vars); err != nil {
			return nil, err
		}
		switch name {
		case GroupAll:
			c.Variables = g.Vars
			continue // its children are every top-level group: implied
		case GroupUngrouped:
			if len(g.Children) > 0 || len(g.Vars) > 0 {
				return nil, fmt.Errorf("%w: group ungrouped may only list hosts", ErrInvalid)
			}
			continue
		}
		if err := ValidGroupName(name); err != nil {
			return nil, err
		}
		groups[name] = &Group{Name: name, Hosts: g.Hosts, Children: g.Children, Variables: g.Vars}
	}
	// A child named but never defined is an empty group (ansible-inventory
	// leaves empty groups out of the top level).
	for _, name := range names {
		g := groups[name]
		if g == nil {
			continue
		}
		for _, ch := range g.Children {
			if groups[ch] == nil {
				if err := ValidGroupName(ch); err != nil {
					return nil, fmt.Errorf("group %s: %w", name, err)
				}
				groups[ch] = &Group{Name: ch}
			}
		}
	}
	if len(seen) > MaxHosts {
		return nil, fmt.Errorf("%w: %d hosts, at most %d", ErrInvalid, len(seen), MaxHosts)
	}
	c.Hosts = make([]Host, 0, len(order))
	for _, h := range order {
		c.Hosts = append(c.Hosts, Host{Name: h, Enabled: true, Variables: hostVars[h]})
	}
	c.Groups = make([]Group, 0, len(groups))
	for _, g := range groups {
		c.Groups = append(c.Groups, *g)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// compactVars checks that variables are a JSON object and drops its
// blanks, so equal variables encode equally whatever the file's layout;
// an empty object is no variables.
func compactVars(what string, v json.RawMessage) (Vars, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	if v[0] != '{' {
		return nil, fmt.Errorf("%w: %s: variables must be a JSON object", ErrInvalid, what)
	}
	if bytes.ContainsAny(v, " \t\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
		}
		v = buf.Bytes()
	}
	if string(v) == "{}" {
		return nil, nil
	}
	return v, nil
}

func parseGroup(name string, raw json.RawMessage) (ansibleGroup, error) {
	var g ansibleGroup
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &g.Hosts); err != nil {
			return g, fmt.Errorf("%w: group %s: a list of host names expected: %v", ErrInvalid, name, err)
		}
		return g, nil
	}
	if err := configstore.DecodeStrict(raw, &g); err != nil {
		return g, fmt.Errorf("%w: group %s: %v (want {\"hosts\": [...], \"children\": [...], \"vars\": {...}})", ErrInvalid, name, err)
	}
	return g, nil
}

// ExportOptions say what an Ansible JSON inventory includes.
type ExportOptions struct {
	// Hostvars fills _meta.hostvars with each host's variables; without
	// it, _meta.hostvars is empty (Ansible then asks nothing per host).
	Hostvars bool
	// Disabled includes disabled hosts; by default only enabled hosts are
	// exported, as jobs see them.
	Disabled bool
}

// Ansible returns the content in Ansible's JSON inventory format, as
// `ansible-inventory --list` prints it: every group at the top level with
// its direct hosts, children and variables, "all" with the top-level groups
// and the inventory's variables, "ungrouped" with the hosts in no group.
// Groups keep only the hosts exported.
func (c *Content) Ansible(opts ExportOptions) ([]byte, error) {
	keep := make(map[string]bool, len(c.Hosts))
	meta := ansibleMeta{Hostvars: map[string]json.RawMessage{}}
	for _, h := range c.Hosts {
		if !h.Enabled && !opts.Disabled {
			continue
		}
		keep[h.Name] = true
		if opts.Hostvars && len(h.Variables) > 0 {
			meta.Hostvars[h.Name] = h.Variables
		}
	}
	top := make(map[string]any, len(c.Groups)+3)
	top[metaKey] = meta
	isChild := map[string]bool{}
	grouped := map[string]bool{}
	for _, g := range c.Groups {
		for _, ch := range g.Children {
			isChild[ch] = true
		}
		out := exportGroup{Hosts: []string{}, Children: g.Children, Vars: g.Variables}
		for _, h := range g.Hosts {
			if keep[h] {
				out.Hosts = append(out.Hosts, h)
				grouped[h] = true
			}
		}
		top[g.Name] = out
	}
	all := exportGroup{Hosts: []string{}, Children: []string{GroupUngrouped}, Vars: c.Variables}
	for _, g := range c.Groups {
		if !isChild[g.Name] {
			all.Children = append(all.Children, g.Name)
		}
	}
	sort.Strings(all.Children)
	top[GroupAll] = all
	ungrouped := exportGroup{Hosts: []string{}}
	for _, h := range c.Hosts {
		if keep[h.Name] && !grouped[h.Name] {
			ungrouped.Hosts = append(ungrouped.Hosts, h.Name)
		}
	}
	top[GroupUngrouped] = ungrouped
	return json.Marshal(top)
}
