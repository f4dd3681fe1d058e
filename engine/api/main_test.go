package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

var rootSeq atomic.Int64

// env is an API served by a real HTTP server over a real ZooKeeper, with
// a token for each kind of user.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	api    *Server
	conn   *zkconn.Conn
	store  *jobs.Store
	tokens map[string]string // user → bearer token
}

// The users of the permission tests.
const (
	uAdmin   = "admin"
	uAuditor = "auditor"
	uCarol   = "carol" // execute on template web, read on inventory hosts
	uNobody  = "nobody"
	uAnon    = "" // no credentials
)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	root := fmt.Sprintf("/api%d", rootSeq.Add(1))
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: root, SessionTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	core, obs := observer.New(zapcore.DebugLevel)
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range obs.All() {
				if e.Level >= zapcore.WarnLevel {
					t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
				}
			}
		}
	})
	store := jobs.NewStore(conn, jobs.StoreConfig{})
	s, err := newServer(Config{Conn: conn, Jobs: store, Logger: zap.New(core), Identifier: "test-controller"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, api: s, conn: conn, store: store, tokens: map[string]string{}}
	roles := map[string]access.SystemRole{uAdmin: access.SystemAdmin, uAuditor: access.SystemAuditor, uCarol: "", uNobody: ""}
	for name, role := range roles {
		if _, err := s.access.CreateUser(ctx, access.NewUser{Name: name, Role: role, Password: name + "-password"}); err != nil {
			t.Fatal(err)
		}
		_, tok, err := s.access.CreateToken(ctx, name, "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}
	return e
}

// resp is an answer.
type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", r.status, err, r.body)
	}
}

// do sends a request as user (uAnon: no credentials); body is JSON-encoded
// unless it is a string or []byte.
func (e *env) do(user, method, path string, body any) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if user != uAnon {
		req.Header.Set("Authorization", "Bearer "+e.tokens[user])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: data, header: res.Header}
}

// must sends a request and fails the test unless the status is want.
func (e *env) must(want int, user, method, path string, body any) resp {
	e.t.Helper()
	r := e.do(user, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s as %q: %d, want %d\n%s", method, path, user, r.status, want, r.body)
	}
	return r
}

// fixtures are the objects of the permission tests.
type fixtures struct {
	container string   // a sliced job of template web
	slices    []string // its slices
	dbJob     string   // a job of template db
}

// setup creates, as the administrator, inventory hosts (4 hosts),
// templates web (sliced in 2) and db, project site, and grants carol
// execute on web and read on hosts; then launches web and db.
func (e *env) setup() fixtures {
	e.t.Helper()
	inv := `{"all": {"vars": {"env": "test"}}, "web": {"hosts": ["w1", "w2", "w3"]}, "ungrouped": {"hosts": ["d1"]}}`
	e.must(201, uAdmin, "POST", Prefix+"/inventories/hosts/import", inv)
	e.must(201, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "web", "action": "echo", "inventory": "hosts", "slice-count": 2, "prompts": []string{"limit"}})
	e.must(201, uAdmin, "POST", Prefix+"/templates", map[string]any{"name": "db", "action": "echo"})
	e.must(201, uAdmin, "POST", Prefix+"/projects", map[string]any{"name": "site", "kind": "directory", "directory": "/srv/site"})
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindTemplate, Object: "web", Role: access.RoleExecute})
	e.must(201, uAdmin, "POST", Prefix+"/grants", access.Grant{SubjectKind: access.SubjectUser, Subject: uCarol, Kind: access.KindInventory, Object: "hosts", Role: access.RoleRead})
	var l launched
	e.must(201, uAdmin, "POST", Prefix+"/templates/web/launch", nil).json(e.t, &l)
	if len(l.Slices) != 2 || !l.Job.IsContainer() {
		e.t.Fatalf("web launched %+v", l)
	}
	f := fixtures{container: l.Job.ID, slices: l.Slices}
	e.must(201, uAdmin, "POST", Prefix+"/templates/db/launch", nil).json(e.t, &l)
	f.dbJob = l.Job.ID
	return f
}

// uid is the uuid of a job id, as job paths take it.
func uid(id string) string { return strings.TrimPrefix(id, "job/") }

// withCredentialKey gives the API a credential key, so that credentials
// can be created and changed, and returns it.
func (e *env) withCredentialKey() *credential.Key {
	e.t.Helper()
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	key, err := credential.NewKey(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	e.api.credentials = credential.NewStore(e.conn, key)
	return key
}
