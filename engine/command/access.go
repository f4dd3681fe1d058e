package command

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/distributor"
)

// The user, team, token and grant commands work on ZooKeeper directly:
// they are how an operator bootstraps the first administrator (`jobengine
// user create --admin NAME`) and manages access without the HTTP API.

func init() {
	extraCommands = append(extraCommands, userCommand, teamCommand, tokenCommand, grantCommand)
}

// accessClient is the access store on a command's ZooKeeper session.
type accessClient struct {
	*client
	store *access.Store
}

func openAccess(c *cli.Context) (*accessClient, error) {
	cl, err := openClient(c)
	if err != nil {
		return nil, err
	}
	return &accessClient{client: cl, store: access.NewStore(cl.conn, cl.log.Named("access"))}, nil
}

func passwordFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "password-file", Usage: "read the password from this file (- reads standard input); " +
		"without it the password is asked for on the terminal, or read from standard input when it is not one"}
}

// readPassword reads a password from --password-file, the terminal (asked
// twice) or standard input; never from a flag, which every user of the
// machine could read.
func readPassword(c *cli.Context, who string) (string, error) {
	var raw []byte
	switch f := c.String("password-file"); {
	case f != "":
		b, err := readFile(f, access.MaxPassword+2)
		if err != nil {
			return "", err
		}
		raw = b
	case term.IsTerminal(int(os.Stdin.Fd())):
		fmt.Fprintf(c.App.ErrWriter, "password for %s: ", who)
		a, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprintf(c.App.ErrWriter, "again: ")
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(a) != string(b) {
			return "", usagef("the two passwords differ; nothing was written")
		}
		raw = a
	default:
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, access.MaxPassword+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		raw = []byte(line)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if err := access.ValidPassword(pw); err != nil {
		return "", &UsageError{Err: err}
	}
	return pw, nil
}

func checkUserName(kind, name string) error {
	if err := access.ValidUserName(kind, name); err != nil {
		return &UsageError{Err: err}
	}
	return nil
}

func userCommand() *cli.Command {
	return &cli.Command{
		Name:  "user",
		Usage: "create, list, change and delete the users of the HTTP API (directly in ZooKeeper)",
		Description: "The first administrator is created this way, with direct access to ZooKeeper:\n" +
			"  jobengine user create --admin NAME\n" +
			"Passwords are read from --password-file, the terminal or standard input, never from a flag.",
		Subcommands: []*cli.Command{userCreateCommand(), userListCommand(), userEditCommand(), userPasswdCommand(), userDeleteCommand()},
	}
}

func userCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a user",
		ArgsUsage: "NAME",
		Flags: withEnv("user create",
			&cli.BoolFlag{Name: "admin", Usage: "a system administrator (may do everything)"},
			&cli.BoolFlag{Name: "auditor", Usage: "a system auditor (reads everything, changes nothing)"},
			&cli.StringFlag{Name: "description", Usage: "who the user is"},
			passwordFileFlag(),
			&cli.BoolFlag{Name: "no-password", Usage: "no password: the user authenticates with tokens only"},
		),
		Action: func(c *cli.Context) error {
			n, err := newUserFromFlags(c)
			if err != nil {
				return err
			}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			if _, err := a.store.CreateUser(a.ctx, n); err != nil {
				return a.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "user %s created\n", n.Name)
			return nil
		},
	}
}

// newUserFromFlags reads the arguments and flags of `user create`, and
// the password.
func newUserFromFlags(c *cli.Context) (access.NewUser, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return access.NewUser{}, err
	}
	if err := checkUserName("user", args[0]); err != nil {
		return access.NewUser{}, err
	}
	n := access.NewUser{Name: args[0], Description: c.String("description")}
	switch {
	case c.Bool("admin") && c.Bool("auditor"):
		return n, usagef("--admin and --auditor: a user has one system role")
	case c.Bool("admin"):
		n.Role = access.SystemAdmin
	case c.Bool("auditor"):
		n.Role = access.SystemAuditor
	}
	if c.Bool("no-password") && c.IsSet("password-file") {
		return n, usagef("--no-password and --password-file: give one")
	}
	if !c.Bool("no-password") {
		if n.Password, err = readPassword(c, n.Name); err != nil {
			return n, err
		}
	}
	return n, nil
}

func userListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list users",
		Flags: withEnv("user list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of users"}),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			users, bad, err := a.store.ListUsers(a.ctx)
			if err != nil {
				return a.failObj(err)
			}
			reportBad(c.App.ErrWriter, bad)
			views := make([]access.UserView, 0, len(users))
			for _, u := range users {
				views = append(views, u.View())
			}
			return printUsers(c, views)
		},
	}
}

// printTeams prints teams as `team list` does.
func printTeams(c *cli.Context, teams []*access.Team) error {
	if c.Bool("json") {
		if teams == nil {
			teams = []*access.Team{}
		}
		return writeJSON(c.App.Writer, teams)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tMEMBERS\tDESCRIPTION")
	for _, t := range teams {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, dash(strings.Join(t.Members, ",")), oneLine(t.Description))
	}
	return tw.Flush()
}

// printUsers prints users as `user list` does.
func printUsers(c *cli.Context, views []access.UserView) error {
	if c.Bool("json") {
		if views == nil {
			views = []access.UserView{}
		}
		return writeJSON(c.App.Writer, views)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tROLE\tPASSWORD\tDISABLED\tCREATED\tDESCRIPTION")
	for _, u := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, dash(string(u.Role)), yesNo(u.HasPassword), yesNo(u.Disabled), stamp(u.Created), oneLine(u.Description))
	}
	return tw.Flush()
}

func userEditCommand() *cli.Command {
	return &cli.Command{
		Name:      "edit",
		Usage:     "change a user's system role, description, or disable it",
		ArgsUsage: "NAME",
		Flags: withEnv("user edit",
			&cli.StringFlag{Name: "role", Usage: "system role: admin, auditor or none"},
			&cli.StringFlag{Name: "description", Usage: "who the user is"},
			&cli.BoolFlag{Name: "disabled", Usage: "--disabled refuses every login and token of the user; --disabled=false allows them again"},
		),
		Action: func(c *cli.Context) error {
			name, role, err := userEditFlags(c)
			if err != nil {
				return err
			}
			args := []string{name}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			_, err = a.store.UpdateUser(a.ctx, args[0], func(u *access.User) error {
				if c.IsSet("role") {
					u.Role = role
				}
				if c.IsSet("description") {
					u.Description = c.String("description")
				}
				if c.IsSet("disabled") {
					u.Disabled = c.Bool("disabled")
				}
				return nil
			})
			if err != nil {
				return a.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "user %s changed\n", args[0])
			return nil
		},
	}
}

// userEditFlags reads the argument and flags of `user edit`.
func userEditFlags(c *cli.Context) (string, access.SystemRole, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", "", err
	}
	if err := checkUserName("user", args[0]); err != nil {
		return "", "", err
	}
	var role access.SystemRole
	if c.IsSet("role") {
		if role, err = access.ParseSystemRole(c.String("role")); err != nil {
			return "", "", &UsageError{Err: err}
		}
	}
	if !c.IsSet("role") && !c.IsSet("description") && !c.IsSet("disabled") {
		return "", "", usagef("user edit: nothing to change (give --role, --description or --disabled)")
	}
	return args[0], role, nil
}

func userPasswdCommand() *cli.Command {
	return &cli.Command{
		Name:      "passwd",
		Usage:     "set a user's password",
		ArgsUsage: "NAME",
		Description: "With --api, a user setting its own password gives its current one too: from\n" +
			"--current-password-file, or the terminal. A system administrator sets anyone else's.",
		Flags: withEnv("user passwd", passwordFileFlag(),
			&cli.StringFlag{Name: "current-password-file", Usage: "with --api, when setting your own password: read your current password from this file (- reads standard input)"}),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkUserName("user", args[0]); err != nil {
				return err
			}
			if c.IsSet("current-password-file") {
				return usagef("--current-password-file goes with --api: with access to ZooKeeper no current password is asked for")
			}
			pw, err := readPassword(c, args[0])
			if err != nil {
				return err
			}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.store.SetPassword(a.ctx, args[0], pw); err != nil {
				return a.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "password of %s set\n", args[0])
			return nil
		},
	}
}

func userDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a user, with its tokens, sessions, grants and team memberships",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if err := checkUserName("user", args[0]); err != nil {
				return err
			}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.store.DeleteUser(a.ctx, args[0]); err != nil {
				return a.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "user %s deleted\n", args[0])
			return nil
		},
	}
}

func teamCommand() *cli.Command {
	return &cli.Command{
		Name:  "team",
		Usage: "create, list, change and delete teams (roles granted to a team are its members')",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a team", ArgsUsage: "NAME",
				Flags: withEnv("team create",
					&cli.StringSliceFlag{Name: "member", Usage: "a member (repeat the flag for more)"},
					&cli.StringFlag{Name: "description", Usage: "what the team is"}),
				Action: func(c *cli.Context) error {
					args, err := parseArgs(c, "NAME")
					if err != nil {
						return err
					}
					t := &access.Team{Name: args[0], Description: c.String("description"), Members: nonEmpty(c.StringSlice("member"))}
					if err := t.Validate(); err != nil {
						return &UsageError{Err: err}
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					if err := a.store.CreateTeam(a.ctx, t); err != nil {
						return a.failObj(err)
					}
					fmt.Fprintf(c.App.Writer, "team %s created\n", t.Name)
					return nil
				},
			},
			{
				Name: "list", Usage: "list teams",
				Flags: withEnv("team list", &cli.BoolFlag{Name: "json", Usage: "print a JSON array of teams"}),
				Action: func(c *cli.Context) error {
					if _, err := parseArgs(c); err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					teams, bad, err := a.store.ListTeams(a.ctx)
					if err != nil {
						return a.failObj(err)
					}
					reportBad(c.App.ErrWriter, bad)
					return printTeams(c, teams)
				},
			},
			teamMembersCommand("add", "add members to a team"),
			teamMembersCommand("remove", "remove members from a team"),
			{
				Name: "delete", Usage: "delete a team and the roles granted to it", ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					args, err := parseArgs(c, "NAME")
					if err != nil {
						return err
					}
					if err := checkUserName("team", args[0]); err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					if err := a.store.DeleteTeam(a.ctx, args[0]); err != nil {
						return a.failObj(err)
					}
					fmt.Fprintf(c.App.Writer, "team %s deleted\n", args[0])
					return nil
				},
			},
		},
	}
}

func teamMembersCommand(name, usage string) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "TEAM USER [USER…]",
		Action: func(c *cli.Context) error {
			args, err := teamMembersArgs(c, name)
			if err != nil {
				return err
			}
			a, err := openAccess(c)
			if err != nil {
				return err
			}
			defer a.Close()
			_, err = a.store.UpdateTeam(a.ctx, args[0], func(t *access.Team) error {
				for _, u := range args[1:] {
					if name == "add" {
						t.Members = append(t.Members, u)
					} else if !t.HasMember(u) {
						return fmt.Errorf("%w: %s is not a member of team %s", access.ErrInvalid, u, t.Name)
					} else {
						t.Members = slicesWithout(t.Members, u)
					}
				}
				return nil
			})
			if err != nil {
				return a.failObj(err)
			}
			fmt.Fprintf(c.App.Writer, "team %s changed\n", args[0])
			return nil
		},
	}
}

// teamMembersArgs reads the arguments of `team add` or `team remove`
// (verb): the team, then users.
func teamMembersArgs(c *cli.Context, verb string) ([]string, error) {
	args := c.Args().Slice()
	if len(args) < 2 {
		return nil, usagef("team %s: want TEAM USER [USER…]", verb)
	}
	for i, a := range args {
		kind := "user"
		if i == 0 {
			kind = "team"
		}
		if err := checkUserName(kind, a); err != nil {
			return nil, err
		}
	}
	return args, nil
}

func slicesWithout(list []string, x string) []string {
	var out []string
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// parseLifetime parses a token lifetime: a duration such as 90d or 12h, or
// "never".
func parseLifetime(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "never" {
		return 0, nil
	}
	d, err := distributor.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usagef("--expires %q: want a duration such as 90d or 12h, or never", v)
	}
	return d, nil
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "create, list and revoke API tokens (directly in ZooKeeper)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "create a token for a user and print it; it is shown this once and stored only as a hash",
				Flags: withEnv("token create",
					&cli.StringFlag{Name: "user", Usage: "the user the token authenticates (required)"},
					&cli.StringFlag{Name: "description", Usage: "what the token is for"},
					&cli.StringFlag{Name: "expires", Value: "90d", Usage: "lifetime, such as 90d or 12h, or never"},
					&cli.BoolFlag{Name: "json", Usage: "print the token with its id and expiry as JSON"}),
				Action: func(c *cli.Context) error {
					life, err := tokenCreateFlags(c)
					if err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					t, secret, err := a.store.CreateToken(a.ctx, c.String("user"), c.String("description"), life)
					if err != nil {
						return a.failObj(err)
					}
					return printNewToken(c, t.View(), secret)
				},
			},
			{
				Name:  "list",
				Usage: "list tokens (never their secrets)",
				Flags: withEnv("token list",
					&cli.StringFlag{Name: "user", Usage: "only this user's tokens"},
					&cli.BoolFlag{Name: "json", Usage: "print a JSON array of tokens"}),
				Action: func(c *cli.Context) error {
					if _, err := parseArgs(c); err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					toks, err := a.store.ListTokens(a.ctx, c.String("user"))
					if err != nil {
						return a.failObj(err)
					}
					views := make([]access.TokenView, 0, len(toks))
					for _, t := range toks {
						views = append(views, t.View())
					}
					return printTokens(c, views)
				},
			},
			{
				Name: "revoke", Usage: "revoke a token by its id", ArgsUsage: "ID",
				Action: func(c *cli.Context) error {
					args, err := parseArgs(c, "ID")
					if err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					if err := a.store.RevokeToken(a.ctx, args[0]); err != nil {
						return a.failObj(err)
					}
					fmt.Fprintf(c.App.Writer, "token %s revoked\n", args[0])
					return nil
				},
			},
		},
	}
}

// tokenCreateFlags checks the arguments of `token create` and returns
// the token's lifetime (0: it never expires).
func tokenCreateFlags(c *cli.Context) (time.Duration, error) {
	if _, err := parseArgs(c); err != nil {
		return 0, err
	}
	if c.String("user") == "" {
		return 0, usagef("token create: give --user NAME")
	}
	if err := checkUserName("user", c.String("user")); err != nil {
		return 0, err
	}
	return parseLifetime(c.String("expires"))
}

// printNewToken prints a new token (standard output, the only time it is
// shown) and what it is (standard error), or both as JSON.
func printNewToken(c *cli.Context, t access.TokenView, secret string) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, struct {
			access.TokenView
			Token string `json:"token"`
		}{t, secret})
	}
	fmt.Fprintln(c.App.Writer, secret)
	exp := "never"
	if !t.Expires.IsZero() {
		exp = stamp(t.Expires)
	}
	fmt.Fprintf(c.App.ErrWriter, "token %s for %s, expires %s; it cannot be shown again\n", t.ID, t.User, exp)
	return nil
}

// grantFromFlags reads --user/--team, --role and KIND/NAME.
func grantFromFlags(c *cli.Context, object string) (access.Grant, error) {
	var g access.Grant
	switch {
	case c.String("user") != "" && c.String("team") != "":
		return g, usagef("--user and --team: a grant is for one of them")
	case c.String("user") != "":
		g.SubjectKind, g.Subject = access.SubjectUser, c.String("user")
	case c.String("team") != "":
		g.SubjectKind, g.Subject = access.SubjectTeam, c.String("team")
	default:
		return g, usagef("give --user NAME or --team NAME")
	}
	role, err := access.ParseRole(c.String("role"))
	if err != nil {
		return g, &UsageError{Err: err}
	}
	g.Role = role
	kind, name, ok := strings.Cut(object, "/")
	if !ok {
		return g, usagef("%q: want KIND/NAME, such as template/deploy", object)
	}
	if g.Kind, err = access.ParseObjectKind(kind); err != nil {
		return g, &UsageError{Err: err}
	}
	g.Object = name
	if err := g.Validate(); err != nil {
		return g, &UsageError{Err: err}
	}
	return g, nil
}

func grantCommand() *cli.Command {
	subjectFlags := func(cmd string, withRole bool) []cli.Flag {
		fs := []cli.Flag{
			&cli.StringFlag{Name: "user", Usage: "the user"},
			&cli.StringFlag{Name: "team", Usage: "the team"},
		}
		if withRole {
			fs = append(fs, &cli.StringFlag{Name: "role", Usage: "read, execute or admin"})
		}
		return withEnv(cmd, fs...)
	}
	change := func(name, usage string, add bool) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: "KIND/NAME",
			Description: "KIND is template, inventory or project. Roles: read sees the object (and a template's jobs);\n" +
				"execute also uses it (launch, relaunch and cancel a template's jobs; use an inventory or project in\n" +
				"a template, update a project); admin also changes and deletes it and grants roles on it.",
			Flags: subjectFlags("grant "+name, true),
			Action: func(c *cli.Context) error {
				args, err := parseArgs(c, "KIND/NAME")
				if err != nil {
					return err
				}
				g, err := grantFromFlags(c, args[0])
				if err != nil {
					return err
				}
				a, err := openAccess(c)
				if err != nil {
					return err
				}
				defer a.Close()
				if add {
					err = a.store.AddGrant(a.ctx, g)
				} else {
					err = a.store.RemoveGrant(a.ctx, g)
				}
				if err != nil {
					return a.failObj(err)
				}
				verb := "granted"
				if !add {
					verb = "removed"
				}
				fmt.Fprintf(c.App.Writer, "%s %s\n", verb, g.ID())
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "grant",
		Usage: "grant roles on templates, inventories and projects to users and teams (directly in ZooKeeper)",
		Subcommands: []*cli.Command{
			change("add", "grant a role on an object to a user or a team", true),
			change("remove", "take a role back", false),
			{
				Name: "list", Usage: "list grants",
				Flags: append(subjectFlags("grant list", false), withEnv("grant list",
					&cli.StringFlag{Name: "object", Usage: "only grants on this KIND/NAME"},
					&cli.BoolFlag{Name: "json", Usage: "print a JSON array of grants"})...),
				Action: func(c *cli.Context) error {
					if _, err := parseArgs(c); err != nil {
						return err
					}
					f, err := grantFilterFlags(c)
					if err != nil {
						return err
					}
					a, err := openAccess(c)
					if err != nil {
						return err
					}
					defer a.Close()
					list, err := a.store.ListGrants(a.ctx, f)
					if err != nil {
						return a.failObj(err)
					}
					return printGrants(c, list)
				},
			},
		},
	}
}

// grantFilterFlags reads the filter of `grant list` from its flags.
func grantFilterFlags(c *cli.Context) (access.GrantFilter, error) {
	var f access.GrantFilter
	if u := c.String("user"); u != "" {
		f.SubjectKind, f.Subject = access.SubjectUser, u
	}
	if t := c.String("team"); t != "" {
		if f.Subject != "" {
			return f, usagef("--user and --team: give one")
		}
		f.SubjectKind, f.Subject = access.SubjectTeam, t
	}
	if o := c.String("object"); o != "" {
		kind, name, ok := strings.Cut(o, "/")
		k, err := access.ParseObjectKind(kind)
		if !ok || err != nil {
			return f, usagef("--object %q: want KIND/NAME, such as template/deploy", o)
		}
		f.Kind, f.Object = k, name
	}
	return f, nil
}

// printGrants prints grants as `grant list` does.
func printGrants(c *cli.Context, list []access.Grant) error {
	if c.Bool("json") {
		if list == nil {
			list = []access.Grant{}
		}
		return writeJSON(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "SUBJECT\tOBJECT\tROLE")
	for _, g := range list {
		fmt.Fprintf(tw, "%s/%s\t%s/%s\t%s\n", g.SubjectKind, g.Subject, g.Kind, g.Object, g.Role)
	}
	return tw.Flush()
}

// printTokens prints tokens as `token list` does.
func printTokens(c *cli.Context, views []access.TokenView) error {
	if c.Bool("json") {
		if views == nil {
			views = []access.TokenView{}
		}
		return writeJSON(c.App.Writer, views)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "ID\tUSER\tCREATED\tEXPIRES\tDESCRIPTION")
	for _, t := range views {
		exp := "never"
		if !t.Expires.IsZero() {
			exp = stamp(t.Expires)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.User, stamp(t.Created), exp, oneLine(t.Description))
	}
	return tw.Flush()
}
