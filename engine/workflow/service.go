package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/election"
	"github.com/jobengine/jobengine/engine/invsource"
	"github.com/jobengine/jobengine/engine/jobs"
	"github.com/jobengine/jobengine/engine/queue"
	"github.com/jobengine/jobengine/engine/template"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/backoff"
	"github.com/jobengine/jobengine/internal/loop"
)

// ServiceName names the workflow service among leader-run services.
const ServiceName = "workflows"

// DefaultInterval is how often the service looks at every open workflow
// job when nothing wakes it sooner (a launch, a node job's end).
const DefaultInterval = time.Second

// RefusedAction is the action of the FAILED job that records a node whose
// launch was refused (its template is gone, a value is refused).
const RefusedAction = "launch"

// ServiceConfig configures the workflow service.
type ServiceConfig struct {
	// Jobs is the job store (required).
	Jobs *jobs.Store
	// Templates launches template nodes (required); Workflows launches
	// workflow nodes (required), and its store reads the projects and
	// inventories of update nodes.
	Templates *template.Launcher
	Workflows *Launcher
	// Interval is the time between two passes over the open workflow jobs
	// (DefaultInterval when 0). A new workflow job wakes the service at
	// once.
	Interval time.Duration
	// Logger receives the service's log lines.
	Logger *zap.Logger
}

// Service is the leader-run service that runs workflow jobs: each pass
// reads every open workflow job (the index /workflows), derives its state
// (Evaluate), launches its ready nodes with their deterministic ids and
// the leader's fence, cancels its started node jobs once its cancel was
// asked for, and writes its state — final, with its index node removed, in
// one fenced transaction. Every step can be repeated by the next leader.
type Service struct {
	cfg ServiceConfig
	log *zap.Logger

	loop loop.Loop
}

// NewService returns the workflow service; it contacts no server.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Jobs == nil || cfg.Templates == nil || cfg.Workflows == nil {
		return nil, fmt.Errorf("%w: the workflow service needs a job store and both launchers", ErrInvalid)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Service{cfg: cfg, log: cfg.Logger.Named("workflows")}, nil
}

// Name names the service.
func (s *Service) Name() string { return ServiceName }

// Start starts running workflows under the leader context ctx and returns.
func (s *Service) Start(ctx context.Context) error {
	term := election.TermOf(ctx)
	if term == nil {
		return fmt.Errorf("%w: the workflow service runs under a leader's term", ErrInvalid)
	}
	conn := s.cfg.Jobs.Conn()
	if err := conn.EnsurePath(ctx, conn.Path(IndexDir)); err != nil {
		return err
	}
	if !s.loop.Start(ctx, func(ctx context.Context) { s.run(ctx, term) }) {
		return fmt.Errorf("%w: the workflow service is running", ErrInvalid)
	}
	return nil
}

// Stop ends the work and returns once the service's goroutine has.
func (s *Service) Stop() {
	s.loop.Stop()
}

func (s *Service) run(ctx context.Context, term *election.Term) {
	s.log.Info("running workflows")
	defer s.log.Info("no longer running workflows")
	conn := s.cfg.Jobs.Conn()
	dir := conn.Path(IndexDir)
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	// Two watches on the index, each kept until it fires (a watch set
	// again each pass would pile up in the client): its children change
	// when a workflow is launched or ends, its data when a node job ends
	// (jobs bumps it).
	var launched, nodeEnded <-chan zk.Event
	for ctx.Err() == nil {
		if term.Check() != nil {
			return
		}
		var open []string
		err := zkconn.Do(ctx, func() error {
			var err error
			if launched == nil {
				open, _, launched, err = conn.ChildrenW(dir)
			} else {
				open, _, err = conn.Children(dir)
			}
			if err == nil && nodeEnded == nil {
				_, _, nodeEnded, err = conn.GetW(dir)
			}
			return err
		})
		if err == nil {
			err = s.pass(ctx, term, open)
		}
		switch {
		case errors.Is(err, election.ErrNotLeader), ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn("a workflow pass failed; retrying after a back-off", zap.Error(err))
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		timer := time.NewTimer(s.cfg.Interval)
		select {
		case <-ctx.Done():
		case <-launched:
			launched = nil
		case <-nodeEnded:
			nodeEnded = nil
		case <-timer.C:
		}
		timer.Stop()
	}
}

// pass steps every open workflow job once.
func (s *Service) pass(ctx context.Context, term *election.Term, open []string) error {
	var failed error
	for _, uid := range open {
		err := s.Step(ctx, term, uid)
		if errors.Is(err, election.ErrNotLeader) {
			return err
		}
		if err != nil {
			failed = errors.Join(failed, fmt.Errorf("workflow job/%s: %w", uid, err))
		}
	}
	return failed
}

// Step brings one open workflow job forward: its due nodes launched, its
// state written. It is idempotent: a step repeated (by the next leader)
// launches nothing twice.
func (s *Service) Step(ctx context.Context, term *election.Term, uid string) error {
	for round := 0; ; round++ {
		if err := term.Check(); err != nil {
			return err
		}
		launched, err := s.step(ctx, term, uid)
		if err != nil || !launched || round > jobs.MaxWorkflowNodes {
			return err
		}
		// What was launched may have ended at once (a refused launch): look
		// again, so that the next nodes need not wait for the next pass.
	}
}

func (s *Service) step(ctx context.Context, term *election.Term, uid string) (launched bool, err error) {
	conn := s.cfg.Jobs.Conn()
	unindex := &zk.DeleteRequest{Path: IndexPath(conn, uid), Version: -1}
	c, ver, err := s.cfg.Jobs.Get(ctx, "job/"+uid)
	var bad *jobs.BadDocumentError
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return false, s.unindex(ctx, term, unindex, "its job is gone")
	case errors.As(err, &bad):
		s.log.Error("a workflow job is not valid: left alone", zap.String("job", "job/"+uid), zap.String("reason", bad.Reason))
		return false, nil
	case err != nil:
		return false, err
	case !c.IsWorkflow():
		return false, s.unindex(ctx, term, unindex, "it is not a workflow job")
	case c.State.Final():
		return false, s.unindex(ctx, term, unindex, "it is final")
	}
	nodes := c.Workflow.Nodes
	if len(c.NestedJobs) != len(nodes) {
		s.log.Error("a workflow job's node jobs do not match its graph: left alone", zap.String("job", c.ID))
		return false, nil
	}
	for i, n := range nodes {
		if c.NestedJobs[i] != jobs.NodeJobID(c.ID, n.ID) {
			s.log.Error("a workflow job's node jobs do not match its graph: left alone", zap.String("job", c.ID), zap.String("node", n.ID))
			return false, nil
		}
	}
	nodeJobs, err := s.cfg.Jobs.Slices(ctx, c)
	if err != nil {
		return false, err
	}
	for i, j := range nodeJobs {
		// A sliced node's container follows its slices; make sure a write
		// lost with an executor is made.
		if j != nil && j.Sliced && !j.State.Final() {
			if synced, err := s.cfg.Jobs.SyncContainer(ctx, j.ID); err == nil {
				nodeJobs[i] = synced
			}
		}
	}
	ev, err := Evaluate(c.Workflow, nodeJobs, c.CancelRequested)
	if err != nil {
		return false, err
	}
	if c.CancelRequested {
		for i, st := range ev.Status {
			if st != Started {
				continue
			}
			if _, err := s.cfg.Jobs.CancelJob(ctx, nodeJobs[i].ID, "workflow "+c.ID); err != nil && !errors.Is(err, jobs.ErrFinal) && !errors.Is(err, jobs.ErrNotFound) {
				s.log.Warn("a node job of a canceled workflow not canceled; trying again", zap.String("job", c.ID),
					zap.String("node", nodes[i].ID), zap.Error(err))
			}
		}
	}
	for i, st := range ev.Status {
		if st != Ready {
			continue
		}
		if err := s.launchNode(ctx, term, c, nodes[i]); err != nil {
			return launched, err
		}
		launched = true
	}
	if launched {
		return true, nil
	}
	msg, progress := ev.Summary()
	if c.CancelRequested && !ev.Done {
		msg = "cancel requested; " + msg
	}
	if ev.State == c.State && msg == c.StatusMessage && progress == c.Progress {
		return false, nil
	}
	extra := []interface{}{term.Fence()}
	if ev.State.Final() {
		extra = append(extra, unindex)
	}
	err = s.cfg.Jobs.WriteWorkflowState(ctx, c, ver, ev.State, msg, progress, extra...)
	var opErr *zkconn.OpError
	switch {
	case errors.Is(err, jobs.ErrConflict):
		return false, nil // changed meanwhile (a cancel): the next pass reads it again
	case errors.As(err, &opErr) && opErr.Index == 0:
		return false, fmt.Errorf("%w: %v", election.ErrNotLeader, opErr.Err)
	}
	return false, err
}

// unindex removes the index node of a workflow job that needs no more
// steps.
func (s *Service) unindex(ctx context.Context, term *election.Term, del *zk.DeleteRequest, why string) error {
	err := configstore.Multi(ctx, s.cfg.Jobs.Conn(), []interface{}{term.Fence(), del})
	var opErr *zkconn.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Index == 0:
		return fmt.Errorf("%w: the fence failed: %v", election.ErrNotLeader, opErr.Err)
	case errors.As(err, &opErr) && errors.Is(opErr.Err, zk.ErrNoNode):
		return nil // removed already
	}
	if err == nil {
		s.log.Debug("workflow job removed from the index", zap.String("path", del.Path), zap.String("why", why))
	}
	return err
}

// launchNode launches the job of one ready node, create-if-absent under
// the leader's fence. A launch refused at its time leaves a FAILED node
// job saying why, which the graph then handles like any failure.
func (s *Service) launchNode(ctx context.Context, term *election.Term, c *jobs.Job, n jobs.WorkflowNode) error {
	id := jobs.NodeJobID(c.ID, n.ID)
	fence := []interface{}{term.Fence()}
	// An update node's job is the update job itself, placed in the
	// workflow; it keeps the update's keys and is recorded as the last
	// update of its project or inventory.
	place := func(j *jobs.NewJob) {
		j.ID, j.ParentJob, j.Launch.WorkflowNode, j.Launch.LaunchType = id, c.ID, n.ID, jobs.LaunchWorkflow
	}
	wfs := s.cfg.Workflows.Workflows
	var err error
	switch {
	case n.Template != "":
		_, err = s.cfg.Templates.Launch(ctx, template.Request{Template: n.Template, Values: n.Values, LaunchType: jobs.LaunchWorkflow,
			CreatedBy: c.CreatedBy, ID: id, ParentJob: c.ID, WorkflowNode: n.ID, Extra: fence})
	case n.Project != "":
		_, err = wfs.projects.StartUpdateWith(ctx, s.cfg.Jobs, n.Project, c.CreatedBy, place, fence...)
	case n.Inventory != "":
		_, err = invsource.Stores{Inventories: wfs.inventories, Projects: wfs.projects, Jobs: s.cfg.Jobs}.
			StartUpdateWith(ctx, n.Inventory, c.CreatedBy, place, fence...)
	default:
		_, err = s.cfg.Workflows.Launch(ctx, Request{Workflow: n.Workflow, LaunchType: jobs.LaunchWorkflow,
			CreatedBy: c.CreatedBy, ID: id, ParentJob: c.ID, WorkflowNode: n.ID, Extra: fence})
	}
	log := s.log.With(zap.String("job", c.ID), zap.String("node", n.ID), zap.String("node-job", id))
	switch {
	case err == nil:
		log.Info("workflow node launched")
		return nil
	case errors.Is(err, jobs.ErrDuplicate):
		log.Info("workflow node already launched")
		return nil
	case term.Check() != nil:
		return fmt.Errorf("%w: %v", election.ErrNotLeader, err)
	case !refused(err):
		return fmt.Errorf("node %s: %w", n.ID, err)
	}
	failed := jobs.NewJob{ID: id, Action: RefusedAction, Target: n.Target(), Priority: queue.DefaultPriority, CreatedBy: c.CreatedBy,
		ParentJob: c.ID, Launch: jobs.Launch{Kind: jobs.KindJob, LaunchType: jobs.LaunchWorkflow, WorkflowNode: n.ID}}
	_, ferr := s.cfg.Jobs.CreateFailed(ctx, failed, fmt.Sprintf("workflow %s, node %s: launch refused: %v", c.ID, n.ID, err), fence...)
	var opErr *zkconn.OpError
	switch {
	case ferr == nil, errors.Is(ferr, jobs.ErrDuplicate):
		log.Warn("workflow node refused; a FAILED job says why", zap.Error(err))
		return nil
	case errors.As(ferr, &opErr):
		return fmt.Errorf("%w: %v", election.ErrNotLeader, opErr.Err)
	}
	return fmt.Errorf("recording the refused launch of node %s: %w", n.ID, ferr)
}

// refused reports whether a launch error means the node cannot be
// launched (rather than "try again").
func refused(err error) bool {
	return errors.Is(err, configstore.ErrNotFound) || errors.Is(err, configstore.ErrInvalid) ||
		errors.Is(err, configstore.ErrCorrupt) || errors.Is(err, jobs.ErrInvalid)
}
