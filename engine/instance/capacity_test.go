package instance

import (
	"errors"
	"testing"
)

// AWX's capacity formula: CPUs × forks per CPU and (memory − 2 GiB) /
// memory per fork, interpolated by the adjustment, or set outright.
func TestCapacityTable(t *testing.T) {
	const gib = int64(1) << 30
	// 4 CPUs → 16; 8 GiB → (8192 − 2048) / 100 = 61.
	machine := Resources{CPUs: 4, MemoryBytes: 8 * gib}
	cases := []struct {
		name     string
		r        Resources
		s        CapacitySettings
		cpu, mem int
		total    int
	}{
		{"adjustment 0: the smaller", machine, CapacitySettings{Adjustment: 0}, 16, 61, 16},
		{"adjustment 0.5: half-way", machine, CapacitySettings{Adjustment: 0.5}, 16, 61, 38},
		{"adjustment 1: the larger (default)", machine, DefaultCapacitySettings(), 16, 61, 61},
		{"adjustment 1.5: beyond the larger", machine, CapacitySettings{Adjustment: 1.5}, 16, 61, 83},
		{"memory the smaller", Resources{CPUs: 32, MemoryBytes: 4 * gib}, CapacitySettings{Adjustment: 0}, 128, 20, 20},
		{"less memory than the reserve", Resources{CPUs: 2, MemoryBytes: gib}, DefaultCapacitySettings(), 8, 1, 8},
		{"no CPU known", Resources{CPUs: 0, MemoryBytes: 0}, DefaultCapacitySettings(), 1, 1, 1},
		{"forks per CPU and memory per fork", machine, CapacitySettings{ForksPerCPU: 2, MemoryPerFork: 200 << 20, Adjustment: 1}, 8, 30, 30},
		{"fixed capacity wins", machine, CapacitySettings{Fixed: 5, Adjustment: 1}, 16, 61, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(tc.r, tc.s)
			if got.CPU != tc.cpu || got.Memory != tc.mem || got.Total != tc.total {
				t.Fatalf("Compute = %+v, want cpu %d, memory %d, total %d", got, tc.cpu, tc.mem, tc.total)
			}
		})
	}
}

func TestCapacitySettingsValidate(t *testing.T) {
	for name, s := range map[string]CapacitySettings{
		"negative adjustment": {Adjustment: -0.1},
		"huge adjustment":     {Adjustment: MaxAdjustment + 1},
		"negative capacity":   {Fixed: -1},
		"negative forks":      {ForksPerCPU: -1},
	} {
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := DefaultCapacitySettings().Validate(); err != nil {
		t.Fatal(err)
	}
	if r := DetectResources(); r.CPUs < 1 {
		t.Fatalf("detected %+v", r)
	}
}
