package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
	"github.com/jobengine/jobengine/engine/jobs"
)

// ErrNoNode means no remote node can run a job now.
var ErrNoNode = errors.New("no remote node available")

// NodePlaceholder is replaced by a node's name in a remote command.
const NodePlaceholder = "{node}"

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._:-]{0,252}$`)

// PoolOptions configure the remote nodes an executor runs its jobs on.
type PoolOptions struct {
	// Command connects a worker's stdin and stdout, run with sh -c after
	// {node} is replaced, e.g. "ssh -T {node} jobengine worker
	// --keepalive-seconds 10". A worker notices a lost connection on its
	// next write, so keepalives bound how long an orphaned run goes on.
	Command string
	// Nodes are the node names.
	Nodes []string
	// Credentials opens the credentials jobs name, to transmit them.
	Credentials CredentialResolver
	// Sources fetches the projects and inventories payloads name by
	// source, to transmit them.
	Sources *ansible.Sources
	// IdleTimeout fails a run whose stream is silent that long (0: never).
	IdleTimeout time.Duration
	// InfoTimeout bounds `--worker-info` (default 30s).
	InfoTimeout time.Duration
	// KillGrace is how long a canceled run's stream may take to end after
	// the remote command is told to stop, before it is killed (default 10s).
	KillGrace time.Duration
	Logger    *zap.Logger
}

// Node is a remote node and what is known of it.
type Node struct {
	Name string `json:"name"`
	// Info is its --worker-info; Err why it could not be read.
	Info Info   `json:"info"`
	Err  string `json:"error,omitempty"`
	// Used is the impact of the jobs running there; Jobs their number.
	Used int `json:"used"`
	Jobs int `json:"jobs"`
}

// Pool places jobs on remote nodes by capacity: the node with the most
// remaining capacity that fits the job's impact, else the largest idle
// node (a job bigger than any node still runs, alone), else it waits.
type Pool struct {
	opts  PoolOptions
	log   *zap.Logger
	mu    sync.Mutex
	nodes []*Node
	freed chan struct{} // closed and replaced whenever capacity frees
}

// NewPool checks the options and returns a pool; call Refresh to learn
// the nodes' capacities.
func NewPool(opts PoolOptions) (*Pool, error) {
	if !strings.Contains(opts.Command, NodePlaceholder) {
		return nil, fmt.Errorf("remote command %q has no %s for the node's name (e.g. 'ssh -T {node} jobengine worker --keepalive-seconds 10')", opts.Command, NodePlaceholder)
	}
	if len(opts.Nodes) == 0 {
		return nil, errors.New("no remote nodes given (--remote-node NAME, repeatable)")
	}
	p := &Pool{opts: opts, log: opts.Logger, freed: make(chan struct{})}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.opts.InfoTimeout <= 0 {
		p.opts.InfoTimeout = 30 * time.Second
	}
	if p.opts.KillGrace <= 0 {
		p.opts.KillGrace = 10 * time.Second
	}
	seen := map[string]bool{}
	for _, n := range opts.Nodes {
		if !nodeNameRE.MatchString(n) {
			return nil, fmt.Errorf("remote node %q is not a host name (letters, digits and @._:-)", n)
		}
		if seen[n] {
			return nil, fmt.Errorf("remote node %s is given twice", n)
		}
		seen[n] = true
		p.nodes = append(p.nodes, &Node{Name: n, Err: "not asked yet"})
	}
	return p, nil
}

// command returns the shell command that connects to a node's worker.
func (p *Pool) command(node string) *exec.Cmd {
	line := strings.ReplaceAll(p.opts.Command, NodePlaceholder, node)
	cmd := exec.Command("sh", "-c", line)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// Refresh asks every node for its --worker-info, at once.
func (p *Pool) Refresh(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range p.Nodes() {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			info, err := p.askInfo(ctx, name)
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, node := range p.nodes {
				if node.Name != name {
					continue
				}
				if err != nil {
					node.Err = err.Error()
					p.log.Warn("remote node unavailable", zap.String("node", name), zap.Error(err))
					continue
				}
				first := node.Err != ""
				node.Info, node.Err = info, ""
				if first && info.OrphanSeconds <= 0 {
					p.log.Warn("remote node gives no bound to a run that lost its connection (no --keepalive-seconds): a job lost there may run twice at once",
						zap.String("node", name))
				}
				if first {
					p.log.Info("remote node ready", zap.String("node", name), zap.Int("capacity", info.Capacity),
						zap.Int("cpus", info.CPUCount), zap.Int64("memory", info.MemInBytes), zap.String("uuid", info.UUID), zap.String("version", info.Version),
						zap.Float64("orphan_seconds", info.OrphanSeconds))
				}
			}
			p.signal()
		}(n.Name)
	}
	wg.Wait()
}

func (p *Pool) askInfo(ctx context.Context, node string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.InfoTimeout)
	defer cancel()
	line := strings.ReplaceAll(p.opts.Command, NodePlaceholder, node) + " --worker-info"
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &limitedBuffer{max: 4096, b: &errOut}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		return Info{}, fmt.Errorf("--worker-info: %v: %s", err, strings.TrimSpace(errOut.String()))
	}
	var info Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil || info.Capacity <= 0 {
		return Info{}, fmt.Errorf("--worker-info printed no capacity (is it a jobengine worker?): %q", excerpt(out.Bytes()))
	}
	return info, nil
}

// Nodes returns a copy of the nodes, sorted by name.
func (p *Pool) Nodes() []Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Node, len(p.nodes))
	for i, n := range p.nodes {
		out[i] = *n
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (p *Pool) signal() {
	close(p.freed)
	p.freed = make(chan struct{})
}

// acquire places a job of the given impact; release gives the capacity back.
func (p *Pool) acquire(ctx context.Context, impact int) (string, func(), error) {
	refreshes := 0
	for {
		p.mu.Lock()
		var best, idle *Node
		healthy := 0
		for _, n := range p.nodes {
			if n.Err != "" {
				continue
			}
			healthy++
			left := n.Info.Capacity - n.Used
			if left >= impact && (best == nil || left > best.Info.Capacity-best.Used) {
				best = n
			}
			if n.Used == 0 && (idle == nil || n.Info.Capacity > idle.Info.Capacity) {
				idle = n
			}
		}
		if best == nil {
			best = idle
		}
		if best != nil {
			best.Used += impact
			best.Jobs++
			node := best
			p.mu.Unlock()
			var once sync.Once
			return node.Name, func() {
				once.Do(func() {
					p.mu.Lock()
					node.Used -= impact
					node.Jobs--
					p.signal()
					p.mu.Unlock()
				})
			}, nil
		}
		wait := p.freed
		var reasons []string
		for _, n := range p.nodes {
			reasons = append(reasons, n.Name+": "+n.Err)
		}
		p.mu.Unlock()
		if healthy == 0 {
			// Ask again, a few times: a node may be back from a blip.
			if refreshes == 3 {
				return "", func() {}, fmt.Errorf("%w: %s", ErrNoNode, strings.Join(reasons, "; "))
			}
			if refreshes > 0 {
				select {
				case <-time.After(time.Duration(refreshes) * time.Second):
				case <-ctx.Done():
					return "", func() {}, context.Cause(ctx)
				}
			}
			refreshes++
			p.Refresh(ctx)
			continue
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return "", func() {}, context.Cause(ctx)
		}
	}
}

// markDown records that a node failed a run's connection; it is asked for
// its --worker-info again before it gets another job. It returns how long
// a run of the node may outlive its connection (Info.OrphanSeconds).
func (p *Pool) markDown(node string, err error) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var orphan time.Duration
	for _, n := range p.nodes {
		if n.Name == node {
			n.Err = "connection lost: " + err.Error()
			orphan = time.Duration(n.Info.OrphanSeconds * float64(time.Second))
		}
	}
	return orphan
}

// Wrap returns def running on the pool's nodes: each job is transmitted to
// a node's worker, and the stream it sends back becomes the job's events,
// log and outcome. A cut connection is action.ErrLost (the action's
// lost-job policy decides); canceling the job ends the remote command.
func (p *Pool) Wrap(def action.Definition) action.Definition {
	def.Runner = &remoteRunner{pool: p}
	def.Description = "on remote nodes: " + def.Description
	return def
}

type remoteRunner struct {
	pool *Pool
}

// impact is what a job weighs: an Ansible job min(hosts, forks) + 1.
func impact(j *action.Job) int {
	if j.Action == "ansible_playbook" {
		if p, err := ansible.ParsePayload(j.Payload); err == nil {
			return ansible.PayloadImpact(&p)
		}
	}
	return 1
}

func (r *remoteRunner) Run(ctx context.Context, j *action.Job, rep action.Reporter) (action.Result, error) {
	p := r.pool
	node, release, err := p.acquire(ctx, impact(j))
	if err != nil {
		return action.Result{}, err
	}
	defer release()
	log := p.log.With(zap.String("job", j.ID), zap.String("node", node))

	dir, err := os.MkdirTemp("", "jobengine-transmit-")
	if err != nil {
		return action.Result{}, err
	}
	defer os.RemoveAll(dir)
	doc := &jobs.Job{ID: j.ID, Action: j.Action, Payload: j.Payload, Timeout: j.Timeout.Seconds(), Attempt: j.Attempt}
	k, err := PrepareJobFrom(ctx, doc, p.opts.Credentials, p.opts.Sources, dir)
	if err != nil {
		return action.Result{}, err
	}
	back, err := os.MkdirTemp("", "jobengine-processed-")
	if err != nil {
		return action.Result{}, err
	}
	defer os.RemoveAll(back)

	cmd := p.command(node)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return action.Result{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return action.Result{}, err
	}
	stderr := &limitedBuffer{max: 4096, b: &bytes.Buffer{}}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return action.Result{}, fmt.Errorf("starting the remote command for %s: %w", node, err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		err := Transmit(stdin, k, dir)
		_ = stdin.Close()
		if err != nil {
			log.Debug("transmitting stopped", zap.Error(err))
		}
	}()
	// Canceling ends the remote command: a worker cancels its run and
	// still sends the canceled status; a connection (ssh) goes down and
	// the remote worker stops at its next write.
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-time.After(p.opts.KillGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			case <-exited:
			}
		case <-exited:
		}
	}()
	proc := &Processor{ArtifactDir: back, IdleTimeout: p.opts.IdleTimeout,
		OnEvent: func(ev ansible.Event) { action.ReportEvent(rep, ev.ActionEvent()) },
		OnStatus: func(s Status) {
			if s.Status == StatusRunning {
				rep.Status("running on " + node)
			}
		},
	}
	out, perr := proc.Run(context.Background(), stdout)
	// The stream is over: the command has nothing more to say.
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	select {
	case <-waitDone:
	case <-time.After(p.opts.KillGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-waitDone
	}
	close(exited)
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // nothing of it stays behind

	res := action.Result{ReturnCode: out.ReturnCode(), Hosts: out.Hosts, Artifacts: out.Artifacts}
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case perr != nil:
		detail := strings.TrimSpace(stderr.String())
		if detail != "" {
			detail = " (" + firstLines(detail, 3) + ")"
		}
		if errors.Is(perr, ErrCut) || errors.Is(perr, ErrIdle) {
			orphan := p.markDown(node, perr)
			// The remote run may still go on until the worker notices its
			// stream is gone: the job stays held here until it has
			// stopped, so that the lost-job policy never runs it twice
			// at once.
			if orphan > 0 {
				log.Info("remote run cut; holding the job until the node has stopped it",
					zap.Duration("hold", orphan), zap.Error(perr))
				select {
				case <-time.After(orphan):
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
			return res, fmt.Errorf("%w: remote node %s: %v%s", action.ErrLost, node, perr, detail)
		}
		return res, fmt.Errorf("remote node %s: %v%s", node, perr, detail)
	}
	msg := out.Explanation
	if out.Hosts != nil && (msg == "" || out.Status == StatusSuccessful) {
		msg = (ansible.Outcome{RC: res.ReturnCode, Status: out.Status, Hosts: out.Hosts}).Message()
	}
	switch out.Status {
	case StatusSuccessful:
		res.ReturnCode = 0
	case StatusFailed:
		if res.ReturnCode == 0 {
			res.ReturnCode = 1
		}
	default:
		// canceled, timeout or error on the node itself.
		return res, fmt.Errorf("remote node %s: the run ended %s: %s", node, out.Status, out.Explanation)
	}
	res.Message = msg
	log.Debug("remote run ended", zap.String("status", out.Status), zap.Int("rc", res.ReturnCode))
	return res, nil
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	b   *bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ io.Writer = (*limitedBuffer)(nil)
