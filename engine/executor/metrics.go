package executor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/jobs"
)

// UnknownAction is the action label of jobs whose action the executor does
// not have: job documents may name any action, and a label value per name
// would let whoever creates jobs grow the metrics without bound. It cannot
// collide with an action, whose names are [a-z0-9_.-].
const UnknownAction = "(unknown)"

// Metrics are the executor's Prometheus metrics. A nil *Metrics is valid
// and records nothing.
type Metrics struct {
	Started  *prometheus.CounterVec
	Finished *prometheus.CounterVec
	Duration *prometheus.HistogramVec
	Claim    *prometheus.HistogramVec
	Busy     prometheus.Gauge
	Depth    prometheus.Gauge
	// Quarantined counts invalid objects moved aside, by kind
	// (job-document, queue-entry).
	Quarantined *prometheus.CounterVec
	Registry    *prometheus.Registry

	// registry, when set, names the actions that get a label of their own.
	registry *action.Registry
}

// labelActionsOf makes every action reg does not hold share the label
// UnknownAction.
func (m *Metrics) labelActionsOf(reg *action.Registry) {
	if m != nil {
		m.registry = reg
	}
}

// actionLabel is the action label of a job.
func (m *Metrics) actionLabel(j *jobs.Job) string {
	if m.registry == nil {
		return j.Action
	}
	if _, ok := m.registry.Lookup(j.Action); !ok {
		return UnknownAction
	}
	return j.Action
}

// NewMetrics registers the executor's metrics in a new registry (one per
// executor, so several executors can live in one process).
func NewMetrics() *Metrics {
	m := &Metrics{
		Started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobengine_jobs_started_total", Help: "Jobs started, by action.",
		}, []string{"action"}),
		Finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobengine_jobs_finished_total", Help: "Jobs finished, by action and final state.",
		}, []string{"action", "state"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jobengine_job_duration_seconds", Help: "Run time of finished jobs, by action.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"action"}),
		Claim: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jobengine_job_claim_latency_seconds", Help: "Time from a job's creation (or requeue) to RUNNING, by action.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12),
		}, []string{"action"}),
		Busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jobengine_executor_busy_workers", Help: "Workers running a job.",
		}),
		Depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jobengine_queue_depth", Help: "Entries in the job queue (queued and running).",
		}),
		Quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobengine_quarantined_total", Help: "Invalid objects read from ZooKeeper and quarantined, by kind.",
		}, []string{"kind"}),
		Registry: prometheus.NewRegistry(),
	}
	m.Registry.MustRegister(m.Started, m.Finished, m.Duration, m.Claim, m.Busy, m.Depth, m.Quarantined,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) started(j *jobs.Job) {
	if m == nil {
		return
	}
	a := m.actionLabel(j)
	m.Started.WithLabelValues(a).Inc()
	if j.Started != nil {
		m.Claim.WithLabelValues(a).Observe(j.Started.Sub(j.Created).Seconds())
	}
}

func (m *Metrics) finished(j *jobs.Job) {
	if m == nil {
		return
	}
	a := m.actionLabel(j)
	m.Finished.WithLabelValues(a, string(j.State)).Inc()
	if j.Duration != nil {
		m.Duration.WithLabelValues(a).Observe(*j.Duration)
	}
}

func (m *Metrics) quarantined(kind string) {
	if m != nil {
		m.Quarantined.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) setBusy(n int) {
	if m != nil {
		m.Busy.Set(float64(n))
	}
}

func (m *Metrics) setDepth(n int) {
	if m != nil {
		m.Depth.Set(float64(n))
	}
}
