package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Health endpoints, for load balancers and watchdogs: /healthz answers 200
// while the process serves HTTP at all; /readyz answers 200 only when every
// readiness check passes, else 503 with the first failure. Controllers
// serve them with the API; executors on their metrics listener.

// Check is one readiness condition: nil when it holds.
type Check func(ctx context.Context) error

// ReadyTimeout bounds the readiness checks of one request.
const ReadyTimeout = 5 * time.Second

// health is the body of /healthz and /readyz.
type health struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// HealthHandlers adds /healthz and /readyz to mux.
func HealthHandlers(mux *http.ServeMux, checks ...Check) {
	mux.HandleFunc("GET /healthz", Healthz)
	mux.Handle("GET /readyz", Readyz(checks...))
}

// Healthz answers that the process is alive.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

// Readyz returns the handler of /readyz over checks.
func Readyz(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		for _, c := range checks {
			if err := c(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, health{Status: "not ready", Error: err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, health{Status: "ready"})
	})
}

// SessionCheck holds while conn has a ZooKeeper session.
func SessionCheck(conn *zkconn.Conn) Check {
	return func(context.Context) error {
		if !conn.Connected() {
			return errors.New("no ZooKeeper session")
		}
		return nil
	}
}

// LeaderCheck holds while the election called name has a leader.
func LeaderCheck(conn *zkconn.Conn, name string) Check {
	return func(ctx context.Context) error {
		if _, err := election.New(conn, name, "", nil).Leader(ctx); err != nil {
			return fmt.Errorf("no leader known: %w", err)
		}
		return nil
	}
}

// NodeCheck holds while the znode p exists and belongs to conn's session
// (an executor's membership node).
func NodeCheck(conn *zkconn.Conn, p string) Check {
	return func(ctx context.Context) error {
		var st *zk.Stat
		var ok bool
		err := zkconn.Do(ctx, func() error {
			var err error
			ok, st, err = conn.Exists(p)
			return err
		})
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("%s does not exist", p)
		case st.EphemeralOwner != conn.SessionID():
			return fmt.Errorf("%s belongs to another session", p)
		}
		return nil
	}
}
