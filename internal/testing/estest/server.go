// Package estest is an in-process stand-in for an Elasticsearch 8 node, for
// tests of code that talks to Elasticsearch through the official Go client.
//
// It serves, over real HTTP, the subset of the REST API the engine uses:
// `GET /` (with the X-Elastic-Product header the client checks), index
// create/exists/get/delete, composable index templates (`_index_template`,
// applied when an index is created, explicitly or by a write), `_bulk`
// (index, create and delete with internal and external versioning, per-item
// results), `_doc` get/index/delete, `_search` and `_count` (match_all,
// match_none, bool, term, terms, range, exists, ids, prefix and match;
// sort, size/from, search_after, hits.total), `_refresh`, `_mapping` and
// `_cluster/health`. Documents are checked against their mappings the way
// Elasticsearch does (a date that does not parse is a 400
// mapper_parsing_exception, document_parsing_exception from 8.8 on), and
// searches see only refreshed documents.
//
// Faults can be injected: the next N requests answer 429 or 503, chosen
// document ids are rejected inside a bulk request (a partial failure) or
// left out of its 2xx answer (Omit), index templates are refused, and the
// server can go down (connections are refused) and come back on the same
// address. It can serve under a path prefix, as a cluster behind a reverse
// proxy does (Options.PathPrefix). Every method is safe for concurrent use.
//
// What it does not do: scoring, analysis beyond lower-cased word splitting,
// aggregations, aliases, data streams, component templates, scripts and
// updates. A request for something unsupported is answered with an
// Elasticsearch-style 400 error that names it, never silently ignored.
package estest

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultVersion is the Elasticsearch version the server reports unless
// Options.Version says otherwise.
const DefaultVersion = "8.7.1"

// maxContentLength mirrors Elasticsearch's http.max_content_length default.
const maxContentLength = 100 << 20

// Options configure a Server. The zero value is a server without security
// that refreshes indices every second, like Elasticsearch's default.
type Options struct {
	// Version is the version number reported by `GET /` (default
	// DefaultVersion). It also selects the error type of a document that
	// does not fit its mapping: mapper_parsing_exception before 8.8,
	// document_parsing_exception from 8.8 on.
	Version string
	// RefreshInterval is how old the searchable view of an index may get
	// before a search refreshes it (default 1s, Elasticsearch's default).
	// Negative disables automatic refresh: only `_refresh` and the
	// `refresh` parameter make writes searchable.
	RefreshInterval time.Duration
	// Username and Password, when set, are required as HTTP basic
	// authentication on every request (401 security_exception otherwise).
	Username, Password string
	// APIKey, when set, is accepted as "Authorization: ApiKey <APIKey>"
	// (the scheme's case does not matter, as in Elasticsearch)
	// (and required unless Username or Password are set too).
	APIKey string
	// TLS, when set, makes the server speak https with this configuration
	// (its certificate, and ClientAuth to require client certificates).
	TLS *tls.Config
	// PathPrefix, when set ("/es"), serves the API under that path only, as
	// a cluster behind a reverse proxy is; other paths answer a plain 404
	// that is not Elasticsearch's. URL includes it.
	PathPrefix string
}

// Stats counts what the server has seen.
type Stats struct {
	// Requests counts every request that reached the handler.
	Requests int
	// Bulk counts `_bulk` requests that were processed.
	Bulk int
	// BulkItems counts items in processed `_bulk` requests.
	BulkItems int
	// Injected counts requests answered by FailNext.
	Injected int
	// Rejected counts bulk items rejected by Reject.
	Rejected int
	// Omitted counts bulk items left out of answers by Omit.
	Omitted int
	// TemplatesRefused counts template writes refused by RefuseTemplates.
	TemplatesRefused int
}

// Doc is a stored document as the server holds it.
type Doc struct {
	Index   string
	ID      string
	Version int64
	SeqNo   int64
	Source  json.RawMessage
	// Writes counts the successful index operations on this id since the
	// document was last created (1 after the first write).
	Writes int
}

type reject struct {
	status      int
	typ, reason string
}

// Server is the fake Elasticsearch node.
type Server struct {
	opts    Options
	addr    string
	docErr  string
	cluster string

	mu        sync.Mutex
	hs        *httptest.Server
	templates map[string]*indexTemplate
	indices   map[string]*index
	failN     int
	failCode  int
	rejects   map[string]reject
	omits     map[string]bool
	refuseTpl *reject
	stats     Stats
	now       func() time.Time
}

// New starts a server on a free loopback port.
func New(opts Options) (*Server, error) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = time.Second
	}
	s := &Server{
		opts:      opts,
		docErr:    docParsingType(opts.Version),
		cluster:   randomID(),
		templates: make(map[string]*indexTemplate),
		indices:   make(map[string]*index),
		rejects:   make(map[string]reject),
		omits:     make(map[string]bool),
		now:       time.Now,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("estest: listening: %w", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	return s, nil
}

// Start starts a server for a test and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("starting the Elasticsearch test server: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(l net.Listener) {
	hs := httptest.NewUnstartedServer(s)
	hs.Listener.Close()
	hs.Listener = l
	if s.opts.TLS != nil {
		hs.TLS = s.opts.TLS
		hs.StartTLS()
	} else {
		hs.Start()
	}
	s.mu.Lock()
	s.hs = hs
	s.mu.Unlock()
}

// URL returns the server's base URL, "http://127.0.0.1:port" (https with
// Options.TLS); it stays the same across Down and Up.
func (s *Server) URL() string {
	if s.opts.TLS != nil {
		return "https://" + s.addr + s.opts.PathPrefix
	}
	return "http://" + s.addr + s.opts.PathPrefix
}

// Close stops the server for good.
func (s *Server) Close() { s.Down() }

// Down stops serving: open connections are cut and new ones refused, as when
// the node crashes. The data is kept.
func (s *Server) Down() {
	s.mu.Lock()
	hs := s.hs
	s.hs = nil
	s.mu.Unlock()
	if hs != nil {
		hs.CloseClientConnections()
		hs.Close()
	}
}

// Up serves again on the same address after Down.
func (s *Server) Up() error {
	s.mu.Lock()
	up := s.hs != nil
	s.mu.Unlock()
	if up {
		return nil
	}
	var l net.Listener
	var err error
	// The port was just released; rebinding can fail for a moment.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("estest: listening again on %s: %w", s.addr, err)
	}
	s.serve(l)
	return nil
}

// IsUp reports whether the server accepts connections.
func (s *Server) IsUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs != nil
}

// FailNext makes the next n requests answer status, which must be 429
// (es_rejected_execution_exception) or 5xx (503 answers
// cluster_block_exception, others an internal error), before doing anything.
func (s *Server) FailNext(n, status int) {
	if status != http.StatusTooManyRequests && (status < 500 || status > 599) {
		panic(fmt.Sprintf("estest: FailNext status %d: want 429 or 5xx", status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// Reject makes every bulk or single-document write of a document with this
// id fail with the given status and error type until Allow, without
// touching the stored document (for example 400 with
// "mapper_parsing_exception", or 429 with "es_rejected_execution_exception").
func (s *Server) Reject(id string, status int, errType, reason string) {
	if reason == "" {
		reason = "rejected by the test server"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejects[id] = reject{status: status, typ: errType, reason: reason}
}

// Allow ends a Reject or an Omit of id.
func (s *Server) Allow(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejects, id)
	delete(s.omits, id)
}

// Omit makes every bulk answer leave out the item of a document with this
// id, without writing it, until Allow: a 2xx answer with fewer items than
// were sent, as a broken node or proxy gives.
func (s *Server) Omit(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omits[id] = true
}

// RefuseTemplates makes every write of an index template fail with the
// given status and error type (for example 400 "illegal_argument_exception"
// or 403 "security_exception") until AcceptTemplates.
func (s *Server) RefuseTemplates(status int, errType, reason string) {
	if reason == "" {
		reason = "index template refused by the test server"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseTpl = &reject{status: status, typ: errType, reason: reason}
}

// AcceptTemplates ends RefuseTemplates.
func (s *Server) AcceptTemplates() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseTpl = nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Doc returns a stored document, refreshed or not.
func (s *Server) Doc(index, id string) (Doc, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[index]
	if ix == nil {
		return Doc{}, false
	}
	d := ix.docs[id]
	if d == nil {
		return Doc{}, false
	}
	return d.export(index), true
}

// Docs returns every stored document of an index, ordered by id.
func (s *Server) Docs(index string) []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[index]
	if ix == nil {
		return nil
	}
	out := make([]Doc, 0, len(ix.docs))
	for _, d := range ix.docs {
		out = append(out, d.export(index))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Count returns the number of stored documents of an index, refreshed or not.
func (s *Server) Count(index string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ix := s.indices[index]; ix != nil {
		return len(ix.docs)
	}
	return 0
}

// Indices returns the names of the existing indices, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.indices))
	for n := range s.indices {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Mapping returns the mappings of an index as `GET /<index>/_mapping` shows
// them.
func (s *Server) Mapping(index string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := s.indices[index]
	if ix == nil {
		return nil, false
	}
	b, _ := json.Marshal(ix.mapping.toJSON())
	return b, true
}

// Template returns an index template as it was stored.
func (s *Server) Template(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[name]
	if t == nil {
		return nil, false
	}
	b, _ := json.Marshal(t.toJSON())
	return b, true
}

func (d *doc) export(index string) Doc {
	return Doc{Index: index, ID: d.id, Version: d.version, SeqNo: d.seqNo, Source: append(json.RawMessage(nil), d.source...), Writes: d.writes}
}

// esError is an Elasticsearch error: its JSON form is
// {"error":{"root_cause":[…],"type","reason",…},"status"}.
type esError struct {
	status int
	typ    string
	reason string
	index  string
	extra  map[string]any
	cause  *esError
	header map[string]string
}

func (e *esError) Error() string { return e.typ + ": " + e.reason }

func errorf(status int, typ, format string, args ...any) *esError {
	return &esError{status: status, typ: typ, reason: fmt.Sprintf(format, args...)}
}

func (e *esError) withIndex(ix *index) *esError {
	e.index = ix.name
	if e.extra == nil {
		e.extra = map[string]any{}
	}
	e.extra["index_uuid"] = ix.uuid
	return e
}

func (e *esError) causedBy(c *esError) *esError { e.cause = c; return e }

// object is the error object without root_cause (used for bulk items and
// causes).
func (e *esError) object() map[string]any {
	o := map[string]any{"type": e.typ, "reason": e.reason}
	if e.index != "" {
		o["index"] = e.index
	}
	for k, v := range e.extra {
		o[k] = v
	}
	if e.cause != nil {
		o["caused_by"] = e.cause.object()
	}
	return o
}

func (e *esError) body() map[string]any {
	root := map[string]any{"type": e.typ, "reason": e.reason}
	if e.index != "" {
		root["index"] = e.index
	}
	for k, v := range e.extra {
		root[k] = v
	}
	o := e.object()
	o["root_cause"] = []any{root}
	return map[string]any{"error": o, "status": e.status}
}

// ServeHTTP answers one request. It is the server's http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := strings.TrimSuffix(s.opts.PathPrefix, "/"); p != "" {
		// A reverse proxy: only its prefix leads to Elasticsearch.
		rest, ok := strings.CutPrefix(r.URL.Path, p)
		if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
			http.NotFound(w, r)
			return
		}
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		if u.Path == "" {
			u.Path = "/"
		}
		r2.URL = &u
		r = &r2
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	s.mu.Lock()
	s.stats.Requests++
	s.mu.Unlock()

	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	apiKeyOK := s.opts.APIKey != "" && strings.EqualFold(scheme, "ApiKey") && key == s.opts.APIKey
	if !apiKeyOK && (s.opts.Username != "" || s.opts.Password != "" || s.opts.APIKey != "") {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.opts.Username || p != s.opts.Password || (s.opts.Username == "" && s.opts.Password == "") {
			e := errorf(http.StatusUnauthorized, "security_exception", "missing authentication credentials for REST request [%s]", r.URL.RequestURI())
			if ok {
				e.reason = fmt.Sprintf("unable to authenticate user [%s] for REST request [%s]", u, r.URL.RequestURI())
			}
			e.extra = map[string]any{"header": map[string]any{"WWW-Authenticate": []string{`Basic realm="security" charset="UTF-8"`, `ApiKey`}}}
			w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
			s.writeError(w, r, e)
			return
		}
	}

	s.mu.Lock()
	injected := 0
	if s.failN > 0 {
		s.failN--
		injected = s.failCode
		s.stats.Injected++
	}
	s.mu.Unlock()
	if injected != 0 {
		s.writeError(w, r, injectedError(injected))
		return
	}

	body, err := readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status, out := s.route(r, body)
	s.write(w, r, status, out)
}

func injectedError(status int) *esError {
	switch status {
	case http.StatusTooManyRequests:
		return errorf(status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0] (injected by the test server)")
	case http.StatusServiceUnavailable:
		return errorf(status, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master]; (injected by the test server)")
	default:
		return errorf(status, "internal_server_error", "internal error (injected by the test server)")
	}
}

func readBody(r *http.Request) ([]byte, *esError) {
	if r.Body == nil {
		return nil, nil
	}
	var rd io.Reader = io.LimitReader(r.Body, maxContentLength+1)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, errorf(400, "parse_exception", "request body is not valid gzip: %v", err)
		}
		defer zr.Close()
		rd = io.LimitReader(zr, maxContentLength+1)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, errorf(400, "parse_exception", "reading the request body: %v", err)
	}
	if len(b) > maxContentLength {
		return nil, errorf(413, "content_too_long_exception", "request body is larger than the maximum content length [%d]", maxContentLength)
	}
	return b, nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *esError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	s.write(w, r, e.status, e.body())
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, status int, v any) {
	if e, ok := v.(*esError); ok {
		s.writeError(w, r, e)
		return
	}
	var b []byte
	if v != nil {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status, b = 500, []byte(`{"error":{"type":"internal_server_error","reason":"estest: encoding the response"},"status":500}`)
		}
	}
	if r.URL.Query().Has("pretty") && b != nil {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			b = buf.Bytes()
		}
	}
	if b != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && b != nil {
		_, _ = w.Write(b)
	}
}

// route dispatches a request; it returns the status and the body (a
// *esError for an error).
func (s *Server) route(r *http.Request, body []byte) (int, any) {
	parts := splitPath(r.URL.Path)
	q := r.URL.Query()
	m := r.Method
	s.mu.Lock()
	defer s.mu.Unlock()

	if len(parts) == 0 {
		if m == http.MethodGet || m == http.MethodHead {
			return 200, s.info()
		}
		return methodNotAllowed(r, "GET, HEAD")
	}
	switch parts[0] {
	case "_bulk":
		if len(parts) == 1 && (m == http.MethodPost || m == http.MethodPut) {
			return s.bulk(body, "", q)
		}
	case "_refresh":
		if len(parts) == 1 && (m == http.MethodPost || m == http.MethodGet) {
			return s.refresh("", q)
		}
	case "_search":
		if len(parts) == 1 && (m == http.MethodPost || m == http.MethodGet) {
			return s.search("", body, q, false)
		}
	case "_count":
		if len(parts) == 1 && (m == http.MethodPost || m == http.MethodGet) {
			return s.search("", body, q, true)
		}
	case "_index_template":
		return s.routeTemplate(r, parts[1:], body, q)
	case "_cluster":
		if len(parts) == 2 && parts[1] == "health" && m == http.MethodGet {
			return 200, map[string]any{
				"cluster_name": "estest", "status": "green", "timed_out": false,
				"number_of_nodes": 1, "number_of_data_nodes": 1,
				"active_primary_shards": len(s.indices), "active_shards": len(s.indices),
				"relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
				"active_shards_percent_as_number": 100.0,
			}
		}
	default:
		if strings.HasPrefix(parts[0], "_") {
			break
		}
		return s.routeIndex(r, parts, body, q)
	}
	return noHandler(r)
}

func (s *Server) routeTemplate(r *http.Request, rest []string, body []byte, q queryParams) (int, any) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		return s.getTemplates("*")
	case len(rest) == 1:
		switch r.Method {
		case http.MethodPut, http.MethodPost:
			if rj := s.refuseTpl; rj != nil {
				s.stats.TemplatesRefused++
				return rj.status, errorf(rj.status, rj.typ, "%s", rj.reason)
			}
			return s.putTemplate(rest[0], body, q)
		case http.MethodGet:
			return s.getTemplates(rest[0])
		case http.MethodHead:
			if st, _ := s.getTemplates(rest[0]); st != 200 {
				return 404, nil
			}
			return 200, nil
		case http.MethodDelete:
			return s.deleteTemplate(rest[0])
		}
	}
	return noHandler(r)
}

func (s *Server) routeIndex(r *http.Request, parts []string, body []byte, q queryParams) (int, any) {
	name, m := parts[0], r.Method
	if len(parts) == 1 {
		switch m {
		case http.MethodPut:
			return s.createIndex(name, body)
		case http.MethodHead:
			if s.resolve(name, q) == nil {
				return 404, nil
			}
			return 200, nil
		case http.MethodGet:
			return s.getIndex(name, q)
		case http.MethodDelete:
			return s.deleteIndex(name, q)
		}
		return methodNotAllowed(r, "PUT, HEAD, GET, DELETE")
	}
	switch parts[1] {
	case "_bulk":
		if len(parts) == 2 && (m == http.MethodPost || m == http.MethodPut) {
			return s.bulk(body, name, q)
		}
	case "_refresh":
		if len(parts) == 2 && (m == http.MethodPost || m == http.MethodGet) {
			return s.refresh(name, q)
		}
	case "_search":
		if len(parts) == 2 && (m == http.MethodPost || m == http.MethodGet) {
			return s.search(name, body, q, false)
		}
	case "_count":
		if len(parts) == 2 && (m == http.MethodPost || m == http.MethodGet) {
			return s.search(name, body, q, true)
		}
	case "_mapping":
		if len(parts) == 2 && m == http.MethodGet {
			return s.getMapping(name, q)
		}
	case "_doc":
		switch {
		case len(parts) == 2 && m == http.MethodPost:
			return s.writeOne(name, "", "index", body, q)
		case len(parts) == 3 && (m == http.MethodGet || m == http.MethodHead):
			return s.getDoc(name, parts[2])
		case len(parts) == 3 && (m == http.MethodPut || m == http.MethodPost):
			op := "index"
			if q.Get("op_type") == "create" {
				op = "create"
			}
			return s.writeOne(name, parts[2], op, body, q)
		case len(parts) == 3 && m == http.MethodDelete:
			return s.writeOne(name, parts[2], "delete", nil, q)
		}
	case "_create":
		if len(parts) == 3 && (m == http.MethodPut || m == http.MethodPost) {
			return s.writeOne(name, parts[2], "create", body, q)
		}
	}
	return noHandler(r)
}

func noHandler(r *http.Request) (int, any) {
	return 400, errorf(400, "illegal_argument_exception",
		"no handler found for uri [%s] and method [%s] (the estest server implements only the subset of the API listed in its package documentation)",
		r.URL.RequestURI(), r.Method)
}

func methodNotAllowed(r *http.Request, allowed string) (int, any) {
	e := errorf(405, "method_not_allowed", "Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]", r.URL.RequestURI(), r.Method, allowed)
	return 405, e
}

func (s *Server) info() map[string]any {
	return map[string]any{
		"name":         "estest",
		"cluster_name": "estest",
		"cluster_uuid": s.cluster,
		"version": map[string]any{
			"number":                              s.opts.Version,
			"build_flavor":                        "default",
			"build_type":                          "tar",
			"build_hash":                          "0000000000000000000000000000000000000000",
			"build_date":                          "2024-01-01T00:00:00.000000000Z",
			"build_snapshot":                      false,
			"lucene_version":                      "9.12.0",
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	}
}

// queryParams are the URL query parameters.
type queryParams = url.Values

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func randomID() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")
}

// docParsingType returns the error type of a document that does not fit its
// mapping for an Elasticsearch version: DocumentParsingException replaced
// MapperParsingException for documents in 8.8.
func docParsingType(version string) string {
	var major, minor int
	_, _ = fmt.Sscanf(version, "%d.%d", &major, &minor)
	if major > 8 || (major == 8 && minor >= 8) {
		return "document_parsing_exception"
	}
	return "mapper_parsing_exception"
}
