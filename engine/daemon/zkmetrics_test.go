package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/jobengine/jobengine/engine/executor"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/poll"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

// metric reads one metric without labels from the executor's /metrics.
func metric(x *Executor, name string) (string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + x.MetricsAddr().String() + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no %s in the metrics", name)
	}
	return string(m[1]), nil
}

func wantMetric(x *Executor, name, want string) func() error {
	return func() error {
		got, err := metric(x, name)
		if err == nil && got != want {
			err = fmt.Errorf("%s is %s, want %s", name, got, want)
		}
		return err
	}
}

// TestZooKeeperConnectionStateIsLoggedAndMeasured cuts an executor off
// ZooKeeper (a proxy that drops its connections) until the server expires
// its session, then lets it back: the loss is one WARN line and its return
// an INFO line, and /metrics follows the state and counts the expiry.
func TestZooKeeperConnectionStateIsLoggedAndMeasured(t *testing.T) {
	zc := zktest.StartT(t, zkserver.Options{})
	proxy, err := zktest.NewProxy(zc.Servers[0].Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	log, obs := logs(t)
	cfg := NewExecutorConfig()
	cfg.ZK = zkconn.Config{Hosts: []string{proxy.Addr()}, Root: "/", SessionTimeout: time.Second}
	cfg.Plugins.Dir, cfg.Logger, cfg.Threads, cfg.Name, cfg.MetricsListen = t.TempDir(), log, 1, "x1", "127.0.0.1:0"
	x, err := StartExecutor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Stop()
	poll.For(t, wait, 20*time.Millisecond, wantMetric(x, "jobengine_zk_connected", "1"))
	poll.For(t, wait, 20*time.Millisecond, wantMetric(x, "jobengine_zk_session_expirations_total", "0"))

	proxy.Block()
	poll.For(t, wait, 20*time.Millisecond, wantMetric(x, "jobengine_zk_connected", "0"))
	// The server expires the session: the executor's membership node goes.
	direct := dialT(t, zkconn.Config{Hosts: zc.Addrs(), Root: "/", SessionTimeout: 2 * time.Second})
	defer direct.Close()
	poll.For(t, wait, 50*time.Millisecond, func() error {
		ok, _, err := direct.Exists(direct.Path(executor.MembersPath, "x1"))
		if err == nil && ok {
			err = fmt.Errorf("the session has not expired yet")
		}
		return err
	})
	proxy.Unblock()
	poll.For(t, wait, 20*time.Millisecond, wantMetric(x, "jobengine_zk_session_expirations_total", "1"))
	poll.For(t, wait, 20*time.Millisecond, wantMetric(x, "jobengine_zk_connected", "1"))

	lost := obs.FilterMessage(zkconn.LogConnectionLost).All()
	if len(lost) != 1 || lost[0].Level != zapcore.WarnLevel {
		t.Errorf("a lost connection logged %d times (%v), want once at WARN", len(lost), lost)
	}
	poll.For(t, wait, 20*time.Millisecond, func() error {
		back := obs.FilterMessage(zkconn.LogConnectionBack).All()
		if len(back) != 1 || back[0].Level != zapcore.InfoLevel {
			return fmt.Errorf("the return logged %d times (%v), want once at INFO", len(back), back)
		}
		return nil
	})
	if exp := obs.FilterMessage(zkconn.LogSessionExpired).All(); len(exp) != 1 || exp[0].Level != zapcore.WarnLevel {
		t.Errorf("the expiry logged %d times (%v), want once at WARN", len(exp), exp)
	}
}

// TestStartSaysWhatItWaitsFor: a daemon whose ZooKeeper refuses
// connections says so after a second, before its connect timeout ends.
func TestStartSaysWhatItWaitsFor(t *testing.T) {
	log, obs := logs(t)
	ports, err := zkserver.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewDistributorConfig()
	cfg.ZK.Hosts, cfg.ConnectTimeout, cfg.Logger = []string{fmt.Sprintf("127.0.0.1:%d", ports[0])}, 2*time.Second, log
	if _, err := StartDistributor(context.Background(), cfg); !errors.Is(err, zkconn.ErrUnavailable) {
		t.Fatalf("unreachable ZooKeeper: %v", err)
	}
	w := obs.FilterMessage(LogWaitingForZK).All()
	if len(w) != 1 || w[0].Level != zapcore.WarnLevel || !strings.Contains(fmt.Sprint(w[0].ContextMap()["last-dial-error"]), "connection refused") {
		t.Fatalf("waiting logged as %v", w)
	}
}
