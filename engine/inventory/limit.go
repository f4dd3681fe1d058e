package inventory

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// MaxLimitBytes bounds a limit pattern.
const MaxLimitBytes = 4096

// Limit is a parsed Ansible host pattern, as given to `--limit`: terms
// separated by ',' (or ':' when there is no ','), each a host name, a group
// name (its hosts and its descendants' hosts), "all" or "*", a glob over
// host and group names ("web*"), or a regular expression after '~'. A term
// starting with '&' intersects, with '!' excludes; plain terms are a union.
// With no plain term, the union starts from every host, as in Ansible.
// A term may end with Ansible's subscript, counted over the enabled hosts
// it names in name order: "web[0]" (the first), "web[-1]" (the last),
// "web[0:2]" (the first three: Ansible includes both ends), "web[1:]"; a
// bracket holding anything else ("web[1-3]", "web[ab]") is a glob class.
type Limit struct {
	text  string
	terms []limitTerm
}

// subscript is a term's Ansible subscript: one host (single, negative
// counting from the end) or the hosts from–to, both included, as Ansible
// applies it (hosts[from:to+1]); no to runs to the last host.
type subscript struct {
	from, to int
	hasTo    bool
	single   bool
}

// subscriptRe is Ansible's pattern of a subscript, without the removed
// "[x-y]" form, which stays a glob class.
var subscriptRe = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$`)

// parseSubscript splits a term's subscript off, if it has one.
func parseSubscript(p string) (string, *subscript) {
	m := subscriptRe.FindStringSubmatch(p)
	if m == nil {
		return p, nil
	}
	sub := &subscript{}
	if m[2] != "" {
		sub.single = true
		sub.from, _ = strconv.Atoi(m[2])
		return m[1], sub
	}
	sub.from, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		sub.to, _ = strconv.Atoi(m[4])
		sub.hasTo = true
	}
	return m[1], sub
}

// pick keeps the hosts of in that the subscript selects, counting the
// enabled ones in name order, as Ansible counts a pattern's hosts; a
// position past the end selects nothing.
func (s *subscript) pick(c *Content, in []bool) []bool {
	var idx []int
	for i, ok := range in {
		if ok && c.Hosts[i].Enabled {
			idx = append(idx, i)
		}
	}
	n := len(idx)
	var sel []int
	switch {
	case s.single:
		i := s.from
		if i < 0 {
			i += n
		}
		if i >= 0 && i < n {
			sel = idx[i : i+1]
		}
	case s.from < n:
		to := n - 1
		if s.hasTo {
			to = min(s.to, n-1)
		}
		if to >= s.from {
			sel = idx[s.from : to+1]
		}
	}
	out := make([]bool, len(in))
	for _, i := range sel {
		out[i] = true
	}
	return out
}

type limitTerm struct {
	op   byte // 0 (union), '&' or '!'
	text string
	sub  *subscript
	re   *regexp.Regexp
	glob bool
}

// ParseLimit parses a limit pattern; an empty pattern is no limit (nil).
func ParseLimit(s string) (*Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxLimitBytes {
		return nil, fmt.Errorf("%w: limit of %d bytes is over %d", ErrInvalid, len(s), MaxLimitBytes)
	}
	var parts []string
	switch {
	case strings.Contains(s, ","):
		parts = strings.Split(s, ",")
	case net.ParseIP(strings.Trim(s, "[]")) != nil:
		parts = []string{s} // an IPv6 address, not terms separated by ':'
	default:
		parts = splitOutsideBrackets(s, ':')
	}
	l := &Limit{text: s}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, fmt.Errorf("%w: limit %q has an empty term", ErrInvalid, s)
		}
		t := limitTerm{}
		if p[0] == '&' || p[0] == '!' {
			t.op, p = p[0], strings.TrimSpace(p[1:])
			if p == "" {
				return nil, fmt.Errorf("%w: limit %q: %c must be followed by a pattern", ErrInvalid, s, t.op)
			}
		}
		if !strings.HasPrefix(p, "~") {
			p, t.sub = parseSubscript(p)
		}
		t.text = p
		switch {
		case strings.HasPrefix(p, "~"):
			re, err := regexp.Compile(p[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: limit %q: bad regular expression %q: %v", ErrInvalid, s, p[1:], err)
			}
			t.re = re
		case strings.ContainsAny(p, "*?["):
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("%w: limit %q: bad pattern %q: %v", ErrInvalid, s, p, err)
			}
			t.glob = true
		}
		l.terms = append(l.terms, t)
	}
	return l, nil
}

// splitOutsideBrackets splits s at every sep that is not within [ ], so
// that a subscript's "[1:3]" stays in its term.
func splitOutsideBrackets(s string, sep byte) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth = max(depth-1, 0)
		case sep:
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

// String returns the pattern as given.
func (l *Limit) String() string {
	if l == nil {
		return ""
	}
	return l.text
}

func (t *limitTerm) matchName(name string) bool {
	switch {
	case t.re != nil:
		return t.re.MatchString(name)
	case t.glob:
		ok, _ := path.Match(t.text, name)
		return ok
	}
	return t.text == name
}

// match returns the hosts (by index in c.Hosts) that a term names, its
// subscript applied.
func (t *limitTerm) match(c *Content, m *membership) []bool {
	out := t.matchAll(c, m)
	if t.sub != nil {
		out = t.sub.pick(c, out)
	}
	return out
}

// matchAll returns the hosts a term names, before its subscript.
func (t *limitTerm) matchAll(c *Content, m *membership) []bool {
	out := make([]bool, len(c.Hosts))
	if t.text == GroupAll || t.text == "*" {
		for i := range out {
			out[i] = true
		}
		return out
	}
	if t.re == nil && !t.glob {
		if i := c.HostIndex(t.text); i >= 0 {
			out[i] = true
		}
		if gi, ok := m.group[t.text]; ok {
			m.addDescendants(gi, out)
		}
		if t.text == GroupUngrouped {
			m.addUngrouped(out)
		}
		return out
	}
	for i, h := range c.Hosts {
		if t.matchName(h.Name) {
			out[i] = true
		}
	}
	for gi, g := range c.Groups {
		if t.matchName(g.Name) {
			m.addDescendants(gi, out)
		}
	}
	if t.matchName(GroupUngrouped) {
		m.addUngrouped(out)
	}
	return out
}

// membership answers "which hosts are in this group or its descendants".
type membership struct {
	c     *Content
	group map[string]int
	host  map[string]int
	memo  map[int][]int // group index → host indices of it and its descendants
}

func newMembership(c *Content) *membership {
	m := &membership{c: c, group: make(map[string]int, len(c.Groups)), host: make(map[string]int, len(c.Hosts)), memo: map[int][]int{}}
	for i, g := range c.Groups {
		m.group[g.Name] = i
	}
	for i, h := range c.Hosts {
		m.host[h.Name] = i
	}
	return m
}

// hostsOf returns the indices of the hosts of group gi and its
// descendants (the content has no cycles: Validate refuses them).
func (m *membership) hostsOf(gi int) []int {
	if hs, ok := m.memo[gi]; ok {
		return hs
	}
	seen := map[int]bool{}
	var out []int
	var walk func(int)
	walk = func(i int) {
		g := &m.c.Groups[i]
		for _, h := range g.Hosts {
			if hi, ok := m.host[h]; ok && !seen[hi] {
				seen[hi] = true
				out = append(out, hi)
			}
		}
		for _, ch := range g.Children {
			if ci, ok := m.group[ch]; ok {
				walk(ci)
			}
		}
	}
	walk(gi)
	m.memo[gi] = out
	return out
}

func (m *membership) addDescendants(gi int, out []bool) {
	for _, hi := range m.hostsOf(gi) {
		out[hi] = true
	}
}

func (m *membership) addUngrouped(out []bool) {
	grouped := make([]bool, len(m.c.Hosts))
	for _, g := range m.c.Groups {
		for _, h := range g.Hosts {
			if hi, ok := m.host[h]; ok {
				grouped[hi] = true
			}
		}
	}
	for i := range out {
		if !grouped[i] {
			out[i] = true
		}
	}
}

// Select returns the names of the enabled hosts that the limit matches
// (every enabled host when l is nil), sorted by name.
func (c *Content) Select(l *Limit) []string {
	in := make([]bool, len(c.Hosts))
	if l == nil {
		for i := range in {
			in[i] = true
		}
	} else {
		m := newMembership(c)
		plain := false
		for _, t := range l.terms {
			if t.op == 0 {
				plain = true
				for i, ok := range t.match(c, m) {
					in[i] = in[i] || ok
				}
			}
		}
		if !plain {
			for i := range in {
				in[i] = true
			}
		}
		for _, t := range l.terms {
			switch t.op {
			case '&':
				for i, ok := range t.match(c, m) {
					in[i] = in[i] && ok
				}
			case '!':
				for i, ok := range t.match(c, m) {
					in[i] = in[i] && !ok
				}
			}
		}
	}
	var out []string
	for i, h := range c.Hosts {
		if in[i] && h.Enabled {
			out = append(out, h.Name)
		}
	}
	return out
}
