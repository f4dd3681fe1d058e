package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/jobengine/jobengine/engine/daemon"
	"github.com/jobengine/jobengine/engine/index"
	"github.com/jobengine/jobengine/engine/logging"
	"github.com/jobengine/jobengine/engine/notify"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/internal/check"
)

// Flatness bounds of the soak (docs/faults.md, "The soak"): a series is
// flat when the median of its last quarter is at most the median of its
// second quarter times FlatFactor plus the metric's slack. The second
// quarter, not the first, because a daemon's first minutes are its warm-up
// (the heap grows to its working size, pools fill); medians, because a
// fault makes single samples jump (a reconnect, a burst of requeued jobs).
const (
	FlatFactor = 1.25
	// FlatRSSSlack absorbs the Go collector's swings: the heap goal is
	// twice the live heap, so a small daemon's RSS moves by a few MB
	// from one minute to the next with nothing leaking.
	FlatRSSSlack = 16 << 20
	// FlatGoroutineSlack absorbs the goroutines of whatever is in flight
	// at a sample: running actions, a reconnect, a leader's services.
	FlatGoroutineSlack = 25
	// FlatMinSamples is the fewest samples a process needs to be judged:
	// fewer quarters than two samples each say nothing.
	FlatMinSamples = 8
)

// DaemonSample is one measurement of one daemon process.
type DaemonSample struct {
	At      time.Time `json:"at"`
	Process string    `json:"process"`
	PID     int       `json:"pid"`
	// RSS is the resident memory in bytes: process_resident_memory_bytes
	// from the metrics endpoint, or VmRSS of /proc/PID/status.
	RSS int64 `json:"rss"`
	// Goroutines is go_goroutines from an executor's metrics endpoint, or
	// the count of a distributor's or controller's state dump (SIGUSR1); -1 when the
	// process did not answer in time (a frozen process).
	Goroutines int `json:"goroutines"`
	// Threads is the Threads line of /proc/PID/status (OS threads).
	Threads int `json:"threads"`
}

// QueueSample counts what waits in ZooKeeper at a sample.
type QueueSample struct {
	At time.Time `json:"at"`
	// Outbox and OutboxFailed count the index outbox and its failed/.
	Outbox       int `json:"outbox"`
	OutboxFailed int `json:"outbox_failed"`
	// Notices and NoticesParked count the notification queue and its
	// parked notices.
	Notices       int    `json:"notices"`
	NoticesParked int    `json:"notices_parked"`
	Err           string `json:"err,omitempty"`
}

// Trend is the verdict on one series: one metric of one process.
type Trend struct {
	Process string  `json:"process"`
	Metric  string  `json:"metric"`
	Samples int     `json:"samples"`
	Q2      float64 `json:"q2_median"`
	Q4      float64 `json:"q4_median"`
	Bound   float64 `json:"bound"`
	Flat    bool    `json:"flat"`
}

// Soak samples every daemon of a harness run at a fixed interval — memory,
// goroutines, threads — and the queues that must drain, and judges at the
// end whether the daemons stayed flat. Its Args go to Harness.ExtraArgs and
// its Watch to Harness.Watch.
type Soak struct {
	// Every is the sample interval (default 1m).
	Every time.Duration
	// DrainWait bounds the wait, at the end of the workload, for the
	// cluster's own index pump and notification sender to empty their
	// queues (default 3m).
	DrainWait time.Duration
	// Logf receives a line per sample.
	Logf func(format string, args ...any)

	metrics map[string]string // executor instance → metrics address
	client  *http.Client

	mu      sync.Mutex
	daemons []DaemonSample
	queues  []QueueSample
	// DrainedAfter is how long the queues took to drain after the
	// workload; DrainErr why they did not.
	drainedAfter time.Duration
	drainErr     error
	drainLeft    QueueSample
	crashes      []string
}

// NewSoak returns a Soak with a metrics address reserved for each of the
// executors x1 … xN, and for the executors named in more (the remote
// executor, r1).
func NewSoak(executors int, every time.Duration, more ...string) (*Soak, error) {
	s := &Soak{Every: every, metrics: map[string]string{}, client: &http.Client{Timeout: 3 * time.Second}}
	if s.Every <= 0 {
		s.Every = time.Minute
	}
	names := more
	for i := 1; i <= executors; i++ {
		names = append(names, fmt.Sprintf("x%d", i))
	}
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.metrics[name] = ln.Addr().String()
		ln.Close()
	}
	return s, nil
}

// Args gives each executor process its metrics address (the same across
// its restarts, as a unit file would).
func (s *Soak) Args(role, instance string) []string {
	if addr, ok := s.metrics[instance]; ok && role == RoleExecutor {
		return []string{"--metrics-listen", addr}
	}
	return nil
}

func (s *Soak) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Watch samples at once and then every s.Every until the returned function
// is called; that function takes a last sample and waits until the index
// outbox and the notification queue are empty, with the cluster's own pump
// and sender still running.
func (s *Soak) Watch(ctx context.Context, h *Harness) func() {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.Every)
		defer t.Stop()
		for {
			s.sample(wctx, h)
			select {
			case <-t.C:
			case <-wctx.Done():
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
		s.sample(ctx, h)
		s.waitDrained(ctx, h)
		s.findCrashes(h)
	}
}

// findCrashes looks through the log of every process that ran so far for
// the Go runtime's report of a crash ("panic: …", "fatal error: …" at the
// start of a line): a daemon that died on its own is a finding even when
// the run recovers from it, and the harness restarts only the processes
// its faults kill.
func (s *Soak) findCrashes(h *Harness) {
	h.mu.Lock()
	var ids []string
	for _, in := range h.instances() {
		for _, p := range in.procs {
			ids = append(ids, p.info.ID)
		}
	}
	h.mu.Unlock()
	for _, id := range ids {
		lines, err := crashLines(h.logPath(id))
		if err != nil {
			s.logf("soak: reading the log of %s: %v", id, err)
			continue
		}
		if len(lines) > 0 {
			s.mu.Lock()
			s.crashes = append(s.crashes, fmt.Sprintf("%s crashed: %s (%s)", id, strings.Join(lines, "; "), h.logPath(id)))
			s.mu.Unlock()
		}
	}
}

// crashLines returns the lines of a log that start the Go runtime's report
// of a crash.
func crashLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// daemons returns the current process of every executor, distributor and
// controller.
func (h *Harness) daemons() []Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Process
	for _, in := range h.instances() {
		if len(in.procs) > 0 {
			out = append(out, in.procs[len(in.procs)-1].info)
		}
	}
	return out
}

func (s *Soak) sample(ctx context.Context, h *Harness) {
	now := time.Now()
	var line strings.Builder
	fmt.Fprintf(&line, "soak sample at %s:", now.Sub(h.start).Round(time.Second))
	var got []DaemonSample
	for _, p := range h.daemons() {
		if !p.Exited.IsZero() {
			continue
		}
		ds := DaemonSample{At: now, Process: p.ID, PID: p.PID, Goroutines: -1}
		rss, threads, err := procStatus(p.PID)
		if err != nil {
			continue // exited between the listing and the read
		}
		ds.RSS, ds.Threads = rss, threads
		if p.Role == RoleDistributor || p.Role == RoleController {
			if n, err := dumpGoroutines(ctx, p.PID, h.logPath(p.ID)); err == nil {
				ds.Goroutines = n
			}
		}
		if addr, ok := s.metrics[p.Instance]; ok && p.Role == RoleExecutor {
			if m, err := s.scrape(ctx, addr); err == nil {
				if v, ok := m["go_goroutines"]; ok {
					ds.Goroutines = int(v)
				}
				if v, ok := m["process_resident_memory_bytes"]; ok {
					ds.RSS = int64(v)
				}
			}
		}
		got = append(got, ds)
		g := "-"
		if ds.Goroutines >= 0 {
			g = strconv.Itoa(ds.Goroutines)
		}
		fmt.Fprintf(&line, " %s %.1fMB g=%s t=%d;", ds.Process, float64(ds.RSS)/(1<<20), g, ds.Threads)
	}
	q := queueSample(ctx, h.conn)
	fmt.Fprintf(&line, " outbox %d (failed %d), notices %d (parked %d)", q.Outbox, q.OutboxFailed, q.Notices, q.NoticesParked)
	if q.Err != "" {
		fmt.Fprintf(&line, " (%s)", q.Err)
	}
	s.mu.Lock()
	s.daemons = append(s.daemons, got...)
	s.queues = append(s.queues, q)
	s.mu.Unlock()
	s.logf("%s", line.String())
}

// scrape reads the Prometheus text exposition at addr, as name → value for
// the unlabelled samples.
func (s *Soak) scrape(ctx context.Context, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics at %s: %s", addr, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' || strings.Contains(l, "{") {
			continue
		}
		name, val, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// procStatus reads VmRSS (bytes) and Threads of a process.
func procStatus(pid int) (rss int64, threads int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) == 0 {
			continue
		}
		switch string(k) {
		case "VmRSS":
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			rss = kb << 10
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		}
	}
	return rss, threads, nil
}

// queueSample counts the index outbox and the notification queue.
func queueSample(ctx context.Context, c *zkconn.Conn) QueueSample {
	q := QueueSample{At: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var errs []error
	if st, err := index.Stats(ctx, c); err != nil {
		errs = append(errs, err)
	} else {
		q.Outbox, q.OutboxFailed = st.Entries, st.Failed
	}
	ns := notify.NewStore(c)
	var err error
	if q.Notices, err = countChildren(ctx, c, ns.OutboxPath()); err != nil {
		errs = append(errs, err)
	}
	if q.NoticesParked, err = countChildren(ctx, c, ns.FailedPath()); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		q.Err = err.Error()
	}
	return q
}

func countChildren(ctx context.Context, c *zkconn.Conn, path string) (int, error) {
	var n int
	err := zkconn.Do(ctx, func() error {
		names, _, err := c.Children(path)
		if errors.Is(err, zk.ErrNoNode) {
			n = 0
			return nil
		}
		n = len(names)
		return err
	})
	return n, err
}

// waitDrained polls until the outbox and the notification queue are
// empty, with nothing refused or parked, or DrainWait passes.
func (s *Soak) waitDrained(ctx context.Context, h *Harness) {
	wait := s.DrainWait
	if wait <= 0 {
		wait = 3 * time.Minute
	}
	from := time.Now()
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last QueueSample
	err := check.Until(dctx, 500*time.Millisecond, func() error {
		last = queueSample(dctx, h.conn)
		if last.Err != "" {
			return errors.New(last.Err)
		}
		if last.Outbox+last.Notices > 0 {
			return fmt.Errorf("%d outbox entries and %d notices waiting", last.Outbox, last.Notices)
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainedAfter, s.drainErr, s.drainLeft = time.Since(from), err, last
	if err == nil {
		s.logf("soak: the outbox and the notification queue drained %s after the workload", s.drainedAfter.Round(10*time.Millisecond))
	} else {
		s.logf("soak: the queues did not drain within %s: %v", wait, err)
	}
}

// SoakResult is what the soak measured and its verdicts.
type SoakResult struct {
	Every   time.Duration  `json:"every"`
	Daemons []DaemonSample `json:"daemons"`
	Queues  []QueueSample  `json:"queues"`
	Trends  []Trend        `json:"trends"`
	// DrainedAfter is how long the cluster took, after the workload, to
	// empty the outbox and the notification queue.
	DrainedAfter Millis      `json:"drained_after_ms"`
	DrainLeft    QueueSample `json:"drain_left"`
	// Problems are the failed assertions: a series not flat, a queue not
	// drained, an entry refused or parked, a daemon that crashed.
	Problems []string `json:"problems"`
}

// Result judges the samples.
func (s *Soak) Result() *SoakResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &SoakResult{Every: s.Every, Daemons: append([]DaemonSample(nil), s.daemons...), Queues: append([]QueueSample(nil), s.queues...),
		DrainedAfter: Millis(s.drainedAfter), DrainLeft: s.drainLeft}
	r.Trends = Trends(r.Daemons)
	for _, t := range r.Trends {
		if !t.Flat {
			r.Problems = append(r.Problems, fmt.Sprintf("%s of %s is not flat: median %.0f in the last quarter of its %d samples against %.0f in the second (bound %.0f)",
				t.Metric, t.Process, t.Q4, t.Samples, t.Q2, t.Bound))
		}
	}
	if s.drainErr != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("the outbox and the notification queue did not drain: %v", s.drainErr))
	}
	r.Problems = append(r.Problems, s.crashes...)
	if l := s.drainLeft; l.OutboxFailed > 0 || l.NoticesParked > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d outbox entries refused (failed/) and %d notices parked at the end", l.OutboxFailed, l.NoticesParked))
	}
	return r
}

// Trends judges every series with at least FlatMinSamples samples: the
// RSS and (where known) the goroutines of each process.
func Trends(samples []DaemonSample) []Trend {
	type key struct{ proc, metric string }
	series := map[key][]float64{}
	var keys []key
	add := func(k key, v float64) {
		if _, ok := series[k]; !ok {
			keys = append(keys, k)
		}
		series[k] = append(series[k], v)
	}
	sorted := append([]DaemonSample(nil), samples...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].At.Before(sorted[b].At) })
	for _, d := range sorted {
		add(key{d.Process, "rss"}, float64(d.RSS))
		if d.Goroutines >= 0 {
			add(key{d.Process, "goroutines"}, float64(d.Goroutines))
		}
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].proc != keys[b].proc {
			return keys[a].proc < keys[b].proc
		}
		return keys[a].metric > keys[b].metric
	})
	var out []Trend
	for _, k := range keys {
		v := series[k]
		if len(v) < FlatMinSamples {
			continue
		}
		n := len(v)
		t := Trend{Process: k.proc, Metric: k.metric, Samples: n, Q2: median(v[n/4 : n/2]), Q4: median(v[n-n/4:])}
		slack := float64(FlatGoroutineSlack)
		if k.metric == "rss" {
			slack = FlatRSSSlack
		}
		t.Bound = t.Q2*FlatFactor + slack
		t.Flat = t.Q4 <= t.Bound
		out = append(out, t)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Summary is the soak's figures as text: the trend of every judged
// series, the queues and the verdict.
func (r *SoakResult) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d daemon samples every %s; flat: last quarter's median ≤ second quarter's × %.2f + %d MB (RSS) / + %d (goroutines), over processes with %d samples or more\n",
		len(r.Daemons), r.Every, FlatFactor, FlatRSSSlack>>20, FlatGoroutineSlack, FlatMinSamples)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PROCESS\tMETRIC\tSAMPLES\tQ2 MEDIAN\tQ4 MEDIAN\tBOUND\tFLAT")
	for _, t := range r.Trends {
		f := func(v float64) string {
			if t.Metric == "rss" {
				return fmt.Sprintf("%.1f MB", v/(1<<20))
			}
			return fmt.Sprintf("%.0f", v)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\t%v\n", t.Process, t.Metric, t.Samples, f(t.Q2), f(t.Q4), f(t.Bound), t.Flat)
	}
	tw.Flush()
	maxOutbox, maxNotices := 0, 0
	for _, q := range r.Queues {
		maxOutbox, maxNotices = max(maxOutbox, q.Outbox), max(maxNotices, q.Notices)
	}
	fmt.Fprintf(&b, "queues: outbox at most %d at a sample, notices at most %d; drained %s after the workload (left: outbox %d, failed %d, notices %d, parked %d)\n",
		maxOutbox, maxNotices, time.Duration(r.DrainedAfter).Round(10*time.Millisecond), r.DrainLeft.Outbox, r.DrainLeft.OutboxFailed, r.DrainLeft.Notices, r.DrainLeft.NoticesParked)
	if len(r.Problems) == 0 {
		b.WriteString("soak verdict: every daemon flat, the queues drained\n")
	} else {
		fmt.Fprintf(&b, "soak verdict: %d PROBLEMS\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	return b.String()
}

// WriteJSON writes the result to path, indented.
func (r *SoakResult) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// UnmarshalJSON reads what MarshalJSON wrote, so that reports can be read
// back and summed up (the release run's summary).
func (m *Millis) UnmarshalJSON(b []byte) error {
	var ms int64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	if ms < 0 {
		*m = notMeasured
		return nil
	}
	*m = Millis(time.Duration(ms) * time.Millisecond)
	return nil
}

// dumpGoroutines asks a distributor or controller process for a state dump
// (SIGUSR1; they have no metrics endpoint) and reads the goroutine count of
// the summary line (message daemon.LogDump) it appends to its JSON log.
func dumpGoroutines(ctx context.Context, pid int, logPath string) (int, error) {
	st, err := os.Stat(logPath)
	if err != nil {
		return -1, err
	}
	from := st.Size()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return -1, err
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n := -1
	err = check.Until(dctx, 100*time.Millisecond, func() error {
		f, err := os.Open(logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Seek(from, io.SeekStart); err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			var msg string
			if json.Unmarshal(l[logging.MessageKey], &msg) != nil || msg != daemon.LogDump {
				continue
			}
			if json.Unmarshal(l[dumpGoroutinesKey], &n) == nil {
				return nil
			}
		}
		return errors.New("no state dump yet")
	})
	return n, err
}

// dumpGoroutinesKey is the field of daemon.LogDump with runtime.NumGoroutine.
const dumpGoroutinesKey = "goroutines"
