package command

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/credential"
	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/tlstest"
)

// apiEnv is a controller serving the API on a test root, with users:
// root (system administrator), alice (execute on template tpl) and bob
// (no role), carol (read on tpl).
type apiEnv struct {
	t     *testing.T
	zc    zkconn.Config
	root  string
	url   string
	cfg   string // XDG_CONFIG_HOME of the commands
	admin string // root's token
	alice string
	bob   string
	carol string
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	return newAPIEnvTLS(t, nil)
}

// newAPIEnvTLS starts the controller with the server certificate of pki
// (plain HTTP when nil).
func newAPIEnvTLS(t *testing.T, pki *tlstest.PKI) *apiEnv {
	t.Helper()
	e := &apiEnv{t: t, root: testRoot(t), cfg: t.TempDir()}
	zc := zkconn.Config{Hosts: testZK.Addrs(), Root: e.root, SessionTimeout: 4 * time.Second}
	e.zc = zc
	cfg := daemon.NewControllerConfig()
	cfg.ZK, cfg.Listen, cfg.Identifier = zc, "127.0.0.1:0", "c1"
	// A key to seal the credentials created through the API.
	key, err := credential.GenerateKeyFile(filepath.Join(t.TempDir(), "credential.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.CredentialKey = key
	scheme := "http://"
	if pki != nil {
		cfg.TLSCert, cfg.TLSKey, scheme = pki.ServerCert, pki.ServerKey, "https://"
	}
	// A bound on the whole setup, generous: hashing four passwords with a
	// memory-hard function takes long on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctl, err := daemon.StartController(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	e.url = scheme + ctl.Addr().String()
	conn, err := zkconn.Dial(ctx, zc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := access.NewStore(conn, nil)
	for _, u := range []access.NewUser{
		{Name: "root", Role: access.SystemAdmin, Password: "root-password"},
		{Name: "alice", Password: "alice-password"},
		{Name: "bob", Password: "bob-password"},
		{Name: "carol", Password: "carol-password"},
	} {
		if _, err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if _, errOut, code := e.zk("template", "create", "tpl", "--action", "echo", "--payload", `{"message":"hello-through-api"}`); code != 0 {
		t.Fatalf("template create: exit %d: %s", code, errOut)
	}
	for user, role := range map[string]access.Role{"alice": access.RoleExecute, "carol": access.RoleRead} {
		if err := st.AddGrant(ctx, access.Grant{SubjectKind: access.SubjectUser, Subject: user, Kind: access.KindTemplate, Object: "tpl", Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(user string) string {
		_, secret, err := st.CreateToken(ctx, user, "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	e.admin, e.alice, e.bob, e.carol = tok("root"), tok("alice"), tok("bob"), tok("carol")
	return e
}

// zk runs the binary with ZooKeeper access, as an operator.
func (e *apiEnv) zk(args ...string) (string, string, int) {
	e.t.Helper()
	return runBinary(e.t, nil, append([]string{"--zk-hosts", testZK.ConnectString(), "--zk-root", e.root}, args...)...)
}

// as runs the binary with --api and token, with no ZooKeeper reachable
// (--zk-hosts points nowhere: a command that used it would fail).
func (e *apiEnv) as(token string, args ...string) (string, string, int) {
	e.t.Helper()
	env := []string{"XDG_CONFIG_HOME=" + e.cfg, "JOBENGINE_ZK_HOSTS=127.0.0.1:1", "JOBENGINE_ZK_CONNECT_TIMEOUT=1s"}
	if token != "" {
		env = append(env, apiTokenEnv+"="+token)
	}
	return runBinary(e.t, env, append([]string{"--api", e.url}, args...)...)
}

func (e *apiEnv) ok(token string, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.as(token, args...)
	if code != 0 {
		e.t.Fatalf("jobengine --api %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func TestCLIThroughAPI(t *testing.T) {
	e := newAPIEnv(t)

	// alice launches; the job is hers, created by her identity.
	id := strings.TrimSpace(e.ok(e.alice, "template", "launch", "tpl"))
	if !strings.HasPrefix(id, "job/") {
		t.Fatalf("template launch printed %q, want a job id", id)
	}
	var shown struct {
		ID        string `json:"id"`
		Template  string `json:"template"`
		CreatedBy string `json:"created-by"`
	}
	if err := json.Unmarshal([]byte(e.ok(e.alice, "job", "show", "--json", id)), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.ID != id || shown.Template != "tpl" || !strings.Contains(shown.CreatedBy, "alice") {
		t.Fatalf("job show: %+v", shown)
	}
	if out := e.ok(e.alice, "job", "list", "--template", "tpl"); !strings.Contains(out, id) {
		t.Fatalf("job list does not show %s:\n%s", id, out)
	}
	if out := e.ok(e.alice, "job", "show", id); !strings.Contains(out, id) {
		t.Fatalf("job show (text) does not name %s:\n%s", id, out)
	}

	// bob has no role: the job is not his to see, and tpl not his to launch.
	if out := e.ok(e.bob, "job", "list"); strings.Contains(out, id) {
		t.Fatalf("bob's job list shows %s:\n%s", id, out)
	}
	_, errOut, code := e.as(e.bob, "job", "cancel", id)
	if code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's cancel: exit %d, want 1 with the API's message:\n%s", code, errOut)
	}
	// carol reads tpl: she sees the job, but canceling it or launching tpl
	// needs execute, which the API's 403 message says.
	if out := e.ok(e.carol, "job", "list"); !strings.Contains(out, id) {
		t.Fatalf("carol's job list does not show %s:\n%s", id, out)
	}
	for _, args := range [][]string{{"job", "cancel", id}, {"template", "launch", "tpl"}} {
		_, errOut, code = e.as(e.carol, args...)
		if code != 1 || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "execute role") {
			t.Fatalf("carol's %v: exit %d, want 1 with the 403 message:\n%s", args, code, errOut)
		}
	}

	// alice cancels her queued job, relaunches it, and reads its log.
	if out := e.ok(e.alice, "job", "cancel", id); !strings.Contains(out, id) {
		t.Fatalf("job cancel printed %q", out)
	}
	re := strings.TrimSpace(e.ok(e.alice, "job", "relaunch", id))
	if !strings.HasPrefix(re, "job/") || re == id {
		t.Fatalf("job relaunch printed %q", re)
	}
	e.ok(e.alice, "job", "logs", id)
	// Following a final job's log ends with it.
	e.ok(e.alice, "job", "logs", "-f", id)
	// No executor yet: waiting for the relaunched job times out (exit 3);
	// the canceled one ended CANCELED (exit 1).
	if _, errOut, code := e.as(e.alice, "job", "wait", "--timeout", "1s", re); code != 3 || !strings.Contains(errOut, "timed out") {
		t.Fatalf("job wait --timeout: exit %d, want 3:\n%s", code, errOut)
	}
	if out, errOut, code := e.as(e.alice, "job", "wait", id); code != 1 || !strings.Contains(out, "CANCELED") {
		t.Fatalf("job wait on a canceled job: exit %d, want 1 and CANCELED:\n%s%s", code, out, errOut)
	}
	// An executor runs the relaunched job: following its log prints the
	// lines as they come and ends with the job.
	xcfg := daemon.NewExecutorConfig()
	xcfg.ZK, xcfg.Name, xcfg.Threads, xcfg.EnableTestActions, xcfg.Plugins.Dir = e.zc, "x1", 1, true, t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := daemon.StartExecutor(ctx, xcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Stop)
	if out := e.ok(e.alice, "job", "logs", "-f", re); !strings.Contains(out, "hello-through-api") {
		t.Fatalf("job logs -f printed no line of the job:\n%s", out)
	}
	if out := e.ok(e.alice, "job", "show", re); !strings.Contains(out, "SUCCESS") {
		t.Fatalf("job logs -f ended before the job:\n%s", out)
	}
	if out := e.ok(e.alice, "job", "wait", re); !strings.Contains(out, re+" SUCCESS") {
		t.Fatalf("job wait printed %q", out)
	}

	_, errOut, code = e.as(e.carol, "job", "relaunch", re)
	if code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("carol's relaunch: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}

	// No token, a bad token: 401, said so.
	_, errOut, code = e.as("", "job", "list")
	if code != 2 || !strings.Contains(errOut, "login") {
		t.Fatalf("without a token: exit %d, want 2 naming login:\n%s", code, errOut)
	}
	_, errOut, code = e.as("jet_bad", "job", "list")
	if code != 1 || !strings.Contains(errOut, "not authenticated") {
		t.Fatalf("bad token: exit %d, want 1 saying not authenticated:\n%s", code, errOut)
	}

	// A command without an API form refuses --api.
	_, errOut, code = e.as(e.admin, "queue", "stats")
	if code != 2 || !strings.Contains(errOut, "--api") {
		t.Fatalf("queue stats --api: exit %d, want 2 naming --api:\n%s", code, errOut)
	}
}

func TestCLILogin(t *testing.T) {
	e := newAPIEnv(t)
	out, errOut, code := runBinaryIn(t, "alice-password\n", "--api", e.url, "login", "--user", "alice", "--api-token-file", filepath.Join(e.cfg, "jobengine", "token"))
	if code != 0 {
		t.Fatalf("login: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(out, "alice") {
		t.Fatalf("login printed %q", out)
	}
	fi, err := os.Stat(filepath.Join(e.cfg, "jobengine", "token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	// The stored token is found without being named.
	if out := e.ok("", "template", "launch", "tpl"); !strings.HasPrefix(out, "job/") {
		t.Fatalf("launch with the stored token printed %q", out)
	}
	// --api-token-file wins over $JOBENGINE_API_TOKEN (bob's may not launch).
	if out := e.ok(e.bob, "--api-token-file", filepath.Join(e.cfg, "jobengine", "token"), "template", "launch", "tpl"); !strings.HasPrefix(out, "job/") {
		t.Fatalf("launch with --api-token-file printed %q", out)
	}
	// A wrong password: 401, nothing stored over the good token.
	_, errOut, code = runBinaryIn(t, "wrong\n", "--api", e.url, "login", "--user", "alice", "--api-token-file", filepath.Join(e.cfg, "other"))
	if code != 1 || !strings.Contains(errOut, "not authenticated") {
		t.Fatalf("wrong password: exit %d, want 1 saying not authenticated:\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(e.cfg, "other")); !os.IsNotExist(err) {
		t.Fatalf("a token file after a failed login: %v", err)
	}
}

func TestCLIThroughAPIBadURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		code int
		want string
	}{
		{"ftp://example", 2, "not an API address"},
		{"127.0.0.1:8052", 2, "not an API address"},
		{"http://127.0.0.1:1", 1, "cannot reach the API"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, errOut, code := runBinary(t, []string{apiTokenEnv + "=jet_x"}, "--api", tc.url, "job", "list")
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, errOut)
			}
		})
	}
	// A server that is not the API: said so, not a JSON error.
	_, errOut, code := runBinary(t, []string{apiTokenEnv + "=jet_x"}, "--api", fmt.Sprintf("http://%s", testZK.Addrs()[0]), "job", "list")
	if code != 1 {
		t.Fatalf("a ZooKeeper port as --api: exit %d, want 1:\n%s", code, errOut)
	}
	// The other spellings: --server, $JOBENGINE_SERVER and $JOBENGINE_TOKEN.
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{[]string{"JOBENGINE_TOKEN=jet_x"}, []string{"--server", "http://127.0.0.1:1", "job", "list"}},
		{[]string{"JOBENGINE_TOKEN=jet_x"}, []string{"job", "list", "--server", "http://127.0.0.1:1"}},
		{[]string{"JOBENGINE_SERVER=http://127.0.0.1:1", "JOBENGINE_TOKEN=jet_x"}, []string{"job", "list"}},
	} {
		if _, errOut, code := runBinary(t, tc.env, tc.args...); code != 1 || !strings.Contains(errOut, "cannot reach the API at http://127.0.0.1:1") {
			t.Fatalf("%v %v: exit %d:\n%s", tc.env, tc.args, code, errOut)
		}
	}
}

// TestCLIThroughAPIOverTLS: --api-ca-file verifies the API's certificate;
// without it an unknown CA is refused, and said so.
func TestCLIThroughAPIOverTLS(t *testing.T) {
	pki := tlstest.New(t)
	e := newAPIEnvTLS(t, pki)
	id := strings.TrimSpace(e.ok(e.alice, "--api-ca-file", pki.CA, "template", "launch", "tpl"))
	if out := e.ok(e.alice, "job", "list", "--api-ca-file", pki.CA); !strings.Contains(out, id) {
		t.Fatalf("job list over TLS does not show %s:\n%s", id, out)
	}
	_, errOut, code := e.as(e.alice, "job", "list")
	if code != 1 || !strings.Contains(errOut, "cannot reach the API") || !strings.Contains(errOut, "certificate") {
		t.Fatalf("an unknown CA: exit %d, want 1 naming the certificate:\n%s", code, errOut)
	}
	_, errOut, code = e.as(e.alice, "job", "list", "--api-ca-file", pki.ServerKey)
	if code != 2 || !strings.Contains(errOut, "--api-ca-file") {
		t.Fatalf("a key as CA file: exit %d, want 2 naming --api-ca-file:\n%s", code, errOut)
	}
}

// TestAPINeutralCommands: commands that need neither ZooKeeper nor the
// API work with --api set (a shell that exports JOBENGINE_API_URL).
func TestAPINeutralCommands(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"completion", "bash"}, {"man"}} {
		if _, errOut, code := run(t, append([]string{"--api", "http://127.0.0.1:1"}, args...)...); code != 0 {
			t.Errorf("%v with --api: exit %d: %s", args, code, errOut)
		}
	}
}

func TestAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"https://ctl:8052":              "https://ctl:8052",
		"https://ctl:8052/":             "https://ctl:8052",
		"https://ctl:8052/api/v1":       "https://ctl:8052",
		"https://ctl/jobengine/":        "https://ctl/jobengine",
		"http://127.0.0.1:8052/api/v1/": "http://127.0.0.1:8052",
		"http://localhost:8052":         "http://localhost:8052",
		"http://[::1]:8052":             "http://[::1]:8052",
	} {
		if got, err := apiBase(in); err != nil || got != want {
			t.Errorf("apiBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ctl:8052", "ftp://ctl", "https://", "https://ctl?x=1", "http://ctl:8052", "http://10.0.0.7:8052"} {
		if _, err := apiBase(bad); err == nil {
			t.Errorf("apiBase(%q): no error", bad)
		}
	}
}

func TestReadEvents(t *testing.T) {
	in := ": keep-alive\n\nevent: log\ndata: {\"a\":1}\n\nevent: end\ndata: x\ndata: y\n\n"
	var got []string
	if err := readEvents(strings.NewReader(in), func(ev sseEvent) error {
		got = append(got, ev.name+"="+string(ev.data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{`log={"a":1}`, "end=x\ny"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestCLIObjectsThroughAPI: the object commands most users need print
// through the API what they print with ZooKeeper access, and the API's
// roles decide what each user sees; job delete and logout work through
// the API; a command without an API form says so (exit 2).
func TestCLIObjectsThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	dir := t.TempDir()
	invFile := writeFile(t, dir, "inv.json", `{"web": {"hosts": ["w1", "w2"]}, "ungrouped": {"hosts": ["d1"]}}`, 0o600)
	wfFile := writeFile(t, dir, "wf.yaml", "nodes:\n  - id: a\n    template: tpl\n", 0o600)
	for _, args := range [][]string{
		{"inventory", "create", "hosts", "--file", invFile, "--description", "all hosts"},
		{"project", "create", "site", "--directory", "/srv/site"},
		{"workflow", "create", "wf", "--file", wfFile},
		{"schedule", "create", "nightly", "--cron", "0 2 * * *", "--time-zone", "Europe/Paris", "--template", "tpl"},
	} {
		if _, errOut, code := e.zk(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	// The administrator sees through the API what ZooKeeper shows.
	for _, args := range [][]string{
		{"template", "list"}, {"template", "list", "--json"}, {"template", "show", "tpl"}, {"template", "show", "--json", "tpl"},
		{"inventory", "list"}, {"inventory", "list", "--json"}, {"inventory", "show", "hosts"},
		{"project", "list"}, {"project", "show", "site"}, {"project", "show", "--json", "site"},
		{"workflow", "list"}, {"workflow", "list", "--json"}, {"workflow", "show", "wf"}, {"workflow", "show", "--yaml", "wf"},
		{"schedule", "list"}, {"schedule", "show", "nightly"}, {"schedule", "show", "--json", "nightly"},
	} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		if got := e.ok(e.admin, args...); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
	}
	// alice (execute on tpl) sees tpl only; bob nothing; neither creates.
	if out := e.ok(e.alice, "template", "list"); !strings.Contains(out, "tpl") {
		t.Fatalf("alice's template list:\n%s", out)
	}
	for _, args := range [][]string{{"template", "list"}, {"inventory", "list"}, {"project", "list"}, {"workflow", "list"}, {"schedule", "list"}} {
		if out := e.ok(e.bob, args...); strings.Count(out, "\n") != 1 {
			t.Errorf("bob's %v shows more than its header:\n%s", args, out)
		}
	}
	if _, errOut, code := e.as(e.bob, "template", "show", "tpl"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("bob's template show: exit %d, want 1 saying it does not exist:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.alice, "template", "create", "t2", "--action", "echo"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's template create: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if _, errOut, code := e.as(e.admin, "template", "create", "t2"); code != 2 || !strings.Contains(errOut, "--action") {
		t.Fatalf("template create without --action: exit %d, want 2:\n%s", code, errOut)
	}
	if out := e.ok(e.admin, "template", "create", "t2", "--action", "echo", "--description", "made through the API"); out != "template t2 created\n" {
		t.Fatalf("template create printed %q", out)
	}
	if out, _, _ := e.zk("template", "show", "t2"); !strings.Contains(out, "made through the API") {
		t.Fatalf("the template made through the API:\n%s", out)
	}

	// A workflow launch; a job deleted once final.
	wf := strings.TrimSpace(e.ok(e.admin, "workflow", "launch", "wf"))
	if out := e.ok(e.admin, "job", "show", "--json", wf); !strings.Contains(out, `"kind": "workflow"`) && !strings.Contains(out, `"kind":"workflow"`) {
		t.Fatalf("workflow launch printed %q, whose job shows\n%s", wf, out)
	}
	// Once the workflow service has started its node (with no executor its
	// job stays PENDING), both forms show the same.
	poll.For(t, 2*time.Minute, 50*time.Millisecond, func() error {
		out, errOut, _ := e.zk("workflow", "nodes", wf)
		if !strings.Contains(out, "started") {
			return fmt.Errorf("the node has not started:\n%s%s", out, errOut)
		}
		return nil
	})
	for _, args := range [][]string{{"workflow", "nodes", wf}, {"workflow", "nodes", "--json", wf}} {
		want, errOut, code := e.zk(args...)
		if code != 0 {
			t.Fatalf("%v with ZooKeeper: exit %d: %s", args, code, errOut)
		}
		if got := e.ok(e.admin, args...); got != want {
			t.Errorf("%v through the API printed\n%s\nwith ZooKeeper\n%s", args, got, want)
		}
	}
	if _, errOut, code := e.as(e.bob, "workflow", "nodes", wf); code != 1 || !strings.Contains(errOut, "API: ") {
		t.Fatalf("bob's workflow nodes: exit %d, want 1:\n%s", code, errOut)
	}
	id := strings.TrimSpace(e.ok(e.alice, "job", "cancel", strings.TrimSpace(e.ok(e.alice, "template", "launch", "tpl"))))
	id = strings.Fields(id)[0]
	if _, errOut, code := e.as(e.alice, "job", "delete", id); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("alice's job delete: exit %d, want 1 with the 403 message:\n%s", code, errOut)
	}
	if out := e.ok(e.admin, "job", "delete", id); out != id+" deleted\n" {
		t.Fatalf("job delete printed %q", out)
	}
	if _, _, code := e.as(e.admin, "job", "show", id); code != 1 {
		t.Fatalf("job show of a deleted job: exit %d", code)
	}

	// logout revokes the stored token and deletes its file.
	tokenFile := filepath.Join(e.cfg, "carol-token")
	if _, errOut, code := runBinaryIn(t, "carol-password\n", "--api", e.url, "login", "--user", "carol", "--api-token-file", tokenFile); code != 0 {
		t.Fatalf("login: exit %d: %s", code, errOut)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if out := e.ok("", "--api-token-file", tokenFile, "logout"); !strings.Contains(out, "revoked") || !strings.Contains(out, tokenFile+" deleted") {
		t.Fatalf("logout printed %q", out)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Fatalf("the token file after logout: %v", err)
	}
	if _, errOut, code := e.as(strings.TrimSpace(string(tok)), "job", "list"); code != 1 || !strings.Contains(errOut, "not authenticated") {
		t.Fatalf("the logged-out token: exit %d, want 1:\n%s", code, errOut)
	}
	if _, errOut, code := e.as("", "logout"); code != 2 || !strings.Contains(errOut, "login") {
		t.Fatalf("logout without a token: exit %d, want 2:\n%s", code, errOut)
	}

	// Commands without an API form refuse --api, naming those with one.
	for _, args := range [][]string{{"queue", "inspect"}, {"queue", "stats"}} {
		_, errOut, code := e.as(e.admin, args...)
		if code != 2 || !strings.Contains(errOut, "does not work through the API") || !strings.Contains(errOut, "template list") {
			t.Errorf("%v with --api: exit %d, want 2 saying so:\n%s", args, code, errOut)
		}
	}
}

// TestCLITokenCreateThroughAPI: `token create` over the API prints a token
// that authenticates as the user it names, once; another user's token
// needs an administrator; bad flags exit 2 before any request.
func TestCLITokenCreateThroughAPI(t *testing.T) {
	e := newAPIEnv(t)
	out, errOut, code := e.as(e.admin, "token", "create", "--user", "bob", "--expires", "2h", "--description", "ci")
	if code != 0 || !strings.Contains(errOut, "for bob, expires") || !strings.Contains(errOut, "cannot be shown again") {
		t.Fatalf("token create for bob: exit %d\n%s", code, errOut)
	}
	bob := strings.TrimSpace(out)
	if strings.Contains(errOut, bob) {
		t.Fatalf("the token is on standard error too:\n%s", errOut)
	}
	if out := e.ok(bob, "token", "list"); !strings.Contains(out, "bob") || !strings.Contains(out, "ci") || strings.Contains(out, bob) {
		t.Fatalf("bob's token list with the new token:\n%s", out)
	}
	js := e.ok(e.admin, "token", "create", "--user", "carol", "--expires", "never", "--json")
	var made struct {
		ID, User, Token string
		Expires         *time.Time
	}
	if err := json.Unmarshal([]byte(js), &made); err != nil || made.User != "carol" || made.Token == "" || made.Expires != nil {
		t.Fatalf("token create --json: %v\n%s", err, js)
	}
	if out := e.ok(made.Token, "token", "list"); !strings.Contains(out, made.ID) {
		t.Fatalf("carol's new token does not list itself:\n%s", out)
	}
	// A user creates their own tokens only.
	if _, errOut, code := e.as(e.alice, "token", "create", "--user", "bob"); code != 1 || !strings.Contains(errOut, "administrator") {
		t.Fatalf("alice creating bob's token: exit %d, want 1 naming the administrator:\n%s", code, errOut)
	}
	if out := e.ok(e.alice, "token", "create", "--user", "alice"); strings.TrimSpace(out) == "" {
		t.Fatal("alice's own token: nothing printed")
	}
	for _, args := range [][]string{{"token", "create"}, {"token", "create", "--user", "bob", "--expires", "soon"}} {
		if _, errOut, code := e.as(e.admin, args...); code != 2 {
			t.Fatalf("%v: exit %d, want 2:\n%s", args, code, errOut)
		}
	}
}
