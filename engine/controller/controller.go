// Package controller is the control-plane daemon's assembly: every
// controller contends in one election (kazoo's Election layout,
// <root>/election/controller) and the elected one runs the leader-only
// services — the scheduler and the reaper (engine/scheduler) — with its
// term, so they move to another controller within a session timeout when
// it dies. Any number of controllers may run.
//
// The services are started on each term with the leader context and
// stopped when it ends; a service that fails to start gives leadership
// up, and the controller contends again after a back-off.
package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/scheduler"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
)

// ElectionName is the controllers' election: <root>/election/controller.
// No distributor may take the name.
const ElectionName = "controller"

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("controller: bad configuration")

// Service is a leader-only service: started with the leader context on
// each term, stopped when the term ends.
type Service interface {
	Name() string
	Start(ctx context.Context) error
	Stop()
}

// Config configures a controller.
type Config struct {
	// Conn is the controller's ZooKeeper session (required).
	Conn *zkconn.Conn
	// Store is the job store on Conn (required).
	Store *jobs.Store
	// Identifier names this controller in the election (default
	// hostname/pid).
	Identifier string
	// SessionTimeout is the session timeout Conn was dialled with; the
	// leader lease is derived from it.
	SessionTimeout time.Duration
	// Logger receives the controller's log lines.
	Logger *zap.Logger
	// Scheduler and Reaper configure the services (their Store is set).
	Scheduler scheduler.Config
	Reaper    scheduler.ReaperConfig
}

// Controller is a running controller.
type Controller struct {
	cfg      Config
	log      *zap.Logger
	services []Service
	leading  atomic.Bool
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// Start checks cfg, builds the services and starts contending; it returns
// at once. Stop it with Shutdown.
func Start(cfg Config) (*Controller, error) {
	if cfg.Conn == nil || cfg.Store == nil {
		return nil, fmt.Errorf("%w: a ZooKeeper connection and a job store are required", ErrConfig)
	}
	if cfg.Identifier == "" {
		host, _ := os.Hostname()
		cfg.Identifier = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = zkconn.DefaultSessionTimeout
	}
	cfg.Scheduler.Store, cfg.Reaper.Store = cfg.Store, cfg.Store
	if cfg.Scheduler.Logger == nil {
		cfg.Scheduler.Logger = cfg.Logger
	}
	if cfg.Reaper.Logger == nil {
		cfg.Reaper.Logger = cfg.Logger
	}
	s, err := scheduler.New(cfg.Scheduler)
	if err != nil {
		return nil, err
	}
	r, err := scheduler.NewReaper(cfg.Reaper)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Controller{cfg: cfg, log: cfg.Logger.Named("controller").With(zap.String("identifier", cfg.Identifier)),
		services: []Service{s, r}, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx)
	c.log.Info("controller started: contending for the leader-only services", zap.Strings("services", c.Services()))
	return c, nil
}

// Services names the services the leader runs, in start order.
func (c *Controller) Services() []string {
	out := make([]string, len(c.services))
	for i, s := range c.services {
		out[i] = s.Name()
	}
	return out
}

// Leading reports whether this controller leads and runs the services.
func (c *Controller) Leading() bool { return c.leading.Load() }

// Done is closed once the controller has stopped.
func (c *Controller) Done() <-chan struct{} { return c.done }

// Shutdown stops the services, gives up leadership and returns once the
// controller has stopped (or ctx ends: closing the session then removes
// its election node).
func (c *Controller) Shutdown(ctx context.Context) {
	c.stopOnce.Do(func() {
		c.log.Info("controller stopping")
		c.cancel()
	})
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

func (c *Controller) run(ctx context.Context) {
	defer close(c.done)
	bo := backoff.New(time.Second, time.Minute)
	for ctx.Err() == nil {
		e := election.New(c.cfg.Conn, ElectionName, c.cfg.Identifier, c.cfg.Logger, election.WithSessionTimeout(c.cfg.SessionTimeout))
		err := e.Run(ctx, c.lead)
		if ctx.Err() != nil {
			break
		}
		c.log.Warn("the controller election ended; contending again after a back-off", zap.Error(err))
		bo.Wait(ctx)
	}
	c.log.Info("controller stopped")
}

// lead starts every service with the leader context, waits for the term
// to end and stops them in reverse order.
func (c *Controller) lead(ctx context.Context) error {
	var started []Service
	stopAll := func() {
		for i := len(started) - 1; i >= 0; i-- {
			started[i].Stop()
		}
	}
	for _, s := range c.services {
		if err := s.Start(ctx); err != nil {
			stopAll()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			c.log.Error("a service did not start; giving up leadership", zap.String("service", s.Name()), zap.Error(err))
			return fmt.Errorf("controller: starting %s: %w", s.Name(), err)
		}
		started = append(started, s)
	}
	c.leading.Store(true)
	c.log.Info("leading: services started", zap.Strings("services", c.Services()))
	<-ctx.Done()
	c.leading.Store(false)
	stopAll()
	c.log.Info("services stopped", zap.NamedError("reason", context.Cause(ctx)))
	return context.Cause(ctx)
}
