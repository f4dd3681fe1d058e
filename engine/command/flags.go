package command

// The global flags (ZooKeeper, Elasticsearch, logging) are defined once, in
// globalFlags, and accepted wherever users type them: before the command
// name, as urfave/cli reads them, and after it at any depth (`jobengine
// executor --zk-hosts H`, `jobengine job list --zk-hosts H`), which is what
// the reference engine's one-line DAEMON_ARGS needs.
//
// How: the app carries globalFlags with their environment variables, and
// prepareCommands gives every command a copy of them without environment
// variables, so that a copy holds a value only when it was typed after that
// command. Before a command's action runs, withGlobals resolves each global
// flag into the command's own context: the occurrence nearest the end of
// the command line wins, then the environment variable, then the default.
// The rest of the package reads c.String("zk-hosts") as before.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/logging"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// globalCategory heads the copies of the global flags in a command's help.
const globalCategory = "GLOBAL OPTIONS (also accepted before the command)"

// envPrefix starts every environment variable the command line reads.
const envPrefix = "JOBENGINE_"

func envs(names ...string) []string { return names }

// globalFlags is the one definition of the global flags. Each call returns
// new flag values: urfave/cli keeps state in them.
func globalFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "zk-hosts", Value: zkconn.DefaultHosts, EnvVars: envs("JOBENGINE_ZK_HOSTS"), Usage: "ZooKeeper hosts, comma-separated host:port"},
		&cli.StringFlag{Name: "zk-root", Value: "/", EnvVars: envs("JOBENGINE_ZK_ROOT"), Usage: "path prefix of every znode the engine uses"},
		&cli.DurationFlag{Name: "zk-session-timeout", Value: zkconn.DefaultSessionTimeout, EnvVars: envs("JOBENGINE_ZK_SESSION_TIMEOUT"), Usage: "ZooKeeper session timeout"},
		&cli.DurationFlag{Name: "zk-connect-timeout", Value: 15 * time.Second, EnvVars: envs("JOBENGINE_ZK_CONNECT_TIMEOUT"), Usage: "how long a command waits for ZooKeeper"},
		&cli.StringFlag{Name: "zk-credentials-file", EnvVars: envs("JOBENGINE_ZK_CREDENTIALS_FILE"), Usage: "file of the ZooKeeper digest identity and read-only ids; nodes get its ACL (default: systemd credential \"zookeeper\")"},
		&cli.BoolFlag{Name: "zk-tls", EnvVars: envs("JOBENGINE_ZK_TLS"), Usage: "speak TLS to ZooKeeper (its secureClientPort); implied by --zk-tls-ca/-cert/-key"},
		&cli.StringFlag{Name: "zk-tls-ca", EnvVars: envs("JOBENGINE_ZK_TLS_CA"), Usage: "PEM file of the CA that signed ZooKeeper's certificate (default: the system's)"},
		&cli.StringFlag{Name: "zk-tls-cert", EnvVars: envs("JOBENGINE_ZK_TLS_CERT"), Usage: "PEM file of the client certificate for ZooKeeper"},
		&cli.StringFlag{Name: "zk-tls-key", EnvVars: envs("JOBENGINE_ZK_TLS_KEY"), Usage: "PEM file of the client certificate's private key"},
		&cli.StringFlag{Name: "es-hosts", Aliases: []string{"es-hosts-list"}, EnvVars: envs("JOBENGINE_ES_HOSTS"), Usage: "Elasticsearch URLs or hosts, comma-separated; empty: indexing off"},
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
	}, apiFlags()...)
}

// globalEnv maps each global flag's name to its environment variable, for
// the help of the copies, which have none of their own.
var globalEnv = func() map[string]string {
	m := map[string]string{}
	for _, f := range globalFlags() {
		m[f.Names()[0]] = f.(cli.DocGenerationFlag).GetEnvVars()[0]
	}
	return m
}()

// commandGlobalFlags returns the copies of the global flags a command
// carries: no environment variable (the app's flag reads it), so a copy is
// set only when typed after its command.
func commandGlobalFlags() []cli.Flag {
	fs := globalFlags()
	for _, f := range fs {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars, f.Category = nil, globalCategory
		case *cli.IntFlag:
			f.EnvVars, f.Category = nil, globalCategory
		case *cli.DurationFlag:
			f.EnvVars, f.Category = nil, globalCategory
		case *cli.BoolFlag:
			f.EnvVars, f.Category = nil, globalCategory
		default:
			// globalValue passes values on as text; other kinds need thought.
			panic(fmt.Sprintf("global flag --%s: kind %T not supported", f.Names()[0], f))
		}
	}
	return fs
}

func init() {
	// The help of a command shows the environment variable of each global
	// flag, as the app's help does, though the command's copy reads none.
	plain := cli.FlagStringer
	cli.FlagStringer = func(f cli.Flag) string {
		s := plain(f)
		if cf, ok := f.(cli.CategorizableFlag); ok && cf.GetCategory() == globalCategory {
			if env := globalEnv[f.Names()[0]]; env != "" {
				s += " [$" + env + "]"
			}
		}
		return s
	}
}

// prepareCommands makes the command tree below path (["jobengine"] for the
// app's commands) follow the rules of the whole command line: every command
// accepts the global flags, every flag reads an environment variable,
// usage errors exit 2, a command with subcommands refuses an unknown one and
// has a `help` that reaches any depth.
func prepareCommands(cmds []*cli.Command, path []string) []*cli.Command {
	for _, c := range cmds {
		p := append(slices.Clone(path), c.Name)
		defaultEnvVars(p[1:], c.Flags)
		// The help flag too, which the library adds after it has listed
		// the flags of a top-level command for its help.
		c.Flags = append(append(c.Flags, cli.HelpFlag), commandGlobalFlags()...)
		c.OnUsageError = onUsageError
		switch {
		case c.Action != nil:
			c.Action = withGlobals(c.Action)
		case len(c.Subcommands) > 0:
			c.Action = unknownCommand(p)
		}
		prepareCommands(c.Subcommands, p)
		if len(c.Subcommands) > 0 {
			c.Subcommands = append(c.Subcommands, helpCommand(p))
		}
	}
	return cmds
}

// defaultEnvVars gives every flag without an environment variable one named
// after the command and the flag: JOBENGINE_JOB_LIST_LIMIT for `job list
// --limit`.
func defaultEnvVars(path []string, flags []cli.Flag) {
	for _, f := range flags {
		if f == cli.HelpFlag || f == cli.VersionFlag {
			continue // shared by every command
		}
		env := []string{envName(append(slices.Clone(path), f.Names()[0])...)}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		case *cli.IntFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		case *cli.BoolFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		case *cli.DurationFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		case *cli.StringSliceFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		case *cli.IntSliceFlag:
			f.EnvVars = orDefault(f.EnvVars, env)
		}
	}
}

func orDefault(have, def []string) []string {
	if len(have) > 0 {
		return have
	}
	return def
}

// envName is the environment variable of a flag: JOBENGINE_ and the words,
// in capitals, "-" as "_".
func envName(words ...string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(strings.Join(words, "_"), "-", "_"))
}

// withGlobals resolves the global flags into the command's own context
// before its action runs, so that c.String("zk-hosts") is the value given
// nearest the end of the command line, else the environment variable's,
// else the default; and refuses bad logging settings, which client commands
// would otherwise not notice.
func withGlobals(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := resolveGlobals(c); err != nil {
			return err
		}
		if done, err := apiDispatch(c); done {
			return err
		}
		return action(c)
	}
}

func resolveGlobals(c *cli.Context) error {
	lineage := c.Lineage()
	for name := range globalEnv {
		if c.IsSet(name) {
			continue // typed after this command: the last occurrence
		}
		// Parents from the nearest: a command's copy is set only when typed
		// after it; the app's flag (the last with a flag set) also when its
		// environment variable is set.
		for _, p := range lineage[1:] {
			if p.Command == nil || !p.IsSet(name) {
				continue
			}
			if err := c.Set(name, globalValue(p.Value(name))); err != nil {
				return usagef("--%s: %v", name, err)
			}
			break
		}
	}
	if err := (logging.Config{Format: c.String("log-format"), Level: c.String("log-level")}).Check(); err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), logging.ErrConfig.Error()+": "))
	}
	return checkBounds(c)
}

// globalValue is a global flag's value as it would be typed.
func globalValue(v any) string {
	switch v := v.(type) {
	case time.Duration:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// unknownCommand is the action of a command that only holds subcommands
// (and of the app): its help without arguments, else a usage error.
func unknownCommand(path []string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() == 0 {
			if len(path) == 1 {
				return cli.ShowAppHelp(c)
			}
			return cli.ShowSubcommandHelp(c)
		}
		var subs []*cli.Command
		if len(path) == 1 {
			subs = c.App.Commands
		} else {
			subs = c.Command.Subcommands
		}
		return usagef("unknown command %q for %q (its commands: %s)", c.Args().First(), strings.Join(path, " "), commandNames(subs))
	}
}

func commandNames(cmds []*cli.Command) string {
	var names []string
	for _, s := range cmds {
		if !s.Hidden {
			names = append(names, s.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// helpCommand is `help` for the commands below path: `jobengine help job
// list` shows what `jobengine job list --help` shows, at any depth (the
// library's own help command looks at its first argument only). It takes
// no flags and reads no setting, so bad settings do not hide the help.
func helpCommand(path []string) *cli.Command {
	return &cli.Command{
		Name:         "help",
		Aliases:      []string{"h"},
		Usage:        "show the help of a command, e.g. `" + strings.Join(path, " ") + " help COMMAND [SUBCOMMAND]`",
		ArgsUsage:    "[COMMAND [SUBCOMMAND]...]",
		OnUsageError: onUsageError,
		Action: func(c *cli.Context) error {
			var subs []*cli.Command
			if len(path) == 1 {
				subs = c.App.Commands
			} else {
				subs = c.Lineage()[1].Command.Subcommands
			}
			argv := slices.Clone(path)
			for _, name := range c.Args().Slice() {
				var found *cli.Command
				for _, s := range subs {
					if s.HasName(name) {
						found = s
					}
				}
				if found == nil {
					return usagef("unknown command %q for %q (its commands: %s)", name, strings.Join(argv, " "), commandNames(subs))
				}
				argv = append(argv, found.Name)
				subs = found.Subcommands
			}
			// A new app: the help is printed exactly as for --help, and
			// nothing of this run's state is reused.
			return NewApp(c.App.Writer, c.App.ErrWriter).RunContext(c.Context, append(argv, "--help"))
		},
	}
}

// helpNotFound answers `--help ARG`, which the library takes as a request
// for the help of a subcommand ARG: with the help of the command itself, as
// ARG is usually its argument (`distributor --help NAME`).
func helpNotFound(c *cli.Context, _ string) {
	switch {
	case len(c.Lineage()) <= 2: // the app and the library's context above it
		_ = cli.ShowAppHelp(c)
	case len(c.Command.Subcommands) <= 1: // a command with only the library's help
		cli.HelpPrinter(c.App.Writer, cli.CommandHelpTemplate, c.Command)
	default:
		_ = cli.ShowSubcommandHelp(c)
	}
}

// onUsageError is every command's handler of flag parsing errors. The
// flag package has no typed error for an unknown flag, so its message is
// read; TestCommandLineUsageErrors notices if it changes.
func onUsageError(c *cli.Context, err error, _ bool) error {
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		where := "jobengine"
		if c != nil && c.Command != nil && c.Command.HelpName != "" {
			where = c.Command.HelpName
		}
		return unknownFlag(where, name)
	}
	return &UsageError{Err: explainFlagError(c, err)}
}

// unknownFlag is the error for a flag a command does not have, saying why
// when the flag is one of the reference engine's.
func unknownFlag(command, name string) error {
	name = strings.TrimLeft(name, "-")
	dashes := "--"
	if len(name) == 1 {
		dashes = "-"
	}
	why, ok := referenceFlags[name]
	if !ok {
		why = fmt.Sprintf("%s has no such flag (see '%s --help')", command, command)
	}
	return usagef("unknown flag %s%s: %s", dashes, name, why)
}

// Why flags of the reference engine (Nuvla's job-engine, SlipStream's
// before it) are refused here. Its --zk-hosts, --threads, --name,
// --es-hosts and --es-hosts-list are flags of jobengine too.
const (
	whyCIMI = "a flag of the reference engine's CIMI/Nuvla API client; jobengine keeps jobs in ZooKeeper: remove it (and the other API flags) from the command line or DAEMON_ARGS " +
		"(jobengine's own API: --api URL with a token from `jobengine login`)"
	whyLogin = "the reference engine's CIMI/Nuvla API login: remove it from the command line or DAEMON_ARGS " +
		"(jobengine's own API: `jobengine login` then --api URL; Elasticsearch credentials: --es-username and --es-password-file or --es-api-key-file)"
	whyStatsD = "jobengine has no StatsD client; the executor serves Prometheus metrics with --metrics-listen ADDR instead"
)

// referenceFlags are the reference engine's flags that mean nothing here.
var referenceFlags = map[string]string{
	"api-url": whyCIMI, "api-insecure": whyCIMI, "api-authn-header": whyCIMI,
	"api-user": whyLogin, "api-pass": whyLogin, "api-key": whyLogin, "api-secret": whyLogin,
	"ss-url": whyCIMI, "ss-insecure": whyCIMI, "endpoint": whyCIMI,
	"ss-user": whyLogin, "ss-pass": whyLogin, "ss-username": whyLogin, "ss-password": whyLogin,
	"user": whyLogin, "password": whyLogin,
	"statsd": whyStatsD,
}
