package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/configstore"
)

// checkSlices asserts the slicing rules over hosts (sorted) cut into n:
// slice k holds exactly positions k−1, k−1+n, …; every host is in exactly
// one slice; sizes differ by at most one; no slice is empty.
func checkSlices(t *testing.T, hosts []string, n int) [][]string {
	t.Helper()
	if !sort.StringsAreSorted(hosts) {
		t.Fatalf("selected hosts are not sorted")
	}
	seen := map[string]int{}
	var out [][]string
	minSize, maxSize := len(hosts)+1, -1
	for k := 1; k <= n; k++ {
		s := SliceHosts(hosts, k, n)
		if len(s) != SliceSize(len(hosts), k, n) {
			t.Fatalf("slice %d/%d: %d hosts, SliceSize says %d", k, n, len(s), SliceSize(len(hosts), k, n))
		}
		for j, h := range s {
			if want := hosts[k-1+j*n]; h != want {
				t.Fatalf("slice %d/%d position %d: %s, want %s", k, n, j, h, want)
			}
			if prev, dup := seen[h]; dup {
				t.Fatalf("host %s in slices %d and %d of %d", h, prev, k, n)
			}
			seen[h] = k
		}
		minSize, maxSize = min(minSize, len(s)), max(maxSize, len(s))
		out = append(out, s)
	}
	if len(seen) != len(hosts) {
		t.Fatalf("%d of %d hosts in a slice", len(seen), len(hosts))
	}
	if n > 0 && len(hosts) >= n && (minSize < 1 || maxSize-minSize > 1) {
		t.Fatalf("%d slices of %d hosts: sizes %d–%d", n, len(hosts), minSize, maxSize)
	}
	return out
}

// TestSliceFormulaSmall runs the slicing formula over inventories stored
// in and read back from ZooKeeper: 0, 1, N and fewer than N hosts, groups,
// a limit, disabled hosts.
func TestSliceFormulaSmall(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	hosts := func(n int) string {
		var hs []string
		for i := 0; i < n; i++ {
			hs = append(hs, fmt.Sprintf(`"h%d"`, i))
		}
		return "[" + strings.Join(hs, ",") + "]"
	}
	cases := []struct {
		name     string
		file     string
		limit    string
		disable  []string
		n        int
		want     [][]string // hosts of each slice
		wantErr  bool
		effSlice int
	}{
		{name: "zero hosts", file: `{}`, n: 3, wantErr: true, effSlice: 0},
		{name: "one host", file: `{"g": {"hosts": ["h0"]}}`, n: 1, want: [][]string{{"h0"}}, effSlice: 1},
		{name: "one host, three slices asked", file: `{"g": {"hosts": ["h0"]}}`, n: 3, wantErr: true, effSlice: 1},
		{name: "N hosts", file: `{"g": {"hosts": ` + hosts(3) + `}}`, n: 3, want: [][]string{{"h0"}, {"h1"}, {"h2"}}, effSlice: 3},
		{name: "fewer than N", file: `{"g": {"hosts": ` + hosts(2) + `}}`, n: 5, wantErr: true, effSlice: 2},
		{name: "more than N", file: `{"g": {"hosts": ` + hosts(7) + `}}`, n: 3,
			want: [][]string{{"h0", "h3", "h6"}, {"h1", "h4"}, {"h2", "h5"}}, effSlice: 3},
		{name: "sorted by name, not by file order", file: `{"g": {"hosts": ["c", "a", "d", "b"]}}`, n: 2,
			want: [][]string{{"a", "c"}, {"b", "d"}}, effSlice: 2},
		{name: "disabled hosts left out", file: `{"g": {"hosts": ` + hosts(6) + `}}`, disable: []string{"h1", "h4"}, n: 2,
			want: [][]string{{"h0", "h3"}, {"h2", "h5"}}, effSlice: 2},
		{name: "limit before slicing", file: `{"web": {"hosts": ["w1", "w2", "w3", "w4"]}, "db": {"hosts": ["d1", "d2"]}}`,
			limit: "web", n: 4, want: [][]string{{"w1"}, {"w2"}, {"w3"}, {"w4"}}, effSlice: 4},
		{name: "limit and disabled", file: `{"web": {"hosts": ["w1", "w2", "w3", "w4"]}, "db": {"hosts": ["d1"]}}`,
			limit: "all:!db", disable: []string{"w2"}, n: 2, want: [][]string{{"w1", "w4"}, {"w3"}}, effSlice: 2},
		{name: "limit leaves fewer than N", file: `{"web": {"hosts": ["w1", "w2"]}, "db": {"hosts": ["d1", "d2", "d3"]}}`,
			limit: "web", n: 3, wantErr: true, effSlice: 2},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("small%d", i)
			if _, _, err := s.Import(ctx, name, mustParse(t, []byte(tc.file))); err != nil {
				t.Fatal(err)
			}
			if len(tc.disable) > 0 {
				if _, err := s.SetEnabled(ctx, name, tc.disable, false); err != nil {
					t.Fatal(err)
				}
			}
			_, c, err := s.Content(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ParseLimit(tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			sel := c.Select(l)
			if got := EffectiveSlices(tc.n, len(sel)); got != tc.effSlice {
				t.Errorf("effective slices %d, want %d", got, tc.effSlice)
			}
			err = CheckSlices(len(sel), tc.n)
			if tc.wantErr {
				if !errors.Is(err, configstore.ErrInvalid) || !strings.Contains(err.Error(), "cannot make") {
					t.Fatalf("CheckSlices(%d, %d) = %v, want a refusal", len(sel), tc.n, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := checkSlices(t, sel, tc.n)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("slices %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSliceKeepsGroupMembership checks that the content of a slice keeps
// every group, each listing only its members in that slice.
func TestSliceKeepsGroupMembership(t *testing.T) {
	c := mustParse(t, []byte(`{
		"web": {"hosts": ["a", "b", "c", "d"], "vars": {"tier": 1}},
		"db": {"hosts": ["b", "e"]},
		"top": {"children": ["web", "db"]},
		"_meta": {"hostvars": {"a": {"x": 1}}}
	}`))
	sub, hosts, err := c.SliceOf("", 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "d"}; !reflect.DeepEqual(hosts, want) {
		t.Fatalf("slice 2/2 = %v, want %v", hosts, want)
	}
	got := map[string][]string{}
	for _, g := range sub.Groups {
		got[g.Name] = g.Hosts
	}
	want := map[string][]string{"web": {"b", "d"}, "db": {"b"}, "top": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("groups of slice 2/2: %v, want %v", got, want)
	}
	if sub.Groups[2].Name != "web" || string(sub.Groups[2].Variables) != `{"tier":1}` {
		t.Errorf("group variables lost: %+v", sub.Groups[2])
	}
	if err := sub.Validate(); err != nil {
		t.Fatalf("a slice's content must be a valid inventory: %v", err)
	}
	if _, _, err := c.SliceOf("", 3, 2); !errors.Is(err, configstore.ErrInvalid) {
		t.Fatalf("slice 3 of 2: %v, want ErrInvalid", err)
	}
}

// TestSliceLargeInventories imports 5,000, 10,000 and 20,000 hosts into
// ZooKeeper and checks the rules for several slice counts, and that two
// reads (and a second import of the same file) give the same slices.
func TestSliceLargeInventories(t *testing.T) {
	if testing.Short() {
		t.Skip("large inventories")
	}
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	for _, n := range []int{5000, 10000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			name := fmt.Sprintf("large%d", n)
			file := generated(n, 7)
			if _, _, err := s.Import(ctx, name, mustParse(t, file)); err != nil {
				t.Fatal(err)
			}
			_, c1, err := s.Content(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if len(c1.Hosts) != n {
				t.Fatalf("%d hosts read back, want %d", len(c1.Hosts), n)
			}
			if _, _, err := s.Import(ctx, name, mustParse(t, file)); err != nil {
				t.Fatal(err)
			}
			_, c2, err := s.Content(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			for _, slices := range []int{2, 3, 10, 64, 999} {
				a := checkSlices(t, c1.Select(nil), slices)
				b := checkSlices(t, c2.Select(nil), slices)
				if !reflect.DeepEqual(a, b) {
					t.Fatalf("%d slices differ between two reads", slices)
				}
			}
			// With a limit: only group g3 (and g0 via parent) — the limit
			// is applied first, then the slices are cut.
			l, _ := ParseLimit("g3:parent")
			sel := c1.Select(l)
			if want := 2 * n / 7; len(sel) < want-2 || len(sel) > want+2 {
				t.Fatalf("limit g3:parent selected %d hosts, want about %d", len(sel), want)
			}
			checkSlices(t, sel, 10)
		})
	}
}

func TestParseSlice(t *testing.T) {
	for in, want := range map[string][2]int{"1/1": {1, 1}, "2/5": {2, 5}, " 5/5 ": {5, 5}, "slice3of4": {3, 4}} {
		k, n, err := ParseSlice(in)
		if err != nil || k != want[0] || n != want[1] {
			t.Errorf("ParseSlice(%q) = %d, %d, %v", in, k, n, err)
		}
	}
	for _, in := range []string{"", "0/3", "4/3", "-1/3", "1/0", "a/b", "3", "1/1001", "1/2/3", "slice0of2"} {
		if _, _, err := ParseSlice(in); !errors.Is(err, configstore.ErrInvalid) {
			t.Errorf("ParseSlice(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestLimitPatterns(t *testing.T) {
	c := mustParse(t, []byte(`{
		"web": {"hosts": ["web1", "web2"]},
		"db": {"hosts": ["db1", "db2"]},
		"prod": {"hosts": ["web1", "db1"]},
		"site": {"children": ["web"]},
		"ungrouped": {"hosts": ["solo"]}
	}`))
	c.Hosts[c.HostIndex("db2")].Enabled = false
	for limit, want := range map[string]string{
		"":                 "db1 solo web1 web2",
		"all":              "db1 solo web1 web2",
		"*":                "db1 solo web1 web2",
		"web":              "web1 web2",
		"site":             "web1 web2",
		"web1,db1":         "db1 web1",
		"web1:db1":         "db1 web1",
		"web*":             "web1 web2",
		"~^db":             "db1",
		"web:&prod":        "web1",
		"all:!prod":        "solo web2",
		"!prod":            "solo web2",
		"ungrouped":        "solo",
		"nosuch":           "",
		"db2":              "",
		" web1 , web2 ":    "web1 web2",
		"site:!web2:&prod": "web1",
		"w?b[1-2]":         "web1 web2",
		"w?b[ab12]":        "web1 web2",
		"web[0]":           "web1",
		"web[-1]":          "web2",
		"all[1:2]":         "solo web1",
		"all[2:]":          "web1 web2",
		"all[0:9]":         "db1 solo web1 web2",
		"db[1]":            "",
		"all[7]":           "",
		"web[5:]":          "",
		"site[1],db[0]":    "db1 web2",
		"all:!web[0]":      "db1 solo web2",
		"*[-2]":            "web1",
	} {
		l, err := ParseLimit(limit)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", limit, err)
			continue
		}
		if got := strings.Join(c.Select(l), " "); got != want {
			t.Errorf("limit %q selects %q, want %q", limit, got, want)
		}
	}
	for _, bad := range []string{"web,,db", "!", "&", "~(", "web[", strings.Repeat("x", MaxLimitBytes+1)} {
		if _, err := ParseLimit(bad); !errors.Is(err, configstore.ErrInvalid) {
			t.Errorf("ParseLimit(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
