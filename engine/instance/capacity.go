package instance

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Capacity defaults, AWX's: four forks per CPU, 100 MB of memory per fork
// once 2 GiB are set aside for the system, and the larger of the two.
const (
	DefaultForksPerCPU   = 4
	DefaultMemoryPerFork = 100 << 20
	MemoryReserve        = 2 << 30
	DefaultAdjustment    = 1.0
	// MaxCapacity bounds an executor's capacity.
	MaxCapacity = 1_000_000
	// MaxAdjustment bounds the capacity adjustment.
	MaxAdjustment = 100.0
)

// Resources are what a machine offers.
type Resources struct {
	// CPUs is the number of CPUs the process may use.
	CPUs int `json:"cpus"`
	// MemoryBytes is the machine's memory.
	MemoryBytes int64 `json:"memory"`
}

// DetectResources reads the CPUs this process may use and the machine's
// memory (/proc/meminfo). Memory it cannot read counts as none: the memory
// capacity is then its minimum, 1.
func DetectResources() Resources {
	r := Resources{CPUs: runtime.NumCPU()}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return r
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				r.MemoryBytes = kb << 10
			}
			break
		}
	}
	return r
}

// CapacitySettings say how an executor's capacity is derived from its
// machine, or set outright.
type CapacitySettings struct {
	// Fixed, when positive, is the capacity whatever the machine
	// (--capacity).
	Fixed int `json:"fixed,omitempty"`
	// ForksPerCPU is the number of forks one CPU runs (default 4).
	ForksPerCPU int `json:"forks-per-cpu"`
	// MemoryPerFork is the memory one fork takes, in bytes (default 100 MB).
	MemoryPerFork int64 `json:"memory-per-fork"`
	// Adjustment interpolates between the CPU and the memory capacity: 0
	// is the smaller, 1 the larger (default), 0.5 half-way; above 1
	// extrapolates beyond the larger.
	Adjustment float64 `json:"adjustment"`
}

// WithDefaults returns s with unset fields at their defaults. An unset
// adjustment (0) is a choice, the smaller capacity: callers that parse
// settings start from DefaultCapacitySettings.
func (s CapacitySettings) WithDefaults() CapacitySettings {
	if s.ForksPerCPU <= 0 {
		s.ForksPerCPU = DefaultForksPerCPU
	}
	if s.MemoryPerFork <= 0 {
		s.MemoryPerFork = DefaultMemoryPerFork
	}
	return s
}

// DefaultCapacitySettings are AWX's defaults.
func DefaultCapacitySettings() CapacitySettings {
	return CapacitySettings{ForksPerCPU: DefaultForksPerCPU, MemoryPerFork: DefaultMemoryPerFork, Adjustment: DefaultAdjustment}
}

// Validate checks the settings.
func (s CapacitySettings) Validate() error {
	switch {
	case s.Fixed < 0 || s.Fixed > MaxCapacity:
		return fmt.Errorf("%w: capacity %d is outside 1–%d", ErrInvalid, s.Fixed, MaxCapacity)
	case s.ForksPerCPU < 0 || s.ForksPerCPU > 1000:
		return fmt.Errorf("%w: forks per CPU %d is outside 1–1000", ErrInvalid, s.ForksPerCPU)
	case s.MemoryPerFork < 0:
		return fmt.Errorf("%w: negative memory per fork", ErrInvalid)
	case math.IsNaN(s.Adjustment) || s.Adjustment < 0 || s.Adjustment > MaxAdjustment:
		return fmt.Errorf("%w: capacity adjustment %v is outside 0–%v (0: the smaller of the CPU and memory capacities, 1: the larger)", ErrInvalid, s.Adjustment, MaxAdjustment)
	}
	return nil
}

// Capacity is an executor's capacity and how it was reached.
type Capacity struct {
	// CPU is CPUs × forks per CPU (at least 1).
	CPU int `json:"cpu"`
	// Memory is (memory − 2 GiB) / memory per fork (at least 1).
	Memory int `json:"memory"`
	// Total is the capacity the scheduler uses: the two interpolated by
	// the adjustment, or the fixed capacity.
	Total int `json:"total"`
}

// Compute derives the capacity of a machine with resources r under
// settings s (AWX's formula).
func Compute(r Resources, s CapacitySettings) Capacity {
	s = s.WithDefaults()
	c := Capacity{
		CPU:    max(1, r.CPUs*s.ForksPerCPU),
		Memory: int(max(1, (r.MemoryBytes-MemoryReserve)/s.MemoryPerFork)),
	}
	lo, hi := min(c.CPU, c.Memory), max(c.CPU, c.Memory)
	c.Total = min(MaxCapacity, lo+int(math.Floor(float64(hi-lo)*s.Adjustment)))
	if s.Fixed > 0 {
		c.Total = s.Fixed
	}
	return c
}
