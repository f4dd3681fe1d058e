package estest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/jobengine/jobengine/internal/testing/estest"
)

func client(t *testing.T, s *estest.Server, user, pass string) *elasticsearch.Client {
	t.Helper()
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{s.URL()}, Username: user, Password: pass, DisableRetry: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// do sends a request and decodes the answer; it fails the test on a
// transport error.
func do(t *testing.T, es *elasticsearch.Client, req esapi.Request) (int, map[string]any) {
	t.Helper()
	res, err := req.Do(context.Background(), es)
	if err != nil {
		t.Fatalf("%T: %v", req, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%T: answer is not JSON: %s", req, b)
		}
	}
	return res.StatusCode, m
}

func errType(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

const template = `{
  "index_patterns": ["t-*"],
  "priority": 10,
  "template": {"mappings": {"dynamic": false, "properties": {
    "state": {"type": "keyword"}, "n": {"type": "integer"}, "at": {"type": "date"},
    "payload": {"type": "object", "enabled": false}, "msg": {"type": "text"}
  }}}
}`

func TestInfoAndProductCheck(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	es := client(t, s, "", "")
	st, m := do(t, es, esapi.InfoRequest{})
	if st != 200 {
		t.Fatalf("GET / = %d", st)
	}
	if v := m["version"].(map[string]any)["number"]; v != estest.DefaultVersion {
		t.Fatalf("version = %v", v)
	}
}

func TestAuthentication(t *testing.T) {
	s := estest.Start(t, estest.Options{Username: "elastic", Password: "secret"})
	st, m := do(t, client(t, s, "elastic", "wrong"), esapi.InfoRequest{})
	if st != 401 || errType(m) != "security_exception" {
		t.Fatalf("wrong password: %d %v", st, m)
	}
	if st, _ := do(t, client(t, s, "elastic", "secret"), esapi.InfoRequest{}); st != 200 {
		t.Fatalf("right password: %d", st)
	}
}

func TestTemplateAppliedOnAutoCreateAndMappingChecks(t *testing.T) {
	s := estest.Start(t, estest.Options{Version: "8.19.0"})
	es := client(t, s, "", "")
	if st, m := do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(template)}); st != 200 {
		t.Fatalf("put template: %d %v", st, m)
	}
	if st, m := do(t, es, esapi.IndicesGetIndexTemplateRequest{Name: "t"}); st != 200 || len(m["index_templates"].([]any)) != 1 {
		t.Fatalf("get template: %d %v", st, m)
	}
	if st, m := do(t, es, esapi.IndicesGetIndexTemplateRequest{Name: "nope"}); st != 404 || errType(m) != "resource_not_found_exception" {
		t.Fatalf("get missing template: %d %v", st, m)
	}
	// Same priority, overlapping pattern: refused like Elasticsearch does.
	clash := strings.Replace(template, `"t-*"`, `"t-a*"`, 1)
	if st, m := do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t2", Body: strings.NewReader(clash)}); st != 400 || errType(m) != "illegal_argument_exception" {
		t.Fatalf("overlapping template: %d %v", st, m)
	}
	bad := `{"index_patterns":["x"],"template":{"mappings":{"properties":{"a":{"type":"keyword","enabled":false}}}}}`
	if st, m := do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "bad", Body: strings.NewReader(bad)}); st != 400 || errType(m) != "mapper_parsing_exception" {
		t.Fatalf("enabled on a keyword: %d %v", st, m)
	}

	body := `{"index":{"_index":"t-1","_id":"a"}}
{"state":"QUEUED","n":1,"at":"2024-05-01T10:00:00.123456Z","payload":{"deep":{"x":[1,"two"]}}}
{"index":{"_index":"t-1","_id":"b"}}
{"state":"RUNNING","n":2,"at":"yesterday"}
{"index":{"_index":"t-1","_id":"c"}}
{"state":"DONE","n":"many"}
{"create":{"_index":"t-1","_id":"a"}}
{"state":"X"}
`
	st, m := do(t, es, esapi.BulkRequest{Body: strings.NewReader(body)})
	if st != 200 || m["errors"] != true {
		t.Fatalf("bulk: %d %v", st, m)
	}
	items := m["items"].([]any)
	want := []struct {
		status int
		typ    string
	}{{201, ""}, {400, "document_parsing_exception"}, {400, "document_parsing_exception"}, {409, "version_conflict_engine_exception"}}
	for i, w := range want {
		var it map[string]any
		for _, v := range items[i].(map[string]any) {
			it = v.(map[string]any)
		}
		if int(it["status"].(float64)) != w.status || errType(it) != w.typ {
			t.Errorf("item %d: %v, want %d %s", i, it, w.status, w.typ)
		}
	}
	mp, _ := s.Mapping("t-1")
	if !strings.Contains(string(mp), `"payload":{"enabled":false}`) || !strings.Contains(string(mp), `"state":{"type":"keyword"}`) {
		t.Fatalf("template mapping not applied: %s", mp)
	}
	if s.Count("t-1") != 1 {
		t.Fatalf("count = %d, want 1", s.Count("t-1"))
	}
}

func TestOlderVersionUsesMapperParsingException(t *testing.T) {
	s := estest.Start(t, estest.Options{Version: "8.7.1"})
	es := client(t, s, "", "")
	do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(template)})
	st, m := do(t, es, esapi.IndexRequest{Index: "t-1", DocumentID: "b", Body: strings.NewReader(`{"at":"not a date"}`)})
	if st != 400 || errType(m) != "mapper_parsing_exception" {
		t.Fatalf("bad date: %d %v", st, m)
	}
}

func TestExternalVersioning(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	es := client(t, s, "", "")
	put := func(v int) (int, map[string]any) {
		return do(t, es, esapi.IndexRequest{Index: "v", DocumentID: "x", Version: &v, VersionType: "external",
			Body: strings.NewReader(`{"v":` + string(rune('0'+v)) + `}`)})
	}
	if st, m := put(3); st != 201 || m["_version"].(float64) != 3 {
		t.Fatalf("first write: %d %v", st, m)
	}
	if st, m := put(2); st != 409 || errType(m) != "version_conflict_engine_exception" {
		t.Fatalf("older version: %d %v", st, m)
	}
	if st, _ := put(3); st != 409 {
		t.Fatalf("same version: %d", st)
	}
	if st, m := put(5); st != 200 || m["result"] != "updated" {
		t.Fatalf("newer version: %d %v", st, m)
	}
	d, _ := s.Doc("v", "x")
	if d.Version != 5 || d.Writes != 2 || string(d.Source) != `{"v":5}` {
		t.Fatalf("stored: %+v", d)
	}
	st, m := do(t, es, esapi.GetRequest{Index: "v", DocumentID: "x"})
	if st != 200 || m["found"] != true || m["_version"].(float64) != 5 {
		t.Fatalf("get: %d %v", st, m)
	}
	if st, m := do(t, es, esapi.GetRequest{Index: "v", DocumentID: "nope"}); st != 404 || m["found"] != false {
		t.Fatalf("get missing: %d %v", st, m)
	}
	if st, m := do(t, es, esapi.GetRequest{Index: "nope", DocumentID: "x"}); st != 404 || errType(m) != "index_not_found_exception" {
		t.Fatalf("get from missing index: %d %v", st, m)
	}
}

func TestSearchFiltersSortsAndRefresh(t *testing.T) {
	s := estest.Start(t, estest.Options{RefreshInterval: -1})
	es := client(t, s, "", "")
	do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(template)})
	var b strings.Builder
	states := []string{"QUEUED", "RUNNING", "SUCCESS", "FAILED", "SUCCESS"}
	for i, st := range states {
		b.WriteString(`{"index":{"_index":"t-s","_id":"` + string(rune('a'+i)) + `"}}` + "\n")
		b.WriteString(`{"state":"` + st + `","n":` + string(rune('0'+i)) + `,"at":"2024-05-0` + string(rune('1'+i)) + `T00:00:00Z","msg":"Hello World ` + st + `"}` + "\n")
	}
	if st, m := do(t, es, esapi.BulkRequest{Body: strings.NewReader(b.String())}); st != 200 || m["errors"] != false {
		t.Fatalf("bulk: %d %v", st, m)
	}
	search := func(q string) (int, map[string]any) {
		return do(t, es, esapi.SearchRequest{Index: []string{"t-s"}, Body: strings.NewReader(q)})
	}
	if _, m := search(`{"query":{"match_all":{}}}`); m["hits"].(map[string]any)["total"].(map[string]any)["value"].(float64) != 0 {
		t.Fatalf("unrefreshed documents are visible: %v", m)
	}
	do(t, es, esapi.IndicesRefreshRequest{Index: []string{"t-s"}})
	st, m := search(`{"query":{"bool":{"filter":[{"term":{"state":"SUCCESS"}},{"range":{"at":{"gte":"2024-05-02"}}}]}},"sort":[{"at":{"order":"desc"}}],"size":1}`)
	if st != 200 {
		t.Fatalf("search: %d %v", st, m)
	}
	hits := m["hits"].(map[string]any)
	if hits["total"].(map[string]any)["value"].(float64) != 2 {
		t.Fatalf("total: %v", hits)
	}
	list := hits["hits"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["_id"] != "e" {
		t.Fatalf("first hit: %v", list)
	}
	if _, m := search(`{"query":{"terms":{"state":["QUEUED","FAILED"]}},"sort":["n"]}`); ids(m) != "a,d" {
		t.Fatalf("terms: %v", ids(m))
	}
	if _, m := search(`{"query":{"bool":{"must_not":{"term":{"state":"SUCCESS"}},"must":[{"range":{"n":{"gt":0}}}]}},"sort":[{"n":"desc"}]}`); ids(m) != "d,b" {
		t.Fatalf("must_not/range: %v", ids(m))
	}
	if _, m := search(`{"query":{"match":{"msg":"world"}},"sort":["n"],"from":3}`); ids(m) != "d,e" {
		t.Fatalf("match/from: %v", ids(m))
	}
	if _, m := search(`{"query":{"term":{"payload.deep":"x"}}}`); ids(m) != "" {
		t.Fatalf("a disabled object was searched: %v", ids(m))
	}
	if st, m := search(`{"query":{"match_all":{}},"sort":["msg"]}`); st != 400 || errType(m) != "illegal_argument_exception" {
		t.Fatalf("sort on text: %d %v", st, m)
	}
	if st, m := search(`{"query":{"fuzzy":{"state":"x"}}}`); st != 400 || errType(m) != "parsing_exception" {
		t.Fatalf("unsupported query: %d %v", st, m)
	}
	if st, m := do(t, es, esapi.SearchRequest{Index: []string{"missing"}}); st != 404 || errType(m) != "index_not_found_exception" {
		t.Fatalf("missing index: %d %v", st, m)
	}
	st, m = do(t, es, esapi.CountRequest{Index: []string{"t-s"}, Body: strings.NewReader(`{"query":{"term":{"state":"SUCCESS"}}}`)})
	if st != 200 || m["count"].(float64) != 2 {
		t.Fatalf("count: %d %v", st, m)
	}
}

func ids(m map[string]any) string {
	var out []string
	for _, h := range m["hits"].(map[string]any)["hits"].([]any) {
		out = append(out, h.(map[string]any)["_id"].(string))
	}
	return strings.Join(out, ",")
}

func TestFaults(t *testing.T) {
	s := estest.Start(t, estest.Options{})
	es := client(t, s, "", "")
	s.FailNext(2, 429)
	for i := 0; i < 2; i++ {
		if st, m := do(t, es, esapi.InfoRequest{}); st != 429 || errType(m) != "es_rejected_execution_exception" {
			t.Fatalf("injected 429: %d %v", st, m)
		}
	}
	s.FailNext(1, 503)
	if st, _ := do(t, es, esapi.InfoRequest{}); st != 503 {
		t.Fatalf("injected 503: %d", st)
	}
	if st, _ := do(t, es, esapi.InfoRequest{}); st != 200 {
		t.Fatalf("after the faults: %d", st)
	}

	s.Reject("bad", 400, "mapper_parsing_exception", "poison")
	body := "{\"index\":{\"_index\":\"f\",\"_id\":\"bad\"}}\n{}\n{\"index\":{\"_index\":\"f\",\"_id\":\"good\"}}\n{}\n"
	_, m := do(t, es, esapi.BulkRequest{Body: strings.NewReader(body)})
	if m["errors"] != true || s.Count("f") != 1 {
		t.Fatalf("partial failure: %v, count %d", m, s.Count("f"))
	}
	s.Allow("bad")

	s.Down()
	if _, err := (esapi.InfoRequest{}).Do(context.Background(), es); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("down: err = %v, want connection refused", err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if st, _ := do(t, es, esapi.InfoRequest{}); st != 200 {
		t.Fatalf("after up: %d", st)
	}
	if s.Count("f") != 1 {
		t.Fatal("data lost across down/up")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := estest.Start(t, estest.Options{RefreshInterval: time.Millisecond})
	es := client(t, s, "", "")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := string(rune('a'+g)) + "-" + string(rune('a'+i))
				res, err := esapi.IndexRequest{Index: "c", DocumentID: id, Body: strings.NewReader(`{"g":1}`)}.Do(context.Background(), es)
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				res, err = esapi.SearchRequest{Index: []string{"c"}}.Do(context.Background(), es)
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.Count("c"); n != 160 {
		t.Fatalf("count = %d, want 160", n)
	}
}

func TestOmitRefuseTemplatesAndPathPrefix(t *testing.T) {
	s := estest.Start(t, estest.Options{PathPrefix: "/es"})
	if !strings.HasSuffix(s.URL(), "/es") {
		t.Fatalf("URL %s lacks the prefix", s.URL())
	}
	es := client(t, s, "", "")
	// The client reaches the API under the prefix; a path outside it is a
	// plain 404, not Elasticsearch's.
	if st, m := do(t, es, esapi.InfoRequest{}); st != 200 || m["version"] == nil {
		t.Fatalf("info under the prefix: %d %v", st, m)
	}
	res, err := http.Get(strings.TrimSuffix(s.URL(), "/es") + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("X-Elastic-Product") != "" {
		t.Fatalf("outside the prefix: %d %v", res.StatusCode, res.Header)
	}

	s.RefuseTemplates(400, "illegal_argument_exception", "")
	if st, m := do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(template)}); st != 400 || errType(m) != "illegal_argument_exception" {
		t.Fatalf("refused template: %d %v", st, m)
	}
	s.AcceptTemplates()
	if st, m := do(t, es, esapi.IndicesPutIndexTemplateRequest{Name: "t", Body: strings.NewReader(template)}); st != 200 {
		t.Fatalf("accepted template: %d %v", st, m)
	}

	s.Omit("b")
	body := `{"index":{"_index":"t-x","_id":"a"}}` + "\n" + `{"n":1}` + "\n" + `{"index":{"_index":"t-x","_id":"b"}}` + "\n" + `{"n":2}` + "\n"
	st, m := do(t, es, esapi.BulkRequest{Body: strings.NewReader(body)})
	if items, _ := m["items"].([]any); st != 200 || len(items) != 1 {
		t.Fatalf("bulk with an omitted item: %d %v", st, m)
	}
	if _, ok := s.Doc("t-x", "b"); ok || s.Stats().Omitted != 1 {
		t.Fatalf("the omitted document was written (or not counted): %+v", s.Stats())
	}
	s.Allow("b")
	if st, m := do(t, es, esapi.BulkRequest{Body: strings.NewReader(body)}); st != 200 || len(m["items"].([]any)) != 2 {
		t.Fatalf("bulk after Allow: %d %v", st, m)
	}
}
