// Package inventory holds inventories: hosts (name, enabled, variables) and
// groups (hosts, child groups, variables), stored in ZooKeeper in chunks so
// that tens of thousands of hosts fit within ZooKeeper's request limit, and
// read back as one consistent snapshot. It imports and exports Ansible's
// JSON inventory format, selects hosts with Ansible's limit patterns,
// evaluates smart inventories (a host filter over other inventories) and
// cuts an inventory into the slices of a sliced job.
package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Errors of this package, wrapped once with what was wrong.
var (
	// ErrInvalid: bad input (a name, a variable, a file, a limit, a slice).
	ErrInvalid = configstore.Invalid("inventory")
	// ErrNotFound: no such inventory (or snapshot).
	ErrNotFound = configstore.ErrNotFound
	// ErrInUse: the inventory is pinned by a live job.
	ErrInUse = errors.New("inventory in use")
)

// Limits of an inventory.
const (
	// MaxHosts bounds the hosts of one inventory.
	MaxHosts = 200_000
	// MaxGroups bounds the groups of one inventory.
	MaxGroups = 100_000
	// MaxVarsBytes bounds the encoded variables of one host, group or
	// inventory.
	MaxVarsBytes = 64 << 10
	// MaxContentBytes bounds the encoded content (hosts and groups) of one
	// inventory before compression.
	MaxContentBytes = 128 << 20
	// MaxHostName bounds a host or group name, in bytes.
	MaxHostName = 255
	// MaxInstanceGroups bounds the instance groups of an inventory.
	MaxInstanceGroups = 32
)

// Reserved group names: Ansible's implicit groups, and the key of the host
// variables in its JSON format.
const (
	GroupAll       = "all"
	GroupUngrouped = "ungrouped"
	metaKey        = "_meta"
)

// Kind says where an inventory's hosts come from.
type Kind string

// Kinds of inventories.
const (
	// Static inventories hold their own hosts and groups.
	Static Kind = "static"
	// Smart inventories hold a host filter over other inventories.
	Smart Kind = "smart"
)

// Vars are variables: a JSON object of names and values, kept as written
// (compacted). They are carried, not interpreted, so an inventory of tens
// of thousands of hosts reads without building a map per host; VarsGet
// reads one variable.
type Vars = json.RawMessage

// VarsGet returns the value of one variable, if set.
func VarsGet(v Vars, name string) (json.RawMessage, bool) {
	if len(v) == 0 {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return nil, false
	}
	val, ok := m[name]
	return val, ok
}

// VarsCount returns how many variables v holds.
func VarsCount(v Vars) int {
	if len(v) == 0 {
		return 0
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(v, &m)
	return len(m)
}

// Host is one host of an inventory.
type Host struct {
	Name      string `json:"name"`
	Enabled   bool   `json:"enabled"`
	Variables Vars   `json:"variables,omitempty"`
}

// Group is a group of hosts and child groups.
type Group struct {
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts,omitempty"`
	Children  []string `json:"children,omitempty"`
	Variables Vars     `json:"variables,omitempty"`
}

// Content is what an inventory holds: its own variables (Ansible's "all"
// group variables), hosts sorted by name, groups sorted by name.
type Content struct {
	Variables Vars    `json:"variables,omitempty"`
	Hosts     []Host  `json:"hosts"`
	Groups    []Group `json:"groups"`
}

// Inventory is the stored head of an inventory: what it is and which
// snapshot of its content is current.
type Inventory struct {
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Description string `json:"description,omitempty"`
	// InstanceGroups are the groups of executors that run jobs over this
	// inventory when a template names none, in preference order.
	InstanceGroups []string `json:"instance-groups,omitempty"`
	// Filter selects the hosts of a smart inventory.
	Filter *Filter `json:"filter,omitempty"`
	// Source, on a static inventory, is where an inventory update job
	// takes its hosts from.
	Source *Source `json:"source,omitempty"`
	// Snapshot is the current content; nil while the inventory is empty
	// (and for a smart inventory never launched).
	Snapshot *Generation `json:"snapshot,omitempty"`
	Created  time.Time   `json:"created"`
	Updated  time.Time   `json:"updated"`
}

// ObjectName implements configstore.Object.
func (inv *Inventory) ObjectName() string { return inv.Name }

// Validate implements configstore.Object.
func (inv *Inventory) Validate() error {
	if err := configstore.ValidName("inventory", inv.Name); err != nil {
		return err
	}
	if err := configstore.ValidDescription(inv.Description); err != nil {
		return err
	}
	switch inv.Kind {
	case Static:
		if inv.Filter != nil {
			return fmt.Errorf("%w: static inventory %s has a host filter (only smart inventories do)", ErrInvalid, inv.Name)
		}
	case Smart:
		if inv.Filter == nil {
			return fmt.Errorf("%w: smart inventory %s has no host filter", ErrInvalid, inv.Name)
		}
		if err := inv.Filter.Validate(); err != nil {
			return err
		}
		for _, src := range inv.Filter.Sources {
			if src == inv.Name {
				return fmt.Errorf("%w: smart inventory %s cannot draw from itself", ErrInvalid, inv.Name)
			}
		}
	default:
		return fmt.Errorf("%w: inventory %s has kind %q (want %s or %s)", ErrInvalid, inv.Name, inv.Kind, Static, Smart)
	}
	if err := ValidInstanceGroups(inv.InstanceGroups); err != nil {
		return err
	}
	if inv.Source != nil {
		if inv.Kind != Static {
			return fmt.Errorf("%w: %s inventory %s has a source (only static inventories do)", ErrInvalid, inv.Kind, inv.Name)
		}
		if err := inv.Source.Validate(); err != nil {
			return err
		}
	}
	if inv.Snapshot != nil {
		if err := inv.Snapshot.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ValidInstanceGroups checks a list of instance group names: valid names,
// no repeats, at most MaxInstanceGroups.
func ValidInstanceGroups(gs []string) error {
	if len(gs) > MaxInstanceGroups {
		return fmt.Errorf("%w: %d instance groups, at most %d", ErrInvalid, len(gs), MaxInstanceGroups)
	}
	seen := map[string]bool{}
	for _, g := range gs {
		if err := configstore.ValidName("instance group", g); err != nil {
			return err
		}
		if seen[g] {
			return fmt.Errorf("%w: instance group %s is listed twice", ErrInvalid, g)
		}
		seen[g] = true
	}
	return nil
}

// ValidHostName checks a host name: 1–255 bytes, no blank or control
// character, and none of the characters of limit patterns (",*?!&~") or
// quotes, so every host can be named in a limit.
func ValidHostName(name string) error {
	if name == "" || len(name) > MaxHostName {
		return fmt.Errorf("%w: host name %q must be 1–%d bytes", ErrInvalid, name, MaxHostName)
	}
	ascii := true
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b >= 0x80 {
			ascii = false
			break
		}
		if badHostByte[b] {
			return fmt.Errorf("%w: host name %q has %q (blanks, control characters and ,*?!&~\"'\\ are not allowed)", ErrInvalid, name, b)
		}
	}
	if ascii {
		return nil
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(",*?!&~\"'\\", r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: host name %q has %q (blanks, control characters and ,*?!&~\"'\\ are not allowed)", ErrInvalid, name, r)
		}
	}
	return nil
}

// badHostByte marks the ASCII bytes a host name may not hold.
var badHostByte = func() (t [128]bool) {
	for b := 0; b < 128; b++ {
		r := rune(b)
		t[b] = unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(",*?!&~\"'\\", r)
	}
	return t
}()

// ValidGroupName checks a group name: 1–255 letters, digits, '_', '.' or
// '-', not one of Ansible's implicit groups.
func ValidGroupName(name string) error {
	if name == "" || len(name) > MaxHostName {
		return fmt.Errorf("%w: group name %q must be 1–%d bytes", ErrInvalid, name, MaxHostName)
	}
	if name == GroupAll || name == GroupUngrouped || name == metaKey {
		return fmt.Errorf("%w: %q is not a group of its own (all and ungrouped are implied)", ErrInvalid, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return fmt.Errorf("%w: group name %q: use letters, digits, '_', '.' and '-'", ErrInvalid, name)
		}
	}
	return nil
}

// validVars checks variables: a JSON object (values are JSON as decoded,
// or json.Marshal refuses them on write) of bounded size.
func validVars(what string, v Vars) error {
	if len(v) == 0 {
		return nil
	}
	if len(v) > MaxVarsBytes {
		return fmt.Errorf("%w: %s: variables take %d bytes, over the %d-byte limit", ErrInvalid, what, len(v), MaxVarsBytes)
	}
	if v[0] != '{' || v[len(v)-1] != '}' {
		return fmt.Errorf("%w: %s: variables must be a JSON object", ErrInvalid, what)
	}
	return nil
}

// Normalize sorts hosts and groups by name and each group's members, and
// drops repeated members, so equal contents encode equally.
func (c *Content) Normalize() {
	sort.Slice(c.Hosts, func(a, b int) bool { return c.Hosts[a].Name < c.Hosts[b].Name })
	sort.Slice(c.Groups, func(a, b int) bool { return c.Groups[a].Name < c.Groups[b].Name })
	for i := range c.Groups {
		c.Groups[i].Hosts = sortedUnique(c.Groups[i].Hosts)
		c.Groups[i].Children = sortedUnique(c.Groups[i].Children)
	}
	if c.Hosts == nil {
		c.Hosts = []Host{}
	}
	if c.Groups == nil {
		c.Groups = []Group{}
	}
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

// Validate checks a normalized content: valid and unique names, members
// that exist, no group among its own descendants, bounded sizes.
func (c *Content) Validate() error {
	if len(c.Hosts) > MaxHosts {
		return fmt.Errorf("%w: %d hosts, at most %d", ErrInvalid, len(c.Hosts), MaxHosts)
	}
	if len(c.Groups) > MaxGroups {
		return fmt.Errorf("%w: %d groups, at most %d", ErrInvalid, len(c.Groups), MaxGroups)
	}
	if err := validVars("the inventory", c.Variables); err != nil {
		return err
	}
	hosts := make(map[string]bool, len(c.Hosts))
	for i, h := range c.Hosts {
		if err := ValidHostName(h.Name); err != nil {
			return err
		}
		if i > 0 && c.Hosts[i-1].Name >= h.Name {
			if c.Hosts[i-1].Name == h.Name {
				return fmt.Errorf("%w: host %s is listed twice", ErrInvalid, h.Name)
			}
			return fmt.Errorf("%w: hosts are not sorted by name", ErrInvalid)
		}
		if err := validVars("host "+h.Name, h.Variables); err != nil {
			return err
		}
		hosts[h.Name] = true
	}
	groups := make(map[string]int, len(c.Groups))
	for i, g := range c.Groups {
		if err := ValidGroupName(g.Name); err != nil {
			return err
		}
		if _, dup := groups[g.Name]; dup {
			return fmt.Errorf("%w: group %s is listed twice", ErrInvalid, g.Name)
		}
		if hosts[g.Name] {
			// Ansible cannot tell a host from a group of the same name in
			// a limit.
			return fmt.Errorf("%w: %s is both a host and a group", ErrInvalid, g.Name)
		}
		groups[g.Name] = i
		if err := validVars("group "+g.Name, g.Variables); err != nil {
			return err
		}
	}
	for _, g := range c.Groups {
		for _, h := range g.Hosts {
			if !hosts[h] {
				return fmt.Errorf("%w: group %s lists host %s, which is not in the inventory", ErrInvalid, g.Name, h)
			}
		}
		for _, ch := range g.Children {
			if _, ok := groups[ch]; !ok {
				return fmt.Errorf("%w: group %s lists child group %s, which is not in the inventory", ErrInvalid, g.Name, ch)
			}
		}
	}
	return c.checkCycles(groups)
}

// checkCycles refuses a group that is its own descendant: Ansible would
// loop or refuse it.
func (c *Content) checkCycles(index map[string]int) error {
	const (
		unseen = iota
		open
		done
	)
	mark := make([]int8, len(c.Groups))
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		switch mark[i] {
		case open:
			return fmt.Errorf("%w: groups form a cycle: %s", ErrInvalid, strings.Join(append(path, c.Groups[i].Name), " → "))
		case done:
			return nil
		}
		mark[i] = open
		for _, ch := range c.Groups[i].Children {
			if err := visit(index[ch], append(path, c.Groups[i].Name)); err != nil {
				return err
			}
		}
		mark[i] = done
		return nil
	}
	for i := range c.Groups {
		if err := visit(i, nil); err != nil {
			return err
		}
	}
	return nil
}

// EnabledCount returns how many hosts are enabled.
func (c *Content) EnabledCount() int {
	n := 0
	for _, h := range c.Hosts {
		if h.Enabled {
			n++
		}
	}
	return n
}

// HostIndex returns the position of the host called name, or -1.
func (c *Content) HostIndex(name string) int {
	i := sort.Search(len(c.Hosts), func(i int) bool { return c.Hosts[i].Name >= name })
	if i < len(c.Hosts) && c.Hosts[i].Name == name {
		return i
	}
	return -1
}

// GroupsOf returns, for every host, the names of the groups it is a direct
// member of, sorted.
func (c *Content) GroupsOf() map[string][]string {
	out := map[string][]string{}
	for _, g := range c.Groups {
		for _, h := range g.Hosts {
			out[h] = append(out[h], g.Name)
		}
	}
	return out
}
