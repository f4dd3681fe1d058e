package api

import (
	_ "embed"
	"errors"
	"net/http"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/maintenance"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI description of the API.
func OpenAPI() []byte { return openAPI }

func (s *Server) metaRoutes() []route {
	ready := Readyz(SessionCheck(s.cfg.Conn), LeaderCheck(s.cfg.Conn, maintenance.ElectionName))
	return []route{
		{method: "GET", pattern: "/healthz", public: true, handle: func(rq *request) error { Healthz(rq.w, rq.r); return nil }},
		{method: "GET", pattern: "/readyz", public: true, handle: func(rq *request) error { ready.ServeHTTP(rq.w, rq.r); return nil }},
		{method: "GET", pattern: Prefix + "/ping", public: true, handle: s.ping},
		{method: "GET", pattern: Prefix + "/openapi.json", public: true, handle: func(rq *request) error {
			rq.w.Header().Set("Content-Type", "application/json")
			_, err := rq.w.Write(openAPI)
			return err
		}},
	}
}

// Ping is the answer of GET /api/v1/ping: what the cluster is, without
// authentication (as AWX's ping).
type Ping struct {
	Version string `json:"version"`
	// Controller names the controller that answered.
	Controller string `json:"controller,omitempty"`
	// ActiveController names the controller elected to run the leader-run
	// services; empty when none is.
	ActiveController string `json:"active-controller"`
	// ZooKeeper says whether this controller has a session.
	ZooKeeper      string          `json:"zookeeper"`
	Instances      []Instance      `json:"instances"`
	InstanceGroups []InstanceGroup `json:"instance-groups"`
}

func (s *Server) ping(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	out := Ping{Version: s.cfg.Version, Controller: s.cfg.Identifier, ZooKeeper: "connected"}
	if !s.cfg.Conn.Connected() {
		out.ZooKeeper = "disconnected"
	}
	leader, err := election.New(s.cfg.Conn, maintenance.ElectionName, "", nil).Leader(rq.ctx)
	if err != nil && !errors.Is(err, election.ErrNoLeader) {
		return err
	}
	out.ActiveController = leader
	if out.Instances, err = s.instances(rq.ctx); err != nil {
		return err
	}
	out.InstanceGroups = groups(out.Instances)
	return rq.reply(http.StatusOK, out)
}
