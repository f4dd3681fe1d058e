package command

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/jobengine/jobengine/engine/access"
)

func init() {
	extraCommands = append(extraCommands, loginCommand, logoutCommand)
	apiNeutral["logout"] = true
}

// apiTokenRequest is the body of POST /tokens.
type apiTokenRequest struct {
	Description string `json:"description"`
	Expires     string `json:"expires,omitempty"`
}

// apiNewToken is the part of the answer of POST /tokens that login keeps.
type apiNewToken struct {
	ID      string `json:"id"`
	User    string `json:"user"`
	Token   string `json:"token"`
	Expires string `json:"expires"`
}

func loginCommand() *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "create an API token with a user's password and store it for --api",
		Description: "Asks the API given by --api (or $JOBENGINE_API_URL) for a new token of the user, authenticating\n" +
			"with the password, which is read from the terminal, from --password-file, or from standard input\n" +
			"(never from the command line). The token is written, readable by its owner only (mode 0600), to\n" +
			"--api-token-file, or else to $XDG_CONFIG_HOME/jobengine/token (~/.config/jobengine/token), where\n" +
			"the commands run with --api find it. Revoke it with `jobengine token revoke ID` or DELETE\n" +
			"/api/v1/tokens/ID.",
		Flags: withEnv("login",
			&cli.StringFlag{Name: "user", Usage: "the user to log in as (default: $USER)"},
			&cli.StringFlag{Name: "password-file", Usage: "read the password from this file (- reads standard input); " +
				"without it the password is asked for on the terminal, or read from standard input when it is not one"},
			&cli.StringFlag{Name: "expires", Usage: "the token's lifetime, such as 90d or 12h, or never (default: the API's, 90d)"},
			&cli.StringFlag{Name: "description", Usage: "what the token is for (default: jobengine login on HOSTNAME)"},
		),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			if c.String("api") == "" {
				return usagef("login needs the API's address: give --api URL or set $JOBENGINE_API_URL")
			}
			user := c.String("user")
			if user == "" {
				user = os.Getenv("USER")
			}
			if user == "" {
				return usagef("login: give --user NAME")
			}
			if err := checkUserName("user", user); err != nil {
				return err
			}
			file := c.String("api-token-file")
			if file == "" {
				f, err := defaultTokenFile()
				if err != nil {
					return usagef("%v", err)
				}
				file = f
			}
			desc := c.String("description")
			if desc == "" {
				host, _ := os.Hostname()
				desc = "jobengine login on " + host
			}
			cl, err := openAPI(c, false)
			if err != nil {
				return err
			}
			pw, err := readLoginPassword(c, user)
			if err != nil {
				return err
			}
			cl.user, cl.password = user, pw
			var tok apiNewToken
			err = cl.do(c.Context, http.MethodPost, "/tokens", nil, apiTokenRequest{Description: desc, Expires: c.String("expires")}, &tok)
			if err != nil {
				return err
			}
			if !access.LooksLikeToken(tok.Token) {
				return fmt.Errorf("%w: POST /tokens: the answer holds no token", errAPI)
			}
			if err := writePrivateFile(file, []byte(tok.Token+"\n")); err != nil {
				return fmt.Errorf("the token %s was created but could not be stored (revoke it with `jobengine token revoke %s`): %w", tok.ID, tok.ID, err)
			}
			expires := "never"
			if tok.Expires != "" {
				expires = tok.Expires
			}
			fmt.Fprintf(c.App.Writer, "logged in as %s: token %s (expires %s) stored in %s\n", printable(tok.User), printable(tok.ID), printable(expires), file)
			return nil
		},
	}
}

func logoutCommand() *cli.Command {
	return &cli.Command{
		Name:  "logout",
		Usage: "revoke the API token in use and delete the file `jobengine login` stored it in",
		Description: "Revokes, through the API given by --api (or $JOBENGINE_API_URL), the token the commands run with\n" +
			"--api use (--api-token-file, $JOBENGINE_API_TOKEN, or the file `jobengine login` wrote), and deletes\n" +
			"the token's file. A token the API no longer accepts (expired or revoked) is only deleted.",
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			if c.String("api") == "" {
				return usagef("logout needs the API's address: give --api URL or set $JOBENGINE_API_URL")
			}
			cl, err := openAPI(c, true)
			if err != nil {
				return err
			}
			id, ok := access.TokenID(cl.token)
			if !ok {
				return usagef("the API token in use does not have the form of a token (jet_…): check --api-token-file or $%s", apiTokenEnv)
			}
			err = cl.do(c.Context, http.MethodDelete, "/tokens/"+id, nil, nil, nil)
			var status *apiStatusError
			switch {
			case errors.As(err, &status) && status.code == http.StatusUnauthorized:
				fmt.Fprintf(c.App.ErrWriter, "jobengine: token %s was no longer accepted (expired or revoked)\n", id)
			case err != nil:
				return err
			default:
				fmt.Fprintf(c.App.Writer, "token %s revoked\n", id)
			}
			file := c.String("api-token-file")
			if file == "" && os.Getenv(apiTokenEnv) == "" && os.Getenv(apiTokenEnvAlt) == "" {
				if file, err = defaultTokenFile(); err != nil {
					return usagef("%v", err)
				}
			}
			if file == "" {
				fmt.Fprintf(c.App.Writer, "the token came from the environment: unset $%s\n", apiTokenEnv)
				return nil
			}
			if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("the token is revoked, but its file stays: %w", err)
			}
			fmt.Fprintf(c.App.Writer, "%s deleted\n", file)
			return nil
		},
	}
}

// readLoginPassword reads the password from --password-file, the terminal
// (asked once) or standard input.
func readLoginPassword(c *cli.Context, user string) (string, error) {
	var raw []byte
	switch f := c.String("password-file"); {
	case f != "":
		b, err := readFile(f, access.MaxPassword+2)
		if err != nil {
			return "", err
		}
		raw = b
	case term.IsTerminal(int(os.Stdin.Fd())):
		fmt.Fprintf(c.App.ErrWriter, "password for %s: ", user)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		raw = b
	default:
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, access.MaxPassword+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		raw = []byte(line)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
	if pw == "" {
		return "", usagef("login: the password is empty (type it on the terminal, or give --password-file)")
	}
	return pw, nil
}

// writePrivateFile writes data to path, readable by its owner only, in
// its directory (made 0700 when missing); a reader sees the old file or
// the new one, never a part.
func writePrivateFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
