package estest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// index is one index: its mapping, its documents and its searchable view.
type index struct {
	name     string
	uuid     string
	created  time.Time
	settings map[string]any
	mapping  *field
	docs     map[string]*doc
	// visible is what searches see: the documents as of the last refresh.
	visible     map[string]*doc
	lastRefresh time.Time
	seq         int64
}

// doc is one version of a document; a write replaces it, so the visible
// view can share it.
type doc struct {
	id      string
	source  json.RawMessage
	parsed  map[string]any
	version int64
	seqNo   int64
	writes  int
}

type indexTemplate struct {
	name       string
	patterns   []string
	priority   int64
	version    *int64
	meta       json.RawMessage
	settings   json.RawMessage
	mappings   json.RawMessage
	aliases    json.RawMessage
	mapping    *field
	composedOf []string
}

func (t *indexTemplate) toJSON() map[string]any {
	tpl := map[string]any{}
	if t.settings != nil {
		tpl["settings"] = t.settings
	}
	if t.mappings != nil {
		tpl["mappings"] = t.mapping.toJSON()
	}
	if t.aliases != nil {
		tpl["aliases"] = t.aliases
	}
	out := map[string]any{
		"index_patterns": t.patterns,
		"template":       tpl,
		"composed_of":    append([]string{}, t.composedOf...),
		"priority":       t.priority,
	}
	if t.version != nil {
		out["version"] = *t.version
	}
	if t.meta != nil {
		out["_meta"] = t.meta
	}
	return out
}

// validIndexName applies Elasticsearch's index name rules.
func validIndexName(name string) *esError {
	bad := func(why string) *esError {
		return errorf(400, "invalid_index_name_exception", "Invalid index name [%s], %s", name, why)
	}
	switch {
	case name != strings.ToLower(name):
		return bad("must be lowercase")
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		return bad(`must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "+"):
		return bad("must not start with '_', '-', or '+'")
	case name == "." || name == "..":
		return bad("must not be '.' or '..'")
	case len(name) > 255:
		return bad("index name is too long, (" + strconv.Itoa(len(name)) + " > 255)")
	}
	return nil
}

func patternMatch(pattern, name string) bool {
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// templateFor returns the matching template with the highest priority.
func (s *Server) templateFor(name string) *indexTemplate {
	var best *indexTemplate
	for _, t := range s.templates {
		for _, p := range t.patterns {
			if patternMatch(p, name) {
				if best == nil || t.priority > best.priority {
					best = t
				}
				break
			}
		}
	}
	return best
}

// newIndex creates an index from the matching template and the request's
// own settings and mappings (which win).
func (s *Server) newIndex(name string, settings map[string]any, mappings json.RawMessage) (*index, *esError) {
	if err := validIndexName(name); err != nil {
		return nil, err
	}
	ix := &index{
		name: name, uuid: randomID(), created: s.now(),
		settings: map[string]any{}, mapping: newRoot(),
		docs: map[string]*doc{}, visible: map[string]*doc{}, lastRefresh: s.now(),
	}
	if t := s.templateFor(name); t != nil {
		ix.mapping = t.mapping.clone()
		if t.settings != nil {
			var m map[string]any
			_ = json.Unmarshal(t.settings, &m)
			for k, v := range m {
				ix.settings[k] = v
			}
		}
	}
	if len(mappings) > 0 {
		own, err := parseMapping(mappings)
		if err != nil {
			return nil, err
		}
		ix.mapping.merge(own)
	}
	for k, v := range settings {
		ix.settings[k] = v
	}
	s.indices[name] = ix
	return ix, nil
}

func (s *Server) createIndex(name string, body []byte) (int, any) {
	if ix := s.indices[name]; ix != nil {
		return 400, errorf(400, "resource_already_exists_exception", "index [%s/%s] already exists", name, ix.uuid).withIndex(ix)
	}
	var req struct {
		Settings map[string]any  `json:"settings"`
		Mappings json.RawMessage `json:"mappings"`
		Aliases  json.RawMessage `json:"aliases"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return 400, errorf(400, "x_content_parse_exception", "[1:2] create index request: %v", err)
		}
	}
	if _, err := s.newIndex(name, req.Settings, req.Mappings); err != nil {
		return err.status, err
	}
	return 200, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name}
}

// resolve expands an index expression (comma-separated names and
// wildcards) to existing indices; nil when a concrete name is missing.
func (s *Server) resolve(expr string, q url.Values) []*index {
	out, err := s.resolveIndices(expr, q)
	if err != nil {
		return nil
	}
	return out
}

func (s *Server) resolveIndices(expr string, q url.Values) ([]*index, *esError) {
	if expr == "" || expr == "_all" {
		expr = "*"
	}
	ignoreUnavailable := q.Get("ignore_unavailable") == "true"
	seen := map[string]bool{}
	var out []*index
	for _, p := range strings.Split(expr, ",") {
		p = strings.TrimSpace(p)
		if strings.Contains(p, "*") {
			names := make([]string, 0)
			for n := range s.indices {
				if patternMatch(p, n) && !strings.HasPrefix(n, ".") {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				if !seen[n] {
					seen[n] = true
					out = append(out, s.indices[n])
				}
			}
			continue
		}
		ix := s.indices[p]
		if ix == nil {
			if ignoreUnavailable {
				continue
			}
			e := errorf(404, "index_not_found_exception", "no such index [%s]", p)
			e.index = p
			e.extra = map[string]any{"resource.type": "index_or_alias", "resource.id": p, "index_uuid": "_na_"}
			return nil, e
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, ix)
		}
	}
	return out, nil
}

func (s *Server) getIndex(expr string, q url.Values) (int, any) {
	ixs, err := s.resolveIndices(expr, q)
	if err != nil {
		return err.status, err
	}
	out := map[string]any{}
	for _, ix := range ixs {
		settings := map[string]any{}
		for k, v := range ix.settings {
			settings[k] = v
		}
		settings["provided_name"] = ix.name
		settings["uuid"] = ix.uuid
		settings["creation_date"] = strconv.FormatInt(ix.created.UnixMilli(), 10)
		settings["number_of_shards"] = "1"
		settings["number_of_replicas"] = "1"
		out[ix.name] = map[string]any{"aliases": map[string]any{}, "mappings": ix.mapping.toJSON(), "settings": map[string]any{"index": settings}}
	}
	return 200, out
}

func (s *Server) getMapping(expr string, q url.Values) (int, any) {
	ixs, err := s.resolveIndices(expr, q)
	if err != nil {
		return err.status, err
	}
	out := map[string]any{}
	for _, ix := range ixs {
		out[ix.name] = map[string]any{"mappings": ix.mapping.toJSON()}
	}
	return 200, out
}

func (s *Server) deleteIndex(expr string, q url.Values) (int, any) {
	ixs, err := s.resolveIndices(expr, q)
	if err != nil {
		return err.status, err
	}
	for _, ix := range ixs {
		delete(s.indices, ix.name)
	}
	return 200, map[string]any{"acknowledged": true}
}

func (s *Server) refresh(expr string, q url.Values) (int, any) {
	ixs, err := s.resolveIndices(expr, q)
	if err != nil {
		return err.status, err
	}
	for _, ix := range ixs {
		ix.refresh(s.now())
	}
	n := len(ixs)
	return 200, map[string]any{"_shards": map[string]any{"total": 2 * n, "successful": n, "failed": 0}}
}

func (ix *index) refresh(now time.Time) {
	ix.visible = make(map[string]*doc, len(ix.docs))
	for k, v := range ix.docs {
		ix.visible[k] = v
	}
	ix.lastRefresh = now
}

// Templates.

var templateKeys = map[string]bool{
	"index_patterns": true, "template": true, "composed_of": true, "priority": true, "version": true,
	"_meta": true, "data_stream": true, "allow_auto_create": true, "ignore_missing_component_templates": true, "deprecated": true,
}

func (s *Server) putTemplate(name string, body []byte, q url.Values) (int, any) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return 400, errorf(400, "parse_exception", "request body is required and must be a JSON object")
	}
	for k := range m {
		if !templateKeys[k] {
			return 400, errorf(400, "x_content_parse_exception", "[1:2] [index_template] unknown field [%s]", k)
		}
	}
	t := &indexTemplate{name: name}
	if raw, ok := m["index_patterns"]; ok {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			t.patterns = []string{one}
		} else if err := json.Unmarshal(raw, &t.patterns); err != nil {
			return 400, errorf(400, "x_content_parse_exception", "[index_template] failed to parse field [index_patterns]")
		}
	}
	if len(t.patterns) == 0 {
		return 400, errorf(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	for _, p := range t.patterns {
		if strings.ContainsAny(p, ` ,"\<>|#/`) || p != strings.ToLower(p) {
			return 400, errorf(400, "invalid_index_template_exception", "index_template [%s] invalid, cause [Validation Failed: 1: index_pattern [%s] must be lowercase and must not contain the following characters [ , \", \\, <, |, ,, >, /, ?, #];]", name, p)
		}
	}
	if raw, ok := m["priority"]; ok {
		if err := json.Unmarshal(raw, &t.priority); err != nil || t.priority < 0 {
			return 400, errorf(400, "x_content_parse_exception", "[index_template] failed to parse field [priority]: must be a non-negative integer")
		}
	}
	if raw, ok := m["version"]; ok {
		var v int64
		if err := json.Unmarshal(raw, &v); err != nil {
			return 400, errorf(400, "x_content_parse_exception", "[index_template] failed to parse field [version]")
		}
		t.version = &v
	}
	if raw, ok := m["_meta"]; ok {
		t.meta = raw
	}
	if raw, ok := m["composed_of"]; ok {
		_ = json.Unmarshal(raw, &t.composedOf)
		if len(t.composedOf) > 0 {
			return 400, errorf(400, "invalid_index_template_exception", "index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, t.composedOf)
		}
	}
	if raw, ok := m["data_stream"]; ok && string(raw) != "null" {
		return 400, errorf(400, "illegal_argument_exception", "data streams are not supported by the estest server (template [%s])", name)
	}
	t.mapping = newRoot()
	if raw, ok := m["template"]; ok {
		var tpl map[string]json.RawMessage
		if err := json.Unmarshal(raw, &tpl); err != nil {
			return 400, errorf(400, "x_content_parse_exception", "[index_template] failed to parse field [template]")
		}
		for k, v := range tpl {
			switch k {
			case "settings":
				t.settings = v
			case "mappings":
				t.mappings = v
				mp, err := parseMapping(v)
				if err != nil {
					return 400, err
				}
				t.mapping = mp
			case "aliases":
				t.aliases = v
			case "lifecycle", "data_stream_options":
			default:
				return 400, errorf(400, "x_content_parse_exception", "[1:2] [template] unknown field [%s]", k)
			}
		}
	}
	old := s.templates[name]
	if old != nil && q.Get("create") == "true" {
		return 400, errorf(400, "illegal_argument_exception", "index template [%s] already exists", name)
	}
	for _, o := range s.templates {
		if o.name == name || o.priority != t.priority {
			continue
		}
		if overlap(o.patterns, t.patterns) {
			return 400, errorf(400, "illegal_argument_exception",
				"index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
				name, t.patterns, o.name, o.name, o.patterns, t.priority)
		}
	}
	s.templates[name] = t
	return 200, map[string]any{"acknowledged": true}
}

// overlap reports whether two pattern lists can match the same name; like
// Elasticsearch it compares each pattern against the other as a name.
func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y || patternMatch(x, y) || patternMatch(y, x) {
				return true
			}
		}
	}
	return false
}

func (s *Server) getTemplates(expr string) (int, any) {
	var names []string
	for _, p := range strings.Split(expr, ",") {
		for n := range s.templates {
			if patternMatch(p, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 && !strings.Contains(expr, "*") {
		return 404, errorf(404, "resource_not_found_exception", "index template matching [%s] not found", expr)
	}
	list := []any{}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		list = append(list, map[string]any{"name": n, "index_template": s.templates[n].toJSON()})
	}
	return 200, map[string]any{"index_templates": list}
}

func (s *Server) deleteTemplate(name string) (int, any) {
	if s.templates[name] == nil {
		return 404, errorf(404, "resource_not_found_exception", "index_template matching [%s] not found", name)
	}
	delete(s.templates, name)
	return 200, map[string]any{"acknowledged": true}
}

// Documents.

// op is one write: index, create or delete.
type op struct {
	action        string
	index         string
	id            string
	version       *int64
	versionType   string
	ifSeqNo       *int64
	ifPrimaryTerm *int64
	source        []byte
}

// opResult is the outcome of one write, in bulk item form.
type opResult struct {
	status int
	body   map[string]any
}

var bulkMetaKeys = map[string]bool{
	"_index": true, "_id": true, "routing": true, "version": true, "version_type": true,
	"if_seq_no": true, "if_primary_term": true, "require_alias": true, "pipeline": true,
	"dynamic_templates": true, "retry_on_conflict": true, "_source": true, "list_executed_pipelines": true,
	"require_data_stream": true,
}

func (s *Server) bulk(body []byte, defaultIndex string, q url.Values) (int, any) {
	start := time.Now()
	ops, perr := parseBulk(body, defaultIndex)
	if perr != nil {
		return perr.status, perr
	}
	s.stats.Bulk++
	s.stats.BulkItems += len(ops)
	items := make([]any, 0, len(ops))
	hasErrors := false
	touched := map[*index]bool{}
	for _, o := range ops {
		if s.omits[o.id] && o.id != "" {
			// A broken node or proxy: the answer is 2xx and leaves the
			// item out, and the document is not written.
			s.stats.Omitted++
			continue
		}
		res := s.apply(o, touched)
		if _, failed := res.body["error"]; failed {
			hasErrors = true
		}
		items = append(items, map[string]any{o.action: res.body})
	}
	s.maybeRefresh(q, touched)
	return 200, map[string]any{"took": time.Since(start).Milliseconds(), "errors": hasErrors, "items": items}
}

func (s *Server) maybeRefresh(q url.Values, touched map[*index]bool) {
	if !q.Has("refresh") {
		return
	}
	if r := q.Get("refresh"); r == "" || r == "true" || r == "wait_for" {
		for ix := range touched {
			ix.refresh(s.now())
		}
	}
}

func parseBulk(body []byte, defaultIndex string) ([]op, *esError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errorf(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	if body[len(body)-1] != '\n' {
		return nil, errorf(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), maxContentLength)
	var ops []op
	line := 0
	var missing []int
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var meta map[string]map[string]json.RawMessage
		if err := json.Unmarshal(raw, &meta); err != nil || len(meta) != 1 {
			return nil, errorf(400, "illegal_argument_exception", "Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT but found [%s]", line, firstToken(raw))
		}
		var o op
		var params map[string]json.RawMessage
		for k, v := range meta {
			o.action, params = k, v
		}
		switch o.action {
		case "index", "create", "delete":
		case "update":
			return nil, errorf(400, "illegal_argument_exception", "bulk update is not supported by the estest server (line [%d])", line)
		default:
			return nil, errorf(400, "illegal_argument_exception", "Malformed action/metadata line [%d], expected field [create], [delete], [index] or [update] but found [%s]", line, o.action)
		}
		for k, v := range params {
			if !bulkMetaKeys[k] {
				return nil, errorf(400, "illegal_argument_exception", "Action/metadata line [%d] contains an unknown parameter [%s]", line, k)
			}
			var err error
			switch k {
			case "_index":
				err = json.Unmarshal(v, &o.index)
			case "_id":
				err = json.Unmarshal(v, &o.id)
			case "version":
				var n int64
				err = json.Unmarshal(v, &n)
				o.version = &n
			case "version_type":
				err = json.Unmarshal(v, &o.versionType)
			case "if_seq_no":
				var n int64
				err = json.Unmarshal(v, &n)
				o.ifSeqNo = &n
			case "if_primary_term":
				var n int64
				err = json.Unmarshal(v, &n)
				o.ifPrimaryTerm = &n
			}
			if err != nil {
				return nil, errorf(400, "illegal_argument_exception", "Malformed action/metadata line [%d], failed to parse [%s]: %v", line, k, err)
			}
		}
		if o.index == "" {
			o.index = defaultIndex
		}
		if o.index == "" {
			missing = append(missing, len(ops))
		}
		if o.action != "delete" {
			if !sc.Scan() {
				return nil, errorf(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			}
			line++
			o.source = append([]byte(nil), bytes.TrimSpace(sc.Bytes())...)
		}
		if err := validateOp(&o); err != nil {
			return nil, err
		}
		ops = append(ops, o)
	}
	if err := sc.Err(); err != nil {
		return nil, errorf(400, "parse_exception", "reading the bulk body: %v", err)
	}
	if len(missing) > 0 {
		var b strings.Builder
		for i := range missing {
			fmt.Fprintf(&b, "%d: index is missing;", i+1)
		}
		return nil, errorf(400, "action_request_validation_exception", "Validation Failed: %s", b.String())
	}
	return ops, nil
}

func firstToken(raw []byte) string {
	switch raw[0] {
	case '[':
		return "START_ARRAY"
	case '"':
		return "VALUE_STRING"
	case '{':
		return "FIELD_NAME"
	}
	return "VALUE_NUMBER"
}

func validateOp(o *op) *esError {
	switch o.versionType {
	case "", "internal":
		if o.version != nil && o.action != "delete" {
			return errorf(400, "action_request_validation_exception", "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;")
		}
	case "external", "external_gt", "external_gte":
		if o.version == nil {
			return errorf(400, "action_request_validation_exception", "Validation Failed: 1: illegal version value [-3] for version type [%s];", strings.ToUpper(o.versionType))
		}
		if *o.version < 0 {
			return errorf(400, "action_request_validation_exception", "Validation Failed: 1: illegal version value [%d] for version type [%s];", *o.version, strings.ToUpper(o.versionType))
		}
		if o.action == "create" {
			return errorf(400, "action_request_validation_exception", "Validation Failed: 1: create operations only support internal versioning. use index instead;")
		}
	default:
		return errorf(400, "illegal_argument_exception", "No version type match [%s]", o.versionType)
	}
	if (o.ifSeqNo == nil) != (o.ifPrimaryTerm == nil) {
		return errorf(400, "action_request_validation_exception", "Validation Failed: 1: if_seq_no and if_primary_term must be set together;")
	}
	if o.action == "delete" && o.id == "" {
		return errorf(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
	}
	if len(o.id) > 512 {
		return errorf(400, "action_request_validation_exception", "Validation Failed: 1: id [%s...] is too long, must be no longer than 512 bytes but was: %d;", o.id[:32], len(o.id))
	}
	return nil
}

// apply runs one write against the stored state.
func (s *Server) apply(o op, touched map[*index]bool) opResult {
	fail := func(e *esError) opResult {
		body := map[string]any{"_index": o.index, "_id": o.id, "status": e.status, "error": e.object()}
		return opResult{status: e.status, body: body}
	}
	if rj, ok := s.rejects[o.id]; ok && o.id != "" {
		s.stats.Rejected++
		e := errorf(rj.status, rj.typ, "%s", rj.reason)
		e.index = o.index
		return fail(e)
	}
	ix := s.indices[o.index]
	if ix == nil {
		if o.action == "delete" {
			e := errorf(404, "index_not_found_exception", "no such index [%s]", o.index)
			e.index = o.index
			return fail(e)
		}
		var err *esError
		if ix, err = s.newIndex(o.index, nil, nil); err != nil {
			return fail(err)
		}
	}
	touched[ix] = true
	if o.id == "" {
		o.id = randomID()
	}
	cur := ix.docs[o.id]
	conflict := func(reason string, args ...any) opResult {
		return fail(errorf(409, "version_conflict_engine_exception", "[%s]: version conflict, "+reason, append([]any{o.id}, args...)...).withIndex(ix))
	}
	if o.ifSeqNo != nil {
		if cur == nil {
			return conflict("required seqNo [%d], primary term [%d] but no document was found", *o.ifSeqNo, *o.ifPrimaryTerm)
		}
		if cur.seqNo != *o.ifSeqNo || *o.ifPrimaryTerm != 1 {
			return conflict("required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [1]", *o.ifSeqNo, *o.ifPrimaryTerm, cur.seqNo)
		}
	}
	newVersion := int64(1)
	switch o.versionType {
	case "external", "external_gt":
		if cur != nil && cur.version >= *o.version {
			return conflict("current version [%d] is higher or equal to the one provided [%d]", cur.version, *o.version)
		}
		newVersion = *o.version
	case "external_gte":
		if cur != nil && cur.version > *o.version {
			return conflict("current version [%d] is higher than the one provided [%d]", cur.version, *o.version)
		}
		newVersion = *o.version
	default:
		if cur != nil {
			newVersion = cur.version + 1
		}
	}
	shards := map[string]any{"total": 2, "successful": 1, "failed": 0}
	if o.action == "delete" {
		if cur == nil {
			ix.seq++
			return opResult{status: 404, body: map[string]any{
				"_index": ix.name, "_id": o.id, "_version": newVersion, "result": "not_found", "_shards": shards,
				"_seq_no": ix.seq, "_primary_term": 1, "status": 404,
			}}
		}
		ix.seq++
		delete(ix.docs, o.id)
		return opResult{status: 200, body: map[string]any{
			"_index": ix.name, "_id": o.id, "_version": newVersion, "result": "deleted", "_shards": shards,
			"_seq_no": ix.seq, "_primary_term": 1, "status": 200,
		}}
	}
	if o.action == "create" && cur != nil {
		return conflict("document already exists (current version [%d])", cur.version)
	}
	dc := docContext{id: o.id, errType: s.docErr}
	parsed, perr := parseSource(o.source, dc)
	if perr != nil {
		return fail(perr.withIndex(ix))
	}
	m := ix.mapping.clone()
	if err := checkDoc(m, parsed, dc); err != nil {
		return fail(err.withIndex(ix))
	}
	ix.mapping = m
	ix.seq++
	d := &doc{id: o.id, source: o.source, parsed: parsed, version: newVersion, seqNo: ix.seq, writes: 1}
	result, status := "created", 201
	if cur != nil {
		result, status = "updated", 200
		d.writes = cur.writes + 1
	}
	ix.docs[o.id] = d
	return opResult{status: status, body: map[string]any{
		"_index": ix.name, "_id": o.id, "_version": newVersion, "result": result, "_shards": shards,
		"_seq_no": ix.seq, "_primary_term": 1, "status": status,
	}}
}

func parseSource(src []byte, dc docContext) (map[string]any, *esError) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errorf(400, dc.errType, "failed to parse: document with id '%s' is not a JSON object", dc.id).
			causedBy(errorf(400, "not_x_content_exception", "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes"))
	}
	if dec.More() {
		return nil, errorf(400, dc.errType, "failed to parse: document with id '%s' has trailing data after the JSON object", dc.id)
	}
	return m, nil
}

// writeOne serves the single-document write APIs.
func (s *Server) writeOne(indexName, id, action string, body []byte, q url.Values) (int, any) {
	o := op{action: action, index: indexName, id: id, source: bytes.TrimSpace(body), versionType: q.Get("version_type")}
	if v := q.Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 400, errorf(400, "illegal_argument_exception", "failed to parse [version]: %v", err)
		}
		o.version = &n
	}
	for k, dst := range map[string]**int64{"if_seq_no": &o.ifSeqNo, "if_primary_term": &o.ifPrimaryTerm} {
		if v := q.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 400, errorf(400, "illegal_argument_exception", "failed to parse [%s]: %v", k, err)
			}
			*dst = &n
		}
	}
	if err := validateOp(&o); err != nil {
		return err.status, err
	}
	touched := map[*index]bool{}
	res := s.apply(o, touched)
	s.maybeRefresh(q, touched)
	if e, ok := res.body["error"].(map[string]any); ok {
		err := &esError{status: res.status, typ: fmt.Sprint(e["type"]), reason: fmt.Sprint(e["reason"])}
		err.extra = map[string]any{}
		for k, v := range e {
			if k != "type" && k != "reason" {
				err.extra[k] = v
			}
		}
		return res.status, err
	}
	delete(res.body, "status")
	return res.status, res.body
}

func (s *Server) getDoc(indexName, id string) (int, any) {
	ix := s.indices[indexName]
	if ix == nil {
		e := errorf(404, "index_not_found_exception", "no such index [%s]", indexName)
		e.index = indexName
		e.extra = map[string]any{"resource.type": "index_expression", "resource.id": indexName, "index_uuid": "_na_"}
		return 404, e
	}
	d := ix.docs[id]
	if d == nil {
		return 404, map[string]any{"_index": indexName, "_id": id, "found": false}
	}
	return 200, map[string]any{
		"_index": indexName, "_id": id, "_version": d.version, "_seq_no": d.seqNo, "_primary_term": 1,
		"found": true, "_source": d.source,
	}
}
