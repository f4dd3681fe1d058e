package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// AttachKind is what a notification template is attached to.
type AttachKind string

// What templates attach to. Jobs of an action (SlipStream jobs, created by
// distributors or `job add`) notify by AttachAction; jobs launched from a
// template, a workflow or for an inventory by the others.
const (
	AttachAction    AttachKind = "action"
	AttachTemplate  AttachKind = "template"
	AttachWorkflow  AttachKind = "workflow"
	AttachInventory AttachKind = "inventory"
)

// AttachKinds lists the kinds.
var AttachKinds = []AttachKind{AttachAction, AttachTemplate, AttachWorkflow, AttachInventory}

// ParseAttachKind parses a kind name.
func ParseAttachKind(s string) (AttachKind, error) {
	for _, k := range AttachKinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not something to attach to (use action, template, workflow or inventory)", ErrInvalid, s)
}

// Attachment is the notifications attached to one action, template,
// workflow or inventory: /config/notification-attachments/<kind>/<target>.
type Attachment struct {
	Kind          AttachKind         `json:"kind"`
	Target        string             `json:"target"`
	Notifications jobs.Notifications `json:"notifications"`
}

// ValidTarget reports whether s can name what a template is attached to:
// one path element, as an action name is.
func ValidTarget(s string) bool {
	return s != "" && len(s) <= 64 && s != "." && s != ".." && !strings.ContainsAny(s, " /\t\r\n")
}

func (s *Store) attachmentPath(kind AttachKind, target string) string {
	return s.conn.Path(attachmentsDir, string(kind), target)
}

// AttachedTo returns the notifications attached to target of kind.
func (s *Store) AttachedTo(ctx context.Context, kind AttachKind, target string) (jobs.Notifications, error) {
	n, _, err := s.readAttachment(ctx, kind, target)
	return n, err
}

// readAttachment reads an attachment and its version (-1: none).
func (s *Store) readAttachment(ctx context.Context, kind AttachKind, target string) (jobs.Notifications, int32, error) {
	if !ValidTarget(target) {
		return jobs.Notifications{}, 0, fmt.Errorf("%w: %s %q: give 1–64 characters without spaces or slashes", ErrInvalid, kind, target)
	}
	var data []byte
	var st *zk.Stat
	err := zkconn.Do(ctx, func() error {
		var err error
		data, st, err = s.conn.Get(s.attachmentPath(kind, target))
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		return jobs.Notifications{}, -1, nil
	}
	if err != nil {
		return jobs.Notifications{}, 0, fmt.Errorf("notify: reading the attachments of %s %s: %w", kind, target, err)
	}
	var n jobs.Notifications
	if err := json.Unmarshal(data, &n); err != nil {
		return jobs.Notifications{}, st.Version, fmt.Errorf("%w: the attachments of %s %s are not valid JSON: %v", ErrInvalid, kind, target, err)
	}
	if err := n.Validate(); err != nil {
		return jobs.Notifications{}, st.Version, fmt.Errorf("%w: the attachments of %s %s: %v", ErrInvalid, kind, target, err)
	}
	return n, st.Version, nil
}

// Attach attaches template name to target of kind for event ev. The
// template must exist. Attaching twice is harmless.
func (s *Store) Attach(ctx context.Context, kind AttachKind, target string, ev jobs.NotifyEvent, name string) error {
	return s.AttachEvents(ctx, kind, target, name, ev)
}

// AttachEvents attaches template name to target of kind for every event
// of events, in one write. The template must exist.
func (s *Store) AttachEvents(ctx context.Context, kind AttachKind, target, name string, events ...jobs.NotifyEvent) error {
	if _, _, err := s.Get(ctx, name); err != nil {
		return err
	}
	return s.editAttachment(ctx, kind, target, func(n *jobs.Notifications) error {
		for _, ev := range events {
			n.Add(ev, name)
		}
		return n.Validate()
	})
}

// Detach removes template name from target of kind for event ev.
func (s *Store) Detach(ctx context.Context, kind AttachKind, target string, ev jobs.NotifyEvent, name string) error {
	return s.DetachEvents(ctx, kind, target, name, ev)
}

// DetachEvents removes template name from target of kind for every event
// of events, in one write: when it is not attached for one of them,
// nothing changes.
func (s *Store) DetachEvents(ctx context.Context, kind AttachKind, target, name string, events ...jobs.NotifyEvent) error {
	return s.editAttachment(ctx, kind, target, func(n *jobs.Notifications) error {
		for i, ev := range events {
			if slices.Contains(events[:i], ev) {
				continue
			}
			var list *[]string
			switch ev {
			case jobs.NotifyStarted:
				list = &n.Started
			case jobs.NotifySuccess:
				list = &n.Success
			default:
				list = &n.Failure
			}
			i := slices.Index(*list, name)
			if i < 0 {
				return fmt.Errorf("%w: %s is not attached to %s %s for %s", ErrNotFound, name, kind, target, ev)
			}
			*list = slices.Delete(*list, i, i+1)
		}
		return nil
	})
}

// editAttachment applies edit to an attachment with compare-and-set,
// removing the node once nothing is attached.
func (s *Store) editAttachment(ctx context.Context, kind AttachKind, target string, edit func(n *jobs.Notifications) error) error {
	for range 10 {
		n, ver, err := s.readAttachment(ctx, kind, target)
		if err != nil && !(errors.Is(err, ErrInvalid) && ver >= 0) {
			return err
		}
		// A stored attachment that is not valid is replaced.
		if err := edit(&n); err != nil {
			return err
		}
		p := s.attachmentPath(kind, target)
		data, _ := json.Marshal(n)
		var op interface{}
		switch {
		case n.Empty() && ver < 0:
			return nil
		case n.Empty():
			op = &zk.DeleteRequest{Path: p, Version: ver}
		case ver < 0:
			if err := s.conn.EnsurePath(ctx, s.conn.Path(attachmentsDir, string(kind))); err != nil {
				return err
			}
			op = &zk.CreateRequest{Path: p, Data: data, Acl: zkconn.ACL}
		default:
			op = &zk.SetDataRequest{Path: p, Data: data, Version: ver}
		}
		var res []zk.MultiResponse
		err = zkconn.Do(ctx, func() error {
			var err error
			res, err = s.conn.Multi(op)
			return err
		})
		_, opErr := zkconn.MultiError(res, err)
		switch {
		case err == nil:
			return nil
		case errors.Is(opErr, zk.ErrBadVersion) || errors.Is(opErr, zk.ErrNodeExists) || errors.Is(opErr, zk.ErrNoNode):
			continue // changed meanwhile: read again
		}
		return fmt.Errorf("notify: writing the attachments of %s %s: %w", kind, target, opErr)
	}
	return fmt.Errorf("%w: the attachments of %s %s kept changing, try again", ErrConflict, kind, target)
}

// Attachments reads every attachment, sorted by kind and target. An
// attachment that is not valid is skipped.
func (s *Store) Attachments(ctx context.Context) ([]Attachment, error) {
	var out []Attachment
	for _, k := range AttachKinds {
		targets, err := s.children(ctx, s.conn.Path(attachmentsDir, string(k)))
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			n, ver, err := s.readAttachment(ctx, k, t)
			switch {
			case err != nil && errors.Is(err, ErrInvalid):
				continue
			case err != nil:
				return nil, err
			case ver < 0:
				continue
			}
			out = append(out, Attachment{Kind: k, Target: t, Notifications: n})
		}
	}
	return out, nil
}

// Target is what a launched job is: its action, and the template,
// workflow and inventory it comes from when it does.
type Target struct {
	Action, Template, Workflow, Inventory string
}

// Resolve returns the notifications attached to what t names, merged.
func (s *Store) Resolve(ctx context.Context, t Target) (jobs.Notifications, error) {
	var out jobs.Notifications
	for _, p := range []struct {
		kind AttachKind
		name string
	}{{AttachAction, t.Action}, {AttachTemplate, t.Template}, {AttachWorkflow, t.Workflow}, {AttachInventory, t.Inventory}} {
		if p.name == "" || !ValidTarget(p.name) {
			continue
		}
		n, err := s.AttachedTo(ctx, p.kind, p.name)
		if errors.Is(err, ErrInvalid) {
			continue // not valid: as if nothing were attached (Attach replaces it)
		}
		if err != nil {
			return jobs.Notifications{}, err
		}
		out.Merge(n)
	}
	return out, nil
}

// Resolver adds the notifications attached to a new job's action; give it
// to the job store (jobs.StoreConfig.Notifications) of every process that
// creates jobs.
type Resolver struct{ s *Store }

// NewResolver returns the resolver of store s.
func NewResolver(s *Store) Resolver { return Resolver{s} }

// NotificationsFor implements jobs.NotificationResolver: what is attached
// to the new job's action, template, workflow template and inventory (one
// read per kind named). A slice of a sliced job gets nothing: its container
// notifies once for the whole sliced job.
func (r Resolver) NotificationsFor(ctx context.Context, n *jobs.NewJob) (jobs.Notifications, error) {
	if n.ParentJob != "" && n.Launch.SliceNumber > 0 {
		return jobs.Notifications{}, nil
	}
	return r.s.Resolve(ctx, Target{Action: n.Action, Template: n.Launch.Template, Workflow: n.Launch.WorkflowTemplate, Inventory: n.Launch.Inventory})
}
