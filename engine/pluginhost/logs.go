package pluginhost

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults of the plugin log limits.
const (
	// DefaultLogRate is how many lines a second a plugin may put into the
	// daemon's log (its stdout, stderr and job log lines together).
	DefaultLogRate = 50
	// DefaultLogBurst is how many lines a plugin may log at once above
	// the rate.
	DefaultLogBurst = 200
	// MaxLogLineBytes bounds one logged line; the rest is cut.
	MaxLogLineBytes = 2048
)

// logLimiter caps what one plugin puts into the daemon's log: a plugin
// flooding its output would otherwise rotate the executor's own history
// away in a moment. Lines over the rate are dropped and counted; the count
// is logged with the next line that passes, or when a process ends.
type logLimiter struct {
	log     *zap.Logger
	lim     *rate.Limiter
	counter prometheus.Counter

	mu      sync.Mutex
	pending int // dropped since the last report
}

func newLogLimiter(log *zap.Logger, perSecond float64, burst int, dropped prometheus.Counter) *logLimiter {
	return &logLimiter{log: log, lim: rate.NewLimiter(rate.Limit(perSecond), burst), counter: dropped}
}

// allow reports whether a line may be logged now, counting it otherwise.
func (l *logLimiter) allow() bool {
	if !l.lim.Allow() {
		l.counter.Inc()
		l.mu.Lock()
		l.pending++
		l.mu.Unlock()
		return false
	}
	l.flush()
	return true
}

// flush logs how many lines were dropped since the last report, if any.
func (l *logLimiter) flush() {
	l.mu.Lock()
	n := l.pending
	l.pending = 0
	l.mu.Unlock()
	if n > 0 {
		l.log.Warn("plugin output over the rate limit was dropped from this log", zap.Int("dropped-lines", n))
	}
}

// capLine cuts a line to MaxLogLineBytes.
func capLine(s string) string {
	if len(s) <= MaxLogLineBytes {
		return s
	}
	return s[:MaxLogLineBytes] + "…(cut)"
}

// droppedLines is the counter vector of dropped plugin log lines.
func newDroppedLines() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jobengine_plugin_log_lines_dropped_total",
		Help: "Lines of plugin output and job logs not written to the daemon's log because the plugin exceeded its rate, by plugin.",
	}, []string{"plugin"})
}
