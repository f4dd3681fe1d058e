package command

// Credentials, notification templates, users, teams, grants and tokens
// through the API: the same
// arguments and output as their ZooKeeper forms. The API never shows a
// secret; credential create reads its secrets from files or stdin, as
// with ZooKeeper, and sends them in the request's body (the client
// speaks plain HTTP to a loopback address only), for the controller to
// seal with its key.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/credential"
)

func init() {
	apiActions["credential list"] = apiListAction("/credentials", printCredentials)
	apiActions["credential show"] = apiCredentialShow
	apiActions["credential create"] = apiCredentialCreate
	apiActions["credential delete"] = apiCredentialDelete
	apiActions["notification delete"] = apiNotificationDelete
	apiActions["user list"] = apiListAction("/users", printUsers)
	apiActions["team list"] = apiListAction("/teams", printTeams)
	apiActions["grant list"] = apiGrantList
	apiActions["token list"] = apiTokenList
	apiActions["token create"] = apiTokenCreate
	apiActions["user delete"] = apiAccountDelete("user", "/users/", "deleted")
	apiActions["team delete"] = apiAccountDelete("team", "/teams/", "deleted")
	apiActions["token revoke"] = apiAccountDelete("token", "/tokens/", "revoked")
	apiActions["grant add"] = apiGrantChange(true)
	apiActions["team create"] = apiTeamCreate
	apiActions["grant remove"] = apiGrantChange(false)
}

// apiCredentialArg reads the NAME argument of a credential command and
// opens the client.
func apiCredentialArg(c *cli.Context) (string, *apiClient, error) {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return "", nil, err
	}
	if !credential.ValidName(args[0]) {
		return "", nil, usagef("%q is not a credential name", args[0])
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return "", nil, err
	}
	return args[0], cl, nil
}

func apiCredentialShow(c *cli.Context) error {
	name, cl, err := apiCredentialArg(c)
	if err != nil {
		return err
	}
	var cr credential.Credential
	if err := cl.do(c.Context, http.MethodGet, "/credentials/"+url.PathEscape(name), nil, nil, &cr); err != nil {
		return err
	}
	return printCredential(c, &cr)
}

func apiCredentialDelete(c *cli.Context) error {
	name, cl, err := apiCredentialArg(c)
	if err != nil {
		return err
	}
	if err := cl.do(c.Context, http.MethodDelete, "/credentials/"+url.PathEscape(name), nil, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "credential %s deleted\n", printable(name))
	return nil
}

func apiNotificationDelete(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	if err := cl.do(c.Context, http.MethodDelete, "/notification-templates/"+url.PathEscape(args[0]), nil, nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "notification template %s deleted\n", printable(args[0]))
	return nil
}

// apiCredentialInput is the body of POST /credentials: the credential
// and its secrets.
type apiCredentialInput struct {
	Name         string             `json:"name"`
	Kind         credential.Kind    `json:"kind"`
	Description  string             `json:"description,omitempty"`
	Username     string             `json:"username,omitempty"`
	BecomeMethod string             `json:"become-method,omitempty"`
	BecomeUser   string             `json:"become-user,omitempty"`
	VaultID      string             `json:"vault-id,omitempty"`
	Secrets      credential.Secrets `json:"secrets"`
}

func apiCredentialCreate(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	cred, err := newCredentialFromFlags(c, args[0])
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := apiCredentialInput{Name: cred.Name, Kind: cred.Kind, Description: cred.Description, Username: cred.Username,
		BecomeMethod: cred.BecomeMethod, BecomeUser: cred.BecomeUser, VaultID: cred.VaultID, Secrets: cred.Secrets}
	var made credential.Credential
	if err := cl.do(c.Context, http.MethodPost, "/credentials", nil, &in, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "credential %s created (%s; secrets: %s)\n", printable(made.Name), made.Kind, dash(strings.Join(made.SecretFields, ", ")))
	return nil
}

func apiGrantList(c *cli.Context) error {
	if _, err := parseArgs(c); err != nil {
		return err
	}
	f, err := grantFilterFlags(c)
	if err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	q := url.Values{}
	switch f.SubjectKind {
	case access.SubjectUser:
		q.Set("user", f.Subject)
	case access.SubjectTeam:
		q.Set("team", f.Subject)
	}
	if f.Kind != "" {
		q.Set("kind", string(f.Kind))
	}
	if f.Object != "" {
		q.Set("object", f.Object)
	}
	// Ordered by id, as the ZooKeeper form orders them.
	list, err := apiList[access.Grant](c.Context, cl, "/grants", q)
	if err != nil {
		return err
	}
	return printGrants(c, list)
}

func apiTokenList(c *cli.Context) error {
	cl, err := apiNoArgs(c)
	if err != nil {
		return err
	}
	q := url.Values{}
	if u := c.String("user"); u != "" {
		q.Set("user", u)
	}
	list, err := apiList[access.TokenView](c.Context, cl, "/tokens", q)
	if err != nil {
		return err
	}
	// Oldest first, ties by id, as the ZooKeeper form.
	slices.SortStableFunc(list, func(a, b access.TokenView) int {
		if n := a.Created.Compare(b.Created); n != 0 {
			return n
		}
		return strings.Compare(a.ID, b.ID)
	})
	return printTokens(c, list)
}

// apiAccountDelete is the API form of `user delete NAME`, `team delete
// NAME` and `token revoke ID`: DELETE prefix+NAME.
func apiAccountDelete(kind, prefix, verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		arg := "NAME"
		if kind == "token" {
			arg = "ID"
		}
		args, err := parseArgs(c, arg)
		if err != nil {
			return err
		}
		if kind != "token" {
			if err := checkUserName(kind, args[0]); err != nil {
				return err
			}
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		if err := cl.do(c.Context, http.MethodDelete, prefix+url.PathEscape(args[0]), nil, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s %s %s\n", kind, printable(args[0]), verb)
		return nil
	}
}

// apiGrantChange is the API form of `grant add` (or `grant remove`).
func apiGrantChange(add bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := parseArgs(c, "KIND/NAME")
		if err != nil {
			return err
		}
		g, err := grantFromFlags(c, args[0])
		if err != nil {
			return err
		}
		cl, err := openAPI(c, true)
		if err != nil {
			return err
		}
		verb := "granted"
		if add {
			err = cl.do(c.Context, http.MethodPost, "/grants", nil, &g, nil)
		} else {
			verb = "removed"
			err = cl.do(c.Context, http.MethodDelete, "/grants/"+url.PathEscape(g.ID()), nil, nil, nil)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s %s\n", verb, printable(g.ID()))
		return nil
	}
}

// apiTeamInput is the body of POST /teams.
type apiTeamInput struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []string `json:"members"`
}

func apiTeamCreate(c *cli.Context) error {
	args, err := parseArgs(c, "NAME")
	if err != nil {
		return err
	}
	t := &access.Team{Name: args[0], Description: c.String("description"), Members: nonEmpty(c.StringSlice("member"))}
	if err := t.Validate(); err != nil {
		return &UsageError{Err: err}
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := apiTeamInput{Name: t.Name, Description: t.Description, Members: t.Members}
	if in.Members == nil {
		in.Members = []string{}
	}
	var made access.Team
	if err := cl.do(c.Context, http.MethodPost, "/teams", nil, &in, &made); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "team %s created\n", printable(made.Name))
	return nil
}

// apiTokenCreate is the API form of `token create`: POST /tokens (a token
// for another user needs a system administrator).
func apiTokenCreate(c *cli.Context) error {
	if _, err := tokenCreateFlags(c); err != nil {
		return err
	}
	cl, err := openAPI(c, true)
	if err != nil {
		return err
	}
	in := struct {
		User        string `json:"user"`
		Description string `json:"description,omitempty"`
		Expires     string `json:"expires"`
	}{User: c.String("user"), Description: c.String("description"), Expires: strings.TrimSpace(c.String("expires"))}
	var made struct {
		access.TokenView
		Token string `json:"token"`
	}
	if err := cl.do(c.Context, http.MethodPost, "/tokens", nil, &in, &made); err != nil {
		return err
	}
	return printNewToken(c, made.TokenView, made.Token)
}
