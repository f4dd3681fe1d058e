package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
)

// Limits of a smart inventory's filter.
const (
	// MaxSources bounds the inventories a smart inventory draws from.
	MaxSources = 32
	// MaxVarMatches bounds the variable conditions of a filter.
	MaxVarMatches = 16
)

// Filter is the host filter of a smart inventory: the hosts of its source
// inventories that match every condition given. A host in two sources is
// taken from the first. Smart inventories have no groups of their own (as
// in AWX): their hosts carry their own variables only.
type Filter struct {
	// Sources are static inventories, in order.
	Sources []string `json:"sources"`
	// Name is a glob over host names ("web*").
	Name string `json:"name,omitempty"`
	// Group keeps hosts in this group or one of its descendants.
	Group string `json:"group,omitempty"`
	// Variables keep hosts whose variable has the value.
	Variables []VarMatch `json:"variables,omitempty"`
}

// VarMatch is a condition on a host variable: a JSON string equal to
// Value, or another JSON value whose compact encoding is Value
// ("port=22" matches 22 and "22").
type VarMatch struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ParseVarMatch parses "NAME=VALUE".
func ParseVarMatch(s string) (VarMatch, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return VarMatch{}, fmt.Errorf("%w: variable condition %q: want NAME=VALUE, such as env=prod", ErrInvalid, s)
	}
	return VarMatch{Name: strings.TrimSpace(k), Value: v}, nil
}

// String renders the condition as NAME=VALUE.
func (m VarMatch) String() string { return m.Name + "=" + m.Value }

// Validate checks the filter.
func (f *Filter) Validate() error {
	if len(f.Sources) == 0 || len(f.Sources) > MaxSources {
		return fmt.Errorf("%w: a smart inventory draws from 1–%d inventories, not %d", ErrInvalid, MaxSources, len(f.Sources))
	}
	seen := map[string]bool{}
	for _, s := range f.Sources {
		if err := configstore.ValidName("inventory", s); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("%w: source inventory %s is listed twice", ErrInvalid, s)
		}
		seen[s] = true
	}
	if f.Name != "" {
		if len(f.Name) > MaxHostName {
			return fmt.Errorf("%w: host name pattern of %d bytes is over %d", ErrInvalid, len(f.Name), MaxHostName)
		}
		if _, err := path.Match(f.Name, ""); err != nil {
			return fmt.Errorf("%w: host name pattern %q: %v", ErrInvalid, f.Name, err)
		}
	}
	if f.Group != "" {
		if err := ValidGroupName(f.Group); err != nil {
			return err
		}
	}
	if len(f.Variables) > MaxVarMatches {
		return fmt.Errorf("%w: %d variable conditions, at most %d", ErrInvalid, len(f.Variables), MaxVarMatches)
	}
	for _, m := range f.Variables {
		if m.Name == "" || len(m.Name)+len(m.Value) > 1024 {
			return fmt.Errorf("%w: variable condition %q: a name and a value of at most 1024 bytes", ErrInvalid, m.String())
		}
	}
	return nil
}

func (m VarMatch) match(v Vars) bool {
	raw, ok := VarsGet(v, m.Name)
	if !ok {
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s == m.Value
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return false
	}
	return buf.String() == m.Value
}

// Apply returns the hosts of sources (the contents of f.Sources, in order)
// that match the filter, without groups.
func (f *Filter) Apply(sources []*Content) *Content {
	out := &Content{Hosts: []Host{}, Groups: []Group{}}
	seen := map[string]bool{}
	for _, c := range sources {
		var inGroup []bool
		if f.Group != "" {
			inGroup = make([]bool, len(c.Hosts))
			m := newMembership(c)
			if gi, ok := m.group[f.Group]; ok {
				m.addDescendants(gi, inGroup)
			}
		}
		for i, h := range c.Hosts {
			if seen[h.Name] {
				continue
			}
			if f.Name != "" {
				if ok, _ := path.Match(f.Name, h.Name); !ok {
					continue
				}
			}
			if inGroup != nil && !inGroup[i] {
				continue
			}
			ok := true
			for _, m := range f.Variables {
				if !m.match(h.Variables) {
					ok = false
					break
				}
			}
			if ok {
				seen[h.Name] = true
				out.Hosts = append(out.Hosts, h)
			}
		}
	}
	out.Normalize()
	return out
}
