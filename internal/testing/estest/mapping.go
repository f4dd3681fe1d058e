package estest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// field is one node of a mapping: the root, an object or a leaf field.
type field struct {
	typ     string // "object" for the root and objects
	enabled bool   // objects only
	dynamic string // objects: "", "true", "false", "strict", "runtime"
	props   map[string]*field
	// params are the other parameters, kept to show the mapping back.
	params map[string]json.RawMessage
	// ignoreAbove, for keywords, stops longer strings from being indexed.
	ignoreAbove int
	// index false keeps the field out of searches.
	noIndex bool
	// formats, for dates, are the accepted named formats.
	formats []string
	// dateDetection, on the root, maps new date-like strings as dates.
	dateDetection bool
}

// fieldTypes are the types the server accepts in a mapping; values of the
// ones not checked below are stored without checks.
var fieldTypes = map[string]bool{
	"keyword": true, "constant_keyword": true, "wildcard": true, "text": true, "match_only_text": true,
	"date": true, "date_nanos": true,
	"long": true, "integer": true, "short": true, "byte": true, "double": true, "float": true,
	"half_float": true, "scaled_float": true, "unsigned_long": true,
	"boolean": true, "object": true, "nested": true, "flattened": true, "ip": true, "binary": true,
	"version": true, "geo_point": true, "alias": true, "dense_vector": true, "search_as_you_type": true,
}

var rootParams = map[string]bool{
	"dynamic": true, "properties": true, "_source": true, "_meta": true, "date_detection": true,
	"numeric_detection": true, "dynamic_templates": true, "_routing": true, "runtime": true,
	"enabled": true, "subobjects": true, "dynamic_date_formats": true, "_field_names": true,
}

func newRoot() *field {
	return &field{typ: "object", enabled: true, props: map[string]*field{}, params: map[string]json.RawMessage{}, dateDetection: true}
}

func mapperError(format string, args ...any) *esError {
	return errorf(400, "mapper_parsing_exception", format, args...)
}

// parseMapping parses the "mappings" of an index or template. It accepts
// the `{"_doc": {…}}` form only to reject it, as Elasticsearch 8 does.
func parseMapping(raw json.RawMessage) (*field, *esError) {
	root := newRoot()
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return root, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, mapperError("Failed to parse mapping: mappings must be an object: %v", err)
	}
	var bad []string
	for k, v := range m {
		if !rootParams[k] {
			bad = append(bad, fmt.Sprintf("%s : %s", k, compact(v)))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, mapperError("Failed to parse mapping: Root mapping definition has unsupported parameters:  [%s]", strings.Join(bad, "] ["))
	}
	if err := root.parseObjectParams("_doc", m, true); err != nil {
		return nil, err
	}
	return root, nil
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func (f *field) parseObjectParams(path string, m map[string]json.RawMessage, root bool) *esError {
	for k, v := range m {
		switch k {
		case "type":
		case "properties":
			var props map[string]json.RawMessage
			if err := json.Unmarshal(v, &props); err != nil {
				return mapperError("Failed to parse mapping: [properties] of [%s] must be an object", path)
			}
			for name, pv := range props {
				if name == "" {
					return mapperError("Failed to parse mapping: field name cannot be an empty string")
				}
				child, err := parseField(joinPath(path, name, root), pv)
				if err != nil {
					return err
				}
				f.props[name] = child
			}
		case "enabled":
			b, err := parseBoolParam(v)
			if err != nil {
				return mapperError("Failed to parse mapping: [enabled] of [%s] must be a boolean, got %s", path, v)
			}
			f.enabled = b
		case "dynamic":
			var s any
			_ = json.Unmarshal(v, &s)
			switch d := fmt.Sprint(s); d {
			case "true", "false", "strict", "runtime":
				f.dynamic = d
			default:
				return mapperError("Failed to parse mapping: Could not convert [dynamic] to boolean: no such value [%s]", d)
			}
		case "date_detection":
			b, err := parseBoolParam(v)
			if err != nil {
				return mapperError("Failed to parse mapping: [date_detection] must be a boolean")
			}
			f.dateDetection = b
		default:
			if !root && !objectParams[k] {
				return mapperError("Failed to parse mapping: unknown parameter [%s] on mapper [%s] of type [object]", k, path)
			}
			f.params[k] = v
		}
	}
	return nil
}

var objectParams = map[string]bool{"subobjects": true, "copy_to": true}

func joinPath(parent, name string, root bool) string {
	if root {
		return name
	}
	return parent + "." + name
}

func parseBoolParam(v json.RawMessage) (bool, error) {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		return b, nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil && (s == "true" || s == "false") {
		return s == "true", nil
	}
	return false, fmt.Errorf("not a boolean")
}

func parseField(path string, raw json.RawMessage) (*field, *esError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, mapperError("Failed to parse mapping: Expected map for property [fields] on field [%s] but got a class java.lang.String", path)
	}
	typ := "object"
	if t, ok := m["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return nil, mapperError("Failed to parse mapping: type of field [%s] must be a string", path)
		}
	}
	if !fieldTypes[typ] {
		return nil, mapperError("Failed to parse mapping: No handler for type [%s] declared on field [%s]", typ, path)
	}
	f := &field{typ: typ, params: map[string]json.RawMessage{}}
	if typ == "object" || typ == "nested" {
		f.enabled = true
		f.props = map[string]*field{}
		if err := f.parseObjectParams(path, m, false); err != nil {
			return nil, err
		}
		if typ == "nested" {
			if _, ok := f.params["enabled"]; ok {
				return nil, mapperError("Failed to parse mapping: unknown parameter [enabled] on mapper [%s] of type [nested]", path)
			}
		}
		return f, nil
	}
	for k, v := range m {
		switch k {
		case "type":
		case "properties", "enabled", "dynamic":
			return nil, mapperError("Failed to parse mapping: unknown parameter [%s] on mapper [%s] of type [%s]", k, path, typ)
		case "ignore_above":
			if typ != "keyword" && typ != "wildcard" && typ != "flattened" {
				return nil, mapperError("Failed to parse mapping: unknown parameter [ignore_above] on mapper [%s] of type [%s]", path, typ)
			}
			if err := json.Unmarshal(v, &f.ignoreAbove); err != nil {
				return nil, mapperError("Failed to parse mapping: [ignore_above] on [%s] must be an integer", path)
			}
			f.params[k] = v
		case "index":
			b, err := parseBoolParam(v)
			if err != nil {
				return nil, mapperError("Failed to parse mapping: [index] on [%s] must be a boolean", path)
			}
			f.noIndex = !b
			f.params[k] = v
		case "format":
			if typ != "date" && typ != "date_nanos" {
				return nil, mapperError("Failed to parse mapping: unknown parameter [format] on mapper [%s] of type [%s]", path, typ)
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, mapperError("Failed to parse mapping: [format] on [%s] must be a string", path)
			}
			f.formats = strings.Split(s, "||")
			f.params[k] = v
		case "fields":
			var subs map[string]json.RawMessage
			if err := json.Unmarshal(v, &subs); err != nil {
				return nil, mapperError("Failed to parse mapping: [fields] on [%s] must be an object", path)
			}
			for n, sv := range subs {
				if _, err := parseField(path+"."+n, sv); err != nil {
					return nil, err
				}
			}
			f.params[k] = v
		default:
			f.params[k] = v
		}
	}
	return f, nil
}

func (f *field) clone() *field {
	c := *f
	if f.props != nil {
		c.props = make(map[string]*field, len(f.props))
		for k, v := range f.props {
			c.props[k] = v.clone()
		}
	}
	return &c
}

// merge lays o over f (o wins), as an index's own mappings over its
// template's.
func (f *field) merge(o *field) {
	if f.typ != "object" && f.typ != "nested" || o.typ != f.typ {
		*f = *o.clone()
		return
	}
	if o.dynamic != "" {
		f.dynamic = o.dynamic
	}
	f.enabled = o.enabled
	for k, v := range o.params {
		f.params[k] = v
	}
	for k, v := range o.props {
		if cur, ok := f.props[k]; ok {
			cur.merge(v)
		} else {
			f.props[k] = v.clone()
		}
	}
}

// toJSON renders the mapping as Elasticsearch shows it.
func (f *field) toJSON() map[string]any {
	out := map[string]any{}
	for k, v := range f.params {
		out[k] = v
	}
	if f.typ == "object" || f.typ == "nested" {
		if f.typ == "nested" {
			out["type"] = "nested"
		}
		if !f.enabled {
			out["enabled"] = false
		}
		if f.dynamic != "" {
			out["dynamic"] = f.dynamic
		}
		if len(f.props) > 0 {
			props := map[string]any{}
			for k, v := range f.props {
				props[k] = v.toJSON()
			}
			out["properties"] = props
		}
		return out
	}
	out["type"] = f.typ
	return out
}

// lookup finds the mapping of a dotted field path.
func (f *field) lookup(path string) *field {
	leaf, _ := f.resolve(path)
	return leaf
}

// indexed returns the mapping of a leaf field whose values are searchable:
// mapped, not index: false, not inside a disabled object.
func (f *field) indexed(path string) *field {
	leaf, ok := f.resolve(path)
	if leaf == nil || !ok || leaf.typ == "object" || leaf.typ == "nested" || leaf.noIndex {
		return nil
	}
	return leaf
}

// resolve walks a dotted path; ok is false when it passes through a
// disabled object.
func (f *field) resolve(path string) (leaf *field, ok bool) {
	cur, ok := f, true
	parts := strings.Split(path, ".")
	for i := 0; i < len(parts); i++ {
		if cur.props == nil {
			return nil, false
		}
		if !cur.enabled {
			ok = false
		}
		// A property name may itself contain dots.
		var next *field
		for j := len(parts); j > i; j-- {
			if p, found := cur.props[strings.Join(parts[i:j], ".")]; found {
				next, i = p, j-1
				break
			}
		}
		if next == nil {
			return nil, false
		}
		cur = next
	}
	return cur, ok
}

// docContext carries what an error about a document must name.
type docContext struct {
	id      string
	errType string // mapper_parsing_exception or document_parsing_exception
}

func (dc docContext) fieldError(path, typ string, v any, cause *esError) *esError {
	return errorf(400, dc.errType, "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
		path, typ, dc.id, preview(v)).causedBy(cause)
}

func preview(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + preview(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case nil:
		return "null"
	default:
		return fmt.Sprint(x)
	}
}

// checkDoc checks a document against root, adding dynamic mappings to root
// (the caller passes a clone and keeps it only when the document fits).
func checkDoc(root *field, src map[string]any, dc docContext) *esError {
	return checkObject(root, "", src, dc, dynamicOf(root, "true"), root)
}

func dynamicOf(f *field, inherited string) string {
	if f.dynamic != "" {
		return f.dynamic
	}
	return inherited
}

func checkObject(obj *field, path string, m map[string]any, dc docContext, dyn string, root *field) *esError {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		if k == "" || strings.Trim(k, ".") == "" {
			return errorf(400, dc.errType, "field name cannot be an empty string")
		}
		full := joinPath(path, k, path == "")
		// "a.b": {…} is the object a with the field b.
		if i := strings.IndexByte(k, '.'); i > 0 {
			if _, direct := obj.props[k]; !direct {
				if err := checkObject(obj, path, map[string]any{k[:i]: map[string]any{k[i+1:]: v}}, dc, dyn, root); err != nil {
					return err
				}
				continue
			}
		}
		f := obj.props[k]
		if f == nil {
			switch dyn {
			case "strict":
				where := path
				if where == "" {
					where = "_doc"
				}
				return errorf(400, "strict_dynamic_mapping_exception", "[1:1] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", k, where)
			case "false", "runtime":
				continue
			}
			f = dynamicField(v, root.dateDetection)
			if f == nil {
				continue // null or empty array: no mapping yet
			}
			obj.props[k] = f
		}
		if err := checkValue(f, full, v, dc, dyn, root); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(f *field, path string, v any, dc docContext, dyn string, root *field) *esError {
	if v == nil {
		return nil
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if _, nested := e.([]any); nested && f.typ != "object" {
				// Arrays of arrays are flattened.
				if err := checkValue(f, path, e, dc, dyn, root); err != nil {
					return err
				}
				continue
			}
			if err := checkValue(f, path, e, dc, dyn, root); err != nil {
				return err
			}
		}
		return nil
	}
	switch f.typ {
	case "object", "nested":
		if !f.enabled {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return errorf(400, dc.errType, "object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", path, path)
		}
		return checkObject(f, path, m, dc, dynamicOf(f, dyn), root)
	case "keyword", "text", "match_only_text", "wildcard", "constant_keyword", "search_as_you_type":
		if _, obj := v.(map[string]any); obj {
			return dc.fieldError(path, f.typ, v, errorf(400, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:1"))
		}
	case "date", "date_nanos":
		if _, err := parseDateValue(v, f); err != nil {
			return dc.fieldError(path, f.typ, v, err)
		}
	case "long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float", "scaled_float":
		if _, err := parseNumber(v, f.typ); err != nil {
			return dc.fieldError(path, f.typ, v, err)
		}
	case "boolean":
		if _, err := parseBool(v); err != nil {
			return dc.fieldError(path, f.typ, v, err)
		}
	}
	return nil
}

// dynamicField maps a new field the way Elasticsearch's dynamic mapping does.
func dynamicField(v any, dateDetection bool) *field {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		for _, e := range x {
			if f := dynamicField(e, dateDetection); f != nil {
				return f
			}
		}
		return nil
	case map[string]any:
		return &field{typ: "object", enabled: true, props: map[string]*field{}, params: map[string]json.RawMessage{}}
	case bool:
		return &field{typ: "boolean", params: map[string]json.RawMessage{}}
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return &field{typ: "long", params: map[string]json.RawMessage{}}
		}
		return &field{typ: "float", params: map[string]json.RawMessage{}}
	case string:
		if dateDetection {
			if _, err := parseDateString(x, nil, false); err == nil && strings.Contains(x, "-") {
				return &field{typ: "date", params: map[string]json.RawMessage{}}
			}
		}
		return &field{typ: "text", params: map[string]json.RawMessage{
			"fields": json.RawMessage(`{"keyword":{"type":"keyword","ignore_above":256}}`),
		}}
	}
	return nil
}

// Dates.

var isoDate = regexp.MustCompile(`^([+-]?\d{4,9})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$`)

// parseDateString parses s with a date field's formats (default
// strict_date_optional_time||epoch_millis). Named formats the server does
// not know are accepted without checks.
func parseDateString(s string, formats []string, nanos bool) (time.Time, *esError) {
	if len(formats) == 0 {
		formats = []string{"strict_date_optional_time", "epoch_millis"}
		if nanos {
			formats[0] = "strict_date_optional_time_nanos"
		}
	}
	for _, f := range formats {
		switch strings.TrimSpace(f) {
		case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos",
			"strict_date_time", "date_time", "strict_date_time_no_millis", "date_time_no_millis":
			if t, ok := parseISO(s); ok {
				return t, nil
			}
		case "epoch_millis":
			if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
				return time.UnixMilli(ms).UTC(), nil
			}
			if fl, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(fl, 0) && !math.IsNaN(fl) && !strings.ContainsAny(s, "eE") {
				return time.Unix(0, int64(fl*1e6)).UTC(), nil
			}
		case "epoch_second":
			if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
				return time.Unix(sec, 0).UTC(), nil
			}
		case "strict_date", "date", "yyyy-MM-dd":
			if t, err := time.Parse("2006-01-02", s); err == nil {
				return t, nil
			}
		default:
			return time.Time{}, nil // an unknown custom pattern: not checked
		}
	}
	return time.Time{}, errorf(400, "illegal_argument_exception", "failed to parse date field [%s] with format [%s]", s, strings.Join(formats, "||")).
		causedBy(errorf(400, "date_time_parse_exception", "Text '%s' could not be parsed at index 0", s))
}

func parseISO(s string) (time.Time, bool) {
	m := isoDate.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	num := func(i, def int) int {
		if m[i] == "" {
			return def
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	year, month, day := num(1, 0), num(2, 1), num(3, 1)
	hour, minute, sec := num(4, 0), num(5, 0), num(6, 0)
	nsec := 0
	if m[7] != "" {
		frac := (m[7] + "000000000")[:9]
		nsec, _ = strconv.Atoi(frac)
	}
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		sign := 1
		if z[0] == '-' {
			sign = -1
		}
		digits := strings.ReplaceAll(z[1:], ":", "")
		h, _ := strconv.Atoi(digits[:2])
		mi := 0
		if len(digits) >= 4 {
			mi, _ = strconv.Atoi(digits[2:4])
		}
		if h > 18 || mi > 59 {
			return time.Time{}, false
		}
		loc = time.FixedZone("", sign*(h*3600+mi*60))
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // 2024-02-30
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseDateValue parses a JSON value of a date field; numbers are epoch
// milliseconds. A date field keeps millisecond precision, date_nanos
// nanoseconds.
func parseDateValue(v any, f *field) (time.Time, *esError) {
	nanos := f != nil && f.typ == "date_nanos"
	var formats []string
	if f != nil {
		formats = f.formats
	}
	var t time.Time
	switch x := v.(type) {
	case string:
		var err *esError
		if t, err = parseDateString(x, formats, nanos); err != nil {
			return t, err
		}
	case json.Number:
		ms, err := x.Int64()
		if err != nil {
			fl, ferr := x.Float64()
			if ferr != nil {
				return t, errorf(400, "illegal_argument_exception", "failed to parse date field [%s]", x)
			}
			return time.Unix(0, int64(fl*1e6)).UTC(), nil
		}
		t = time.UnixMilli(ms).UTC()
	case float64:
		t = time.Unix(0, int64(x*1e6)).UTC()
	default:
		return t, errorf(400, "illegal_argument_exception", "failed to parse date field [%s] with format [strict_date_optional_time||epoch_millis]", preview(v))
	}
	if nanos && (t.Before(time.Unix(0, 0)) || t.Year() > 2262) {
		return t, errorf(400, "illegal_argument_exception", "date[%s] is before the epoch in 1970 or after 2262 and cannot be stored in nanosecond resolution", t.Format(time.RFC3339Nano))
	}
	if !nanos {
		t = t.Truncate(time.Millisecond)
	}
	return t, nil
}

// Numbers and booleans.

var intRanges = map[string][2]float64{
	"byte": {math.MinInt8, math.MaxInt8}, "short": {math.MinInt16, math.MaxInt16},
	"integer": {math.MinInt32, math.MaxInt32}, "long": {math.MinInt64, math.MaxInt64},
	"unsigned_long": {0, math.MaxUint64},
}

func parseNumber(v any, typ string) (float64, *esError) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		s = strings.TrimSpace(x)
	case bool:
		return 0, errorf(400, "illegal_argument_exception", "Current token (VALUE_%s) not numeric, can not use numeric value accessors", strings.ToUpper(fmt.Sprint(x)))
	default:
		return 0, errorf(400, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:1")
	}
	fl, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(fl) || math.IsInf(fl, 0) {
		return 0, errorf(400, "number_format_exception", "For input string: \"%s\"", s)
	}
	if r, ok := intRanges[typ]; ok {
		fl = math.Trunc(fl) // coerce: true
		if fl < r[0] || fl > r[1] {
			return 0, errorf(400, "illegal_argument_exception", "Value [%s] is out of range for a%s %s", s, map[bool]string{true: "n", false: ""}[typ == "integer"], typ)
		}
	}
	return fl, nil
}

func parseBool(v any) (bool, *esError) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch x {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, errorf(400, "illegal_argument_exception", "Failed to parse value [%s] as only [true] or [false] are allowed.", preview(v))
}
