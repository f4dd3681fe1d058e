package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jobengine/jobengine/engine/inventory"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/schedules"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/workflow"
)

// The control plane's leader-run services: the workflow service runs
// workflow jobs, the schedule runner launches the occurrences of the
// stored schedules (job templates, workflow templates and jobs), the
// notification sender delivers notices. They run on the maintenance
// leader with the others, so one election decides everything that must
// run once per cluster.

// Names of the control plane's services.
const (
	WorkflowsName     = workflow.ServiceName
	SchedulesName     = schedules.RunnerName
	NotificationsName = "notifications"
)

// WorkflowsConfig configures the workflow service.
type WorkflowsConfig struct {
	// Interval is the time between two passes over the open workflow jobs
	// (workflow.DefaultInterval when 0).
	Interval time.Duration
}

// NotifyConfig configures the notification sender; zero values are its
// defaults (notify.DefaultMaxAttempts, …).
type NotifyConfig struct {
	MaxAttempts            int
	MinBackoff, MaxBackoff time.Duration
}

func init() {
	register(WorkflowsName, newWorkflows)
	register(SchedulesName, newSchedules)
	register(NotificationsName, newNotifications)
}

// launchers returns the template and workflow launchers on cfg's session.
func launchers(cfg Config) (*template.Launcher, *workflow.Launcher) {
	log := cfg.Logger
	live := func(ctx context.Context, uid string) (bool, error) {
		j, _, err := cfg.Store.Get(ctx, "job/"+uid)
		if errors.Is(err, jobs.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return !j.State.Final(), nil
	}
	tpls := template.NewStore(cfg.Conn, log.Named("template"))
	invs := inventory.NewStore(cfg.Conn, inventory.Config{Logger: log.Named("inventory"), Live: live})
	tl := &template.Launcher{Jobs: cfg.Store, Templates: tpls, Inventories: invs, Logger: log.Named("launch")}
	wl := &workflow.Launcher{Jobs: cfg.Store, Workflows: workflow.NewStore(cfg.Conn, log.Named("workflow")), Templates: tpls, Logger: log.Named("launch")}
	return tl, wl
}

func newWorkflows(cfg Config) (Service, error) {
	tl, wl := launchers(cfg)
	s, err := workflow.NewService(workflow.ServiceConfig{Jobs: cfg.Store, Templates: tl, Workflows: wl,
		Interval: cfg.Workflows.Interval, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return s, nil
}

func newSchedules(cfg Config) (Service, error) {
	tl, wl := launchers(cfg)
	r, err := schedules.NewRunner(schedules.RunnerConfig{Store: schedules.NewStore(cfg.Conn), Jobs: cfg.Store,
		Launch: schedules.TemplateLauncher(cfg.Store, tl, wl), Identifier: cfg.Identifier, Clock: cfg.Clock, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return r, nil
}

func newNotifications(cfg Config) (Service, error) {
	n := cfg.Notify
	if n.MaxAttempts == 0 {
		n.MaxAttempts = notify.DefaultMaxAttempts
	}
	if n.MinBackoff == 0 {
		n.MinBackoff = notify.DefaultMinBackoff
	}
	if n.MaxBackoff == 0 {
		n.MaxBackoff = notify.DefaultMaxBackoff
	}
	s, err := notify.NewSender(notify.SenderConfig{Store: notify.NewStore(cfg.Conn), Logger: cfg.Logger,
		MaxAttempts: n.MaxAttempts, MinBackoff: n.MinBackoff, MaxBackoff: n.MaxBackoff})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return s, nil
}
