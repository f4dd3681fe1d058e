package command

// The commands that change users and team members, through the API: the
// same arguments, checks and output as their ZooKeeper forms. Passwords
// are read as those read them (--password-file, the terminal, standard
// input), sent in the body of a request to the API, which hashes them as
// the ZooKeeper forms do; never on a command line or in a log.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jobengine/jobengine/engine/access"
)

func init() {
	apiActions["user create"] = apiUserCreate
	apiActions["user edit"] = apiUserEdit
	apiActions["user passwd"] = apiUserPasswd
	apiActions["team add"] = apiTeamMembers("add")
	apiActions["team remove"] = apiTeamMembers("remove")
}

// apiUserInput is the body of POST /users and PATCH /users/{name}.
type apiUserInput struct {
	Name        string             `json:"name,omitempty"`
	Description *string            `json:"description,omitempty"`
	Role        *access.SystemRole `json:"role,omitempty"`
	Disabled    *bool              `json:"disabled,omitempty"`
	Password    string             `json:"password,omitempty"`
}

func apiUserCreate(c *cli.Context) error {
	n, err := newUserFromFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := apiUserInput{Name: n.Name, Description: &n.Description, Password: n.Password}
	if n.Role != access.NoSystemRole {
		in.Role = &n.Role
	}
	var made access.UserView
	if err := cl.do(c.Context, http.MethodPost, "/users", nil, &in, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "user %s created\n", made.Name)
	return nil
}

func apiUserEdit(c *cli.Context) error {
	name, role, err := userEditFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	// The fields given change, on the user as it is when the API writes
	// it: nothing read here is written back.
	var in apiUserInput
	if c.IsSet("role") {
		in.Role = &role
	}
	if c.IsSet("description") {
		d := c.String("description")
		in.Description = &d
	}
	if c.IsSet("disabled") {
		b := c.Bool("disabled")
		in.Disabled = &b
	}
	if err := cl.do(c.Context, http.MethodPatch, "/users/"+url.PathEscape(name), nil, &in, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "user %s changed\n", name)
	return nil
}

// apiPasswordInput is the body of POST /users/{name}/password.
type apiPasswordInput struct {
	Password string `json:"password"`
	Current  string `json:"current-password,omitempty"`
}

// apiMe is what GET /me answers that passwd needs.
type apiMe struct {
	User access.UserView `json:"user"`
}

func apiUserPasswd(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	name := args[0]
	if err := checkUserName("user", name); err != nil {
		return err
	}
	if c.String("current-password-file") == "-" && (c.String("password-file") == "-" || c.String("password-file") == "" && !term.IsTerminal(int(os.Stdin.Fd()))) {
		return usagef("--current-password-file - and the new password both read standard input: give one of them in a file")
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	// A user setting its own password proves it knows the current one
	// (a stolen token must not take the account over).
	var me apiMe
	if err := cl.do(c.Context, http.MethodGet, "/me", nil, nil, &me); err != nil {
		return err
	}
	in := apiPasswordInput{}
	if me.User.Name == name && me.User.HasPassword {
		if in.Current, err = readCurrentPassword(c, name); err != nil {
			return err
		}
	} else if c.IsSet("current-password-file") {
		return usagef("--current-password-file is for setting your own password: %s is not the user of the API token", name)
	}
	if in.Password, err = readPassword(c, name); err != nil {
		return err
	}
	if err := cl.do(c.Context, http.MethodPost, "/users/"+url.PathEscape(name)+"/password", nil, &in, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "password of %s set\n", name)
	return nil
}

// readCurrentPassword reads the caller's current password from
// --current-password-file or the terminal (asked once).
func readCurrentPassword(c *cli.Context, who string) (string, error) {
	var raw []byte
	switch f := c.String("current-password-file"); {
	case f != "":
		b, err := readFile(f, access.MaxPassword+2)
		if err != nil {
			return "", err
		}
		raw = b
	case term.IsTerminal(int(os.Stdin.Fd())):
		fmt.Fprintf(c.App.ErrWriter, "current password of %s: ", who)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", fmt.Errorf("reading the current password: %w", err)
		}
		raw = b
	default:
		return "", usagef("setting your own password through the API needs your current one: give --current-password-file FILE, or run on a terminal")
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if pw == "" {
		return "", usagef("the current password is empty")
	}
	return pw, nil
}

// apiMembersInput is the body of POST /teams/{name}/members.
type apiMembersInput struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// apiTeamMembers is the API form of `team add` (or `remove`): one change
// of the team as it is, so a concurrent change of other members is kept.
func apiTeamMembers(verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := teamMembersArgs(c, verb)
		if err != nil {
			return err
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		var in apiMembersInput
		if verb == "add" {
			in.Add = args[1:]
		} else {
			in.Remove = args[1:]
		}
		if err := cl.do(c.Context, http.MethodPost, "/teams/"+url.PathEscape(args[0])+"/members", nil, &in, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "team %s changed\n", args[0])
		return nil
	}
}
