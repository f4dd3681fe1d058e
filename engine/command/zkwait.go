package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// How a client command waits for ZooKeeper.
const (
	// waitingNotice is how long a command waits for a session before it
	// says on stderr what it is waiting for.
	waitingNotice = time.Second
	// refusedRounds is how many times in a row every host must refuse the
	// connection before a command gives up before its connect timeout:
	// nothing listens there, and waiting longer rarely helps. (go-zookeeper
	// tries every host once per second.)
	refusedRounds = 3
	// WaitingMessage starts the line a command prints on stderr while it
	// waits for ZooKeeper.
	WaitingMessage = "waiting for ZooKeeper at"
)

// errZKRefused ends a dial when every host refused the connection
// refusedRounds times in a row.
var errZKRefused = errors.New("every ZooKeeper host refused the connection")

// dial connects to ZooKeeper within --zk-connect-timeout. It says on stderr
// what it waits for when that takes longer than a second, and gives up
// early when every host refuses the connection.
func dial(c *cli.Context, log *zap.Logger) (*zkconn.Conn, error) {
	cfg, err := zkConfig(c, log)
	if err != nil {
		return nil, err
	}
	if !c.IsSet("log-level") && cfg.Logger != nil {
		// The command says itself what goes wrong with ZooKeeper (a
		// notice, then an error): the connection's own warnings would only
		// repeat it, in log format.
		cfg.Logger = cfg.Logger.WithOptions(zap.IncreaseLevel(zapcore.ErrorLevel))
	}
	timeout := c.Duration("zk-connect-timeout")
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	ctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	w := &dialWatch{hosts: cfg.Hosts, last: map[string]zkconn.DialAttempt{}, refused: map[string]int{}, giveUp: giveUp}
	cfg.OnDial = w.attempt
	// A --json caller reads stderr as one JSON error: no notice there.
	if !c.Bool("json") {
		notice := time.AfterFunc(waitingNotice, func() { w.notice(c.App.ErrWriter) })
		defer notice.Stop()
	}
	conn, err := zkconn.Dial(ctx, cfg)
	if err == nil {
		return conn, nil
	}
	if errors.Is(err, zkconn.ErrAuthRequired) || errors.Is(err, zkconn.ErrConfig) {
		return nil, &UsageError{Err: err}
	}
	hosts := strings.Join(cfg.Hosts, ",")
	if errors.Is(context.Cause(ctx), errZKRefused) {
		return nil, fmt.Errorf("%w: %v at %s (%d times each): nothing listens there. Is ZooKeeper running? Set --zk-hosts or JOBENGINE_ZK_HOSTS",
			zkconn.ErrUnavailable, errZKRefused, hosts, refusedRounds)
	}
	why := ""
	if s := w.summary(); s != "" {
		why = " (last: " + s + ")"
	}
	return nil, fmt.Errorf("%w%s (is ZooKeeper running at %s? set --zk-hosts or JOBENGINE_ZK_HOSTS, or raise --zk-connect-timeout)", err, why, hosts)
}

// dialWatch follows the connection attempts of one dial.
type dialWatch struct {
	hosts  []string
	giveUp context.CancelCauseFunc

	mu      sync.Mutex
	last    map[string]zkconn.DialAttempt // by server
	refused map[string]int                // refusals in a row, by server
	noticed bool
}

// attempt records one connection attempt and gives the dial up once
// every host has refused refusedRounds times in a row.
func (w *dialWatch) attempt(a zkconn.DialAttempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[a.Server] = a
	if !a.Refused() {
		w.refused[a.Server] = 0
		return
	}
	w.refused[a.Server]++
	for _, h := range w.hosts {
		if w.refused[h] < refusedRounds {
			return
		}
	}
	w.giveUp(errZKRefused)
}

// notice says once what the command is waiting for.
func (w *dialWatch) notice(out io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.noticed {
		return
	}
	w.noticed = true
	msg := fmt.Sprintf("jobengine: %s %s", WaitingMessage, strings.Join(w.hosts, ","))
	if s := w.summaryLocked(); s != "" {
		msg += " (" + s + ")"
	}
	fmt.Fprintln(out, msg+" …")
}

func (w *dialWatch) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.summaryLocked()
}

// summaryLocked says how the last attempt to each host went, e.g.
// "127.0.0.1:2181: connection refused".
func (w *dialWatch) summaryLocked() string {
	var parts []string
	for server, a := range w.last {
		switch {
		case a.Refused():
			parts = append(parts, server+": connection refused")
		case a.Err != nil:
			parts = append(parts, fmt.Sprintf("%s: %v", server, a.Err))
		default:
			parts = append(parts, server+": connected, no session yet")
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
