// Package credential holds credential objects: what a job needs to reach
// and change its hosts (an SSH user and key or password, a become
// password), to open Ansible vaults, or any other secret values. They live
// in ZooKeeper under /config/credentials/<name>, their secrets encrypted
// with AES-256-GCM under a key read from a key file that only controllers
// and executors hold. A credential's secrets are decrypted for one run and
// never written into a job, a log line, an event or Elasticsearch.
package credential

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Errors of this package.
var (
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("invalid credential")
	// ErrNotFound means no credential has that name.
	ErrNotFound = errors.New("credential not found")
	// ErrExists means a credential of that name exists already.
	ErrExists = errors.New("credential exists")
	// ErrKey is wrapped by errors about the key file and decryption.
	ErrKey = errors.New("credential key")
	// ErrConflict means the credential changed while it was being
	// updated: read it again and retry.
	ErrConflict = errors.New("credential changed meanwhile")
)

// Kind is the kind of a credential.
type Kind string

// The kinds of credentials.
const (
	// Machine: how to log in to hosts and become another user.
	Machine Kind = "machine"
	// Vault: the password of Ansible vaults (with an optional vault id).
	Vault Kind = "vault"
	// Secret: named secret values, given to a run as environment variables.
	Secret Kind = "secret"
)

// Kinds lists every kind.
var Kinds = []Kind{Machine, Vault, Secret}

// Limits.
const (
	// MaxSecretBytes bounds the secrets of one credential, encoded.
	MaxSecretBytes = 64 << 10
	// MaxValues bounds the values of a secret credential.
	MaxValues = 100
)

// Secrets are a credential's secret values, only ever held decrypted in
// memory and in the files of a run.
type Secrets struct {
	// SSHKey is a private key (PEM or OpenSSH format), for Machine.
	SSHKey string `json:"ssh-key,omitempty"`
	// Password is the SSH password, for Machine.
	Password string `json:"password,omitempty"`
	// BecomePassword is the privilege escalation password, for Machine.
	BecomePassword string `json:"become-password,omitempty"`
	// VaultPassword is the vault password, for Vault.
	VaultPassword string `json:"vault-password,omitempty"`
	// Values are environment variables and their values, for Secret.
	Values map[string]string `json:"values,omitempty"`
}

// Fields names the secrets that are set, sorted (never their values).
func (s *Secrets) Fields() []string {
	var out []string
	for name, v := range map[string]string{"ssh-key": s.SSHKey, "password": s.Password, "become-password": s.BecomePassword, "vault-password": s.VaultPassword} {
		if v != "" {
			out = append(out, name)
		}
	}
	for k := range s.Values {
		out = append(out, "value:"+k)
	}
	sort.Strings(out)
	return out
}

// Credential is a credential object. Secrets is filled only by
// Store.Open, with the key; everything else is not secret.
type Credential struct {
	Name        string    `json:"name"`
	Kind        Kind      `json:"kind"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	// Updated is when it was last changed (zero: never).
	Updated time.Time `json:"updated,omitempty"`
	// Username is the login user, for Machine.
	Username string `json:"username,omitempty"`
	// BecomeMethod and BecomeUser choose privilege escalation, for Machine.
	BecomeMethod string `json:"become-method,omitempty"`
	BecomeUser   string `json:"become-user,omitempty"`
	// VaultID is the vault identity, for Vault (empty: the default vault).
	VaultID string `json:"vault-id,omitempty"`
	// SecretFields names the secrets that are set (never their values).
	SecretFields []string `json:"secret-fields"`

	// Secrets are the decrypted secrets; never encoded.
	Secrets Secrets `json:"-"`
}

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
	envRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	plainRE = regexp.MustCompile(`^[a-zA-Z0-9_.@-]{1,64}$`)
)

// ValidName reports whether s can name a credential.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// reservedEnv are variables a secret credential may not set: they belong to
// the engine or change how ansible-playbook and Python run.
func reservedEnv(name string) bool {
	up := strings.ToUpper(name)
	for _, p := range []string{"ANSIBLE_", "JOBENGINE_", "PYTHON", "LD_"} {
		if strings.HasPrefix(up, p) {
			return true
		}
	}
	switch up {
	case "PATH", "HOME", "USER", "SHELL", "PWD", "TMPDIR":
		return true
	}
	return false
}

// Validate reports what is wrong with c, secrets included.
func (c *Credential) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if !ValidName(c.Name) {
		return bad("name %q: use 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit", c.Name)
	}
	s := &c.Secrets
	other := func(kind Kind, fields ...string) error {
		for _, f := range fields {
			return bad("%s: a %s credential has no %s", c.Name, kind, f)
		}
		return nil
	}
	switch c.Kind {
	case Machine:
		if c.Username == "" && s.SSHKey == "" && s.Password == "" && s.BecomePassword == "" {
			return bad("%s: a machine credential needs a username, an SSH key, a password or a become password", c.Name)
		}
		if s.SSHKey != "" && !strings.Contains(s.SSHKey, "PRIVATE KEY-----") {
			return bad("%s: the SSH key is not a private key (want a PEM or OpenSSH file starting with -----BEGIN … PRIVATE KEY-----)", c.Name)
		}
		for what, v := range map[string]string{"username": c.Username, "become-method": c.BecomeMethod, "become-user": c.BecomeUser} {
			if v != "" && !plainRE.MatchString(v) {
				return bad("%s: %s %q: use letters, digits, '_', '.', '@' or '-'", c.Name, what, v)
			}
		}
		if err := other(Machine, nonEmpty(map[string]string{"vault-id": c.VaultID, "vault-password": s.VaultPassword})...); err != nil {
			return err
		}
		if len(s.Values) > 0 {
			return other(Machine, "values")
		}
	case Vault:
		if s.VaultPassword == "" {
			return bad("%s: a vault credential needs a vault password", c.Name)
		}
		if c.VaultID != "" && !plainRE.MatchString(c.VaultID) {
			return bad("%s: vault id %q: use letters, digits, '_', '.', '@' or '-'", c.Name, c.VaultID)
		}
		if err := other(Vault, nonEmpty(map[string]string{"username": c.Username, "ssh-key": s.SSHKey, "password": s.Password,
			"become-password": s.BecomePassword, "become-method": c.BecomeMethod, "become-user": c.BecomeUser})...); err != nil {
			return err
		}
		if len(s.Values) > 0 {
			return other(Vault, "values")
		}
	case Secret:
		if len(s.Values) == 0 {
			return bad("%s: a secret credential needs at least one value (--secret NAME=FILE)", c.Name)
		}
		if len(s.Values) > MaxValues {
			return bad("%s: %d values; at most %d", c.Name, len(s.Values), MaxValues)
		}
		for k, v := range s.Values {
			if !envRE.MatchString(k) {
				return bad("%s: %q is not an environment variable name (letters, digits and '_', not starting with a digit)", c.Name, k)
			}
			if reservedEnv(k) {
				return bad("%s: %s is reserved for the engine and Ansible; choose another name", c.Name, k)
			}
			if v == "" {
				return bad("%s: value %s is empty", c.Name, k)
			}
		}
		if err := other(Secret, nonEmpty(map[string]string{"username": c.Username, "ssh-key": s.SSHKey, "password": s.Password,
			"become-password": s.BecomePassword, "vault-password": s.VaultPassword, "vault-id": c.VaultID,
			"become-method": c.BecomeMethod, "become-user": c.BecomeUser})...); err != nil {
			return err
		}
	default:
		return bad("%s: kind %q: want machine, vault or secret", c.Name, c.Kind)
	}
	for _, v := range c.SecretValues() {
		if strings.ContainsRune(v, 0) {
			return bad("%s: a secret contains a NUL byte", c.Name)
		}
	}
	return nil
}

func nonEmpty(m map[string]string) []string {
	var out []string
	for k, v := range m {
		if v != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// SecretValues returns every secret value, to redact from output.
func (c *Credential) SecretValues() []string {
	s := &c.Secrets
	out := []string{}
	for _, v := range []string{s.SSHKey, s.Password, s.BecomePassword, s.VaultPassword} {
		if v != "" {
			out = append(out, v)
		}
	}
	for _, v := range s.Values {
		out = append(out, v)
	}
	return out
}

// Portable is a credential with its secrets, as it travels to a remote
// worker inside the private data directory of a run (a file of mode 0600
// that the worker removes once read). The stream that carries it must be
// as private as the worker's connection (ssh).
type Portable struct {
	Credential
	Secrets Secrets `json:"secrets"`
}

// Portable returns c with its secrets, to transmit.
func (c *Credential) Portable() Portable { return Portable{Credential: *c, Secrets: c.Secrets} }

// Open returns the credential a Portable carries, validated.
func (p *Portable) Open() (*Credential, error) {
	c := p.Credential
	c.Secrets = p.Secrets
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
