package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Record is a notice with what the sender knows of its delivery. The job
// store writes the notice (jobs.Notice); the sender adds its attempts.
type Record struct {
	jobs.Notice
	// Attempts counts the failed deliveries.
	Attempts int `json:"attempts,omitempty"`
	// NextAttempt is when the sender tries again.
	NextAttempt *time.Time `json:"next-attempt,omitempty"`
	// LastError is why the last delivery failed.
	LastError string `json:"last-error,omitempty"`
	// Parked is when the sender gave up on it.
	Parked *time.Time `json:"parked,omitempty"`
	// Raw keeps (the start of) what was stored, for a notice that was not
	// valid and was parked as it was found.
	Raw string `json:"raw,omitempty"`
}

// maxRecordBytes bounds a stored notice.
const maxRecordBytes = 64 << 10

// decodeRecord parses and validates a notice named name.
func decodeRecord(name string, data []byte) (*Record, error) {
	if _, _, _, ok := jobs.ParseNoticeName(name); !ok {
		return nil, fmt.Errorf("%w: %q is not a notice name (<job uuid>-<version>-<template>)", ErrInvalid, name)
	}
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("%w: notice %s is %d bytes, over %d", ErrInvalid, name, len(data), maxRecordBytes)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: notice %s is not valid JSON: %v", ErrInvalid, name, err)
	}
	_, _, tmpl, _ := jobs.ParseNoticeName(name)
	switch {
	case r.ID != name:
		return nil, fmt.Errorf("%w: notice %s names itself %q", ErrInvalid, name, r.ID)
	case r.Notification != tmpl:
		return nil, fmt.Errorf("%w: notice %s is for template %q, its name says %q", ErrInvalid, name, r.Notification, tmpl)
	case r.Attempts < 0:
		return nil, fmt.Errorf("%w: notice %s has %d attempts", ErrInvalid, name, r.Attempts)
	}
	if _, err := jobs.ParseNotifyEvent(string(r.Event)); err != nil {
		return nil, fmt.Errorf("%w: notice %s: %v", ErrInvalid, name, err)
	}
	if _, _, err := jobs.ParseID(r.Job.ID); err != nil {
		return nil, fmt.Errorf("%w: notice %s: %v", ErrInvalid, name, err)
	}
	return &r, nil
}

// Pending returns the notices waiting for delivery, by name. Notices that
// are not valid are left out (the sender parks them).
func (s *Store) Pending(ctx context.Context) ([]*Record, error) {
	return s.records(ctx, s.OutboxPath())
}

// Failed returns the parked notices, by name.
func (s *Store) Failed(ctx context.Context) ([]*Record, error) {
	return s.records(ctx, s.FailedPath())
}

func (s *Store) records(ctx context.Context, dir string) ([]*Record, error) {
	names, err := s.children(ctx, dir)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, n := range names {
		var data []byte
		err := zkconn.Do(ctx, func() error {
			var err error
			data, _, err = s.conn.Get(dir + "/" + n)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notify: reading %s: %w", n, err)
		}
		r, err := decodeRecord(n, data)
		if err != nil {
			var raw Record
			if json.Unmarshal(data, &raw) == nil && raw.Raw != "" && raw.ID == n {
				out = append(out, &raw) // parked as found
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// Retry moves parked notices back to the outbox with their attempts
// cleared, all of them when ids is empty, and returns how many it moved.
// Named notices are all checked first: when one is not a parked notice
// that can be delivered, none is moved.
func (s *Store) Retry(ctx context.Context, ids ...string) (int, error) {
	if len(ids) == 0 {
		names, err := s.children(ctx, s.FailedPath())
		if err != nil {
			return 0, err
		}
		ids = names
	}
	type parked struct {
		id  string
		rec *Record
		ver int32
	}
	var todo []parked
	for _, id := range ids {
		if _, _, _, ok := jobs.ParseNoticeName(id); !ok {
			return 0, fmt.Errorf("%w: %q is not a notice id (see notification list --failed)", ErrInvalid, id)
		}
		if slices.ContainsFunc(todo, func(p parked) bool { return p.id == id }) {
			continue
		}
		var data []byte
		var st *zk.Stat
		err := zkconn.Do(ctx, func() error {
			var err error
			data, st, err = s.conn.Get(s.FailedPath() + "/" + id)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			return 0, fmt.Errorf("%w: no parked notice %s", ErrNotFound, id)
		}
		if err != nil {
			return 0, err
		}
		r, err := decodeRecord(id, data)
		if err != nil {
			return 0, fmt.Errorf("%s cannot be delivered as it is: %w", id, err)
		}
		todo = append(todo, parked{id, r, st.Version})
	}
	moved := 0
	for _, p := range todo {
		r := p.rec
		r.Attempts, r.NextAttempt, r.LastError, r.Parked = 0, nil, "", nil
		out, _ := json.Marshal(r)
		err := zkconn.Do(ctx, func() error {
			return zkconn.MultiErrorOnly(s.conn.Multi(
				&zk.CreateRequest{Path: s.OutboxPath() + "/" + p.id, Data: out, Acl: zkconn.ACL},
				&zk.DeleteRequest{Path: s.FailedPath() + "/" + p.id, Version: p.ver},
			))
		})
		if err != nil && !errors.Is(err, zk.ErrNodeExists) && !errors.Is(err, zk.ErrBadVersion) && !errors.Is(err, zk.ErrNoNode) {
			return moved, fmt.Errorf("notify: moving %s back to the outbox: %w", p.id, err)
		}
		if err == nil {
			moved++
		}
	}
	return moved, nil
}
