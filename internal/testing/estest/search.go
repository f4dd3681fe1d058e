package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// maxResultWindow mirrors index.max_result_window.
const maxResultWindow = 10000

var searchKeys = map[string]bool{
	"query": true, "size": true, "from": true, "sort": true, "track_total_hits": true,
	"_source": true, "search_after": true, "timeout": true, "version": true, "seq_no_primary_term": true,
	"track_scores": true,
}

// unsupportedSearchKeys are real search options the server does not
// implement; they are refused with a clear error.
var unsupportedSearchKeys = map[string]bool{
	"aggs": true, "aggregations": true, "highlight": true, "collapse": true, "post_filter": true,
	"rescore": true, "suggest": true, "script_fields": true, "docvalue_fields": true, "fields": true,
	"stored_fields": true, "pit": true, "knn": true, "runtime_mappings": true, "indices_boost": true,
	"min_score": true, "explain": true, "stats": true, "terminate_after": true, "profile": true,
}

type sortKey struct {
	field        string
	desc         bool
	unmappedType string
}

type hit struct {
	ix     *index
	d      *doc
	values []any // sort values, nil for missing
}

func (s *Server) search(expr string, body []byte, q url.Values, count bool) (int, any) {
	start := time.Now()
	if q.Has("q") {
		return 400, errorf(400, "illegal_argument_exception", "the [q] URI search parameter is not supported by the estest server; send a query body")
	}
	req := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return 400, errorf(400, "parsing_exception", "request body must be a JSON object: %v", err)
		}
	}
	for k := range req {
		if count && k != "query" {
			return 400, errorf(400, "parsing_exception", "request does not support [%s]", k)
		}
		if unsupportedSearchKeys[k] {
			return 400, errorf(400, "parsing_exception", "[%s] is not supported by the estest server", k)
		}
		if !searchKeys[k] {
			return 400, errorf(400, "parsing_exception", "Unknown key for a START_OBJECT in [%s].", k)
		}
	}
	ixs, err := s.resolveIndices(expr, q)
	if err != nil {
		return err.status, err
	}
	var query json.RawMessage = req["query"]
	match := matcher(func(*index, *doc) bool { return true })
	if len(query) > 0 {
		var qerr *esError
		if match, qerr = compileQuery(query); qerr != nil {
			return qerr.status, qerr
		}
	}
	now := s.now()
	var hits []hit
	for _, ix := range ixs {
		if s.opts.RefreshInterval > 0 && now.Sub(ix.lastRefresh) >= s.opts.RefreshInterval {
			ix.refresh(now)
		}
		for _, d := range ix.visible {
			if match(ix, d) {
				hits = append(hits, hit{ix: ix, d: d})
			}
		}
	}
	shards := map[string]any{"total": len(ixs), "successful": len(ixs), "skipped": 0, "failed": 0}
	if count {
		return 200, map[string]any{"count": len(hits), "_shards": shards}
	}

	size, from := 10, 0
	if err := intParam(req, q, "size", &size); err != nil {
		return 400, err
	}
	if err := intParam(req, q, "from", &from); err != nil {
		return 400, err
	}
	if size < 0 || from < 0 {
		return 400, errorf(400, "illegal_argument_exception", "[from] and [size] must be non-negative")
	}
	if from+size > maxResultWindow {
		return 400, errorf(400, "illegal_argument_exception", "Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.", maxResultWindow, from+size)
	}
	keys, serr := parseSort(req["sort"], q.Get("sort"))
	if serr != nil {
		return 400, serr
	}
	for _, k := range keys {
		if k.field == "_score" || k.field == "_doc" {
			continue
		}
		mapped := false
		for _, ix := range ixs {
			f := ix.mapping.lookup(k.field)
			if f == nil {
				continue
			}
			mapped = true
			switch f.typ {
			case "keyword", "constant_keyword", "date", "date_nanos", "long", "integer", "short", "byte",
				"double", "float", "half_float", "scaled_float", "unsigned_long", "boolean", "version", "ip":
			case "text", "match_only_text":
				return 400, errorf(400, "illegal_argument_exception", "Fielddata is disabled on [%s] in [%s]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead.", k.field, ix.name)
			default:
				return 400, errorf(400, "illegal_argument_exception", "can't sort on field [%s] of type [%s]", k.field, f.typ)
			}
		}
		if !mapped && k.unmappedType == "" && len(ixs) > 0 {
			return 400, errorf(400, "query_shard_exception", "No mapping found for [%s] in order to sort on", k.field)
		}
	}
	for i := range hits {
		hits[i].values = make([]any, len(keys))
		for j, k := range keys {
			hits[i].values[j] = sortValue(hits[i], k)
		}
	}
	sort.SliceStable(hits, func(a, b int) bool {
		for j, k := range keys {
			c := compareSort(hits[a].values[j], hits[b].values[j], k.desc)
			if c != 0 {
				return c < 0
			}
		}
		if hits[a].ix.name != hits[b].ix.name {
			return hits[a].ix.name < hits[b].ix.name
		}
		return hits[a].d.seqNo < hits[b].d.seqNo
	})
	if raw, ok := req["search_after"]; ok {
		var after []any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&after); err != nil || len(after) != len(keys) || len(keys) == 0 {
			return 400, errorf(400, "illegal_argument_exception", "search_after has %d value(s) but sort has %d", len(after), len(keys))
		}
		if from > 0 {
			return 400, errorf(400, "illegal_argument_exception", "[from] parameter must be set to 0 when [search_after] is used")
		}
		var rest []hit
		for _, h := range hits {
			c := 0
			for j, k := range keys {
				if c = compareSort(h.values[j], normaliseAfter(after[j]), k.desc); c != 0 {
					break
				}
			}
			if c > 0 {
				rest = append(rest, h)
			}
		}
		hits = rest
	}
	total := len(hits)
	page := hits
	if from >= len(page) {
		page = nil
	} else {
		page = page[from:]
	}
	if len(page) > size {
		page = page[:size]
	}
	sourceFilter, ferr := parseSourceFilter(req["_source"])
	if ferr != nil {
		return 400, ferr
	}
	var withVersion, withSeq bool
	_ = json.Unmarshal(req["version"], &withVersion)
	_ = json.Unmarshal(req["seq_no_primary_term"], &withSeq)
	scored := len(keys) == 0
	out := make([]any, 0, len(page))
	for _, h := range page {
		e := map[string]any{"_index": h.ix.name, "_id": h.d.id}
		if scored {
			e["_score"] = 1.0
		} else {
			e["_score"] = nil
			e["sort"] = h.values
		}
		if src := sourceFilter(h.d); src != nil {
			e["_source"] = src
		}
		if withVersion || q.Get("version") == "true" {
			e["_version"] = h.d.version
		}
		if withSeq {
			e["_seq_no"], e["_primary_term"] = h.d.seqNo, 1
		}
		out = append(out, e)
	}
	hitsObj := map[string]any{"hits": out}
	if scored && total > 0 {
		hitsObj["max_score"] = 1.0
	} else {
		hitsObj["max_score"] = nil
	}
	if t, ok := totalHits(req["track_total_hits"], total); ok {
		if q.Get("rest_total_hits_as_int") == "true" {
			hitsObj["total"] = t["value"]
		} else {
			hitsObj["total"] = t
		}
	}
	return 200, map[string]any{
		"took": time.Since(start).Milliseconds(), "timed_out": false, "_shards": shards, "hits": hitsObj,
	}
}

func intParam(req map[string]json.RawMessage, q url.Values, name string, dst *int) *esError {
	if v := q.Get(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errorf(400, "illegal_argument_exception", "Failed to parse int parameter [%s] with value [%s]", name, v)
		}
		*dst = n
		return nil
	}
	if raw, ok := req[name]; ok {
		if err := json.Unmarshal(raw, dst); err != nil {
			return errorf(400, "x_content_parse_exception", "[%s] must be an integer", name)
		}
	}
	return nil
}

func totalHits(raw json.RawMessage, n int) (map[string]any, bool) {
	limit := 10000
	if len(raw) > 0 {
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			if !b {
				return nil, false
			}
			limit = -1
		} else {
			_ = json.Unmarshal(raw, &limit)
		}
	}
	if limit >= 0 && n > limit {
		return map[string]any{"value": limit, "relation": "gte"}, true
	}
	return map[string]any{"value": n, "relation": "eq"}, true
}

func parseSourceFilter(raw json.RawMessage) (func(*doc) any, *esError) {
	all := func(d *doc) any { return d.source }
	if len(raw) == 0 {
		return all, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		if b {
			return all, nil
		}
		return func(*doc) any { return nil }, nil
	}
	var includes []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		includes = []string{one}
	} else if json.Unmarshal(raw, &includes) != nil {
		var obj struct {
			Includes []string `json:"includes"`
			Excludes []string `json:"excludes"`
		}
		if json.Unmarshal(raw, &obj) != nil || len(obj.Excludes) > 0 {
			return nil, errorf(400, "parsing_exception", "this form of [_source] is not supported by the estest server")
		}
		includes = obj.Includes
	}
	return func(d *doc) any {
		out := map[string]any{}
		for k, v := range d.parsed {
			for _, p := range includes {
				if patternMatch(p, k) {
					out[k] = v
				}
			}
		}
		return out
	}, nil
}

func parseSort(raw json.RawMessage, param string) ([]sortKey, *esError) {
	var keys []sortKey
	if param != "" {
		for _, s := range strings.Split(param, ",") {
			f, dir, _ := strings.Cut(s, ":")
			keys = append(keys, sortKey{field: f, desc: dir == "desc" || (dir == "" && f == "_score")})
		}
		return keys, nil
	}
	if len(raw) == 0 {
		return nil, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		items = []json.RawMessage{raw}
	}
	for _, it := range items {
		var name string
		if json.Unmarshal(it, &name) == nil {
			keys = append(keys, sortKey{field: name, desc: name == "_score"})
			continue
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(it, &obj) != nil || len(obj) != 1 {
			return nil, errorf(400, "parsing_exception", "malformed sort format, within the sort array, an object, or an actual string are allowed")
		}
		for f, spec := range obj {
			k := sortKey{field: f, desc: f == "_score"}
			var order string
			if json.Unmarshal(spec, &order) == nil {
				k.desc = order == "desc"
			} else {
				var o map[string]json.RawMessage
				if json.Unmarshal(spec, &o) != nil {
					return nil, errorf(400, "parsing_exception", "malformed sort for [%s]", f)
				}
				for p, v := range o {
					switch p {
					case "order":
						_ = json.Unmarshal(v, &order)
						if order != "asc" && order != "desc" {
							return nil, errorf(400, "illegal_argument_exception", "Unknown SortOrder [%s]", order)
						}
						k.desc = order == "desc"
					case "unmapped_type":
						_ = json.Unmarshal(v, &k.unmappedType)
					case "mode", "missing", "format", "numeric_type":
						// Accepted; missing values always sort last here.
					default:
						return nil, errorf(400, "parsing_exception", "[field_sort] unknown field [%s]", p)
					}
				}
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// sortValue returns the value a hit sorts by on key k, as Elasticsearch
// shows it in "sort": dates as epoch milliseconds (nanoseconds for
// date_nanos), numbers as numbers, keywords as strings; nil when missing.
func sortValue(h hit, k sortKey) any {
	switch k.field {
	case "_score":
		return 1.0
	case "_doc":
		return float64(h.d.seqNo)
	}
	f := h.ix.mapping.indexed(k.field)
	if f == nil {
		return nil
	}
	vals := fieldValues(h.d.parsed, k.field)
	var best any
	for _, v := range vals {
		c := typedValue(f, v)
		if c == nil {
			continue
		}
		if best == nil || (compareSort(c, best, false) < 0) != k.desc {
			best = c
		}
	}
	return best
}

// typedValue converts a source value to its comparable form for field f.
func typedValue(f *field, v any) any {
	switch f.typ {
	case "date":
		t, err := parseDateValue(v, f)
		if err != nil {
			return nil
		}
		return float64(t.UnixMilli())
	case "date_nanos":
		t, err := parseDateValue(v, f)
		if err != nil {
			return nil
		}
		return float64(t.UnixNano())
	case "long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long":
		n, err := parseNumber(v, f.typ)
		if err != nil {
			return nil
		}
		return n
	case "boolean":
		b, err := parseBool(v)
		if err != nil {
			return nil
		}
		if b {
			return float64(1)
		}
		return float64(0)
	default:
		s := scalarString(v)
		if f.ignoreAbove > 0 && len(s) > f.ignoreAbove {
			return nil
		}
		return s
	}
}

func normaliseAfter(v any) any {
	if n, ok := v.(json.Number); ok {
		f, _ := n.Float64()
		return f
	}
	return v
}

// compareSort orders two sort values; missing values sort last in both
// directions.
func compareSort(a, b any, desc bool) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	c := 0
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0
		}
		switch {
		case x < y:
			c = -1
		case x > y:
			c = 1
		}
	case string:
		y, ok := b.(string)
		if !ok {
			return 0
		}
		c = strings.Compare(x, y)
	}
	if desc {
		c = -c
	}
	return c
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// fieldValues collects the values of a dotted path in a source document,
// through objects and arrays of objects, flattening arrays.
func fieldValues(src map[string]any, path string) []any {
	var out []any
	var walk func(v any, rest string)
	walk = func(v any, rest string) {
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				walk(e, rest)
			}
			return
		}
		if rest == "" {
			if v != nil {
				out = append(out, v)
			}
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		parts := strings.Split(rest, ".")
		for i := len(parts); i > 0; i-- {
			if next, ok := m[strings.Join(parts[:i], ".")]; ok {
				walk(next, strings.Join(parts[i:], "."))
			}
		}
	}
	walk(src, path)
	return out
}

// Queries.

type matcher func(*index, *doc) bool

func compileQuery(raw json.RawMessage) (matcher, *esError) {
	var q map[string]json.RawMessage
	if err := json.Unmarshal(raw, &q); err != nil {
		return nil, errorf(400, "parsing_exception", "[_na] query malformed, must start with start_object")
	}
	if len(q) != 1 {
		return nil, errorf(400, "parsing_exception", "[_na] query malformed, no start_object after query name")
	}
	for name, body := range q {
		switch name {
		case "match_all":
			return func(*index, *doc) bool { return true }, nil
		case "match_none":
			return func(*index, *doc) bool { return false }, nil
		case "bool":
			return compileBool(body)
		case "term":
			return compileTerm(body)
		case "terms":
			return compileTerms(body)
		case "range":
			return compileRange(body)
		case "exists":
			var e struct {
				Field string `json:"field"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Field == "" {
				return nil, errorf(400, "parsing_exception", "[exists] must be provided with a [field]")
			}
			return func(ix *index, d *doc) bool {
				f := ix.mapping.indexed(e.Field)
				if f == nil {
					return false
				}
				for _, v := range fieldValues(d.parsed, e.Field) {
					if typedValue(f, v) != nil {
						return true
					}
				}
				return false
			}, nil
		case "ids":
			var e struct {
				Values []string `json:"values"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				return nil, errorf(400, "parsing_exception", "[ids] failed to parse field [values]")
			}
			set := map[string]bool{}
			for _, v := range e.Values {
				set[v] = true
			}
			return func(_ *index, d *doc) bool { return set[d.id] }, nil
		case "prefix":
			field, val, err := singleField(name, body)
			if err != nil {
				return nil, err
			}
			p := scalarString(val)
			return func(ix *index, d *doc) bool {
				f := ix.mapping.indexed(field)
				if f == nil {
					return false
				}
				for _, v := range fieldValues(d.parsed, field) {
					if s, ok := typedValue(f, v).(string); ok && strings.HasPrefix(s, p) {
						return true
					}
				}
				return false
			}, nil
		case "match":
			field, val, err := singleField(name, body)
			if err != nil {
				return nil, err
			}
			return func(ix *index, d *doc) bool {
				f := ix.mapping.indexed(field)
				if f == nil {
					return false
				}
				if f.typ == "text" || f.typ == "match_only_text" {
					want := tokens(scalarString(val))
					for _, v := range fieldValues(d.parsed, field) {
						have := map[string]bool{}
						for _, t := range tokens(scalarString(v)) {
							have[t] = true
						}
						for _, t := range want {
							if have[t] {
								return true
							}
						}
					}
					return false
				}
				return termMatch(f, fieldValues(d.parsed, field), val)
			}, nil
		default:
			return nil, errorf(400, "parsing_exception", "unknown query [%s] (the estest server supports match_all, match_none, bool, term, terms, range, exists, ids, prefix and match)", name)
		}
	}
	return nil, nil
}

// singleField parses {"field": value} or {"field": {"value"|"query": value, …}}.
func singleField(query string, body json.RawMessage) (string, any, *esError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		return "", nil, errorf(400, "parsing_exception", "[%s] query doesn't support multiple fields, found [%d]", query, len(m))
	}
	for field, raw := range m {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", nil, errorf(400, "parsing_exception", "[%s] malformed value for [%s]", query, field)
		}
		if obj, ok := v.(map[string]any); ok {
			for _, key := range []string{"value", "query"} {
				if x, ok := obj[key]; ok {
					if ci, _ := obj["case_insensitive"].(bool); ci {
						return "", nil, errorf(400, "parsing_exception", "[%s] case_insensitive is not supported by the estest server", query)
					}
					return field, x, nil
				}
			}
			return "", nil, errorf(400, "parsing_exception", "[%s] query does not support an object without [value] for [%s]", query, field)
		}
		return field, v, nil
	}
	return "", nil, nil
}

func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// termMatch reports whether any value equals the term, compared as the
// field's type compares.
func termMatch(f *field, vals []any, term any) bool {
	if f.typ == "text" || f.typ == "match_only_text" {
		t := scalarString(term)
		for _, v := range vals {
			for _, tok := range tokens(scalarString(v)) {
				if tok == t {
					return true
				}
			}
		}
		return false
	}
	want := typedValue(f, term)
	if want == nil {
		return false
	}
	for _, v := range vals {
		if got := typedValue(f, v); got != nil && compareSort(got, want, false) == 0 {
			return true
		}
	}
	return false
}

func compileTerm(body json.RawMessage) (matcher, *esError) {
	field, val, err := singleField("term", body)
	if err != nil {
		return nil, err
	}
	if field == "_id" {
		id := scalarString(val)
		return func(_ *index, d *doc) bool { return d.id == id }, nil
	}
	return func(ix *index, d *doc) bool {
		f := ix.mapping.indexed(field)
		return f != nil && termMatch(f, fieldValues(d.parsed, field), val)
	}, nil
}

func compileTerms(body json.RawMessage) (matcher, *esError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errorf(400, "parsing_exception", "[terms] query malformed")
	}
	var field string
	var vals []any
	for k, raw := range m {
		if k == "boost" || k == "_name" {
			continue
		}
		if field != "" {
			return nil, errorf(400, "parsing_exception", "[terms] query does not support multiple fields")
		}
		field = k
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&vals); err != nil {
			return nil, errorf(400, "parsing_exception", "[terms] query does not support [%s] (a list of values is required; terms lookup is not supported by the estest server)", k)
		}
	}
	if field == "" {
		return nil, errorf(400, "parsing_exception", "[terms] query requires a field")
	}
	return func(ix *index, d *doc) bool {
		if field == "_id" {
			for _, v := range vals {
				if scalarString(v) == d.id {
					return true
				}
			}
			return false
		}
		f := ix.mapping.indexed(field)
		if f == nil {
			return false
		}
		fv := fieldValues(d.parsed, field)
		for _, v := range vals {
			if termMatch(f, fv, v) {
				return true
			}
		}
		return false
	}, nil
}

var dateMath = regexp.MustCompile(`^now(?:([+-])(\d+)([smhdwMy]))?(?:/([smhdwMy]))?$`)

// rangeBound converts a range bound for field f; dates accept "now" with
// an offset and a rounding ("now-1d/d").
func rangeBound(f *field, v any, now time.Time) any {
	if s, ok := v.(string); ok && (f.typ == "date" || f.typ == "date_nanos") {
		if m := dateMath.FindStringSubmatch(s); m != nil {
			t := now.UTC()
			if m[1] != "" {
				n, _ := strconv.Atoi(m[2])
				if m[1] == "-" {
					n = -n
				}
				switch m[3] {
				case "s":
					t = t.Add(time.Duration(n) * time.Second)
				case "m":
					t = t.Add(time.Duration(n) * time.Minute)
				case "h":
					t = t.Add(time.Duration(n) * time.Hour)
				case "d":
					t = t.AddDate(0, 0, n)
				case "w":
					t = t.AddDate(0, 0, 7*n)
				case "M":
					t = t.AddDate(0, n, 0)
				case "y":
					t = t.AddDate(n, 0, 0)
				}
			}
			switch m[4] {
			case "d":
				t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			case "h":
				t = t.Truncate(time.Hour)
			case "m":
				t = t.Truncate(time.Minute)
			case "s":
				t = t.Truncate(time.Second)
			}
			if f.typ == "date_nanos" {
				return float64(t.UnixNano())
			}
			return float64(t.UnixMilli())
		}
	}
	return typedValue(f, v)
}

func compileRange(body json.RawMessage) (matcher, *esError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		return nil, errorf(400, "parsing_exception", "[range] query doesn't support multiple fields")
	}
	var field string
	bounds := map[string]any{}
	for k, raw := range m {
		field = k
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var b map[string]any
		if err := dec.Decode(&b); err != nil {
			return nil, errorf(400, "parsing_exception", "[range] query malformed, no start_object after query name")
		}
		for op, v := range b {
			switch op {
			case "gt", "gte", "lt", "lte":
				if v != nil {
					bounds[op] = v
				}
			case "boost", "format", "time_zone", "relation", "_name":
				if op == "time_zone" || (op == "format" && v != "strict_date_optional_time") {
					return nil, errorf(400, "parsing_exception", "[range] [%s] is not supported by the estest server", op)
				}
			case "from", "to", "include_lower", "include_upper":
				return nil, errorf(400, "parsing_exception", "[range] [%s] is deprecated; use gt, gte, lt or lte", op)
			default:
				return nil, errorf(400, "parsing_exception", "[range] query does not support [%s]", op)
			}
		}
	}
	return func(ix *index, d *doc) bool {
		f := ix.mapping.indexed(field)
		if f == nil {
			return false
		}
		now := time.Now()
		for _, v := range fieldValues(d.parsed, field) {
			got := typedValue(f, v)
			if got == nil {
				continue
			}
			ok := true
			for op, b := range bounds {
				want := rangeBound(f, b, now)
				if want == nil {
					ok = false
					break
				}
				c := compareSort(got, want, false)
				switch op {
				case "gt":
					ok = ok && c > 0
				case "gte":
					ok = ok && c >= 0
				case "lt":
					ok = ok && c < 0
				case "lte":
					ok = ok && c <= 0
				}
			}
			if ok {
				return true
			}
		}
		return false
	}, nil
}

func compileBool(body json.RawMessage) (matcher, *esError) {
	var b map[string]json.RawMessage
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, errorf(400, "parsing_exception", "[bool] query malformed")
	}
	clauses := map[string][]matcher{}
	minShould := -1
	for k, raw := range b {
		switch k {
		case "must", "filter", "should", "must_not":
			var list []json.RawMessage
			if json.Unmarshal(raw, &list) != nil {
				list = []json.RawMessage{raw}
			}
			for _, item := range list {
				m, err := compileQuery(item)
				if err != nil {
					return nil, err
				}
				clauses[k] = append(clauses[k], m)
			}
		case "minimum_should_match":
			var n int
			if err := json.Unmarshal(raw, &n); err != nil {
				var s string
				_ = json.Unmarshal(raw, &s)
				if n, err = strconv.Atoi(s); err != nil {
					return nil, errorf(400, "parsing_exception", "[bool] minimum_should_match [%s] is not supported by the estest server (use an integer)", raw)
				}
			}
			minShould = n
		case "boost", "_name":
		default:
			return nil, errorf(400, "parsing_exception", "[bool] query does not support [%s]", k)
		}
	}
	if minShould < 0 {
		minShould = 0
		if len(clauses["must"]) == 0 && len(clauses["filter"]) == 0 && len(clauses["should"]) > 0 {
			minShould = 1
		}
	}
	return func(ix *index, d *doc) bool {
		for _, k := range []string{"must", "filter"} {
			for _, m := range clauses[k] {
				if !m(ix, d) {
					return false
				}
			}
		}
		for _, m := range clauses["must_not"] {
			if m(ix, d) {
				return false
			}
		}
		n := 0
		for _, m := range clauses["should"] {
			if m(ix, d) {
				n++
			}
		}
		return n >= minShould
	}, nil
}
