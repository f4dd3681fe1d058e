package command

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/credentials"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Names of the systemd credentials (LoadCredential=NAME:PATH) read when the
// matching --…-file flag is not set.
const (
	credZooKeeper  = "zookeeper"
	credESPassword = "es-password"
	credESAPIKey   = "es-api-key"
)

// zkSecurity reads the ZooKeeper credentials file and TLS files named by
// the global flags; nil, nil when none is set.
func zkSecurity(c *cli.Context) (*zkconn.Auth, *tls.Config, error) {
	var auth *zkconn.Auth
	if p := credentials.Lookup(c.String("zk-credentials-file"), credZooKeeper); p != "" {
		a, err := zkconn.ReadCredentialsFile(p)
		if err != nil {
			return nil, nil, usagef("--zk-credentials-file: %v", err)
		}
		auth = a
	}
	files := credentials.TLSFiles{CA: c.String("zk-tls-ca"), Cert: c.String("zk-tls-cert"), Key: c.String("zk-tls-key")}
	if files.Empty() && !c.Bool("zk-tls") {
		return auth, nil, nil
	}
	cfg, err := files.Config()
	if err != nil {
		return nil, nil, usagef("--zk-tls-ca/--zk-tls-cert/--zk-tls-key: %v", err)
	}
	return auth, cfg, nil
}

// esSecrets fills cfg's credentials and TLS from the global flags: the
// password and API key come from files (or systemd credentials); the
// deprecated --es-password still works, with a warning when it was given
// on the command line, where every user of the machine can read it.
func esSecrets(c *cli.Context, cfg *index.Config) error {
	pwFile := credentials.Lookup(c.String("es-password-file"), credESPassword)
	if pw := c.String("es-password"); pw != "" {
		if c.String("es-password-file") != "" {
			return usagef("--es-password and --es-password-file both given: keep --es-password-file")
		}
		if os.Getenv("JOBENGINE_ES_PASSWORD") != pw {
			fmt.Fprintln(c.App.ErrWriter, "jobengine: warning: --es-password is deprecated: every user of the machine can read it in the process list; put the password in a file and give --es-password-file")
		}
		cfg.Password = pw
	} else if pwFile != "" {
		pw, err := credentials.ReadSecret(pwFile)
		if err != nil {
			return usagef("--es-password-file: %v", err)
		}
		cfg.Password = pw
	}
	if p := credentials.Lookup(c.String("es-api-key-file"), credESAPIKey); p != "" {
		key, err := credentials.ReadSecret(p)
		if err != nil {
			return usagef("--es-api-key-file: %v", err)
		}
		if cfg.Username != "" || cfg.Password != "" {
			return usagef("an Elasticsearch API key and a username or password are both given: keep one of them")
		}
		cfg.APIKey = key
	}
	files := credentials.TLSFiles{CA: c.String("es-tls-ca"), Cert: c.String("es-tls-cert"), Key: c.String("es-tls-key")}
	if !files.Empty() {
		tlsCfg, err := files.Config()
		if err != nil {
			return usagef("--es-tls-ca/--es-tls-cert/--es-tls-key: %v", err)
		}
		cfg.TLS = tlsCfg
	}
	return nil
}
