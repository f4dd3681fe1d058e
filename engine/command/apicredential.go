package command

// Credentials and notification templates through the API: the same
// arguments and output as their ZooKeeper forms. No secret goes through
// these commands: the API never shows one.

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/credential"
)

func init() {
	apiActions["credential list"] = apiListAction("/credentials", printCredentials)
	apiActions["credential show"] = apiCredentialShow
	apiActions["credential delete"] = apiCredentialDelete
	apiActions["notification delete"] = apiNotificationDelete
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
