// Package index records the history of jobs in Elasticsearch: every
// version of every job document goes to `<prefix>jobs` (one document per
// job, the newest version wins through external versioning) and job events
// (state changes, progress, status messages, log lines) to
// `<prefix>job-events`.
//
// Job documents reach Elasticsearch through an outbox in ZooKeeper: the job
// store adds an outbox entry to the same transaction that writes a job, and
// one Pump in the cluster copies the entries to Elasticsearch and deletes
// them only once Elasticsearch has acknowledged them. Delivery is therefore
// at least once and survives Elasticsearch outages. Live events go through an
// EventSink, which is best effort with bounded memory.
//
// Elasticsearch is never consulted to decide anything; the engine runs
// without it.
package index

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"go.uber.org/zap"
)

// Errors of this package. Every error returned wraps exactly one of them.
var (
	// ErrConfig is wrapped by configuration errors.
	ErrConfig = errors.New("index: bad configuration")
	// ErrUnavailable means Elasticsearch could not be reached or asked to
	// retry later (connection refused, timeout, 429, 5xx): retrying may
	// succeed.
	ErrUnavailable = errors.New("index: Elasticsearch unavailable")
	// ErrAuth means Elasticsearch refused the credentials or the user's
	// privileges (401, 403).
	ErrAuth = errors.New("index: Elasticsearch refused access")
	// ErrRejected means Elasticsearch refused a request or a document as
	// invalid (for example a mapping conflict): retrying will not help.
	ErrRejected = errors.New("index: rejected by Elasticsearch")
	// ErrNotFound means the job is not in the index.
	ErrNotFound = errors.New("index: not found")
)

// Retryable reports whether err is worth retrying later.
func Retryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// DefaultPrefix is the prefix of the index names when Config.Prefix is empty.
const DefaultPrefix = "jobengine-"

// DefaultPort is added to hosts given without a port.
const DefaultPort = "9200"

// Config says how to reach Elasticsearch.
type Config struct {
	// Hosts are the nodes: full URLs ("https://es1:9200"), "host:port" or
	// "host" (http and port 9200 are assumed). A URL with a path is a
	// cluster behind a reverse proxy under that prefix ("https://proxy/es",
	// on the scheme's port unless one is given): every request goes under
	// it.
	Hosts []string
	// Username and Password are for HTTP basic authentication; empty for
	// none. Credentials in a host URL are used when these are empty.
	Username, Password string
	// APIKey is an Elasticsearch API key, the "encoded" value the
	// create-API-key call returns (base64 of id:key); it takes precedence
	// over Username and Password.
	APIKey string
	// TLS configures https connections (a CA instead of the system's
	// roots, a client certificate); nil means Go's defaults.
	TLS *tls.Config
	// Prefix starts every index and template name (DefaultPrefix when
	// empty), so several engines can share a cluster.
	Prefix string
}

// Client indexes and queries job history. It is safe for concurrent use.
type Client struct {
	es     *elasticsearch.Client
	prefix string
	hosts  string
	log    *zap.Logger
	auth   string // what to check when Elasticsearch refuses the credentials

	tmu         sync.Mutex // serialises EnsureTemplates
	templatesOK atomic.Bool
}

// New checks cfg and returns a client; it does not contact Elasticsearch
// (see Ping).
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if len(cfg.Hosts) == 0 {
		return nil, fmt.Errorf("%w: no Elasticsearch hosts given (e.g. http://127.0.0.1:9200)", ErrConfig)
	}
	var urls []string
	for _, h := range cfg.Hosts {
		u, err := normaliseHost(h)
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if cfg.APIKey != "" && strings.ContainsAny(cfg.APIKey, " \t\r\n") {
		return nil, fmt.Errorf("%w: the Elasticsearch API key holds blanks; give the \"encoded\" value of the create-API-key answer", ErrConfig)
	}
	auth := "the username and password (--es-username, --es-password-file)"
	if cfg.APIKey != "" {
		auth = "the API key (--es-api-key-file)"
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: urls,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: &http.Transport{
			TLSClientConfig:       cfg.TLS,
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   8,
		},
		// A few quick retries ride over a node restart or a stale
		// keep-alive connection and move to the next node of the list;
		// longer outages are the callers' business (the pump backs off).
		MaxRetries:   2,
		RetryBackoff: func(attempt int) time.Duration { return time.Duration(attempt) * 100 * time.Millisecond },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return &Client{es: es, prefix: prefix, hosts: strings.Join(redact(urls), ","), log: log, auth: auth}, nil
}

func normaliseHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", fmt.Errorf("%w: empty Elasticsearch host", ErrConfig)
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: Elasticsearch host %q is not a URL or host:port (e.g. http://127.0.0.1:9200)", ErrConfig, h)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: Elasticsearch host %q: scheme must be http or https", ErrConfig, h)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: Elasticsearch host %q: give a URL without a query or fragment (e.g. https://proxy/es)", ErrConfig, h)
	}
	// A path is the prefix of a cluster behind a reverse proxy
	// (https://proxy/es): every request goes under it.
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), ""
	if u.Port() == "" && u.Path == "" {
		// A proxy listens on its scheme's port; a node on 9200.
		u.Host = net.JoinHostPort(u.Hostname(), DefaultPort)
	}
	return u.String(), nil
}

func redact(urls []string) []string {
	out := make([]string, len(urls))
	for i, s := range urls {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = url.User(u.User.Username())
			s = u.String()
		}
		out[i] = s
	}
	return out
}

// checkPrefix applies Elasticsearch's index name rules to the prefix.
func checkPrefix(p string) error {
	switch {
	case p != strings.ToLower(p):
		return fmt.Errorf("%w: index prefix %q must be lowercase", ErrConfig, p)
	case strings.ContainsAny(p, `\/*?"<>| ,#:`):
		return fmt.Errorf("%w: index prefix %q must not contain any of: backslash / * ? \" < > | space , # or colon", ErrConfig, p)
	case strings.HasPrefix(p, "-") || strings.HasPrefix(p, "_") || strings.HasPrefix(p, "+"):
		return fmt.Errorf("%w: index prefix %q must not start with -, _ or +", ErrConfig, p)
	case len(p) > 200:
		return fmt.Errorf("%w: index prefix is too long (%d bytes, at most 200)", ErrConfig, len(p))
	}
	return nil
}

// JobsIndex is the name of the index of job documents.
func (c *Client) JobsIndex() string { return c.prefix + "jobs" }

// EventsIndex is the name of the index of job events.
func (c *Client) EventsIndex() string { return c.prefix + "job-events" }

// Hosts returns the configured nodes, without passwords, for log lines.
func (c *Client) Hosts() string { return c.hosts }

// Close releases the client's idle connections.
func (c *Client) Close(ctx context.Context) error {
	if err := c.es.Close(ctx); err != nil && !errors.Is(err, elasticsearch.ErrAlreadyClosed) {
		return fmt.Errorf("index: closing the Elasticsearch client: %w", err)
	}
	return nil
}

// Ping checks that Elasticsearch answers and accepts the credentials. Its
// errors say what to fix.
func (c *Client) Ping(ctx context.Context) error {
	res, err := c.es.Info(c.es.Info.WithContext(ctx))
	if err := c.check("ping", res, err); err != nil {
		return err
	}
	defer res.Body.Close()
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
		return fmt.Errorf("%w: the server at %s did not answer like Elasticsearch (check the URL): %v", ErrConfig, c.hosts, err)
	}
	var major int
	_, _ = fmt.Sscanf(info.Version.Number, "%d.", &major)
	switch {
	case major < 8:
		return fmt.Errorf("%w: Elasticsearch at %s is version %q; this engine needs 8.x", ErrConfig, c.hosts, info.Version.Number)
	case major > 8:
		c.log.Warn("elasticsearch is newer than the version this engine is tested with (8.x)",
			zap.String("hosts", c.hosts), zap.String("version", info.Version.Number))
	}
	return nil
}

// esErrorBody is Elasticsearch's error answer.
type esErrorBody struct {
	Error struct {
		Type     string `json:"type"`
		Reason   string `json:"reason"`
		CausedBy *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"caused_by"`
	} `json:"error"`
	Status int `json:"status"`
}

func (b esErrorBody) String() string {
	s := b.Error.Type
	if b.Error.Reason != "" {
		s += ": " + b.Error.Reason
	}
	if c := b.Error.CausedBy; c != nil && c.Type != "" {
		s += " (caused by " + c.Type + ": " + c.Reason + ")"
	}
	return s
}

// errType returns the Elasticsearch error type of an error answer.
func errType(body []byte) string {
	var b esErrorBody
	_ = json.Unmarshal(body, &b)
	return b.Error.Type
}

// check turns a transport error or an error answer into an error that
// wraps one of the package sentinels and says what to do. On success it
// returns nil and leaves res to the caller; on failure it closes res.
func (c *Client) check(what string, res *esapi.Response, err error) error {
	if err != nil {
		return c.transportError(what, err)
	}
	if !res.IsError() {
		return nil
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return c.statusError(what, res.StatusCode, body)
}

func (c *Client) transportError(what string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: no answer from %s in time: %v", ErrUnavailable, what, c.hosts, err)
	case strings.Contains(msg, "not Elasticsearch"):
		return fmt.Errorf("%w: %s: the server at %s is not Elasticsearch (check the URL and port)", ErrConfig, what, c.hosts)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("%w: %s: connection to %s refused: is Elasticsearch running there? (check --es-hosts)", ErrUnavailable, what, c.hosts)
	case strings.Contains(msg, "no such host"):
		return fmt.Errorf("%w: %s: cannot resolve %s (check --es-hosts): %v", ErrUnavailable, what, c.hosts, err)
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:"):
		return fmt.Errorf("%w: %s: TLS with %s failed (check https vs http, the server certificate and --es-tls-ca, --es-tls-cert, --es-tls-key): %v", ErrConfig, what, c.hosts, err)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%w: %s: %s speaks http, not https (fix the URL scheme)", ErrConfig, what, c.hosts)
	}
	return fmt.Errorf("%w: %s: %s: %v", ErrUnavailable, what, c.hosts, err)
}

func (c *Client) statusError(what string, status int, body []byte) error {
	var b esErrorBody
	detail := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &b) == nil && b.Error.Type != "" {
		detail = b.String()
	}
	switch {
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s: Elasticsearch at %s refused the credentials (401 %s): check %s", ErrAuth, what, c.hosts, detail, c.auth)
	case status == http.StatusForbidden:
		return fmt.Errorf("%w: %s: the Elasticsearch user lacks a privilege (403 %s): grant the privileges listed in docs/elasticsearch.md", ErrAuth, what, detail)
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Errorf("%w: %s: Elasticsearch answered %d %s", ErrUnavailable, what, status, detail)
	}
	return fmt.Errorf("%w: %s: Elasticsearch answered %d %s", ErrRejected, what, status, detail)
}

// Refresh makes everything indexed so far searchable at once (Elasticsearch
// otherwise does so within its refresh interval, 1s by default).
func (c *Client) Refresh(ctx context.Context) error {
	res, err := c.es.Indices.Refresh(
		c.es.Indices.Refresh.WithContext(ctx),
		c.es.Indices.Refresh.WithIndex(c.JobsIndex(), c.EventsIndex()),
		c.es.Indices.Refresh.WithIgnoreUnavailable(true),
	)
	if err := c.check("refresh", res, err); err != nil {
		return err
	}
	res.Body.Close()
	return nil
}

// EnsureTemplates installs (or updates) the index templates and creates
// the indices when they do not exist yet, so that they get the engine's
// mappings and not dynamic ones. It is idempotent and safe to run from
// several processes at once.
func (c *Client) EnsureTemplates(ctx context.Context) error {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	for _, t := range c.templates() {
		body, err := json.Marshal(t.body)
		if err != nil {
			return fmt.Errorf("%w: encoding template %s: %v", ErrConfig, t.name, err)
		}
		res, err := c.es.Indices.PutIndexTemplate(t.name, bytes.NewReader(body), c.es.Indices.PutIndexTemplate.WithContext(ctx))
		if err := c.check("installing index template "+t.name, res, err); err != nil {
			return err
		}
		res.Body.Close()
	}
	for _, name := range []string{c.JobsIndex(), c.EventsIndex()} {
		res, err := c.es.Indices.Exists([]string{name}, c.es.Indices.Exists.WithContext(ctx))
		if err != nil {
			return c.transportError("checking index "+name, err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			continue
		}
		if res.StatusCode != http.StatusNotFound {
			return c.statusError("checking index "+name, res.StatusCode, nil)
		}
		res, err = c.es.Indices.Create(name, c.es.Indices.Create.WithContext(ctx))
		if err != nil {
			return c.transportError("creating index "+name, err)
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.IsError() && errType(body) != "resource_already_exists_exception" {
			return c.statusError("creating index "+name, res.StatusCode, body)
		}
	}
	if !c.templatesOK.Swap(true) {
		c.log.Info("elasticsearch index templates installed",
			zap.String("hosts", c.hosts), zap.String("jobs_index", c.JobsIndex()), zap.String("events_index", c.EventsIndex()))
	}
	return nil
}

// ready installs the templates once per client before the first write, so
// that no index is ever created with dynamic mappings.
func (c *Client) ready(ctx context.Context) error {
	if c.templatesOK.Load() {
		return nil
	}
	return c.EnsureTemplates(ctx)
}
