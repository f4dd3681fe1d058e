package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/dashboard"
)

// TestHandlerRoutes: the page and its files are served with the content
// security policy, every file the page names exists, and everything else
// goes to the API's handler.
func TestHandlerRoutes(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "api")
		w.WriteHeader(http.StatusTeapot)
	})
	srv := httptest.NewServer(dashboard.Handler(api))
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	res, page := get("GET", "/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("/: %d %v", res.StatusCode, res.Header)
	}
	files := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(files) < 5 {
		t.Fatalf("the page names %d files", len(files))
	}
	for _, f := range files {
		res, body := get("GET", f[1])
		if res.StatusCode != 200 || len(body) == 0 || res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d, %d bytes", f[1], res.StatusCode, len(body))
		}
		// The SVG namespace is a name, not a place anything is loaded from.
		if body := strings.ReplaceAll(body, "'http://www.w3.org/2000/svg'", ""); strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s names another site", f[1])
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page names another site")
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/ping"}, {"GET", "/healthz"}, {"POST", "/"}, {"DELETE", "/ui/app.js"}, {"GET", "/elsewhere"},
	} {
		if res, _ := get(c.method, c.path); res.StatusCode != http.StatusTeapot || res.Header.Get("X-Served-By") != "api" {
			t.Errorf("%s %s was not handed to the API: %d", c.method, c.path, res.StatusCode)
		}
	}
	if res, _ := get("GET", "/ui/nothing.js"); res.StatusCode != 404 {
		t.Errorf("a missing file: %d", res.StatusCode)
	}
}
