package ansible

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jobengine/jobengine/engine/credential"
)

// materialized is what credentials add to a run.
type materialized struct {
	args    []string
	env     map[string]string
	cleanup func()
}

// materialize gives credentials to a run: secrets as files (0600) in dir,
// named by ansible-playbook's arguments, and a secret credential's values
// as environment variables. The files are removed by cleanup, as soon as
// the run ends. A run takes at most one machine credential, and vault
// credentials of distinct vault ids, as AWX allows.
func materialize(dir string, creds []*credential.Credential) (*materialized, error) {
	m := &materialized{env: map[string]string{}}
	var files []string
	m.cleanup = func() {
		for _, f := range files {
			_ = os.Remove(f)
		}
	}
	write := func(c *credential.Credential, what, content string) (string, error) {
		f := filepath.Join(dir, "cred-"+c.Name+"-"+what)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			return "", fmt.Errorf("writing credential %s: %w", c.Name, err)
		}
		files = append(files, f)
		return f, nil
	}
	fail := func(err error) (*materialized, error) {
		m.cleanup()
		return nil, err
	}
	var machine string
	vaults := map[string]string{}
	envFrom := map[string]string{}
	for _, c := range creds {
		if err := c.Validate(); err != nil {
			return fail(err)
		}
		s := &c.Secrets
		switch c.Kind {
		case credential.Machine:
			if machine != "" {
				return fail(fmt.Errorf("%w: credentials %s and %s are both machine credentials; a run takes one", ErrPayload, machine, c.Name))
			}
			machine = c.Name
			if c.Username != "" {
				m.args = append(m.args, "--user", c.Username)
			}
			if s.SSHKey != "" {
				key := s.SSHKey
				if !strings.HasSuffix(key, "\n") {
					key += "\n" // ssh refuses a key without its final newline
				}
				f, err := write(c, "ssh-key", key)
				if err != nil {
					return fail(err)
				}
				m.args = append(m.args, "--private-key", f)
			}
			if s.Password != "" {
				f, err := write(c, "password", s.Password)
				if err != nil {
					return fail(err)
				}
				m.args = append(m.args, "--connection-password-file", f)
			}
			if s.BecomePassword != "" {
				f, err := write(c, "become-password", s.BecomePassword)
				if err != nil {
					return fail(err)
				}
				m.args = append(m.args, "--become-password-file", f)
			}
			if c.BecomeMethod != "" {
				m.args = append(m.args, "--become-method", c.BecomeMethod)
			}
			if c.BecomeUser != "" {
				m.args = append(m.args, "--become-user", c.BecomeUser)
			}
		case credential.Vault:
			if other, ok := vaults[c.VaultID]; ok {
				return fail(fmt.Errorf("%w: credentials %s and %s are vault credentials of the same vault id %q", ErrPayload, other, c.Name, c.VaultID))
			}
			vaults[c.VaultID] = c.Name
			f, err := write(c, "vault-password", s.VaultPassword)
			if err != nil {
				return fail(err)
			}
			if c.VaultID != "" {
				m.args = append(m.args, "--vault-id", c.VaultID+"@"+f)
			} else {
				m.args = append(m.args, "--vault-password-file", f)
			}
		case credential.Secret:
			for k, v := range s.Values {
				if other, ok := envFrom[k]; ok {
					return fail(fmt.Errorf("%w: credentials %s and %s both set %s", ErrPayload, other, c.Name, k))
				}
				envFrom[k] = c.Name
				m.env[k] = v
			}
		}
	}
	return m, nil
}
