package api

import (
	"errors"
	"net/http"

	"github.com/jobengine/jobengine/engine/credential"
)

// Credentials (engine/credential): SSH keys and passwords, vault
// passwords, secret values, sealed with the cluster's credential key. The
// secrets are write-only: given at creation, never shown (secret-fields
// names those that are set). Sealing needs the key
// (Config.CredentialKey, the controller's --credential-key-file); reading
// and deleting do not. They have no roles of their own yet: system
// administrators and auditors see them, system administrators create and
// delete them.

func (s *Server) credentialRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/credentials", handle: s.listCredentials},
		{method: "POST", pattern: Prefix + "/credentials", handle: s.createCredential},
		{method: "GET", pattern: Prefix + "/credentials/{name}", handle: s.showCredential},
		{method: "DELETE", pattern: Prefix + "/credentials/{name}", handle: s.deleteCredential},
	}
}

func credentialError(err error) error {
	switch {
	case errors.Is(err, credential.ErrKey):
		return errorf(http.StatusServiceUnavailable, "%v: start this controller with --credential-key-file (the key the executors open credentials with)", err)
	case errors.Is(err, credential.ErrInvalid):
		return badField("", "%v", err)
	case errors.Is(err, credential.ErrNotFound):
		return notFound("%v", err)
	case errors.Is(err, credential.ErrExists):
		return errorf(http.StatusConflict, "%v", err)
	}
	return err
}

func (s *Server) listCredentials(rq *request) error {
	lp, f, err := rq.namedListParams("kind")
	if err != nil {
		return err
	}
	if err := rq.readsConfig("credentials"); err != nil {
		return err
	}
	all, _, err := s.credentials.List(rq.ctx)
	if err != nil {
		return credentialError(err)
	}
	out := []*credential.Credential{}
	for _, c := range all {
		if k := rq.param("kind"); k == "" || string(c.Kind) == k {
			out = append(out, c)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(c *credential.Credential) named {
		return named{Name: c.Name, Description: c.Description, Created: c.Created, Updated: c.Created}
	}, f, lp))
}

func (s *Server) showCredential(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if err := rq.readsConfig("credentials"); err != nil {
		return err
	}
	c, err := s.credentials.Get(rq.ctx, rq.r.PathValue("name"))
	if err != nil {
		return credentialError(err)
	}
	return rq.reply(http.StatusOK, c)
}

// credentialInput is the body of POST /credentials: the credential and
// its secrets (write-only).
type credentialInput struct {
	Name         string             `json:"name"`
	Kind         credential.Kind    `json:"kind"`
	Description  string             `json:"description"`
	Username     string             `json:"username"`
	BecomeMethod string             `json:"become-method"`
	BecomeUser   string             `json:"become-user"`
	VaultID      string             `json:"vault-id"`
	Secrets      credential.Secrets `json:"secrets"`
}

func (s *Server) createCredential(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		return forbidden("creating a credential needs a system administrator")
	}
	var in credentialInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	c := &credential.Credential{Name: in.Name, Kind: in.Kind, Description: in.Description, Username: in.Username,
		BecomeMethod: in.BecomeMethod, BecomeUser: in.BecomeUser, VaultID: in.VaultID, Secrets: in.Secrets}
	if err := c.Validate(); err != nil {
		return credentialError(err)
	}
	if err := s.credentials.Create(rq.ctx, c); err != nil {
		return credentialError(err)
	}
	rq.w.Header().Set("Location", Prefix+"/credentials/"+c.Name)
	return rq.reply(http.StatusCreated, c)
}

func (s *Server) deleteCredential(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if !rq.p.IsAdmin() {
		if err := rq.readsConfig("credentials"); err != nil {
			return notFound("%v: %s", credential.ErrNotFound, rq.r.PathValue("name"))
		}
		return forbidden("deleting a credential needs a system administrator")
	}
	if err := s.credentials.Delete(rq.ctx, rq.r.PathValue("name")); err != nil {
		return credentialError(err)
	}
	return rq.noContent()
}
