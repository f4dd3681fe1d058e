// Package command builds the jobengine command line. cmd/jobengine only
// calls Main; tests call Main too, or run the built binary.
//
// Exit codes: 0 success; 1 failure at run time (ZooKeeper unreachable, a
// job that ended FAILED or CANCELED for `job wait`); 2 usage error (unknown
// flag, bad value, malformed input — nothing was written); 3 `job wait`
// timed out.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/logging"
	"github.com/jobengine/jobengine/engine/version"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	ExitTimeout = 3
)

// UsageError marks an error in how the command was called.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// usagef returns a UsageError.
func usagef(format string, args ...interface{}) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitError carries an exit code with its message (may be empty).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	app := NewApp(stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ue *UsageError
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
	case errors.As(err, &ue):
		code = ExitUsage
	case isFlagError(err):
		code = ExitUsage
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "jobengine: %s\n", msg)
	}
	if code == ExitUsage {
		fmt.Fprintln(stderr, "run 'jobengine help' or 'jobengine <command> --help' for usage")
	}
	return code
}

func isFlagError(err error) bool {
	s := err.Error()
	for _, p := range []string{"flag provided but not defined", "invalid value", "flag needs an argument", "Required flag", "Required flags"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// NewApp builds the urfave/cli application.
func NewApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "jobengine",
		Usage: "a distributed job engine coordinated by ZooKeeper",
		Description: "Distributors create jobs, a ZooKeeper locking queue holds them, executors run their actions,\n" +
			"and every state change is indexed into Elasticsearch. Every flag also reads an environment variable.",
		Version:              version.Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                globalFlags(),
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {}, // Main decides exit codes
		OnUsageError:         onUsageError,
		Commands: []*cli.Command{
			versionCommand(),
			jobCommand(),
			queueCommand(),
			benchCommand(),
		},
	}
	app.Commands = append(app.Commands, extraCommands...)
	for _, c := range app.Commands {
		setUsageHandler(c)
	}
	return app
}

// extraCommands are added by other files of this package (executor,
// distributor, cluster, actions, dev).
var extraCommands []*cli.Command

func setUsageHandler(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, s := range c.Subcommands {
		setUsageHandler(s)
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return &UsageError{Err: err}
}

func envs(names ...string) []string { return names }

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "zk-hosts", Value: zkconn.DefaultHosts, EnvVars: envs("JOBENGINE_ZK_HOSTS"), Usage: "ZooKeeper hosts, comma-separated host:port"},
		&cli.StringFlag{Name: "zk-root", Value: "/", EnvVars: envs("JOBENGINE_ZK_ROOT"), Usage: "path prefix of every znode the engine uses"},
		&cli.DurationFlag{Name: "zk-session-timeout", Value: zkconn.DefaultSessionTimeout, EnvVars: envs("JOBENGINE_ZK_SESSION_TIMEOUT"), Usage: "ZooKeeper session timeout"},
		&cli.DurationFlag{Name: "zk-connect-timeout", Value: 15 * time.Second, EnvVars: envs("JOBENGINE_ZK_CONNECT_TIMEOUT"), Usage: "how long a command waits for ZooKeeper"},
		&cli.StringFlag{Name: "zk-credentials-file", EnvVars: envs("JOBENGINE_ZK_CREDENTIALS_FILE"), Usage: "file of the ZooKeeper digest identity and read-only ids; nodes get its ACL (default: systemd credential \"zookeeper\")"},
		&cli.BoolFlag{Name: "zk-tls", EnvVars: envs("JOBENGINE_ZK_TLS"), Usage: "speak TLS to ZooKeeper (its secureClientPort); implied by --zk-tls-ca/-cert/-key"},
		&cli.StringFlag{Name: "zk-tls-ca", EnvVars: envs("JOBENGINE_ZK_TLS_CA"), Usage: "PEM file of the CA that signed ZooKeeper's certificate (default: the system's)"},
		&cli.StringFlag{Name: "zk-tls-cert", EnvVars: envs("JOBENGINE_ZK_TLS_CERT"), Usage: "PEM file of the client certificate for ZooKeeper"},
		&cli.StringFlag{Name: "zk-tls-key", EnvVars: envs("JOBENGINE_ZK_TLS_KEY"), Usage: "PEM file of the client certificate's private key"},
		&cli.StringFlag{Name: "es-hosts", Aliases: []string{"es-hosts-list"}, EnvVars: envs("JOBENGINE_ES_HOSTS"), Usage: "Elasticsearch URLs, comma-separated; empty: indexing off"},
		&cli.StringFlag{Name: "es-index-prefix", Value: "jobengine-", EnvVars: envs("JOBENGINE_ES_INDEX_PREFIX"), Usage: "prefix of the Elasticsearch indices"},
		&cli.StringFlag{Name: "es-username", EnvVars: envs("JOBENGINE_ES_USERNAME"), Usage: "Elasticsearch user"},
		&cli.StringFlag{Name: "es-password", EnvVars: envs("JOBENGINE_ES_PASSWORD"), Usage: "deprecated, visible to every user in the process list: use --es-password-file"},
		&cli.StringFlag{Name: "es-password-file", EnvVars: envs("JOBENGINE_ES_PASSWORD_FILE"), Usage: "file holding the Elasticsearch password (default: systemd credential \"es-password\")"},
		&cli.StringFlag{Name: "es-api-key-file", EnvVars: envs("JOBENGINE_ES_API_KEY_FILE"), Usage: "file holding an Elasticsearch API key, the encoded form (default: systemd credential \"es-api-key\")"},
		&cli.StringFlag{Name: "es-tls-ca", EnvVars: envs("JOBENGINE_ES_TLS_CA"), Usage: "PEM file of the CA that signed Elasticsearch's certificate (default: the system's)"},
		&cli.StringFlag{Name: "es-tls-cert", EnvVars: envs("JOBENGINE_ES_TLS_CERT"), Usage: "PEM file of the client certificate for Elasticsearch"},
		&cli.StringFlag{Name: "es-tls-key", EnvVars: envs("JOBENGINE_ES_TLS_KEY"), Usage: "PEM file of the client certificate's private key"},
		&cli.StringFlag{Name: "log-format", Value: "console", EnvVars: envs("JOBENGINE_LOG_FORMAT"), Usage: "console or json"},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: envs("JOBENGINE_LOG_LEVEL"), Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-file", EnvVars: envs("JOBENGINE_LOG_FILE"), Usage: "log to this file, rotated (default: stderr)"},
		&cli.IntFlag{Name: "log-max-size", Value: 10, EnvVars: envs("JOBENGINE_LOG_MAX_SIZE"), Usage: "rotate the log file at this size, in MB"},
		&cli.IntFlag{Name: "log-max-backups", Value: 5, EnvVars: envs("JOBENGINE_LOG_MAX_BACKUPS"), Usage: "rotated log files to keep"},
	}
}

// zkConfig reads the global ZooKeeper flags.
func zkConfig(c *cli.Context, log *zap.Logger) (zkconn.Config, error) {
	hosts, err := zkconn.ParseHosts(c.String("zk-hosts"))
	if err != nil {
		return zkconn.Config{}, &UsageError{Err: err}
	}
	root, err := zkconn.CleanRoot(c.String("zk-root"))
	if err != nil {
		return zkconn.Config{}, &UsageError{Err: err}
	}
	if c.Duration("zk-session-timeout") <= 0 {
		return zkconn.Config{}, usagef("--zk-session-timeout must be positive")
	}
	auth, tlsCfg, err := zkSecurity(c)
	if err != nil {
		return zkconn.Config{}, err
	}
	return zkconn.Config{Hosts: hosts, Root: root, SessionTimeout: c.Duration("zk-session-timeout"), Logger: log, Auth: auth, TLS: tlsCfg}, nil
}

// dial connects to ZooKeeper within --zk-connect-timeout.
func dial(c *cli.Context, log *zap.Logger) (*zkconn.Conn, error) {
	cfg, err := zkConfig(c, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("zk-connect-timeout"))
	defer cancel()
	conn, err := zkconn.Dial(ctx, cfg)
	if errors.Is(err, zkconn.ErrAuthRequired) || errors.Is(err, zkconn.ErrConfig) {
		return nil, &UsageError{Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("%w (is ZooKeeper running at %s? set --zk-hosts or JOBENGINE_ZK_HOSTS)", err, strings.Join(cfg.Hosts, ","))
	}
	return conn, nil
}

// logger builds the logger from the global flags.
func logger(c *cli.Context) (*zap.Logger, error) {
	l, err := logging.New(logging.Config{
		Format:     c.String("log-format"),
		Level:      c.String("log-level"),
		File:       c.String("log-file"),
		MaxSizeMB:  c.Int("log-max-size"),
		MaxBackups: c.Int("log-max-backups"),
	})
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return l, nil
}

// quietLogger is the logger of client commands: warnings and errors only,
// unless --log-level says otherwise.
func quietLogger(c *cli.Context) *zap.Logger {
	if !c.IsSet("log-level") {
		_ = c.Set("log-level", "warn")
	}
	l, err := logger(c)
	if err != nil {
		return zap.NewNop()
	}
	return l
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "jobengine %s\n", version.Version)
			return nil
		},
	}
}

// stdinOrFile reads "@path" files ("@-" is stdin) for flags that accept them.
func readArg(v string) ([]byte, error) {
	if p, ok := strings.CutPrefix(v, "@"); ok {
		if p == "-" {
			return io.ReadAll(os.Stdin)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, usagef("reading %s: %v", p, err)
		}
		return b, nil
	}
	return []byte(v), nil
}
