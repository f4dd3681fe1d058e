package command

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/version"
)

// Shell completion and the manual page are generated from the commands
// themselves, so they never drift from what the binary accepts. The
// packages install what these commands print (packaging/build.sh).

func init() {
	extraCommands = append(extraCommands, completionCommand, manCommand)
}

// The scripts ask the binary itself what comes next (urfave/cli's
// --generate-bash-completion), so they know every command and flag of the
// installed version, and only its visible ones.
var (
	//go:embed completion/jobengine.bash
	bashCompletion string
	//go:embed completion/_jobengine.zsh
	zshCompletion string
	//go:embed completion/jobengine.fish
	fishCompletion string
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script of bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Hidden:    true,
		Description: "The packages install these scripts; without them:\n" +
			"  bash: source <(jobengine completion bash)   (in ~/.bashrc)\n" +
			"  zsh:  source <(jobengine completion zsh)    (in ~/.zshrc, after compinit)\n" +
			"  fish: jobengine completion fish | source    (in ~/.config/fish/config.fish)",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes the name of one shell: bash, zsh or fish")
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				script = fishCompletion
			default:
				return usagef("completion: no script for the shell %q: say bash, zsh or fish", shell)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the manual page jobengine(1), in roff",
		Hidden: true,
		Description: "Every command, its flags and their environment variables, from the commands themselves.\n" +
			"The packages install it as /usr/share/man/man1/jobengine.1.gz; to read it from a build:\n" +
			"  jobengine man | man -l -",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("man takes no arguments (got %q)", c.Args().Slice())
			}
			page, err := manPage(c.App)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, page)
			return err
		},
	}
}

// manPage renders jobengine(1): urfave/cli's markdown of every visible
// command, the environment variables of their flags, then what the
// commands cannot know (exit status, files), through md2man.
func manPage(app *cli.App) (string, error) {
	md, err := app.ToMarkdown()
	if err != nil {
		return "", fmt.Errorf("generating the manual page: %w", err)
	}
	var b strings.Builder
	// The title block: name, section, date (left empty so that a build is
	// reproducible), source and manual.
	fmt.Fprintf(&b, "%% jobengine 1 \"\" \"jobengine %s\" \"jobengine manual\"\n\n", version.Version)
	b.WriteString(md)
	b.WriteString(manEnvironment(app))
	b.WriteString(manExtra)
	return string(md2man.Render([]byte(b.String()))), nil
}

// manEnvironment lists every environment variable a flag reads, with the
// flag and the commands that have it.
func manEnvironment(app *cli.App) string {
	type use struct {
		flag  string
		where []string
	}
	vars := map[string]*use{}
	var order []string
	add := func(flags []cli.Flag, where string) {
		for _, f := range flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, v := range df.GetEnvVars() {
				u := vars[v]
				if u == nil {
					u = &use{flag: "--" + f.Names()[0]}
					vars[v] = u
					order = append(order, v)
				}
				u.where = append(u.where, where)
			}
		}
	}
	add(app.VisibleFlags(), "")
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			add(c.VisibleFlags(), prefix+c.Name)
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("", app.Commands)

	var b strings.Builder
	b.WriteString("\n# ENVIRONMENT\n\nEach of these variables sets the flag given with it; the flag on the command line wins over the variable.\n")
	for _, v := range order {
		u := vars[v]
		fmt.Fprintf(&b, "\n**%s**\n: **%s**", v, u.flag)
		if u.where[0] != "" {
			fmt.Fprintf(&b, " of **%s**", strings.Join(u.where, "**, **"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// manExtra is what the commands do not say about themselves.
const manExtra = `
# EXIT STATUS

**0** success; **1** failure at run time (ZooKeeper unreachable, a job that ended FAILED or CANCELED for **job wait**); **2** usage error (unknown command or flag, bad value, malformed input: nothing was written); **3** **job wait** timed out.

# FILES

*/etc/default/jobengine-executor*, */etc/default/jobengine-distributor* (Debian), */etc/sysconfig/jobengine-executor*, */etc/sysconfig/jobengine-distributor* (Red Hat)
: settings of the systemd units **jobengine-executor.service** and **jobengine-distributor@.service**

*/etc/jobengine/distributors.d/*
: distributor declarations (**distributor --config-dir**)

*/usr/libexec/jobengine/actions/*
: action plugins (**executor --plugin-dir**)

*/var/lib/jobengine/*, */var/log/jobengine/*
: the daemons' state and log files

*/usr/share/doc/jobengine/*
: the operations guide and examples

# SEE ALSO

**systemctl**(1), **journalctl**(1), */usr/share/doc/jobengine/operations.md*
`
