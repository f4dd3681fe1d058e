package api

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes walks the router's routes and the OpenAPI
// document: every route is documented with its method, its path
// parameters and whether it needs authentication; every documented
// operation is a route; every schema referenced exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Summary    string            `json:"summary"`
			Security   *[]map[string]any `json:"security"`
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	if _, err := newServer(Config{Conn: nil, Jobs: nil}); err == nil {
		t.Fatal("a server without a connection was made")
	}
	s := &Server{}
	routes := slices.Concat(s.metaRoutes(), s.authRoutes(), s.jobRoutes(), s.templateRoutes(), s.inventoryRoutes(), s.projectRoutes(),
		s.callbackRoutes(), s.instanceRoutes(), s.clusterRoutes(), s.scheduleRoutes(), s.notificationRoutes(), s.credentialRoutes(), s.userRoutes(), s.teamRoutes(), s.tokenRoutes(), s.grantRoutes(),
		s.workflowRoutes(), s.inventorySourceRoutes(), s.systemJobRoutes())
	if len(routes) < 60 {
		t.Fatalf("only %d routes: is a group missing from the test?", len(routes))
	}
	pathParam := regexp.MustCompile(`\{([a-z]+)\}`)
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.method + " " + rt.pattern
		seen[key] = true
		op, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s is not documented", key)
			continue
		}
		if op.Summary == "" || len(op.Responses) == 0 {
			t.Errorf("%s: no summary or no responses", key)
		}
		public := op.Security != nil && len(*op.Security) == 0
		if public != rt.public {
			t.Errorf("%s: documented public=%v, route public=%v", key, public, rt.public)
		}
		var want, got []string
		for _, m := range pathParam.FindAllStringSubmatch(rt.pattern, -1) {
			want = append(want, m[1])
		}
		for _, p := range op.Parameters {
			if p.In == "path" {
				got = append(got, p.Name)
			}
		}
		if !slices.Equal(want, got) {
			t.Errorf("%s: path parameters documented %v, route has %v", key, got, want)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !seen[strings.ToUpper(m)+" "+p] {
				t.Errorf("%s %s is documented but is no route", strings.ToUpper(m), p)
			}
		}
	}
	refs := regexp.MustCompile(`"#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(OpenAPI()), -1)
	for _, r := range refs {
		if _, ok := doc.Components.Schemas[r[1]]; !ok {
			t.Errorf("schema %s is referenced but not defined", r[1])
		}
	}
}
