package command

// With --api URL (JOBENGINE_API_URL), the most used commands talk to a
// controller's HTTP API instead of ZooKeeper: the caller is then whoever
// the API token names, and the API's roles decide what it may do. The
// token never appears on the command line (it would show in the process
// list): it is read from JOBENGINE_API_TOKEN, --api-token-file, or the
// file `jobengine login` wrote.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/api"
)

// apiTokenEnv holds an API token; read from the environment only, never a
// flag. apiTokenEnvAlt is read when it is unset.
const (
	apiTokenEnv    = "JOBENGINE_API_TOKEN"
	apiTokenEnvAlt = "JOBENGINE_TOKEN"
)

// apiRequestTimeout bounds one request that is not a stream.
const apiRequestTimeout = time.Minute

// errAPI marks an error answer of the API.
var errAPI = errors.New("API")

// apiFlags are the global flags of the API client.
func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api", Aliases: []string{"server"}, EnvVars: envs("JOBENGINE_API_URL", "JOBENGINE_SERVER"), Usage: "talk to the controller's HTTP API at this URL (https://host:8052) instead of ZooKeeper, for the commands that support it"},
		&cli.StringFlag{Name: "api-token-file", EnvVars: envs("JOBENGINE_API_TOKEN_FILE"), Usage: "file holding the API token (default: $" + apiTokenEnv + ", else the file `jobengine login` wrote)"},
		&cli.StringFlag{Name: "api-ca-file", EnvVars: envs("JOBENGINE_API_CA_FILE"), Usage: "PEM file of the CA that signed the API's certificate (default: the system's)"},
	}
}

// apiActions are the commands that work through the API, by their path
// below jobengine; apiNeutral are those that need neither the API nor
// ZooKeeper (or handle --api themselves).
var (
	apiActions = map[string]cli.ActionFunc{}
	apiNeutral = map[string]bool{"version": true, "login": true, "completion": true, "man": true}
)

// apiDispatch runs the API form of the command when --api is set. ok is
// false when the command runs as usual.
func apiDispatch(c *cli.Context) (ok bool, err error) {
	if c.String("api") == "" {
		return false, nil
	}
	path := commandPath(c)
	if a, found := apiActions[path]; found {
		return true, a(c)
	}
	if apiNeutral[path] {
		return false, nil
	}
	var names []string
	for n := range apiActions {
		names = append(names, n)
	}
	slices.Sort(names)
	return true, usagef("`jobengine %s` does not work through the API, and --api (or $JOBENGINE_API_URL) is set: "+
		"run it without --api, with access to ZooKeeper (commands that work with --api: %s)", path, strings.Join(names, ", "))
}

// apiClient calls the API.
type apiClient struct {
	base  string // scheme://host[:port], no path
	token string
	// user and password authenticate instead of token (login only).
	user, password string
	http           *http.Client
	// timeout bounds a request that is not a stream (apiRequestTimeout
	// when 0), for requests the server may take longer to answer.
	timeout time.Duration
}

// apiBase checks --api and returns the URL without a trailing /api/v1.
func apiBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", usagef("--api %q is not an API address: type the controller's URL, such as https://controller.example:8052", raw)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return "", usagef("--api %q: plain http would send the token in clear over the network; type https:// (the controller serves plain HTTP on loopback only)", raw)
	}
	p := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), api.Prefix)
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(p, "/"), nil
}

// loopbackHost reports whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultTokenFile is where `jobengine login` stores the token.
func defaultTokenFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for the API token (set $XDG_CONFIG_HOME or give --api-token-file): %w", err)
	}
	return filepath.Join(dir, "jobengine", "token"), nil
}

// openAPI builds the client from the global flags; withToken: the caller
// needs a token.
func openAPI(c *cli.Context, withToken bool) (*apiClient, error) {
	base, err := apiBase(c.String("api"))
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f := c.String("api-ca-file"); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, usagef("--api-ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--api-ca-file %s holds no PEM certificate", f)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	cl := &apiClient{base: base, http: &http.Client{Transport: tr}}
	if withToken {
		if cl.token, err = readAPIToken(c); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// readAPIToken reads the token: --api-token-file, $JOBENGINE_API_TOKEN,
// then the file `jobengine login` wrote.
func readAPIToken(c *cli.Context) (string, error) {
	file, flag := c.String("api-token-file"), "--api-token-file"
	t := strings.TrimSpace(os.Getenv(apiTokenEnv))
	if t == "" {
		t = strings.TrimSpace(os.Getenv(apiTokenEnvAlt))
	}
	if file == "" && t != "" {
		return t, nil
	}
	if file == "" {
		f, err := defaultTokenFile()
		if err != nil {
			return "", usagef("%v", err)
		}
		file, flag = f, "the token file of `jobengine login`"
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return "", usagef("--api needs a token: run `jobengine --api %s login`, or set $%s or --api-token-file", c.String("api"), apiTokenEnv)
		}
	}
	b, err := readArg(flag, "@"+file, 4096)
	if err != nil {
		return "", err
	}
	t = strings.TrimSpace(string(b))
	if t == "" {
		return "", usagef("%s (%s) is empty: run `jobengine login` again", flag, file)
	}
	return t, nil
}

// apiErrorBody is the API's error answer.
type apiErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// request sends one request and returns the response when its status is
// below 400; a stream has no timeout.
func (a *apiClient) request(ctx context.Context, method, path string, query url.Values, body any, stream bool) (*http.Response, context.CancelFunc, error) {
	return a.requestIf(ctx, method, path, query, body, stream, "")
}

// requestIf is request with If-Match: ifMatch when not empty.
func (a *apiClient) requestIf(ctx context.Context, method, path string, query url.Values, body any, stream bool, ifMatch string) (*http.Response, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if !stream {
		limit := apiRequestTimeout
		if a.timeout > 0 {
			limit = a.timeout
		}
		ctx, cancel = context.WithTimeout(ctx, limit)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := a.base + api.Prefix + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		cancel()
		return nil, nil, usagef("--api %s: %v", a.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	switch {
	case a.user != "":
		req.SetBasicAuth(a.user, a.password)
	case a.token != "":
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("cannot reach the API at %s (check --api / $JOBENGINE_API_URL): %w", a.base, err)
	}
	if resp.StatusCode >= 400 {
		defer cancel()
		defer resp.Body.Close()
		return nil, nil, a.statusError(method, path, resp)
	}
	return resp, cancel, nil
}

// do sends a request and decodes the JSON answer into out (when not nil).
func (a *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	_, err := a.doIf(ctx, method, path, query, "", body, out)
	return err
}

// doIf is do with If-Match: ifMatch when not empty; it returns the
// answer's ETag (the version of the object read or written).
func (a *apiClient) doIf(ctx context.Context, method, path string, query url.Values, ifMatch string, body, out any) (string, error) {
	resp, cancel, err := a.requestIf(ctx, method, path, query, body, false, ifMatch)
	if err != nil {
		return "", err
	}
	defer cancel()
	defer resp.Body.Close()
	tag := resp.Header.Get("ETag")
	if out == nil {
		return tag, nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return "", fmt.Errorf("%w: %s %s: the answer is not the JSON expected (is --api %s a jobengine controller?): %v", errAPI, method, path, a.base, err)
	}
	return tag, nil
}

// apiEditAttempts bounds how often an edit reads an object again after
// another change won the race, as the ZooKeeper forms retry on the
// version.
const apiEditAttempts = 10

// editVersioned reads path, lets apply change what was read, and writes
// it back with method and If-Match set to the version read: when the
// object changed meanwhile (412) it reads it again and applies the change
// again, so a concurrent edit of other fields is kept. apply receives
// the object read (afresh each time) and returns the body to send; out
// receives the answer.
func editVersioned[T any](ctx context.Context, a *apiClient, method, path string, apply func(*T) (any, error), out any) error {
	for attempt := 1; ; attempt++ {
		var cur T
		tag, err := a.doIf(ctx, http.MethodGet, path, nil, "", nil, &cur)
		if err != nil {
			return err
		}
		if tag == "" {
			return fmt.Errorf("%w: GET %s answered no ETag: the controller is older than this client, which would overwrite a concurrent change; upgrade it", errAPI, path)
		}
		body, err := apply(&cur)
		if err != nil {
			return err
		}
		_, err = a.doIf(ctx, method, path, nil, tag, body, out)
		var st *apiStatusError
		if errors.As(err, &st) && st.code == http.StatusPreconditionFailed && attempt < apiEditAttempts {
			continue
		}
		return err
	}
}

// statusError turns an error answer into the error printed: the API's
// message, and what to do about a 401 or 403.
func (a *apiClient) statusError(method, path string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e apiErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		return fmt.Errorf("%w: %s %s answered %s, not a jobengine API error (is --api %s a jobengine controller?)", errAPI, method, path, resp.Status, a.base)
	}
	hint := ""
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint = " (not authenticated: the token is missing, expired or revoked; run `jobengine login` again or check --api-token-file / $" + apiTokenEnv + ")"
	case http.StatusForbidden:
		hint = " (permission denied: the token's user lacks the role; ask an administrator for a grant)"
	}
	se := &apiStatusError{code: resp.StatusCode, err: fmt.Errorf("%w: %s%s", errAPI, e.Error, hint)}
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		// Bad input only the server could see (a template a workflow
		// names that does not exist, a cycle): what the ZooKeeper forms
		// refuse as a usage error, nothing written.
		return &UsageError{Err: se}
	}
	return se
}

// apiStatusError is an error answer of the API with its status.
type apiStatusError struct {
	code int
	err  error
}

func (e *apiStatusError) Error() string { return e.err.Error() }
func (e *apiStatusError) Unwrap() error { return e.err }

// follow reads the event stream of path (?follow=true) until fn says the
// end has come; an error event or a stream that ends first is an error.
func (a *apiClient) follow(ctx context.Context, path string, fn func(sseEvent) (end bool, err error)) error {
	resp, cancel, err := a.request(ctx, http.MethodGet, path, url.Values{"follow": {"true"}}, nil, true)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	errEnd := errors.New("end of the stream")
	err = readEvents(resp.Body, func(ev sseEvent) error {
		if ev.name == "error" {
			var e apiErrorBody
			_ = json.Unmarshal(ev.data, &e)
			return fmt.Errorf("%w: following %s failed: %s", errAPI, path, e.Error)
		}
		end, err := fn(ev)
		if err == nil && end {
			return errEnd
		}
		return err
	})
	switch {
	case errors.Is(err, errEnd):
		return nil
	case err != nil && ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, errAPI):
		return err
	case err != nil:
		return fmt.Errorf("%w: reading the stream of %s: %v", errAPI, path, err)
	}
	return fmt.Errorf("%w: the stream of %s ended before the job did (run the command again to go on)", errAPI, path)
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// readEvents reads server-sent events from r until it ends or fn fails.
func readEvents(r io.Reader, fn func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != nil {
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			ev.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if ev.data != nil {
				ev.data = append(ev.data, '\n')
			}
			ev.data = append(ev.data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	return sc.Err()
}
