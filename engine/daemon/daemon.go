// Package daemon assembles jobengine's daemons from the engine's rooms, as
// etcd's embed.StartEtcd does: one config struct per daemon, filled with
// its defaults by NewExecutorConfig and NewDistributorConfig, and one call
// that starts it (StartExecutor, StartDistributor) and returns a handle to
// stop it. The command line, `jobengine dev`, the tests and embedders all
// start daemons this way.
//
// What belongs to the process stays with the caller: the logger's output,
// signals and systemd notification. The command line turns SIGTERM into
// Shutdown, a second signal into the end of Shutdown's context, and
// SIGUSR1 into DumpState.
//
// Start errors about the configuration are *ConfigError values, which
// wrap ErrConfig; anything else is a run-time failure (ZooKeeper
// unreachable, a plugin directory that cannot be read).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// ErrConfig is wrapped by every error about a daemon's configuration.
var ErrConfig = errors.New("daemon: bad configuration")

// ConfigError is a bad field of a daemon's configuration.
type ConfigError struct {
	// Field names the config field at fault, e.g. "Threads".
	Field string
	// Problem says what is wrong with it and what would do.
	Problem string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%v: %s: %s", ErrConfig, e.Field, e.Problem) }

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// DefaultConnectTimeout is how long a daemon waits for ZooKeeper at start.
const DefaultConnectTimeout = 15 * time.Second

// checkZK validates the ZooKeeper settings common to the daemons.
func checkZK(zc zkconn.Config, connect time.Duration) error {
	if len(zc.Hosts) == 0 {
		return configErr("ZK.Hosts", "no ZooKeeper hosts given (host:port, …)")
	}
	if _, err := zkconn.CleanRoot(zc.Root); err != nil {
		return configErr("ZK.Root", "%v", err)
	}
	if zc.SessionTimeout <= 0 {
		return configErr("ZK.SessionTimeout", "must be positive, got %s", zc.SessionTimeout)
	}
	if connect <= 0 {
		return configErr("ConnectTimeout", "must be positive, got %s", connect)
	}
	return nil
}

// checkES validates the Elasticsearch settings without contacting it.
func checkES(cfg *index.Config) error {
	if cfg == nil {
		return nil
	}
	c, err := index.New(*cfg, nil)
	if err != nil {
		return configErr("Elasticsearch", "%v", err)
	}
	return c.Close(context.Background())
}

// LogWaitingForZK (WARN) is logged when a daemon has waited a second for
// its first ZooKeeper session.
const LogWaitingForZK = "waiting for ZooKeeper"

// dial connects to ZooKeeper within the connect timeout (and ctx), and
// says what it waits for after a second.
func dial(ctx context.Context, zc zkconn.Config, timeout time.Duration, log *zap.Logger) (*zkconn.Conn, error) {
	zc.Logger = log.Named("zk")
	var mu sync.Mutex
	var last error
	zc.OnDial = func(a zkconn.DialAttempt) {
		mu.Lock()
		last = a.Err
		mu.Unlock()
	}
	notice := time.AfterFunc(time.Second, func() {
		mu.Lock()
		defer mu.Unlock()
		zc.Logger.Warn(LogWaitingForZK, zap.Strings("hosts", zc.Hosts), zap.Duration("connect-timeout", timeout), zap.NamedError("last-dial-error", last))
	})
	defer notice.Stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return zkconn.Dial(ctx, zc)
}

// stacks returns every goroutine's stack.
func stacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// cleanups runs the functions added, last first: what a failed start had
// already opened, or what a stop closes.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c cleanups) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}
