package api

import (
	"errors"
	"net/http"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/credential"
)

// Credentials (engine/credential): SSH keys and passwords, vault
// passwords, secret values, sealed with the cluster's credential key. The
// secrets are write-only: given at creation or in a change, never shown
// (secret-fields names those that are set). Sealing needs the key
// (Config.CredentialKey, the controller's --credential-key-file); reading
// and deleting do not. A system administrator creates them; read shows
// one, execute uses it in a template, admin changes, deletes and grants
// on it; an auditor sees them all.

func (s *Server) credentialRoutes() []route {
	return []route{
		{method: "GET", pattern: Prefix + "/credentials", handle: s.listCredentials},
		{method: "POST", pattern: Prefix + "/credentials", handle: s.createCredential},
		{method: "GET", pattern: Prefix + "/credentials/{name}", handle: s.showCredential},
		{method: "PUT", pattern: Prefix + "/credentials/{name}", handle: s.replaceCredential},
		{method: "PATCH", pattern: Prefix + "/credentials/{name}", handle: s.patchCredential},
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
	case errors.Is(err, credential.ErrExists), errors.Is(err, credential.ErrConflict):
		return errorf(http.StatusConflict, "%v", err)
	}
	return err
}

func (s *Server) listCredentials(rq *request) error {
	lp, f, err := rq.namedListParams("kind")
	if err != nil {
		return err
	}
	all, _, err := s.credentials.List(rq.ctx)
	if err != nil {
		return credentialError(err)
	}
	out := []*credential.Credential{}
	for _, c := range all {
		if !rq.p.Can(access.KindCredential, c.Name, access.RoleRead) {
			continue
		}
		if k := rq.param("kind"); k == "" || string(c.Kind) == k {
			out = append(out, c)
		}
	}
	return rq.reply(http.StatusOK, pageOf(out, func(c *credential.Credential) named {
		updated := c.Updated
		if updated.IsZero() {
			updated = c.Created
		}
		return named{Name: c.Name, Description: c.Description, Created: c.Created, Updated: updated}
	}, f, lp))
}

// credentialWith reads a credential the caller holds role on: 404 when it
// may not see it, 403 when it sees it without role.
func (rq *request) credentialWith(role access.Role, doing string) (*credential.Credential, error) {
	c, _, err := rq.credentialVersion(role, doing)
	return c, err
}

// credentialVersion is credentialWith with the credential's version.
func (rq *request) credentialVersion(role access.Role, doing string) (*credential.Credential, int32, error) {
	name := rq.r.PathValue("name")
	if !rq.p.Can(access.KindCredential, name, access.RoleRead) {
		return nil, 0, notFound("%v: %s", credential.ErrNotFound, name)
	}
	c, ver, err := rq.s.credentials.GetVersion(rq.ctx, name)
	if err != nil {
		return nil, 0, credentialError(err)
	}
	if !rq.p.Can(access.KindCredential, name, role) {
		return nil, 0, forbidden("%s credential %s needs the %s role on it", doing, name, role)
	}
	return c, ver, nil
}

func (s *Server) showCredential(rq *request) error {
	return showVersioned(rq, func() (*credential.Credential, int32, error) { return rq.credentialVersion(access.RoleRead, "reading") }, same)
}

// credentialInput is the body of POST, PUT and PATCH /credentials: the
// credential and its secrets (write-only). In PUT and PATCH, secrets
// replace the secrets as a whole when given and keep them when not (a
// client never sees them to send them back).
type credentialInput struct {
	Name         *string             `json:"name"`
	Kind         *credential.Kind    `json:"kind"`
	Description  *string             `json:"description"`
	Username     *string             `json:"username"`
	BecomeMethod *string             `json:"become-method"`
	BecomeUser   *string             `json:"become-user"`
	VaultID      *string             `json:"vault-id"`
	Secrets      *credential.Secrets `json:"secrets"`
}

// apply sets on c the fields given (every field but the secrets when
// replace: those not given are cleared).
func (in credentialInput) apply(c *credential.Credential, replace bool) {
	set := func(dst *string, v *string) {
		switch {
		case v != nil:
			*dst = *v
		case replace:
			*dst = ""
		}
	}
	if in.Kind != nil {
		c.Kind = *in.Kind
	}
	set(&c.Description, in.Description)
	set(&c.Username, in.Username)
	set(&c.BecomeMethod, in.BecomeMethod)
	set(&c.BecomeUser, in.BecomeUser)
	set(&c.VaultID, in.VaultID)
	if in.Secrets != nil {
		c.Secrets = *in.Secrets
	}
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
	c := &credential.Credential{}
	if in.Name != nil {
		c.Name = *in.Name
	}
	in.apply(c, true)
	if err := c.Validate(); err != nil {
		return credentialError(err)
	}
	if err := s.credentials.Create(rq.ctx, c); err != nil {
		return credentialError(err)
	}
	rq.w.Header().Set("Location", Prefix+"/credentials/"+c.Name)
	return rq.reply(http.StatusCreated, c)
}

func (s *Server) replaceCredential(rq *request) error { return s.writeCredential(rq, true) }
func (s *Server) patchCredential(rq *request) error   { return s.writeCredential(rq, false) }

// writeCredential replaces (PUT) or changes (PATCH) a credential with
// compare-and-set; its secrets are sealed again, so the key is needed.
func (s *Server) writeCredential(rq *request, replace bool) error {
	if err := rq.query(); err != nil {
		return err
	}
	cur, ver, err := rq.credentialVersion(access.RoleAdmin, "changing")
	if err != nil {
		return err
	}
	// Without If-Match the change applies to the credential as it is when
	// written (any version); with it, to the version it names.
	if err := rq.ifMatch("credential", cur.Name, ver); err != nil {
		return err
	}
	if len(rq.r.Header.Values("If-Match")) == 0 {
		ver = -1
	}
	var in credentialInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Name != nil && *in.Name != cur.Name {
		return badField("name", "the name of a credential cannot change (create another one)")
	}
	if replace && in.Kind == nil {
		return badField("kind", "kind is required (machine, vault or secret)")
	}
	c, next, err := s.credentials.UpdateVersion(rq.ctx, cur.Name, ver, func(c *credential.Credential) error {
		in.apply(c, replace)
		return nil
	})
	if err != nil {
		return credentialError(rq.conflicted(err, "credential", cur.Name))
	}
	rq.setETag(next)
	return rq.reply(http.StatusOK, c)
}

func (s *Server) deleteCredential(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	c, err := rq.credentialWith(access.RoleAdmin, "deleting")
	if err != nil {
		return err
	}
	if err := s.credentials.Delete(rq.ctx, c.Name); err != nil {
		return credentialError(err)
	}
	if err := s.access.ForgetObject(rq.ctx, access.KindCredential, c.Name); err != nil {
		return errorf(http.StatusInternalServerError, "credential %s deleted, but not the roles granted on it: %v", c.Name, err)
	}
	return rq.noContent()
}
