package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobengine/jobengine/engine/zkconn"
)

// zkCollectors are the metrics of a daemon's ZooKeeper connection: whether
// it holds a session now, and how many sessions the server expired.
func zkCollectors(conn *zkconn.Conn) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "jobengine_zk_connected",
			Help: "1 while the ZooKeeper connection holds a session, 0 while it is down.",
		}, func() float64 {
			if conn.Connected() {
				return 1
			}
			return 0
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "jobengine_zk_session_expirations_total",
			Help: "ZooKeeper sessions the server expired (the daemon then opened a new one).",
		}, func() float64 { return float64(conn.SessionExpirations()) }),
	}
}
