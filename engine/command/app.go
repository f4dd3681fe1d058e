// Package command builds the jobengine command line. cmd/jobengine only
// calls Main; tests call Main too, or run the built binary.
//
// Exit codes: 0 success; 1 failure at run time (ZooKeeper unreachable, a
// job that ended FAILED or CANCELED for `job wait`); 2 usage error (unknown
// flag, bad value, malformed input — nothing was written); 3 `job wait`
// timed out.
package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
	writeError(stderr, err, code, wantsJSON(args) || app.Metadata[metaJSON] == true)
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

// NewApp builds the urfave/cli application. Each call builds new commands
// and flags: urfave/cli keeps state in them.
func NewApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:     "jobengine",
		HelpName: "jobengine",
		Usage:    "a distributed job engine coordinated by ZooKeeper",
		Description: "Distributors create jobs, a ZooKeeper locking queue holds them, executors run their actions,\n" +
			"and every state change is indexed into Elasticsearch. Every flag also reads an environment variable;\n" +
			"the global options may also be given after the command, at any depth (the last one given wins).",
		Version:              version.Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		Flags:                append(globalFlags(), cli.HelpFlag), // the library adds it only with its own help command
		EnableBashCompletion: true,
		HideHelpCommand:      true,                         // helpCommand replaces it
		ExitErrHandler:       func(*cli.Context, error) {}, // Main decides exit codes
		OnUsageError:         onUsageError,
		Action:               unknownCommand([]string{"jobengine"}),
		CommandNotFound:      helpNotFound,
		Commands: []*cli.Command{
			versionCommand(),
			jobCommand(),
			queueCommand(),
			benchCommand(),
		},
	}
	for _, newCommand := range extraCommands {
		app.Commands = append(app.Commands, newCommand())
	}
	app.Commands = append(prepareCommands(app.Commands, []string{app.Name}), helpCommand([]string{app.Name}))
	return app
}

// extraCommands build the commands of other files of this package
// (executor, distributor, cluster, actions, dev).
var extraCommands []func() *cli.Command

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

// readArg reads the value of a flag that accepts "@path" for a file's
// contents ("@-" for stdin), reading at most limit bytes: more is a usage
// error, never a read to the end of /dev/zero.
func readArg(flag, v string, limit int) ([]byte, error) {
	p, ok := strings.CutPrefix(v, "@")
	if !ok {
		if len(v) > limit {
			return nil, usagef("%s: %d bytes is over the %d-byte limit", flag, len(v), limit)
		}
		return []byte(v), nil
	}
	var r io.Reader = os.Stdin
	if p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return nil, usagef("%s: reading %s: %v", flag, p, err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return nil, usagef("%s: %s is a directory: give a file", flag, p)
		}
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, usagef("%s: reading %s: %v", flag, p, err)
	}
	if len(b) > limit {
		return nil, usagef("%s: %s holds more than %d bytes, over the limit", flag, p, limit)
	}
	return b, nil
}
