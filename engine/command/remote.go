package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/pluginhost"
	"github.com/jobengine/jobengine/engine/project"
	"github.com/jobengine/jobengine/engine/remote"
	"github.com/jobengine/jobengine/engine/version"
)

func init() {
	extraCommands = append(extraCommands, transmitCommand, workerCommand, processCommand)
}

func transmitCommand() *cli.Command {
	return &cli.Command{
		Name:      "transmit",
		Usage:     "write a job, or a private data directory, as a stream for `jobengine worker` (or ansible-runner worker)",
		ArgsUsage: "JOB-OR-DIR",
		Description: "JOB is a job id: its document, action and payload, and for an ansible_playbook job its project's\n" +
			"files, inventory and credentials (opened with --credential-key-file) become the stream; the job is not\n" +
			"changed (`jobengine process --job` claims it). DIR is a private data directory in ansible-runner's\n" +
			"layout (project/, inventory/, …), sent with the run's arguments given by the flags.\n" +
			"The stream carries the credentials' secrets: send it only over a private channel (ssh).",
		Flags: withEnv("transmit",
			&cli.StringFlag{Name: "playbook", Aliases: []string{"p"}, Usage: "DIR: the playbook, relative to DIR/project"},
			&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "DIR: the inventory, relative to DIR"},
			&cli.StringFlag{Name: "ident", Usage: "DIR: the run's identifier (names its artifacts directory)"},
			&cli.StringFlag{Name: "limit", Usage: "DIR: limit the hosts (a host pattern)"},
			&cli.IntFlag{Name: "forks", Usage: "DIR: hosts run at once"},
			&cli.IntFlag{Name: "verbosity", Usage: "DIR: 0–5"},
			&cli.StringFlag{Name: "extra-vars", Usage: "DIR: extra variables, a JSON object"},
			&cli.StringFlag{Name: "cmdline", Usage: "DIR: more ansible-playbook options (a jobengine worker takes --diff and --check)"},
			credentialKeyFlag(),
		),
		Action: runTransmit,
	}
}

func runTransmit(c *cli.Context) error {
	args, err := parseArgs(c, "JOB-OR-DIR")
	if err != nil {
		return err
	}
	arg := args[0]
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		k := remote.Kwargs{Ident: c.String("ident"), Playbook: c.String("playbook"), Inventory: c.String("inventory"),
			Limit: c.String("limit"), Forks: c.Int("forks"), Verbosity: c.Int("verbosity"), Cmdline: c.String("cmdline")}
		if k.Playbook == "" {
			return usagef("transmit %s: give --playbook, the playbook's path relative to %s/project", arg, arg)
		}
		if ev := c.String("extra-vars"); ev != "" {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(ev), &m) != nil || m == nil {
				return usagef("--extra-vars must be a JSON object, e.g. '{\"version\": \"1.2\"}'")
			}
			k.ExtraVars = json.RawMessage(ev)
		}
		if err := remote.Transmit(c.App.Writer, k, arg); err != nil {
			return fmt.Errorf("transmitting %s: %w", arg, err)
		}
		return nil
	}
	id, _, err := parseJobID(arg)
	if err != nil {
		return usagef("%q is neither a directory nor a job id (job/<uuid>)", arg)
	}
	for _, f := range []string{"playbook", "inventory", "ident", "limit", "forks", "verbosity", "extra-vars", "cmdline"} {
		if c.IsSet(f) {
			return usagef("--%s is for a directory; a job's arguments come from its payload", f)
		}
	}
	key, err := credentialKey(c, false)
	if err != nil {
		return err
	}
	cl, err := openClient(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	j, _, err := cl.store.Get(cl.ctx, id)
	if err != nil {
		return cl.fail(err, id)
	}
	if j.State.Final() {
		return fmt.Errorf("%w: %s is %s; there is nothing to run", jobs.ErrFinal, j.ID, j.State)
	}
	var creds remote.CredentialResolver
	if key != nil {
		creds = credential.NewStore(cl.conn, key)
	}
	dir, err := os.MkdirTemp("", "jobengine-transmit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := &ansible.Sources{Inventories: inventory.NewStore(cl.conn, inventory.Config{Logger: cl.log.Named("inventory")}),
		ProjectsDir: actions.ProjectsDir(), Revisions: project.Revisions{Jobs: cl.store}, Logger: cl.log.Named("sources")}
	k, err := remote.PrepareJobFrom(cl.ctx, j, creds, src, dir)
	if errors.Is(err, ansible.ErrPayload) || errors.Is(err, credential.ErrKey) {
		return &UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	return remote.Transmit(c.App.Writer, k, dir)
}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "run the job of a transmit stream read from stdin; stream its results to stdout",
		Description: "Reads a stream of `jobengine transmit` (or ansible-runner transmit), runs it in a private data\n" +
			"directory and writes status lines, events, keepalives, the final status with its return code, an\n" +
			"archive of the artifacts and {\"eof\": true}, for `jobengine process` (or ansible-runner process).\n" +
			"SIGTERM, SIGINT, SIGHUP or a closed stdout cancel the run. Logs go to stderr.\n" +
			"A job of an action that is not built in runs the plugin of that name found in --plugin-dir.",
		Flags: withEnv("worker", append([]cli.Flag{
			&cli.StringFlag{Name: "private-data-dir", Usage: "run here and keep it (default: a temporary directory, deleted)"},
			&cli.BoolFlag{Name: "delete", Usage: "with --private-data-dir: wipe it before and after the run"},
			&cli.IntFlag{Name: "keepalive-seconds", Usage: "send a keepalive event after this many quiet seconds (0: none)"},
			&cli.DurationFlag{Name: "kill-grace", Value: ansible.DefaultKillGrace, Usage: "how long a canceled playbook may take to stop before it is killed"},
			&cli.BoolFlag{Name: "worker-info", Usage: "print this node's CPU, memory, capacity, version and uuid, and exit"},
			&cli.StringFlag{Name: "uuid-file", Value: remote.DefaultUUIDFile(), Usage: "where the node keeps its persistent uuid"},
			testActionsFlag(),
		}, pluginFlags()...)...),
		Subcommands: []*cli.Command{workerCleanupCommand()},
		Action:      runWorker,
	}
}

func runWorker(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	if n := c.Int("keepalive-seconds"); n < 0 {
		return usagef("--keepalive-seconds %d is negative: give the seconds between keepalives, or 0 for none", n)
	}
	popts, err := pluginOptions(c)
	if err != nil {
		return err
	}
	keepalive := time.Duration(c.Int("keepalive-seconds")) * time.Second
	if c.Bool("worker-info") {
		info := remote.NodeInfo(version.Version, c.String("uuid-file"))
		info.OrphanSeconds = remote.OrphanBound(keepalive, max(popts.KillGrace, c.Duration("kill-grace")))
		return writeJSON(c.App.Writer, info)
	}
	if c.Bool("delete") && c.String("private-data-dir") == "" {
		return usagef("--delete wipes the --private-data-dir; give one (without it the run's directory is temporary and deleted anyway)")
	}
	log := quietLogger(c)
	defer func() { _ = log.Sync() }()
	ctx, cancel := context.WithCancelCause(c.Context)
	defer cancel(nil)
	sigs := make(chan os.Signal, 4)
	// SIGPIPE is caught so that a write to a closed stdout fails instead
	// of killing the worker and orphaning its run.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGPIPE {
				continue
			}
			cancel(fmt.Errorf("worker stopped by %s", sig))
		}
	}()
	// A closed stdout means the other side is gone: stop at once rather
	// than at the next write.
	if c.App.Writer == os.Stdout {
		remote.WatchHangup(ctx, os.Stdout, 100*time.Millisecond, func() { cancel(errors.New("the result stream was closed")) })
	}
	// The node's own plugins: a job of an action that is not built in
	// runs the plugin found here, as on an executor.
	reg := builtinActions(c)
	popts.Logger = log.Named("plugins")
	host, err := pluginhost.Load(ctx, popts)
	if err != nil {
		return err
	}
	defer func() { _ = host.Close() }()
	if err := host.Register(reg); err != nil {
		log.Warn("some plugin actions were not added", zap.Error(err))
	}
	w := &remote.Worker{
		PrivateDataDir: c.String("private-data-dir"), Delete: c.Bool("delete"),
		Keepalive: keepalive, KillGrace: c.Duration("kill-grace"), Registry: reg, Logger: log.Named("worker"),
	}
	st, err := w.Run(ctx, os.Stdin, c.App.Writer)
	if err != nil {
		log.Warn("worker ended with an error", zap.String("status", st.Status), zap.Error(err))
		return &ExitError{Code: ExitFailure, Err: err}
	}
	return nil
}

func workerCleanupCommand() *cli.Command {
	return &cli.Command{
		Name:  "cleanup",
		Usage: "remove old private data directories of workers",
		Description: "Removes the directories matching --file-pattern that were not modified for --grace-period\n" +
			"minutes, that contain none of --exclude-strings in their path, and that no live run uses (its lock,\n" +
			"or for ansible-runner's directories its pid file). Patterns matching system directories are refused.",
		Flags: withEnv("worker cleanup",
			&cli.StringFlag{Name: "file-pattern", Usage: "glob of directories, e.g. /tmp/jobengine-worker-*"},
			&cli.IntFlag{Name: "grace-period", Value: 60, Usage: "keep directories modified within this many minutes (0: none kept)"},
			&cli.StringSliceFlag{Name: "exclude-strings", Usage: "keep directories whose path contains one of these (repeatable)"},
		),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			if c.Int("grace-period") < 0 {
				return usagef("--grace-period %d is negative: give minutes, or 0 to keep no directory for its age", c.Int("grace-period"))
			}
			rep, err := remote.Cleanup(remote.CleanupOptions{
				Pattern: c.String("file-pattern"), GracePeriod: time.Duration(c.Int("grace-period")) * time.Minute,
				Exclude: c.StringSlice("exclude-strings"),
			})
			if err != nil {
				return &UsageError{Err: err}
			}
			for _, d := range rep.Alive {
				fmt.Fprintf(c.App.Writer, "kept %s: a live run uses it\n", d)
			}
			for _, d := range rep.Removed {
				fmt.Fprintf(c.App.Writer, "removed %s\n", d)
			}
			if rep.Changed() {
				fmt.Fprintf(c.App.Writer, "changed: removed %d private data directories\n", len(rep.Removed))
			} else {
				fmt.Fprintln(c.App.Writer, "nothing changed")
			}
			if len(rep.Errors) > 0 {
				msgs := make([]string, len(rep.Errors))
				for i, e := range rep.Errors {
					msgs[i] = e.Error()
				}
				return fmt.Errorf("some directories were not removed: %s", strings.Join(msgs, "; "))
			}
			return nil
		},
	}
}

func processCommand() *cli.Command {
	return &cli.Command{
		Name:      "process",
		Usage:     "read a worker's result stream from stdin: artifacts to DIR/artifacts[/IDENT], output to stdout",
		ArgsUsage: "DIR",
		Description: "Reads the stream of `jobengine worker` (or ansible-runner worker). With --job, the QUEUED job is\n" +
			"claimed (RUNNING, out of the queue) and the stream's events, log and outcome are applied to it.\n" +
			"Exit 0 when the run succeeded, 1 when it failed or the stream was bad (what was wrong is said).",
		Flags: withEnv("process",
			&cli.StringFlag{Name: "ident", Usage: "write artifacts to DIR/artifacts/IDENT (default DIR/artifacts)"},
			&cli.StringFlag{Name: "job", Usage: "apply the stream to this QUEUED job"},
			&cli.BoolFlag{Name: "quiet", Usage: "do not print the run's output"},
			&cli.DurationFlag{Name: "idle-timeout", Usage: "fail when nothing arrives for this long (0: wait for ever)"},
		),
		Action: runProcess,
	}
}

func runProcess(c *cli.Context) error {
	args, err := parseArgs(c, "DIR")
	if err != nil {
		return err
	}
	if c.Duration("idle-timeout") < 0 {
		return usagef("--idle-timeout must not be negative")
	}
	ident := c.String("ident")
	if strings.ContainsAny(ident, "/\\") || ident == ".." {
		return usagef("--ident %q is not a directory name", ident)
	}
	art := filepath.Join(args[0], "artifacts")
	if ident != "" {
		art = filepath.Join(art, ident)
	}
	p := &remote.Processor{ArtifactDir: art, IdleTimeout: c.Duration("idle-timeout")}
	if !c.Bool("quiet") {
		p.Output = c.App.Writer
	}
	var applier *remote.JobApplier
	var sink *index.EventSink
	if jobArg := c.String("job"); jobArg != "" {
		id, _, err := parseJobID(jobArg)
		if err != nil {
			return err
		}
		cl, err := openClient(c)
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := cl.ensure(); err != nil {
			return err
		}
		if cl.es != nil {
			sink = index.NewEventSink(cl.es, cl.log.Named("events"), index.SinkOptions{})
		}
		host, _ := os.Hostname()
		var es remote.EventSink
		if sink != nil {
			es = sink
		}
		applier, err = remote.ClaimJob(cl.ctx, cl.store, id, "process@"+host, es, cl.log)
		if err != nil {
			return cl.fail(err, id)
		}
		p.OnEvent, p.OnStatus = applier.OnEvent, applier.OnStatus
		defer func() {
			if sink != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_ = sink.Close(sctx)
				cancel()
			}
		}()
	}
	out, runErr := p.Run(c.Context, os.Stdin)
	if applier != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.Duration("zk-connect-timeout"))
		j, err := applier.Finish(ctx, out)
		cancel()
		if err != nil {
			return fmt.Errorf("writing the outcome of %s: %w", j.ID, err)
		}
		fmt.Fprintf(c.App.ErrWriter, "%s %s: %s\n", j.ID, j.State, j.StatusMessage)
	}
	if runErr != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("status error: %w", runErr)}
	}
	rc := out.ReturnCode()
	fmt.Fprintf(c.App.ErrWriter, "status: %s (rc %d)\n", out.Status, rc)
	if out.Status != remote.StatusSuccessful {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("the run ended %s (rc %d)%s", out.Status, rc, explain(out.Explanation))}
	}
	return nil
}

func explain(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
