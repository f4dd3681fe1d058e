package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/zkconn"
)

// Scheduling holds the fields of a job that the scheduler (engine/scheduler)
// reads and writes: where a job may run, what it weighs, what it waits for,
// and, once placed, where it went. It is part of the job document (its
// fields are top-level fields of the JSON).
//
// The instance groups that may run a job, in preference order, are
// Launch.InstanceGroups (templates fill them from their groups, else their
// inventory's; `job add --group` sets them).
//
// A job with none of the inputs set (instance groups, impact, keys,
// dependencies, fan-out) has no scheduling needs: it is created QUEUED on
// the shared queue, the SlipStream path. Any of them makes it PENDING: the
// scheduler queues it on an executor's direct queue once nothing blocks it
// and an executor of its groups has room. A template's launch always names
// its groups (DefaultGroup when nothing else does), so it is scheduled.
type Scheduling struct {
	// Impact is the capacity the job takes on its executor while active;
	// 0 is DefaultImpact.
	Impact int `json:"impact,omitempty"`
	// ConcurrencyKeys block: no two active jobs share a key, and a pending
	// job waits while an older pending or an active job holds one of its
	// keys (template:<name>, project:<name>, inventory-source:<name>,
	// system, or a user's own).
	ConcurrencyKeys []string `json:"concurrency-keys,omitempty"`
	// DependsOn are jobs that must succeed before this one is queued; a
	// failed one fails it ("previous job failed: job/…").
	DependsOn []string `json:"depends-on,omitempty"`
	// Explanation says why a PENDING job waits, or why the scheduler
	// failed it. Written by the scheduler only when it changes.
	Explanation string `json:"explanation,omitempty"`
	// InstanceGroup is the group the scheduler placed the job in.
	InstanceGroup string `json:"instance-group,omitempty"`
	// ExecutionNode is the executor whose direct queue holds the job.
	ExecutionNode string `json:"execution-node,omitempty"`
	// FanoutGroup marks a fan-out: the parent (a PENDING job that runs
	// nothing and ends when its children have) and its children, one per
	// executor of this group, each queued on its executor's direct queue.
	FanoutGroup string `json:"fanout-group,omitempty"`
}

// DefaultGroup is the instance group of executors and jobs that name none.
const DefaultGroup = "default"

// DefaultImpact is the impact of a job that sets none.
const DefaultImpact = 1

// Well-known concurrency keys. A template's launches share TemplateKey
// unless the template allows simultaneous runs; project updates share
// ProjectKey, inventory updates InventorySourceKey; system jobs share
// SystemKey, so one runs at a time cluster-wide.
const SystemKey = "system"

// SystemAction is the action of system jobs (engine/systemjob): the
// cluster's own housekeeping, launched as jobs. Every job of this action
// holds SystemKey and weighs SystemImpact unless it says more, so system
// jobs run one at a time cluster-wide, whoever creates them (the
// system-job command, `job add`, a schedule, a relaunch).
const SystemAction = "system_job"

// SystemImpact is the impact of a system job (AWX's).
const SystemImpact = 5

// systemRules gives a system job its key and impact.
func systemRules(n *NewJob) {
	if n.Action != SystemAction {
		return
	}
	if !slices.Contains(n.Scheduling.ConcurrencyKeys, SystemKey) {
		n.Scheduling.ConcurrencyKeys = append(slices.Clip(n.Scheduling.ConcurrencyKeys), SystemKey)
	}
	if n.Scheduling.Impact < SystemImpact {
		n.Scheduling.Impact = SystemImpact
	}
}

// TemplateKey returns the concurrency key of a template's launches.
func TemplateKey(name string) string { return "template:" + name }

// ProjectKey returns the concurrency key of a project's updates.
func ProjectKey(name string) string { return "project:" + name }

// InventorySourceKey returns the concurrency key of an inventory source's
// updates.
func InventorySourceKey(name string) string { return "inventory-source:" + name }

// Limits of the scheduling fields.
const (
	// MaxGroupNameBytes bounds an instance group's name.
	MaxGroupNameBytes = 128
	// MaxImpact bounds a job's impact.
	MaxImpact = 100_000
	// MaxConcurrencyKeys bounds the keys of a job.
	MaxConcurrencyKeys = 16
	// MaxKeyBytes bounds one concurrency key.
	MaxKeyBytes = 256
	// MaxDependsOn bounds the dependencies of a job.
	MaxDependsOn = 32
	// MaxExplanation bounds an explanation, in bytes.
	MaxExplanation = 1024
)

// ValidGroupName checks an instance group's name: 1–128 letters, digits,
// '.', '_' and '-', starting with a letter or digit (the rule of every
// configuration object's name: names are znode names and arguments).
func ValidGroupName(name string) error {
	if name == "" || len(name) > MaxGroupNameBytes {
		return fmt.Errorf("%w: instance group name %q must be 1–%d characters", ErrInvalid, name, MaxGroupNameBytes)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("%w: instance group name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", ErrInvalid, name)
		}
	}
	return nil
}

// ValidConcurrencyKey checks a concurrency key: 1–256 bytes of printable
// characters without spaces.
func ValidConcurrencyKey(k string) error {
	if k == "" || len(k) > MaxKeyBytes {
		return fmt.Errorf("%w: concurrency key %q must be 1–%d bytes", ErrInvalid, k, MaxKeyBytes)
	}
	for _, r := range k {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: concurrency key %q: no spaces or control characters (such as template:deploy)", ErrInvalid, k)
		}
	}
	return nil
}

// Validate checks the scheduling fields.
func (s *Scheduling) Validate() error {
	for what, g := range map[string]string{"instance group": s.InstanceGroup, "fan-out group": s.FanoutGroup} {
		if g != "" {
			if err := ValidGroupName(g); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	if s.ExecutionNode != "" && (len(s.ExecutionNode) > MaxIDBytes || strings.ContainsAny(s.ExecutionNode, "/ \t\n") || s.ExecutionNode == "." || s.ExecutionNode == "..") {
		return fmt.Errorf("%w: execution node %q is not an executor name", ErrInvalid, s.ExecutionNode)
	}
	if s.Impact < 0 || s.Impact > MaxImpact {
		return fmt.Errorf("%w: impact %d is outside 0–%d", ErrInvalid, s.Impact, MaxImpact)
	}
	if len(s.ConcurrencyKeys) > MaxConcurrencyKeys {
		return fmt.Errorf("%w: %d concurrency keys, at most %d", ErrInvalid, len(s.ConcurrencyKeys), MaxConcurrencyKeys)
	}
	for _, k := range s.ConcurrencyKeys {
		if err := ValidConcurrencyKey(k); err != nil {
			return err
		}
	}
	if len(s.DependsOn) > MaxDependsOn {
		return fmt.Errorf("%w: %d dependencies, at most %d", ErrInvalid, len(s.DependsOn), MaxDependsOn)
	}
	for _, d := range s.DependsOn {
		if _, _, err := ParseID(d); err != nil {
			return fmt.Errorf("depends-on: %w", err)
		}
	}
	if len(s.Explanation) > MaxExplanation {
		return fmt.Errorf("%w: explanation of %d bytes is over %d", ErrInvalid, len(s.Explanation), MaxExplanation)
	}
	return nil
}

// needsScheduler reports whether a new job is created PENDING, for the
// scheduler, rather than QUEUED on the shared queue (or on the direct
// queue it names).
func needsScheduler(n *NewJob) bool {
	s := &n.Scheduling
	return s.ExecutionNode == "" && (len(n.Launch.InstanceGroups) > 0 || s.Impact > 0 || len(s.ConcurrencyKeys) > 0 ||
		len(s.DependsOn) > 0 || s.FanoutGroup != "")
}

// NotScheduledYet is the explanation of a job created PENDING until a pass
// of the scheduler says better: a launch while no scheduler runs (no
// elected controller or distributor with --maintenance) says so rather
// than nothing.
const NotScheduledYet = "waiting for the scheduler: no pass has taken this job up yet (the elected controller runs it)"

// Groups returns the job's instance groups in preference order.
func (j *Job) Groups() []string {
	if len(j.InstanceGroups) == 0 {
		return []string{DefaultGroup}
	}
	return j.InstanceGroups
}

// EffectiveImpact returns the job's impact, DefaultImpact when unset.
func (s *Scheduling) EffectiveImpact() int {
	if s.Impact <= 0 {
		return DefaultImpact
	}
	return s.Impact
}

// IsFanoutParent reports whether the job is the parent of a fan-out: it
// runs nothing and ends when its children have.
func (j *Job) IsFanoutParent() bool { return j.FanoutGroup != "" && j.ParentJob == "" }

// IsFanoutChild reports whether the job is a child of a fan-out: it runs
// on its own executor or not at all.
func (j *Job) IsFanoutChild() bool { return j.FanoutGroup != "" && j.ParentJob != "" }

// Placed reports whether the job sits (or sat) on an executor's direct
// queue rather than the shared one.
func (j *Job) Placed() bool { return j.ExecutionNode != "" }

// ZooKeeper layout of scheduled jobs, under the connection's root.
const (
	// PendingPath is the index of PENDING jobs: /pending/<uuid>, an empty
	// node created in the transaction that makes a job PENDING and deleted
	// in the one that moves it on, so the scheduler lists the pending jobs
	// without reading every document.
	PendingPath = "pending"
	// NodesPath holds one directory per executor: its instance record and
	// its direct queue, <NodesPath>/<name>/job.
	NodesPath = "nodes"
)

// NodeQueuePath returns the path of an executor's direct queue, relative
// to the root.
func NodeQueuePath(executor string) string { return NodesPath + "/" + executor + "/job" }

// PendingDir returns the absolute path of the index of PENDING jobs.
func (s *Store) PendingDir() string { return s.conn.Path(PendingPath) }

// pendingNode returns a job's node in the index of PENDING jobs.
func (s *Store) pendingNode(uid string) string { return s.conn.Path(PendingPath, uid) }

// PendingIDs lists the jobs in the index of PENDING jobs, as job ids.
func (s *Store) PendingIDs(ctx context.Context) ([]string, error) {
	var names []string
	err := zkconn.Do(ctx, func() error {
		var err error
		names, _, err = s.conn.Children(s.PendingDir())
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jobs: listing pending jobs: %w", err)
	}
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = "job/" + n
	}
	return ids, nil
}

// PendingCount returns the number of PENDING jobs (one stat).
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	var n int
	err := zkconn.Do(ctx, func() error {
		ok, st, err := s.conn.Exists(s.PendingDir())
		if err != nil || !ok {
			return err
		}
		n = int(st.NumChildren)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("jobs: counting pending jobs: %w", err)
	}
	return n, nil
}

// NodeQueue returns an executor's direct queue.
func (s *Store) NodeQueue(executor string) *queue.Queue {
	return queue.New(s.conn, NodeQueuePath(executor))
}

// entryQueue returns the queue that holds (or held) the entry of a job
// that is not PENDING: its executor's direct queue, or the shared queue.
func (s *Store) entryQueue(j *Job) *queue.Queue {
	if j.ExecutionNode != "" {
		return s.NodeQueue(j.ExecutionNode)
	}
	return s.q
}

// entryOp returns the operation that creates a new job's entry where its
// state calls for: the index of PENDING jobs, or a queue.
func (s *Store) entryOp(j *Job) (*zk.CreateRequest, error) {
	if j.State == Pending {
		return s.pendingCreate(j), nil
	}
	return s.entryQueue(j).PutOp([]byte(j.ID), j.Priority)
}

// pendingCreate returns the operation that adds j to the index of PENDING
// jobs.
func (s *Store) pendingCreate(j *Job) *zk.CreateRequest {
	return &zk.CreateRequest{Path: s.pendingNode(j.UUID()), Data: nil, Acl: zkconn.ACL}
}

// pendingDelete returns the operation that takes j out of the index of
// PENDING jobs.
func (s *Store) pendingDelete(j *Job) *zk.DeleteRequest {
	return &zk.DeleteRequest{Path: s.pendingNode(j.UUID()), Version: -1}
}

// scheduled reports whether any of ns is created PENDING.
func scheduled(ns []NewJob) bool {
	for i := range ns {
		if needsScheduler(&ns[i]) {
			return true
		}
	}
	return false
}

// ValidateScheduling checks what the scheduler reads of a job: its
// scheduling fields and its instance groups (a document read from
// ZooKeeper is input).
func (j *Job) ValidateScheduling() error {
	if err := j.Scheduling.Validate(); err != nil {
		return err
	}
	if len(j.InstanceGroups) > MaxInstanceGroups {
		return fmt.Errorf("%w: %d instance groups, at most %d", ErrInvalid, len(j.InstanceGroups), MaxInstanceGroups)
	}
	for _, g := range j.InstanceGroups {
		if err := ValidGroupName(g); err != nil {
			return err
		}
	}
	return nil
}
