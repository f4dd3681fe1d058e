package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/jobengine/jobengine/engine/access"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/testing/poll"
)

// TestControllerServesTheAPI starts two controllers and an executor with
// one call each, creates an administrator directly in ZooKeeper (the
// bootstrap), and drives a sliced launch through either controller's API
// until its jobs succeed; ping names the active controller and the
// executor; /healthz and /readyz answer on the controllers and on the
// executor's metrics listener. Everything stops cleanly.
func TestControllerServesTheAPI(t *testing.T) {
	before := goleak.IgnoreCurrent()
	log, _ := logs(t)
	zc := zkFor(t)
	func() {
		ctx := context.Background()
		var ctls []*Controller
		for i := 1; i <= 2; i++ {
			cfg := NewControllerConfig()
			cfg.ZK, cfg.Listen, cfg.Identifier, cfg.Logger = zc, "127.0.0.1:0", fmt.Sprintf("ctl%d", i), log.Named(fmt.Sprintf("ctl%d", i))
			c, err := StartController(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Stop()
			ctls = append(ctls, c)
		}
		xcfg := NewExecutorConfig()
		xcfg.ZK, xcfg.Name, xcfg.Threads, xcfg.EnableTestActions, xcfg.MetricsListen = zc, "x1", 2, true, "127.0.0.1:0"
		xcfg.Plugins.Dir, xcfg.Logger = t.TempDir(), log.Named("x1")
		x, err := StartExecutor(ctx, xcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Stop()

		// The bootstrap: the first administrator, directly in ZooKeeper.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := zkconn.Dial(dctx, zc)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := access.NewStore(conn, nil).CreateUser(ctx, access.NewUser{Name: "root", Role: access.SystemAdmin, Password: "root-password"}); err != nil {
			t.Fatal(err)
		}

		call := func(c *Controller, method, path, body string, want int, out any) {
			t.Helper()
			req, _ := http.NewRequest(method, "http://"+c.Addr().String()+path, strings.NewReader(body))
			req.SetBasicAuth("root", "root-password")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			data, _ := io.ReadAll(res.Body)
			if res.StatusCode != want {
				t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, data)
			}
			if out != nil {
				if err := json.Unmarshal(data, out); err != nil {
					t.Fatalf("%s %s: %v: %s", method, path, err, data)
				}
			}
		}
		a, b := ctls[0], ctls[1]
		call(a, "POST", "/api/v1/inventories/lab/import", `{"ungrouped": {"hosts": ["h1", "h2", "h3"]}}`, 201, nil)
		call(b, "POST", "/api/v1/templates", `{"name": "hello", "action": "echo", "inventory": "lab", "slice-count": 3}`, 201, nil)
		var launched struct {
			Job    struct{ ID string }
			Slices []string
		}
		call(a, "POST", "/api/v1/templates/hello/launch", "", 201, &launched)
		if len(launched.Slices) != 3 {
			t.Fatalf("launched %+v", launched)
		}
		poll.For(t, wait, 50*time.Millisecond, func() error {
			var j struct{ State string }
			call(b, "GET", "/api/v1/jobs/"+strings.TrimPrefix(launched.Job.ID, "job/"), "", 200, &j)
			if j.State != "SUCCESS" {
				return fmt.Errorf("the sliced job is %s", j.State)
			}
			return nil
		})
		var ping struct {
			Active    string `json:"active-controller"`
			Instances []struct {
				Name    string
				Threads int
				State   string
			}
		}
		poll.For(t, wait, 50*time.Millisecond, func() error {
			call(a, "GET", "/api/v1/ping", "", 200, &ping)
			if ping.Active != "ctl1" && ping.Active != "ctl2" || len(ping.Instances) != 1 || ping.Instances[0].Name != "x1" || ping.Instances[0].Threads != 2 || ping.Instances[0].State != "live" {
				return fmt.Errorf("ping %+v", ping)
			}
			return nil
		})
		for _, base := range []string{a.Addr().String(), b.Addr().String(), x.MetricsAddr().String()} {
			for _, p := range []string{"/healthz", "/readyz"} {
				res, err := http.Get("http://" + base + p)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("%s%s: %d", base, p, res.StatusCode)
				}
			}
		}
	}()
	goleak.VerifyNone(t, before)
}

// TestControllerConfig checks what a controller refuses before it starts:
// plain HTTP beyond loopback unless allowed, half a TLS pair, a bad
// address.
func TestControllerConfig(t *testing.T) {
	for name, c := range map[string]struct {
		mod   func(*ControllerConfig)
		field string
	}{
		"plain http on all addresses": {func(c *ControllerConfig) { c.Listen = ":8052" }, "Listen"},
		"plain http on a public ip":   {func(c *ControllerConfig) { c.Listen = "192.0.2.1:8052" }, "Listen"},
		"no port":                     {func(c *ControllerConfig) { c.Listen = "localhost" }, "Listen"},
		"cert without key":            {func(c *ControllerConfig) { c.TLSCert = "/etc/cert.pem" }, "TLSCert"},
		"missing cert files":          {func(c *ControllerConfig) { c.TLSCert, c.TLSKey = "/nonexistent.pem", "/nonexistent.key" }, "TLSCert"},
	} {
		cfg := NewControllerConfig()
		c.mod(&cfg)
		var ce *ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: %v, want a ConfigError of %s", name, err, c.field)
		}
	}
	cfg := NewControllerConfig()
	cfg.Listen, cfg.InsecureListen = ":8052", true
	if err := cfg.Validate(); err != nil {
		t.Errorf("plain HTTP allowed explicitly: %v", err)
	}
	for _, l := range []string{"127.0.0.1:0", "[::1]:8052", "localhost:8052"} {
		cfg := NewControllerConfig()
		cfg.Listen = l
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
}
