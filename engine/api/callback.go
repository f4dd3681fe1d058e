package api

import (
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/template"
)

// Provisioning callbacks: a freshly provisioned host asks for a template
// to run against itself, presenting the template's host config key and no
// credentials (AWX's callback). The host is the one of the template's
// inventory whose name, or ansible_host variable, is the address the
// request comes from; the launch is limited to it and never sliced. A
// template that does not exist, has no key, or was given another key is
// answered the same 403, so that the endpoint tells nothing about
// templates.

func (s *Server) callbackRoutes() []route {
	return []route{
		{method: "POST", pattern: Prefix + "/templates/{name}/callback", public: true, handle: s.callback},
	}
}

// callbackInput is the body of a callback.
type callbackInput struct {
	HostConfigKey string `json:"host-config-key"`
}

var errCallbackRefused = forbidden("callback refused: no such template, or the host config key is not this template's")

func (s *Server) callback(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	var in callbackInput
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.HostConfigKey == "" {
		return badField("host-config-key", "host-config-key is required")
	}
	name := rq.r.PathValue("name")
	if configstore.ValidName("template", name) != nil {
		return errCallbackRefused
	}
	t, _, err := s.templates.Get(rq.ctx, name)
	if isNotFound(err) {
		return errCallbackRefused
	}
	if err != nil {
		return err
	}
	if t.HostConfigKey == "" || subtle.ConstantTimeCompare([]byte(t.HostConfigKey), []byte(in.HostConfigKey)) != 1 {
		return errCallbackRefused
	}
	if t.Inventory == "" {
		return errorf(http.StatusConflict, "template %s has no inventory to find the calling host in", name)
	}
	addr, _, err := net.SplitHostPort(rq.r.RemoteAddr)
	if err != nil {
		addr = rq.r.RemoteAddr
	}
	_, c, err := s.inv.Content(rq.ctx, t.Inventory)
	if err != nil {
		return err
	}
	host, err := callingHost(c, addr)
	if err != nil {
		return err
	}
	if err := s.ensureJobs(rq.ctx); err != nil {
		return err
	}
	res, err := s.launcher.Launch(rq.ctx, template.Request{Template: name, Host: host, CreatedBy: "callback/" + host})
	if err != nil {
		return err
	}
	return rq.reply(http.StatusCreated, launchedOf(res))
}

// callingHost finds the enabled host of c that is addr: by name, or by its
// ansible_host variable. None, or more than one, is refused.
func callingHost(c *inventory.Content, addr string) (string, error) {
	var found []string
	for _, h := range c.Hosts {
		if !h.Enabled {
			continue
		}
		match := h.Name == addr
		if v, ok := inventory.VarsGet(h.Variables, "ansible_host"); ok && !match {
			var s string
			match = json.Unmarshal(v, &s) == nil && s == addr
		}
		if match {
			found = append(found, h.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", badField("", "no enabled host of the template's inventory is %s (by name or ansible_host)", addr)
	case 1:
		return found[0], nil
	}
	return "", badField("", "%d hosts of the template's inventory are %s; a callback needs exactly one", len(found), addr)
}
