package distributor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// StateDir is the directory of the distributors' state nodes, under the
// connection's root: <root>/distributors/<name>/state.
const StateDir = "distributors"

// State is what a distributor keeps in ZooKeeper between leaders, in
// <root>/distributors/<name>/state (JSON). Only a leader writes it, in a
// multi with its election fence.
type State struct {
	// Tick is the id of the last tick whose jobs were all handled (created,
	// found already created, or skipped by the dedup policy).
	Tick string `json:"tick"`
	// Done is when that tick was completed.
	Done time.Time `json:"done"`
	// By is the identifier of the leader that completed it.
	By string `json:"by"`
	// Created counts the jobs created for the tick.
	Created int `json:"created"`
	// Existing counts the tick's jobs found already created (by an earlier
	// leader that did not get to record the tick).
	Existing int `json:"existing,omitempty"`
	// Skipped counts the tick's jobs not created: a live job held the
	// unique key, or the backlog was full.
	Skipped int `json:"skipped,omitempty"`
}

// StatePath returns the state node of the distributor called name.
func StatePath(conn *zkconn.Conn, name string) string {
	return conn.Path(StateDir, name, "state")
}

// ReadState reads a distributor's state and its znode version; a
// distributor that never completed a tick has the zero State and version
// -1.
func ReadState(ctx context.Context, conn *zkconn.Conn, name string) (State, int32, error) {
	var (
		data []byte
		st   *zk.Stat
	)
	p := StatePath(conn, name)
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = conn.Get(p)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return State{}, -1, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("distributor: reading %s: %w", p, err)
	}
	var s State
	if len(data) > 0 {
		if err := json.Unmarshal(data, &s); err != nil {
			// A damaged state must not stop distribution: it is as if no
			// tick had ever completed, so the schedule starts with the
			// next tick, and the next write replaces it.
			return State{}, st.Version, nil
		}
	}
	return s, st.Version, nil
}

// errStateChanged means the state node changed since it was read (or was
// created meanwhile): read it again.
var errStateChanged = errors.New("distributor: state changed concurrently")

// writeState writes s over version ver (-1: create the node) in one multi
// with fence, the leader's election fence, and returns the new version. A
// failed fence is reported as an error wrapping errFenced.
func writeState(ctx context.Context, conn *zkconn.Conn, name string, s State, ver int32, fence interface{}) (int32, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return 0, err
	}
	p := StatePath(conn, name)
	var op interface{} = &zk.SetDataRequest{Path: p, Data: data, Version: ver}
	if ver < 0 {
		op = &zk.CreateRequest{Path: p, Data: data, Acl: zkconn.ACL}
	}
	var res []zk.MultiResponse
	err = zkconn.Do(ctx, func() error {
		for attempt := 0; ; attempt++ {
			var err error
			res, err = conn.Multi(fence, op)
			i, opErr := zkconn.MultiError(res, err)
			if attempt > 0 || i != 1 || !errors.Is(opErr, zk.ErrNoNode) || ver >= 0 {
				return err
			}
			// The distributor's directory does not exist yet.
			if err := zkconn.EnsureSync(conn.Conn, path.Dir(p)); err != nil {
				return err
			}
		}
	})
	if err != nil {
		i, opErr := zkconn.MultiError(res, err)
		switch {
		case i == 0:
			return 0, fmt.Errorf("%w: %v", errFenced, opErr)
		case i == 1 && (errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNodeExists) || errors.Is(opErr, zk.ErrNoNode)):
			return 0, errStateChanged
		}
		return 0, fmt.Errorf("distributor: writing %s: %w", p, opErr)
	}
	if ver < 0 {
		return 0, nil
	}
	return ver + 1, nil
}
