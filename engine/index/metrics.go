package index

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// outboxCollector reports the sizes of the outbox and of failed/ at each
// scrape, from the directories' child counts (one ZooKeeper read each).
type outboxCollector struct {
	c               *zkconn.Conn
	entries, failed *prometheus.Desc
}

// OutboxCollector returns the metrics of the index outbox of c:
// jobengine_index_outbox_entries (job versions waiting for Elasticsearch;
// one that only grows, or never reaches zero, is a stuck outbox) and
// jobengine_index_failed_entries (versions refused for good, see
// FailedReasonOf). A scrape while ZooKeeper does not answer leaves them
// out rather than report a wrong count.
func OutboxCollector(c *zkconn.Conn) prometheus.Collector {
	return &outboxCollector{
		c: c,
		entries: prometheus.NewDesc("jobengine_index_outbox_entries",
			"Job document versions in the index outbox, waiting to be indexed into Elasticsearch.", nil, nil),
		failed: prometheus.NewDesc("jobengine_index_failed_entries",
			"Job document versions Elasticsearch refused for good, moved to the outbox's failed/ directory.", nil, nil),
	}
}

func (o *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- o.entries
	ch <- o.failed
}

func (o *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, m := range []struct {
		desc *prometheus.Desc
		path string
	}{{o.entries, OutboxPath(o.c)}, {o.failed, FailedPath(o.c)}} {
		n := 0
		err := zkconn.Do(ctx, func() error {
			ok, st, err := o.c.Exists(m.path)
			if ok && st != nil {
				n = int(st.NumChildren)
			}
			return err
		})
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, float64(n))
	}
}
