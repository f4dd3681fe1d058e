package instance

import (
	"encoding/json"
	"fmt"
	"time"
)

// RunningJob describes a job an executor runs now.
type RunningJob struct {
	Job     string    `json:"job"`
	Action  string    `json:"action"`
	Attempt int       `json:"attempt"`
	Started time.Time `json:"started"`
	Worker  int       `json:"worker"`
}

// Heartbeat is the JSON of an executor's ephemeral heartbeat node,
// /executors/<name>, rewritten every few seconds: it exists while the
// executor's session lives.
type Heartbeat struct {
	Name     string       `json:"name"`
	Host     string       `json:"host"`
	PID      int          `json:"pid"`
	Version  string       `json:"version"`
	Threads  int          `json:"threads"`
	Busy     int          `json:"busy"`
	Actions  []string     `json:"actions"`
	Started  time.Time    `json:"started"`
	LastSeen time.Time    `json:"last-seen"`
	Running  []RunningJob `json:"running"`
	// Groups and Capacity are the executor's instance groups and capacity
	// (as in its record).
	Groups   []string `json:"groups,omitempty"`
	Capacity int      `json:"capacity,omitempty"`
}

// decodeHeartbeat decodes the heartbeat stored under name.
func decodeHeartbeat(name string, data []byte) (*Heartbeat, error) {
	var h Heartbeat
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%w: heartbeat of executor %s is not valid JSON: %v", ErrInvalid, name, err)
	}
	if h.Name != name {
		return nil, fmt.Errorf("%w: heartbeat at %s names executor %q", ErrInvalid, name, h.Name)
	}
	if len(h.Running) > 100_000 {
		return nil, fmt.Errorf("%w: heartbeat of executor %s lists %d running jobs", ErrInvalid, name, len(h.Running))
	}
	return &h, nil
}
