package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/instance"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Member is the JSON of an executor's membership (heartbeat) node.
type Member = instance.Heartbeat

// MembersPath is the directory of executor membership nodes.
const MembersPath = instance.HeartbeatsPath

func (e *Executor) memberPath() string { return e.conn.Path(MembersPath, e.cfg.Name) }

func (e *Executor) member() []byte {
	running := e.Running()
	m := Member{
		Name: e.cfg.Name, Host: e.host, PID: os.Getpid(), Version: e.cfg.Version,
		Threads: e.cfg.Threads, Busy: len(running), Actions: e.cfg.Registry.Names(),
		Started: e.started, LastSeen: time.Now().UTC(), Running: running,
		Groups: e.cfg.Groups,
	}
	if e.record != nil {
		m.Capacity = e.record.Capacity
	}
	b, _ := json.Marshal(m)
	return b
}

// instanceRecord is the executor's instance record as it starts: its
// groups, its capacity by AWX's formula (or as set), its actions' lost-job
// policies for the reaper.
func (e *Executor) instanceRecord() instance.Record {
	res := instance.DetectResources()
	if e.cfg.Resources != nil {
		res = *e.cfg.Resources
	}
	capa := instance.Compute(res, e.cfg.Capacity)
	r := instance.Record{
		Name: e.cfg.Name, Host: e.host, Groups: e.cfg.Groups,
		Capacity: capa.Total, CapacityDetail: capa, Settings: e.cfg.Capacity.WithDefaults(), Resources: res,
		Threads: e.cfg.Threads, Version: e.cfg.Version,
	}
	for _, d := range e.cfg.Registry.List() {
		r.Actions = append(r.Actions, instance.ActionPolicy{Name: d.Name, LostPolicy: d.LostPolicy, MaxAttempts: d.MaxAttempts})
	}
	return r
}

// register creates the membership node, refusing a name a live executor
// already uses.
func (e *Executor) register(ctx context.Context) error {
	return zkconn.Do(ctx, func() error {
		if err := zkconn.EnsureSync(e.conn.Conn, e.conn.Path(MembersPath)); err != nil {
			return err
		}
		_, err := e.conn.Create(e.memberPath(), e.member(), zk.FlagEphemeral, zkconn.ACL)
		if errors.Is(err, zk.ErrNodeExists) {
			data, st, gerr := e.conn.Get(e.memberPath())
			if gerr == nil && st.EphemeralOwner == e.conn.SessionID() {
				return nil
			}
			var m Member
			_ = json.Unmarshal(data, &m)
			if gerr == nil && e.deadMember(m) {
				// Its process is gone (killed, so it could not remove the
				// node) and its session has not expired yet: the name is
				// free.
				e.log.Warn(LogDeadMemberRemoved, zap.Int("dead-pid", m.PID), zap.Time("dead-started", m.Started))
				if err := e.conn.Delete(e.memberPath(), st.Version); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return err
				}
				_, err = e.conn.Create(e.memberPath(), e.member(), zk.FlagEphemeral, zkconn.ACL)
				if !errors.Is(err, zk.ErrNodeExists) {
					return err
				}
			}
			return fmt.Errorf("%w: executor %q is already running (pid %d on %s); give this one another --name", ErrNameInUse, e.cfg.Name, m.PID, m.Host)
		}
		return err
	})
}

// memberUpdateGap is the least time between two updates of the
// membership node for jobs starting and ending: a burst of them is one
// write.
const memberUpdateGap = 100 * time.Millisecond

// publishMember asks the heartbeat loop to publish the membership node
// now, so that `cluster status` shows what runs without waiting for the
// next heartbeat.
func (e *Executor) publishMember() {
	select {
	case e.kick <- struct{}{}:
	default: // already asked
	}
}

// heartbeatLoop keeps the membership node current, recreating it after a
// new session: every heartbeat, and when a job starts or ends. Each
// heartbeat's time is also recorded with the instance record.
func (e *Executor) heartbeatLoop(ctx context.Context) {
	defer e.bg.Done()
	t := time.NewTicker(e.cfg.Heartbeat)
	defer t.Stop()
	var last time.Time
	for {
		beat := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			beat = true
		case <-e.kick:
			if wait := time.Until(last.Add(memberUpdateGap)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		e.cfg.Metrics.setBusy(len(e.Running()))
		if beat {
			// A listing of the queue: once per heartbeat, not per job.
			if n, err := e.store.Queue().Len(ctx); err == nil {
				e.cfg.Metrics.setDepth(n)
			}
		}
		err := zkconn.Do(ctx, func() error {
			_, err := e.conn.Set(e.memberPath(), e.member(), -1)
			if errors.Is(err, zk.ErrNoNode) {
				_, err = e.conn.Create(e.memberPath(), e.member(), zk.FlagEphemeral, zkconn.ACL)
			}
			return err
		})
		if err == nil && beat {
			err = instance.Touch(ctx, e.conn, e.cfg.Name, time.Now())
		}
		if err != nil && ctx.Err() == nil {
			e.log.Debug("heartbeat failed", zap.Error(err))
		}
	}
}
