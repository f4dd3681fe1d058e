package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// What a drain costs, counted rather than timed, so that runs on a shared
// machine compare: ZooKeeper write transactions (the zxid counter) and
// requests received per job, and CPU time of the executors and, when its
// process id is given, of the ZooKeeper server per job.

// zkCounters are the counters of a standalone ZooKeeper server's srvr
// command at one moment.
type zkCounters struct {
	zxid     int64
	received int64
	ok       bool
}

// readZK reads the counters of the first of hosts with the srvr command;
// ok is false when the server does not answer it (not whitelisted).
// (go-zookeeper's FLWSrvr cannot parse the version line of some builds.)
func readZK(hosts []string) zkCounters {
	conn, err := net.DialTimeout("tcp", hosts[0], 2*time.Second)
	if err != nil {
		return zkCounters{}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("srvr")); err != nil {
		return zkCounters{}
	}
	out, _ := io.ReadAll(conn)
	var c zkCounters
	var haveZxid, haveReceived bool
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Received: "); ok {
			c.received, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			haveReceived = err == nil
		}
		if v, ok := strings.CutPrefix(l, "Zxid: 0x"); ok {
			c.zxid, err = strconv.ParseInt(strings.TrimSpace(v), 16, 64)
			haveZxid = err == nil
		}
	}
	c.ok = haveZxid && haveReceived
	return c
}

// cpuSeconds returns the user and system CPU time a process has used, or
// zero when it cannot be read.
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces, closed by ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// loadAverage returns the one-minute load average of the machine.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// Cost is what the drain of a backlog cost per job.
type Cost struct {
	// ZKTxnPerJob is the ZooKeeper write transactions (a multi is one)
	// per job; ZKRequestsPerJob every request, reads and pings included.
	ZKTxnPerJob      float64 `json:"zk_txn_per_job,omitempty"`
	ZKRequestsPerJob float64 `json:"zk_requests_per_job,omitempty"`
	// ExecutorCPUMicros and ZKCPUMicros are CPU time per job, in µs.
	ExecutorCPUMicros float64 `json:"executor_cpu_us_per_job,omitempty"`
	ZKCPUMicros       float64 `json:"zk_cpu_us_per_job,omitempty"`
	// LoadAverage is the machine's one-minute load average at the end.
	LoadAverage float64 `json:"load_average"`
}

// costMeter measures a Cost between start and stop.
type costMeter struct {
	hosts []string
	zkPID int
	pids  []int
	zk    zkCounters
	cpu   float64
	zkCPU float64
}

func startCost(hosts []string, zkPID int, pids []int) *costMeter {
	m := &costMeter{hosts: hosts, zkPID: zkPID, pids: pids, zk: readZK(hosts), zkCPU: cpuSeconds(zkPID)}
	for _, p := range pids {
		m.cpu += cpuSeconds(p)
	}
	return m
}

func (m *costMeter) stop(jobs int) Cost {
	c := Cost{LoadAverage: loadAverage()}
	if jobs <= 0 {
		return c
	}
	n := float64(jobs)
	if after := readZK(m.hosts); after.ok && m.zk.ok {
		c.ZKTxnPerJob = float64(after.zxid-m.zk.zxid) / n
		c.ZKRequestsPerJob = float64(after.received-m.zk.received) / n
	}
	cpu := 0.0
	for _, p := range m.pids {
		cpu += cpuSeconds(p)
	}
	c.ExecutorCPUMicros = (cpu - m.cpu) * 1e6 / n
	if m.zkPID > 0 {
		c.ZKCPUMicros = (cpuSeconds(m.zkPID) - m.zkCPU) * 1e6 / n
	}
	return c
}
