package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxSlices bounds the slice count of a sliced job.
const MaxSlices = 1000

// Slicing, as jobs see it: the limit is applied first, so every slice has
// hosts; then the enabled hosts that match, sorted by name, are dealt out
// like cards — slice k of n takes positions k−1, k−1+n, k−1+2n, … Every
// host is in exactly one slice, sizes differ by at most one, and the same
// content gives the same slices on every run.

// EffectiveSlices is the number of slices a launch makes: the requested
// count, at most one per host. A result of at most 1 means a plain job.
func EffectiveSlices(requested, hosts int) int {
	return min(max(requested, 1), hosts)
}

// SliceHosts returns slice k (1-based) of n of hosts, which must be sorted
// as Content.Select returns them.
func SliceHosts(hosts []string, k, n int) []string {
	if k < 1 || n < 1 || k > n {
		return nil
	}
	out := make([]string, 0, len(hosts)/n+1)
	for i := k - 1; i < len(hosts); i += n {
		out = append(out, hosts[i])
	}
	return out
}

// SliceSize returns how many hosts slice k of n gets out of h hosts.
func SliceSize(h, k, n int) int {
	if k < 1 || n < 1 || k > n || k > h {
		return 0
	}
	return (h-k)/n + 1
}

// ParseSlice parses "K/N" (also "sliceKofN", the HTTP API's subset form):
// 1 ≤ K ≤ N ≤ MaxSlices.
func ParseSlice(s string) (k, n int, err error) {
	t := strings.TrimSpace(s)
	var a, b string
	var ok bool
	if rest, isSubset := strings.CutPrefix(t, "slice"); isSubset {
		a, b, ok = strings.Cut(rest, "of")
	} else {
		a, b, ok = strings.Cut(t, "/")
	}
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("%w: slice %q: want K/N, such as 2/5", ErrInvalid, s)
	}
	if n < 1 || n > MaxSlices {
		return 0, 0, fmt.Errorf("%w: slice %q: the slice count must be 1–%d", ErrInvalid, s, MaxSlices)
	}
	if k < 1 || k > n {
		return 0, 0, fmt.Errorf("%w: slice %q: the slice number must be 1–%d", ErrInvalid, s, n)
	}
	return k, n, nil
}

// CheckSlices says whether hosts can be cut into n slices without an empty
// one.
func CheckSlices(hosts, n int) error {
	if n > hosts {
		noun := "hosts"
		if hosts == 1 {
			noun = "host"
		}
		return fmt.Errorf("%w: the inventory has %d %s (enabled, within the limit); cannot make %d slices", ErrInvalid, hosts, noun, n)
	}
	return nil
}

// Subset returns the content reduced to the named hosts (a subset of its
// own): the inventory's variables and every group are kept, groups list
// only their members among those hosts.
func (c *Content) Subset(names []string) *Content {
	keep := make(map[string]bool, len(names))
	for _, n := range names {
		keep[n] = true
	}
	out := &Content{Variables: c.Variables, Hosts: make([]Host, 0, len(names)), Groups: make([]Group, 0, len(c.Groups))}
	for _, h := range c.Hosts {
		if keep[h.Name] {
			out.Hosts = append(out.Hosts, h)
		}
	}
	for _, g := range c.Groups {
		ng := Group{Name: g.Name, Children: g.Children, Variables: g.Variables}
		for _, h := range g.Hosts {
			if keep[h] {
				ng.Hosts = append(ng.Hosts, h)
			}
		}
		out.Groups = append(out.Groups, ng)
	}
	return out
}

// SliceOf returns the content a job over limit and slice k of n sees: the
// selected hosts of that slice (all of them when n is 0), with groups
// listing only those hosts. An empty slice is refused.
func (c *Content) SliceOf(limit string, k, n int) (*Content, []string, error) {
	l, err := ParseLimit(limit)
	if err != nil {
		return nil, nil, err
	}
	hosts := c.Select(l)
	if n > 0 {
		if k < 1 || k > n {
			return nil, nil, fmt.Errorf("%w: slice %d of %d: the slice number must be 1–%d", ErrInvalid, k, n, n)
		}
		if err := CheckSlices(len(hosts), n); err != nil {
			return nil, nil, err
		}
		hosts = SliceHosts(hosts, k, n)
	}
	return c.Subset(hosts), hosts, nil
}
