package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/credential"
)

func init() {
	extraCommands = append(extraCommands, credentialCommand)
}

// credentialKeyFlag names the key file of credentials. The key itself is
// never given on the command line, where other users could read it.
func credentialKeyFlag() cli.Flag {
	return &cli.StringFlag{Name: "credential-key-file", EnvVars: envs("JOBENGINE_CREDENTIAL_KEY_FILE"),
		Usage: "file holding the key that encrypts credentials (make one with `jobengine credential keygen FILE`)"}
}

// credentialKey loads the key named by --credential-key-file, if given.
func credentialKey(c *cli.Context, required bool) (*credential.Key, error) {
	path := c.String("credential-key-file")
	if path == "" && !required {
		return nil, nil
	}
	k, err := credential.LoadKeyFile(path)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	return k, nil
}

func credentialCommand() *cli.Command {
	return &cli.Command{
		Name:  "credential",
		Usage: "manage credentials: SSH logins, become and vault passwords, secret values",
		Description: "Credentials are stored in ZooKeeper with their secrets encrypted (AES-256-GCM) by a key read\n" +
			"from --credential-key-file. Secrets are read from files or stdin (-), never from flags, and never printed.",
		Subcommands: []*cli.Command{
			credentialKeygenCommand(), credentialCreateCommand(), credentialListCommand(),
			credentialShowCommand(), credentialDeleteCommand(),
		},
	}
}

func credentialKeygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new random credential key to FILE (mode 0600; FILE must not exist)",
		ArgsUsage: "FILE",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "FILE")
			if err != nil {
				return err
			}
			k, err := credential.GenerateKeyFile(args[0])
			if err != nil {
				return &UsageError{Err: err}
			}
			fmt.Fprintf(c.App.Writer, "wrote key %s to %s\n", k.ID(), args[0])
			return nil
		},
	}
}

func credentialCreateCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a credential",
		ArgsUsage: "NAME",
		Description: "Kinds and their fields:\n" +
			"  machine: --username, --ssh-key-file, --password-file, --become-password-file, --become-method, --become-user\n" +
			"  vault:   --vault-password-file, --vault-id\n" +
			"  secret:  --secret NAME=FILE (repeatable; NAME becomes an environment variable of the run)\n" +
			"A FILE of - is read from stdin (one secret at most). A final newline of a password is dropped.",
		Flags: withEnv("credential create",
			&cli.StringFlag{Name: "kind", Usage: "machine, vault or secret (required)"},
			&cli.StringFlag{Name: "description", Usage: "what the credential is for"},
			&cli.StringFlag{Name: "username", Usage: "login user (machine)"},
			&cli.StringFlag{Name: "ssh-key-file", Usage: "private key file (machine)"},
			&cli.StringFlag{Name: "password-file", Usage: "file holding the SSH password (machine)"},
			&cli.StringFlag{Name: "become-password-file", Usage: "file holding the become password (machine)"},
			&cli.StringFlag{Name: "become-method", Usage: "sudo, su, … (machine)"},
			&cli.StringFlag{Name: "become-user", Usage: "user to become (machine)"},
			&cli.StringFlag{Name: "vault-password-file", Usage: "file holding the vault password (vault)"},
			&cli.StringFlag{Name: "vault-id", Usage: "vault identity (vault; default: the default vault)"},
			&cli.StringSliceFlag{Name: "secret", Usage: "NAME=FILE: an environment variable and the file holding its value (secret)"},
			credentialKeyFlag(),
		),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			cred, err := newCredentialFromFlags(c, args[0])
			if err != nil {
				return err
			}
			key, err := credentialKey(c, true)
			if err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			st := credential.NewStore(cl.conn, key)
			if err := st.Create(cl.ctx, cred); err != nil {
				if errors.Is(err, credential.ErrExists) || errors.Is(err, credential.ErrInvalid) {
					return &UsageError{Err: err}
				}
				return err
			}
			fmt.Fprintf(c.App.Writer, "credential %s created (%s; secrets: %s)\n", cred.Name, cred.Kind, dash(strings.Join(cred.SecretFields, ", ")))
			return nil
		},
	}
}

// newCredentialFromFlags reads the credential of `credential create`
// from its flags, its secrets from the files (or stdin) they name, checked.
func newCredentialFromFlags(c *cli.Context, name string) (*credential.Credential, error) {
	var err error
	if c.String("kind") == "" {
		return nil, usagef("--kind is missing: give machine, vault or secret")
	}
	cred := &credential.Credential{
		Name: name, Kind: credential.Kind(strings.ToLower(c.String("kind"))), Description: c.String("description"),
		Username: c.String("username"), BecomeMethod: c.String("become-method"), BecomeUser: c.String("become-user"),
		VaultID: c.String("vault-id"),
	}
	rd := &secretReader{}
	s := &cred.Secrets
	s.SSHKey, err = rd.read("--ssh-key-file", c.String("ssh-key-file"), false)
	if err == nil {
		s.Password, err = rd.read("--password-file", c.String("password-file"), true)
	}
	if err == nil {
		s.BecomePassword, err = rd.read("--become-password-file", c.String("become-password-file"), true)
	}
	if err == nil {
		s.VaultPassword, err = rd.read("--vault-password-file", c.String("vault-password-file"), true)
	}
	for _, kv := range c.StringSlice("secret") {
		if err != nil {
			break
		}
		name, file, ok := strings.Cut(kv, "=")
		if !ok || name == "" || file == "" {
			return nil, usagef("--secret %q: want NAME=FILE (the value is read from FILE, or stdin for -)", kv)
		}
		if s.Values == nil {
			s.Values = map[string]string{}
		}
		if _, dup := s.Values[name]; dup {
			return nil, usagef("--secret %s is given twice", name)
		}
		s.Values[name], err = rd.read("--secret "+name, file, true)
	}
	if err != nil {
		return nil, err
	}
	if err := cred.Validate(); err != nil {
		return nil, &UsageError{Err: err}
	}
	return cred, nil
}

// secretReader reads secrets from files, or once from stdin.
type secretReader struct {
	usedStdin string
}

func (r *secretReader) read(flag, path string, trimNewline bool) (string, error) {
	if path == "" {
		return "", nil
	}
	var data []byte
	var err error
	if path == "-" {
		if r.usedStdin != "" {
			return "", usagef("%s and %s both read stdin; give one of them a file", r.usedStdin, flag)
		}
		r.usedStdin = flag
		data, err = io.ReadAll(io.LimitReader(os.Stdin, credential.MaxSecretBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	if len(data) > credential.MaxSecretBytes {
		return "", usagef("%s: more than %d bytes", flag, credential.MaxSecretBytes)
	}
	s := string(data)
	if trimNewline {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	if s == "" {
		return "", usagef("%s: %s is empty", flag, path)
	}
	return s, nil
}

func credentialListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list credentials (never their secrets)",
		Flags: withEnv("credential list", jsonFlag("print JSON")),
		Action: func(c *cli.Context) error {
			if _, err := parseArgs(c); err != nil {
				return err
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			list, bad, err := credential.NewStore(cl.conn, nil).List(cl.ctx)
			if err != nil {
				return err
			}
			for _, b := range bad {
				fmt.Fprintf(c.App.ErrWriter, "skipped: %v\n", b)
			}
			return printCredentials(c, list)
		},
	}
}

func credentialShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a credential: its fields and which secrets are set, never their values",
		ArgsUsage: "NAME",
		Flags:     withEnv("credential show", jsonFlag("print JSON")),
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if !credential.ValidName(args[0]) {
				return usagef("%q is not a credential name", args[0])
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			cr, err := credential.NewStore(cl.conn, nil).Get(cl.ctx, args[0])
			if err != nil {
				return err
			}
			return printCredential(c, cr)
		},
	}
}

func credentialDeleteCommand() *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a credential",
		ArgsUsage: "NAME",
		Action: func(c *cli.Context) error {
			args, err := parseArgs(c, "NAME")
			if err != nil {
				return err
			}
			if !credential.ValidName(args[0]) {
				return usagef("%q is not a credential name", args[0])
			}
			cl, err := openClient(c)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := credential.NewStore(cl.conn, nil).Delete(cl.ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "credential %s deleted\n", args[0])
			return nil
		},
	}
}

// printCredentials prints credentials as `credential list` does.
func printCredentials(c *cli.Context, list []*credential.Credential) error {
	if c.Bool("json") {
		if list == nil {
			list = []*credential.Credential{}
		}
		return writeJSON(c.App.Writer, list)
	}
	tw := newTable(c.App.Writer)
	fmt.Fprintln(tw, "NAME\tKIND\tUSERNAME\tSECRETS\tCREATED\tDESCRIPTION")
	for _, cr := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cr.Name, cr.Kind, dash(cr.Username), dash(strings.Join(cr.SecretFields, ",")), stamp(cr.Created), oneLine(cr.Description))
	}
	return tw.Flush()
}

// printCredential prints a credential as `credential show` does.
func printCredential(c *cli.Context, cr *credential.Credential) error {
	if c.Bool("json") {
		return writeJSON(c.App.Writer, cr)
	}
	tw := newTable(c.App.Writer)
	for _, row := range [][2]string{
		{"name", cr.Name}, {"kind", string(cr.Kind)}, {"description", dash(cr.Description)},
		{"username", dash(cr.Username)}, {"become-method", dash(cr.BecomeMethod)}, {"become-user", dash(cr.BecomeUser)},
		{"vault-id", dash(cr.VaultID)}, {"secrets", dash(strings.Join(cr.SecretFields, ", "))}, {"created", stamp(cr.Created)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
