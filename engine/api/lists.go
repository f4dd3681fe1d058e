package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Every list takes the same parameters:
//
//	limit   the size of a page: 1–MaxLimit, DefaultLimit when absent
//	cursor  where the page starts: the "next" of the previous page
//	order   the order: a field, "-field" for descending (each list says
//	        which fields it orders by; jobs only newest first)
//	...     the list's filters (named objects: name, a glob, and search,
//	        a substring of the name or description)
//
// and answers {"items": [...], "next": "<cursor>"} (next absent on the
// last page). A cursor carries its order: it is refused with another one.

// Paging limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// listParams are the common parameters of a list.
type listParams struct {
	limit  int
	order  string // a field of the list, "-" first for descending
	cursor *cursor
}

// cursor is a position in a list of named objects: the sort key and the
// name of the last object of a page, in an order.
type cursor struct {
	Order string `json:"o"`
	Key   string `json:"k"`
	Name  string `json:"n"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// listParamNames are the common parameters of every list.
var listParamNames = []string{"limit", "cursor", "order"}

// parseList reads limit, cursor and order; orders are the fields the list
// orders by, the first being the default.
func (rq *request) parseList(orders ...string) (listParams, error) {
	lp := listParams{limit: DefaultLimit, order: orders[0]}
	if v := rq.param("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return lp, badField("limit", "limit=%q: want a whole number 1–%d", v, MaxLimit)
		}
		lp.limit = n
	}
	if v := rq.param("order"); v != "" {
		if !slices.Contains(orders, v) {
			return lp, badField("order", "order=%q: this list orders by %s", v, strings.Join(orders, ", "))
		}
		lp.order = v
	}
	return lp, nil
}

// parseCursor decodes the cursor of a list of named objects.
func (rq *request) parseCursor(lp *listParams) error {
	v := rq.param("cursor")
	if v == "" {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	var c cursor
	if err != nil || json.Unmarshal(b, &c) != nil || c.Name == "" {
		return badField("cursor", "cursor=%q is not a cursor of this list: pass the \"next\" of the previous page", v)
	}
	if c.Order != lp.order {
		return badField("cursor", "the cursor was made for order=%s, not order=%s", c.Order, lp.order)
	}
	lp.cursor = &c
	return nil
}

// named is what lists of named objects sort and filter on.
type named struct {
	Name        string
	Description string
	Created     time.Time
	Updated     time.Time
}

// nameFilter is the filters of every list of named objects.
type nameFilter struct {
	glob, search string
}

var nameFilterParams = []string{"name", "search"}

func (rq *request) parseNameFilter() (nameFilter, error) {
	f := nameFilter{glob: rq.param("name"), search: strings.ToLower(rq.param("search"))}
	if f.glob != "" {
		if _, err := path.Match(f.glob, ""); err != nil {
			return f, badField("name", "name=%q is not a glob pattern (such as web* or db-?)", f.glob)
		}
	}
	return f, nil
}

func (f nameFilter) match(n named) bool {
	if f.glob != "" {
		if ok, _ := path.Match(f.glob, n.Name); !ok {
			return false
		}
	}
	return f.search == "" || strings.Contains(strings.ToLower(n.Name), f.search) || strings.Contains(strings.ToLower(n.Description), f.search)
}

func sortKey(order string, n named) string {
	switch strings.TrimPrefix(order, "-") {
	case "created":
		return fmt.Sprintf("%020d", n.Created.UnixNano())
	case "updated":
		return fmt.Sprintf("%020d", n.Updated.UnixNano())
	}
	return n.Name
}

// listPage is the answer of a list.
type listPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// pageOf filters, orders and pages items.
func pageOf[T any](items []T, meta func(T) named, f nameFilter, lp listParams) listPage[T] {
	type entry struct {
		v   T
		key string
		n   string
	}
	var es []entry
	for _, it := range items {
		m := meta(it)
		if f.match(m) {
			es = append(es, entry{it, sortKey(lp.order, m), m.Name})
		}
	}
	desc := strings.HasPrefix(lp.order, "-")
	cmp := func(ak, an, bk, bn string) int {
		c := strings.Compare(ak, bk)
		if c == 0 {
			c = strings.Compare(an, bn)
		}
		if desc {
			return -c
		}
		return c
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp(a.key, a.n, b.key, b.n) })
	if c := lp.cursor; c != nil {
		i := 0
		for i < len(es) && cmp(es[i].key, es[i].n, c.Key, c.Name) <= 0 {
			i++
		}
		es = es[i:]
	}
	out := listPage[T]{Items: make([]T, 0, min(len(es), lp.limit))}
	for i, e := range es {
		if i == lp.limit {
			last := es[i-1]
			out.Next = cursor{Order: lp.order, Key: last.key, Name: last.n}.String()
			break
		}
		out.Items = append(out.Items, e.v)
	}
	return out
}

// namedListParams reads the parameters of a list of named objects.
func (rq *request) namedListParams(extra ...string) (listParams, nameFilter, error) {
	if err := rq.query(append(append(slices.Clone(listParamNames), nameFilterParams...), extra...)...); err != nil {
		return listParams{}, nameFilter{}, err
	}
	lp, err := rq.parseList("name", "-name", "created", "-created", "updated", "-updated")
	if err != nil {
		return lp, nameFilter{}, err
	}
	if err := rq.parseCursor(&lp); err != nil {
		return lp, nameFilter{}, err
	}
	f, err := rq.parseNameFilter()
	return lp, f, err
}
