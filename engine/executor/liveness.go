package executor

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// LogDeadMemberRemoved (WARN) is logged when an executor finds its name
// held by the membership node of a process that is gone, and removes it.
const LogDeadMemberRemoved = "removed the membership node of a dead executor of the same name"

// deadMember reports whether m, a membership node under this executor's
// name held by another session, belongs to a process that is gone: one
// on this host whose pid no longer runs, or now runs another program
// (started after m was). Its session lingers on the server until it
// expires, which would otherwise keep the name taken after a kill -9.
// Anything uncertain counts as alive.
func (e *Executor) deadMember(m Member) bool {
	if m.Host == "" || m.Host != e.host || m.PID <= 0 || m.PID == os.Getpid() {
		return false
	}
	st, ok := readProcess(m.PID)
	if !ok {
		return !processExists(m.PID)
	}
	// A process started after the executor recorded its own start is
	// another process under a recycled pid. The boot time is known to the
	// second: allow for it.
	return st.zombie || (!m.Started.IsZero() && st.started.After(m.Started.Add(2*time.Second)))
}

// process is what /proc says of a process.
type process struct {
	started time.Time
	zombie  bool
}

// readProcess reads a process's start time and state from /proc (Linux);
// ok is false when that cannot be read.
func readProcess(pid int) (process, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return process{}, false
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return process{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); starttime is field 22, in clock ticks
	// since boot (USER_HZ, 100 on Linux).
	if len(f) < 20 {
		return process{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return process{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return process{}, false
	}
	return process{started: boot.Add(time.Duration(ticks) * 10 * time.Millisecond), zombie: f[0] == "Z" || f[0] == "X"}, true
}

// bootTime reads the system's boot time from /proc/stat.
func bootTime() (time.Time, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(s, 0), true
		}
	}
	return time.Time{}, false
}
