package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/jobengine/jobengine/engine/access"
)

// Cookie and header names of session authentication.
const (
	// SessionCookie holds a login session (HttpOnly).
	SessionCookie = "jobengine_session"
	// CSRFCookie holds the session's CSRF token for the dashboard's
	// scripts to read and send back in CSRFHeader.
	CSRFCookie = "jobengine_csrf"
	// CSRFHeader carries the CSRF token on requests that change something.
	CSRFHeader = "X-CSRF-Token"
)

// authenticate finds who is calling: a bearer token, HTTP basic
// credentials, or the session cookie (whose unsafe requests must carry the
// CSRF token). No credentials at all is 401; bad ones are 401 too.
func (s *Server) authenticate(rq *request) (*access.Principal, error) {
	ctx := rq.ctx
	var u *access.User
	var ss *access.Session
	method := ""
	if h := rq.r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		switch strings.ToLower(scheme) {
		case "bearer":
			_, user, err := s.access.AuthenticateToken(ctx, strings.TrimSpace(cred))
			if err != nil {
				return nil, err
			}
			u, method = user, "token"
		case "basic":
			name, pw, ok := rq.r.BasicAuth()
			if !ok {
				return nil, errBadCredentials
			}
			user, err := s.checkPassword(rq, name, pw)
			if err != nil {
				return nil, err
			}
			u, method = user, "basic"
		default:
			return nil, errorf(http.StatusUnauthorized, "unknown authorization scheme %q (use Bearer or Basic)", scheme)
		}
	} else if c, err := rq.r.Cookie(SessionCookie); err == nil {
		sess, user, err := s.access.AuthenticateSession(ctx, c.Value)
		if err != nil {
			return nil, err
		}
		if !safeMethod(rq.r.Method) && !sess.CheckCSRF(rq.r.Header.Get(CSRFHeader)) {
			return nil, errCSRF
		}
		u, ss, method = user, sess, "session"
	} else {
		return nil, errUnauthenticated
	}
	p, err := s.access.Principal(ctx, u, method)
	if err != nil {
		return nil, err
	}
	p.Session = ss
	return p, nil
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (s *Server) authRoutes() []route {
	return []route{
		{method: "POST", pattern: Prefix + "/login", public: true, handle: s.login},
		{method: "POST", pattern: Prefix + "/logout", handle: s.logout},
		{method: "GET", pattern: Prefix + "/me", handle: s.me},
	}
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loginReply is the answer of POST /login.
type loginReply struct {
	User      access.UserView `json:"user"`
	CSRFToken string          `json:"csrf-token"`
	Expires   time.Time       `json:"expires"`
}

func (s *Server) login(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	var in loginRequest
	if err := rq.decode(&in); err != nil {
		return err
	}
	if in.Username == "" {
		return badField("username", "username is required")
	}
	if in.Password == "" {
		return badField("password", "password is required")
	}
	u, err := s.checkPassword(rq, in.Username, in.Password)
	if err != nil {
		return err
	}
	ss, cookie, csrf, err := s.access.CreateSession(rq.ctx, u.Name, s.cfg.SessionLifetime)
	if err != nil {
		return err
	}
	http.SetCookie(rq.w, &http.Cookie{Name: SessionCookie, Value: cookie, Path: "/", Expires: ss.Expires,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.SetCookie(rq.w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", Expires: ss.Expires,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	return rq.reply(http.StatusOK, loginReply{User: u.View(), CSRFToken: csrf, Expires: ss.Expires})
}

func (s *Server) logout(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	if rq.p.Session == nil {
		return badField("", "logout ends a login session; this request was authenticated by %s (revoke a token with DELETE %s/tokens/{id})", rq.p.Method, Prefix)
	}
	if err := s.access.EndSession(rq.ctx, rq.p.Session.ID); err != nil {
		return err
	}
	for _, name := range []string{SessionCookie, CSRFCookie} {
		http.SetCookie(rq.w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	}
	return rq.noContent()
}

// meReply is the answer of GET /me.
type meReply struct {
	User  access.UserView `json:"user"`
	Teams []string        `json:"teams"`
	// Grants are the roles held through the user's own grants and its
	// teams'.
	Grants []access.Grant `json:"grants"`
	// Method says how this request authenticated.
	Method string `json:"authenticated-by"`
}

func (s *Server) me(rq *request) error {
	if err := rq.query(); err != nil {
		return err
	}
	u, _, err := s.access.GetUser(rq.ctx, rq.p.User)
	if err != nil {
		return err
	}
	out := meReply{User: u.View(), Teams: rq.p.Teams, Method: rq.p.Method, Grants: []access.Grant{}}
	if out.Teams == nil {
		out.Teams = []string{}
	}
	subjects := []access.GrantFilter{{SubjectKind: access.SubjectUser, Subject: u.Name}}
	for _, t := range rq.p.Teams {
		subjects = append(subjects, access.GrantFilter{SubjectKind: access.SubjectTeam, Subject: t})
	}
	for _, f := range subjects {
		gs, err := s.access.ListGrants(rq.ctx, f)
		if err != nil {
			return err
		}
		out.Grants = append(out.Grants, gs...)
	}
	return rq.reply(http.StatusOK, out)
}
