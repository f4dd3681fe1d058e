package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Capacity formula (AWX's): forks a CPU runs, memory a fork takes, memory
// kept for the system.
const (
	ForksPerCPU    = 4
	MemPerForkMB   = 100
	MemReserveMB   = 2048
	minCapacityVal = 1
)

// Info describes a worker node, as `worker --worker-info` prints it: the
// keys of ansible-runner's (cpu_count, mem_in_bytes, errors, runner_version,
// uuid) and the capacities derived from them.
type Info struct {
	CPUCount      int      `json:"cpu_count"`
	MemInBytes    int64    `json:"mem_in_bytes"`
	Errors        []string `json:"errors"`
	RunnerVersion string   `json:"runner_version"`
	UUID          string   `json:"uuid"`
	CPUCapacity   int      `json:"cpu_capacity"`
	MemCapacity   int      `json:"mem_capacity"`
	// Capacity is the larger of the two (AWX's capacity adjustment 1.0):
	// how many forks the node runs at once.
	Capacity int `json:"capacity"`
	// Version is the jobengine version of the worker.
	Version string `json:"version"`
	// OrphanSeconds bounds how long a run of this worker goes on after
	// its connection is closed: it notices the closed stream (at the
	// latest at its next keepalive) and stops its action within the kill
	// grace. 0 means no bound is known (no keepalives, or not a jobengine
	// worker). An executor holds a cut run's job that long before the
	// lost-job policy may run it elsewhere.
	OrphanSeconds float64 `json:"orphan_seconds,omitempty"`
}

// OrphanBound is Info.OrphanSeconds for a worker sending keepalives every
// keepalive (0: none, no bound) whose actions stop within killGrace of a
// cancel: a keepalive is due within keepalive·5/4 (its ticker checks
// every quarter), the write fails, the run is canceled; a second is
// allowed for the rest.
func OrphanBound(keepalive, killGrace time.Duration) float64 {
	if keepalive <= 0 {
		return 0
	}
	return (keepalive*5/4 + killGrace + time.Second).Seconds()
}

// NodeInfo measures this node. uuidFile holds its persistent uuid,
// created on first use (0600).
func NodeInfo(version, uuidFile string) Info {
	info := Info{CPUCount: runtime.NumCPU(), Errors: []string{}, RunnerVersion: version, Version: version}
	mem, err := memTotal()
	if err != nil {
		info.Errors = append(info.Errors, err.Error())
	}
	info.MemInBytes = mem
	id, err := ensureUUID(uuidFile)
	if err != nil {
		info.Errors = append(info.Errors, err.Error())
	}
	info.UUID = id
	info.CPUCapacity, info.MemCapacity, info.Capacity = Capacity(info.CPUCount, info.MemInBytes)
	return info
}

// Capacity computes a node's capacity from its CPUs and memory.
func Capacity(cpus int, memBytes int64) (cpu, mem, total int) {
	cpu = max(cpus*ForksPerCPU, minCapacityVal)
	mem = max(int((memBytes>>20-MemReserveMB)/MemPerForkMB), minCapacityVal)
	return cpu, mem, max(cpu, mem)
}

func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("memory capacity unknown: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New("memory capacity unknown: no MemTotal in /proc/meminfo")
}

// DefaultUUIDFile is where a node keeps its uuid: ~/.jobengine_worker_uuid.
func DefaultUUIDFile() string {
	h, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(h, ".jobengine_worker_uuid")
}

func ensureUUID(path string) (string, error) {
	if path == "" {
		return "", errors.New("no place to keep the node's uuid (no home directory)")
	}
	data, err := os.ReadFile(path)
	if err == nil {
		if id, perr := uuid.Parse(strings.TrimSpace(string(data))); perr == nil {
			return id.String(), nil
		}
		return "", fmt.Errorf("%s does not hold a uuid", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	id := uuid.NewString()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return ensureUUID(path) // another worker wrote it first
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.WriteString(id + "\n"); err != nil {
		return "", err
	}
	return id, nil
}
