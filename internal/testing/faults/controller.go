package faults

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/internal/check"
)

// The control plane's daemon in the run: two `jobengine controller`
// processes, c1 and c2, contend for the maintenance services (scheduler,
// reaper, workflow service, container repair, schedule runner,
// notification sender, cleanup, index pump), as on a real cluster; the
// distributor processes then run with --maintenance=false. Their faults
// kill or freeze whichever leads, in the middle of its work.

// RoleController is the role of a controller process.
const RoleController = "controller"

// Settings of the controllers' notification sender: the receiver's
// outage is short, so a notice waits at most a couple of seconds after it
// and is never parked.
const (
	notifyMinBackoff  = 500 * time.Millisecond
	notifyMaxBackoff  = 2 * time.Second
	notifyMaxAttempts = 1000
)

// HasController reports whether the binary has the controller command.
func HasController(bin string) bool {
	return exec.Command(bin, "controller", "--help").Run() == nil
}

// controllerArgs are the command's arguments of controller process id.
func (h *Harness) controllerArgs(id string) []string {
	return []string{"controller", "--identifier", id, "--listen", "127.0.0.1:0", "--config-dir", h.confDir,
		"--notify-min-backoff", notifyMinBackoff.String(), "--notify-max-backoff", notifyMaxBackoff.String(),
		"--notify-max-attempts", fmt.Sprint(notifyMaxAttempts)}
}

// electionOf returns the election a process of role shows in once it is
// ready.
func electionOf(role string) string {
	if role == RoleController {
		return maintenance.ElectionName
	}
	return DistributorName
}

// leaderOf returns the current process of ins that leads the election.
func (h *Harness) leaderOf(ctx context.Context, name string, ins []*instance) (*instance, *process, error) {
	var leader string
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := check.Until(lctx, 50*time.Millisecond, func() error {
		var err error
		leader, err = election.New(h.conn, name, "", zap.NewNop()).Leader(lctx)
		return err
	})
	cancel()
	if err != nil {
		return nil, nil, err
	}
	for _, in := range ins {
		if cur := h.current(in); cur.info.ID == leader {
			return in, cur, nil
		}
	}
	return nil, nil, fmt.Errorf("the leader %q of election %s is none of the harness's current processes", leader, name)
}

// watchLeader polls the election from at until someone other than old
// leads it, for at most wait, and returns a function that waits for the
// answer: when the new leader showed, zero if none did.
func (h *Harness) watchLeader(ctx context.Context, name, old string, wait time.Duration) func() time.Time {
	got := make(chan time.Time, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		var at time.Time
		_ = check.Until(wctx, 20*time.Millisecond, func() error {
			l, err := election.New(h.conn, name, "", zap.NewNop()).Leader(wctx)
			if err != nil {
				return err
			}
			if l == old {
				return errors.New("the old leader still leads")
			}
			at = time.Now()
			return nil
		})
		got <- at
	}()
	return func() time.Time { return <-got }
}

// killControllerLeader kills the controller that leads the maintenance
// services in the middle of a schedule occurrence (killMidTick: the
// occurrence's job created, the schedule's state not written; without a
// schedule, wherever it is), and starts it again after the hold.
func (h *Harness) killControllerLeader(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	in, p, err := h.leaderOf(ctx, maintenance.ElectionName, h.ctls)
	if err != nil {
		return err
	}
	if h.sched != nil {
		// The runner launches 3–125 ms after the occurrence is due (it
		// reads the schedule's state first): a wider window than a
		// distributor tick's.
		if err := h.killMidTick(ctx, p, h.Plan.Config.ScheduleEvery, f.TickOffset, 150*time.Millisecond, h.occurrencePhase, h.occurrenceJobPath, e); err != nil {
			return err
		}
	} else {
		e.Target, e.At = p.info.ID, time.Now()
		h.kill(p)
	}
	newLeader := h.watchLeader(ctx, maintenance.ElectionName, p.info.ID, 30*time.Second)
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		return err
	}
	e.HealAt = time.Now()
	np, err := h.startProcess(ctx, in)
	if err != nil {
		return err
	}
	e.Healed, e.Restarted = time.Now(), np.info.ID
	e.NewLeader = newLeader()
	return nil
}

// pauseControllerLeader freezes the leading controller past its session
// and continues it: the other controller takes over, and the frozen one,
// resumed in the middle of whatever it was doing, must find it no longer
// leads.
func (h *Harness) pauseControllerLeader(ctx context.Context, f Fault, e *FaultEvent, probe func()) error {
	_, p, err := h.leaderOf(ctx, maintenance.ElectionName, h.ctls)
	if err != nil {
		return err
	}
	e.Target = p.info.ID
	e.At = h.pause(p, "group")
	newLeader := h.watchLeader(ctx, maintenance.ElectionName, p.info.ID, f.Hold+10*time.Second)
	probe()
	if err := sleep(ctx, f.Hold); err != nil {
		h.resume(p, "group")
		return err
	}
	e.HealAt = h.resume(p, "group")
	e.Healed = e.HealAt
	e.NewLeader = newLeader()
	return nil
}
