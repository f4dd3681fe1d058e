package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/history"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// maxBacklogFlag is the cap on queued and running jobs for commands that
// create jobs. It belongs with the global flags once the daemons create
// jobs too; c.Int finds it wherever it is defined.
func maxBacklogFlag() cli.Flag {
	return &cli.IntFlag{Name: "max-backlog", Value: jobs.DefaultMaxBacklog, EnvVars: envs("JOBENGINE_MAX_BACKLOG"),
		Usage: "refuse to create jobs while this many are queued or running"}
}

// errZKLost ends a command's context when ZooKeeper has not answered for
// longer than --zk-connect-timeout.
var errZKLost = errors.New("lost the connection to ZooKeeper")

// client is what a job or queue command works with: the job store on one
// ZooKeeper session, the Elasticsearch history when configured, and the
// reader that merges the two.
type client struct {
	conn  *zkconn.Conn
	store *jobs.Store
	log   *zap.Logger
	// ctx ends with the command, or when ZooKeeper has been unreachable for
	// longer than --zk-connect-timeout, so no command hangs on a lost server.
	ctx    context.Context
	cancel context.CancelCauseFunc
	hosts  string
	grace  time.Duration // --zk-connect-timeout
	es     *index.Client // nil when Elasticsearch is not configured
	jobs   *history.Reader
}

// openClient dials ZooKeeper (and Elasticsearch when --es-hosts is set) and
// opens the job store. Callers validate their own input first, so bad input
// never needs a server.
func openClient(c *cli.Context) (*client, error) {
	log := quietLogger(c)
	esCfg, err := esConfig(c)
	if err != nil {
		return nil, err
	}
	if n := c.Int("max-backlog"); n < 0 {
		return nil, usagef("--max-backlog %d is negative: type how many jobs may be queued or running at most (default %d)", n, jobs.DefaultMaxBacklog)
	}
	conn, err := dial(c, log)
	if err != nil {
		return nil, err
	}
	cl := &client{conn: conn, log: log, hosts: c.String("zk-hosts"), grace: c.Duration("zk-connect-timeout")}
	cl.ctx, cl.cancel = sessionContext(c.Context, conn, c.Duration("zk-connect-timeout"))
	// Jobs created here notify what is attached to their action.
	cfg := jobs.StoreConfig{MaxBacklog: c.Int("max-backlog"), Logger: log.Named("jobs"), Notifications: notify.NewResolver(notify.NewStore(conn))}
	if esCfg != nil {
		es, err := index.New(*esCfg, log.Named("index"))
		if err != nil {
			cl.Close()
			return nil, &UsageError{Err: err}
		}
		cl.es = es
		// Every document version the command writes is recorded for the
		// indexer in the transaction that writes it.
		cfg.Outbox = index.Outbox(conn)
	}
	cl.store = jobs.NewStore(conn, cfg)
	cl.jobs = history.New(history.Config{Store: cl.store, Index: cl.es, Timeout: c.Duration("zk-connect-timeout"), Logger: log.Named("history")})
	return cl, nil
}

// Close ends the ZooKeeper session.
func (cl *client) Close() {
	cl.cancel(context.Canceled)
	cl.conn.Close()
	if cl.es != nil {
		_ = cl.es.Close(context.Background())
	}
	_ = cl.log.Sync()
}

// ensure creates the store's directories before a command writes: the
// queue's taken and owners directories are not created with the first job,
// and removing an entry needs them.
func (cl *client) ensure() error {
	if err := cl.store.Ensure(cl.ctx); err != nil {
		return cl.fail(err, "")
	}
	if cl.es != nil {
		// The outbox entries of the writes go there.
		return cl.fail(index.EnsurePaths(cl.ctx, cl.conn), "")
	}
	return nil
}

// fail turns an error of the store into the error a user sees: a missing
// job, bad input, or a lost ZooKeeper with what to do about it.
func (cl *client) fail(err error, id string) error {
	var ue *UsageError
	var ee *ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue), errors.As(err, &ee):
		return err
	case errors.Is(err, jobs.ErrNotFound):
		return fmt.Errorf("%w: %s", jobs.ErrNotFound, id)
	case errors.Is(err, jobs.ErrInvalid):
		return &UsageError{Err: err}
	case errors.Is(err, jobs.ErrBadDocument) && id != "":
		return fmt.Errorf("%w (an executor quarantines it when it takes its queue entry; `jobengine job cancel %s` does at once)", err, id)
	case errors.Is(context.Cause(cl.ctx), errZKLost):
		return fmt.Errorf("%w: no answer from %s for longer than the connect timeout (%s). Is ZooKeeper running and answering? Set --zk-hosts or JOBENGINE_ZK_HOSTS, or raise --zk-connect-timeout",
			errZKLost, cl.hosts, cl.grace)
	case errors.Is(err, zkconn.ErrUnavailable) || zkconn.Transient(err):
		return fmt.Errorf("%w (is ZooKeeper running at %s? set --zk-hosts or JOBENGINE_ZK_HOSTS)", err, cl.hosts)
	}
	return err
}

// sessionContext returns a context that ends with parent, or with cause
// errZKLost once ZooKeeper has not answered for longer than grace. A
// probe (one cheap read at a time) measures that, rather than the
// connection's state: a server that stops answering (frozen, or cut off
// by a firewall that drops packets) leaves the connection up for two
// thirds of the session timeout, then go-zookeeper reconnects to it and
// waits for its handshake much longer still. A short outage, such as a
// server restart, is ridden out.
func sessionContext(parent context.Context, conn *zkconn.Conn, grace time.Duration) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	every := min(max(grace/5, 20*time.Millisecond), time.Second)
	var lastOK atomic.Int64 // unix nanoseconds of the last answered probe's start
	lastOK.Store(time.Now().UnixNano())
	go func() { // the probe
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			start := time.Now()
			err := zkconn.Do(ctx, func() error { _, _, err := conn.Exists("/"); return err })
			if err == nil {
				lastOK.Store(start.UnixNano())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	go func() { // the watch over the probe
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if time.Since(time.Unix(0, lastOK.Load())) > grace {
					cancel(errZKLost)
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// esConfig reads the Elasticsearch flags and checks them (without
// contacting Elasticsearch); nil when --es-hosts is empty.
func esConfig(c *cli.Context) (*index.Config, error) {
	var hosts []string
	for _, h := range strings.Split(c.String("es-hosts"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	cfg := &index.Config{Hosts: hosts, Username: c.String("es-username"), Prefix: c.String("es-index-prefix")}
	if err := esSecrets(c, cfg); err != nil {
		return nil, err
	}
	if _, err := index.New(*cfg, nil); err != nil {
		return nil, usagef("--es-hosts/--es-index-prefix: %v", err)
	}
	return cfg, nil
}
