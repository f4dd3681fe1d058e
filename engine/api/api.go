// Package api is the HTTP API of the control plane: JSON over HTTP,
// versioned under /api/v1, over the engine's packages (jobs, history,
// templates, inventories, projects, instances) with users, teams, tokens
// and grants (engine/access) deciding who may do what. It is a library:
// New returns an http.Handler that the controller daemon serves, and that
// tests serve with httptest. It keeps no state of its own, so any number
// of controllers behind a load balancer give the same answers.
//
// Every list is paged, filtered and ordered the same way (limit, cursor,
// order, and the list's filters); every error is {"error": …, "field": …}
// with 400 for bad input (and nothing written), 401 without credentials,
// 404 for what the caller may not see, 403 for what it sees but may not
// do. The routes are described by the OpenAPI document served at
// /api/v1/openapi.json, which a test keeps true to the router.
package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/version"
	"github.com/jobengine/jobengine/engine/workflow"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Prefix is the path of version 1 of the API.
const Prefix = "/api/v1"

// Defaults of Config.
const (
	// DefaultMaxBody bounds a request body.
	DefaultMaxBody = 1 << 20
	// DefaultMaxImport bounds an inventory import.
	DefaultMaxImport = 64 << 20
	// DefaultRequestTimeout bounds a request that is not a stream.
	DefaultRequestTimeout = time.Minute
)

// Config configures the API.
type Config struct {
	// Conn is the ZooKeeper session (required).
	Conn *zkconn.Conn
	// Jobs is the job store on Conn (required).
	Jobs *jobs.Store
	// Index is the Elasticsearch history; nil when there is none.
	Index *index.Client
	// Logger receives the API's log lines (zap.NewNop() when nil).
	Logger *zap.Logger
	// Version is reported by /api/v1/ping (version.Version when empty).
	Version string
	// MaxBody bounds request bodies (DefaultMaxBody when 0); MaxImport
	// bounds an inventory import (DefaultMaxImport when 0).
	MaxBody, MaxImport int64
	// RequestTimeout bounds each request that is not a stream
	// (DefaultRequestTimeout when 0).
	RequestTimeout time.Duration
	// SessionLifetime is how long a login session lasts
	// (access.DefaultSessionLifetime when 0).
	SessionLifetime time.Duration
	// SecureCookies marks the session cookie Secure: set it when the API
	// is served over TLS (directly or behind a proxy).
	SecureCookies bool
	// Identifier names this controller in /api/v1/ping.
	Identifier string
	// CredentialKey seals the secrets of credentials created through the
	// API; without it credentials are shown and deleted, not created.
	CredentialKey *credential.Key
	// LoginLimit limits failed logins (DefaultLoginLimit when zero).
	LoginLimit LoginLimit
	// Streams, when set, ends every event stream when it is done (the
	// server is shutting down: streams would otherwise hold it up).
	Streams context.Context
}

// Server is the API's handler.
type Server struct {
	cfg       Config
	log       *zap.Logger
	access    *access.Store
	history   *history.Reader
	templates *template.Store
	inv       *inventory.Store
	projects  *project.Store
	launcher  *template.Launcher
	logins    *loginLimiter
	schedules *schedules.Store
	notify    *notify.Store
	// credentials seals with Config.CredentialKey (nil: reads only).
	credentials *credential.Store
	mux         *http.ServeMux
	routes      []route
	// workflows and wfLauncher hold and launch workflow templates.
	workflows  *workflow.Store
	wfLauncher *workflow.Launcher
}

// New returns the API's handler. It contacts no server.
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newServer(cfg Config) (*Server, error) {
	if cfg.Conn == nil || cfg.Jobs == nil {
		return nil, fmt.Errorf("api: a ZooKeeper connection and a job store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Version == "" {
		cfg.Version = version.Version
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxImport <= 0 {
		cfg.MaxImport = DefaultMaxImport
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Streams == nil {
		cfg.Streams = context.Background()
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = access.DefaultSessionLifetime
	}
	log := cfg.Logger
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux()}
	s.logins = newLoginLimiter(cfg.LoginLimit)
	s.schedules = schedules.NewStore(cfg.Conn)
	s.notify = notify.NewStore(cfg.Conn)
	s.credentials = credential.NewStore(cfg.Conn, cfg.CredentialKey)
	s.access = access.NewStore(cfg.Conn, log.Named("access"))
	s.history = history.New(history.Config{Store: cfg.Jobs, Index: cfg.Index, Logger: log.Named("history")})
	s.templates = template.NewStore(cfg.Conn, log.Named("template"))
	s.inv = inventory.NewStore(cfg.Conn, inventory.Config{Logger: log.Named("inventory"), Live: s.jobLive})
	s.projects = project.NewStore(cfg.Conn, log.Named("project"))
	s.launcher = &template.Launcher{Jobs: cfg.Jobs, Templates: s.templates, Inventories: s.inv, Logger: log.Named("launch")}
	s.workflows = workflow.NewStore(cfg.Conn, log.Named("workflow"))
	s.wfLauncher = &workflow.Launcher{Jobs: cfg.Jobs, Workflows: s.workflows, Templates: s.templates, Logger: log.Named("workflow")}
	for _, group := range [][]route{
		s.metaRoutes(), s.authRoutes(), s.jobRoutes(), s.templateRoutes(), s.inventoryRoutes(), s.projectRoutes(),
		s.callbackRoutes(), s.instanceRoutes(), s.clusterRoutes(), s.scheduleRoutes(),
		s.notificationRoutes(), s.credentialRoutes(), s.userRoutes(), s.teamRoutes(), s.tokenRoutes(), s.grantRoutes(),
		s.workflowRoutes(), s.inventorySourceRoutes(), s.systemJobRoutes(),
	} {
		s.routes = append(s.routes, group...)
	}
	s.register()
	return s, nil
}

// jobLive reports whether a job still needs what it pinned.
func (s *Server) jobLive(ctx context.Context, uid string) (bool, error) {
	j, _, err := s.cfg.Jobs.Get(ctx, "job/"+uid)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return !j.State.Final(), nil
}

// Access returns the store of users, teams, tokens and grants the API
// authenticates with.
func (s *Server) Access() *access.Store { return s.access }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// route is one endpoint.
type route struct {
	method  string
	pattern string // a net/http pattern path: /api/v1/jobs/{id}
	// public routes need no authentication.
	public bool
	// stream routes may last (no request timeout).
	stream bool
	// maxBody bounds the request body (Config.MaxBody when 0,
	// Config.MaxImport when negative).
	maxBody int64
	handle  func(rq *request) error
}

// register adds the routes to the mux: each path answers its methods, 405
// (with Allow) for others, and anything else is a JSON 404.
func (s *Server) register() {
	methods := map[string][]string{}
	var order []string
	for _, rt := range s.routes {
		rt := rt
		if _, ok := methods[rt.pattern]; !ok {
			order = append(order, rt.pattern)
		}
		methods[rt.pattern] = append(methods[rt.pattern], rt.method)
		s.mux.HandleFunc(rt.method+" "+rt.pattern, func(w http.ResponseWriter, r *http.Request) { s.serve(rt, w, r) })
	}
	for _, p := range order {
		allow := strings.Join(methods[p], ", ")
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed (allowed: %s)", r.Method, p, allow))
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, notFound("no such endpoint: %s (see %s/openapi.json)", r.URL.Path, Prefix))
	})
}

// request is one request being served.
type request struct {
	s   *Server
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	// p is the authenticated caller; nil on public routes.
	p *access.Principal
}

func (s *Server) serve(rt route, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("request panicked", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", v), zap.String("stack", string(debug.Stack())))
			writeJSON(w, http.StatusInternalServerError, errorf(http.StatusInternalServerError, "internal error"))
		}
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if rt.stream {
		defer context.AfterFunc(s.cfg.Streams, cancel)()
	} else {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	limit := rt.maxBody
	switch {
	case limit < 0:
		limit = s.cfg.MaxImport
	case limit == 0:
		limit = s.cfg.MaxBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	rq := &request{s: s, w: w, r: r.WithContext(ctx), ctx: ctx}
	if !rt.public {
		p, err := s.authenticate(rq)
		if err != nil {
			if toError(err).Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="jobengine"`)
			}
			s.writeError(w, r, err)
			return
		}
		rq.p = p
	}
	if err := rt.handle(rq); err != nil {
		s.writeError(w, r, err)
	}
	if ce := s.log.Check(zap.DebugLevel, "request served"); ce != nil {
		user := ""
		if rq.p != nil {
			user = rq.p.User
		}
		ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("user", user), zap.Duration("took", time.Since(start)))
	}
}
