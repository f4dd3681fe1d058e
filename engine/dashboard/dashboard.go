// Package dashboard is the web dashboard: a page and its scripts and
// styles, embedded in the binary, that talk to the HTTP API (engine/api)
// as any client does. It holds no state and decides nothing: what a user
// sees and may do is what the API answers them. The controller serves it
// next to the API with Handler.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var files embed.FS

// AssetsPrefix is the path under which the dashboard's files are served.
const AssetsPrefix = "/ui/"

// contentSecurity allows the page only its own files and the API: nothing
// is loaded from elsewhere, no inline script runs, no other site frames it.
const contentSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the dashboard at / and its files under AssetsPrefix, and
// hands every other path (the API, /healthz, /readyz) to api.
func Handler(api http.Handler) http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	assets := http.StripPrefix(AssetsPrefix, http.FileServer(http.FS(sub)))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			secure(w)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(index)
		case strings.HasPrefix(r.URL.Path, AssetsPrefix) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			secure(w)
			assets.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// secure sets the headers every dashboard answer carries. The files are
// revalidated on each load, so a new binary's dashboard is seen at once.
func secure(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurity)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}
