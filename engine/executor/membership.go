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
			return fmt.Errorf("%w: executor %q is already running (pid %d on %s); give this one another --name", ErrNameInUse, e.cfg.Name, m.PID, m.Host)
		}
		return err
	})
}

// heartbeatLoop keeps the membership node current, recreating it after a
// new session, and records each heartbeat's time with the instance record.
func (e *Executor) heartbeatLoop(ctx context.Context) {
	defer e.bg.Done()
	t := time.NewTicker(e.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.cfg.Metrics.setBusy(len(e.Running()))
		if n, err := e.store.Queue().Len(ctx); err == nil {
			e.cfg.Metrics.setDepth(n)
		}
		err := zkconn.Do(ctx, func() error {
			_, err := e.conn.Set(e.memberPath(), e.member(), -1)
			if errors.Is(err, zk.ErrNoNode) {
				_, err = e.conn.Create(e.memberPath(), e.member(), zk.FlagEphemeral, zkconn.ACL)
			}
			return err
		})
		if err == nil {
			err = instance.Touch(ctx, e.conn, e.cfg.Name, time.Now())
		}
		if err != nil && ctx.Err() == nil {
			e.log.Debug("heartbeat failed", zap.Error(err))
		}
	}
}
